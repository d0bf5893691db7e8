"""Holonomic distance constraints from a body graph, and constrained Hamiltonian dynamics.

Bodies move in Cartesian coordinates ``q = (x_1, ..., x_N)`` (each in R^dim); the graph fixes
distances ``|x_i - x_j| = l_ij`` (edges) and ``|x_i - a| = l_i`` to fixed anchor points.
Constraints are written ``Phi(q) = |x_i - x_j|^2 - l_ij^2 = 0``.

Constrained Hamilton equations (Finzi, Wang & Wilson 2020, "CHNN"): with phase-space constraints
``Psi(z) = [Phi(q); DPhi(q) dH/dp]`` the motion is

.. math:: \\dot z = J\\nabla H - J D\\Psi^\\top (D\\Psi J D\\Psi^\\top)^{-1} D\\Psi J \\nabla H,

the Lagrange multipliers being the solution of the ``2k x 2k`` linear system. Because ``Phi``
depends on ``q`` alone, that system has the block form

.. math:: D\\Psi J D\\Psi^\\top = \\begin{pmatrix} 0 & G \\\\ -G & X \\end{pmatrix}, \\qquad
          G = D\\Phi\\, \\nabla_p^2 H\\, D\\Phi^\\top, \\quad X = -X^\\top,

with the inverse ``[[G^-1 X G^-1, -G^-1], [G^-1, 0]]``: two solves with the ``k x k``
positive-definite ``G``, factorised once (:class:`physbias._linalg.SPDFactor`), instead of a
``2k x 2k`` LU.

Constrained Euler-Lagrange equations ("CLNN") for ``L(q, qdot)`` in velocity coordinates: with
``M = d^2L/dqdot^2`` and ``f = dL/dq - (d^2L/dq dqdot) qdot``,

.. math:: M \\ddot q = f + D\\Phi^\\top\\lambda, \\qquad D\\Phi\\,\\ddot q = -\\gamma,
          \\qquad \\gamma = \\tfrac{d}{dt}(D\\Phi)\\,\\dot q = D^2\\Phi[\\dot q, \\dot q],

so ``lambda = -(DPhi M^{-1} DPhi^T)^{-1} (gamma + DPhi M^{-1} f)`` (a ``k x k`` solve).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._linalg import SPDFactor, small_matmul, small_matvec, spd_solve
from .mechanics import euler_lagrange_terms


class DistanceConstraints(eqx.Module):
    """``Phi(q)`` for distance constraints between bodies and to fixed anchors.

    Args:
        n_bodies: number of bodies; ``q`` has ``n_bodies * dim`` entries.
        edges: ``(i, j, length)`` triples: ``|x_i - x_j| = length``.
        anchors: ``(i, point, length)`` triples: ``|x_i - point| = length``.
        dim: spatial dimension.
    """

    n_bodies: int = eqx.field(static=True)
    edges: tuple[tuple[int, int, float], ...] = eqx.field(static=True)
    anchors: tuple[tuple[int, tuple[float, ...], float], ...] = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=2)

    def __check_init__(self):
        for i, j, length in self.edges:
            if not (0 <= i < self.n_bodies and 0 <= j < self.n_bodies and i != j):
                raise ValueError(f"DistanceConstraints: bad edge ({i}, {j}) for {self.n_bodies} bodies")
            if length <= 0:
                raise ValueError(f"DistanceConstraints: edge lengths must be positive, got {length}")
        for i, point, length in self.anchors:
            if not 0 <= i < self.n_bodies or len(point) != self.dim or length <= 0:
                raise ValueError(f"DistanceConstraints: bad anchor ({i}, {point}, {length})")
        if not self.edges and not self.anchors:
            raise ValueError("DistanceConstraints: give at least one edge or anchor")

    @classmethod
    def chain(cls, lengths, dim: int = 2) -> DistanceConstraints:
        """A chain hanging from the origin: body 0 at ``lengths[0]`` from it, body ``k`` at
        ``lengths[k]`` from body ``k-1`` (the N-link pendulum)."""
        lengths = tuple(float(v) for v in lengths)
        edges = tuple((k - 1, k, lengths[k]) for k in range(1, len(lengths)))
        return cls(len(lengths), edges, ((0, (0.0,) * dim, lengths[0]),), dim)

    @property
    def n_constraints(self) -> int:
        return len(self.edges) + len(self.anchors)

    def _incidence(self) -> np.ndarray:
        """``S`` (k x n_bodies): +1 at body ``i`` and -1 at body ``j`` of an edge; +1 at an
        anchored body. A static constant."""
        s = np.zeros((self.n_constraints, self.n_bodies), np.float32)
        for e, (i, j, _) in enumerate(self.edges):
            s[e, i], s[e, j] = 1.0, -1.0
        for e, (i, _, _) in enumerate(self.anchors, start=len(self.edges)):
            s[e, i] = 1.0
        return s

    def relative(self, v: Float[Array, " nd"]) -> Float[Array, "k dim"]:
        """``S v``: ``v_i - v_j`` per edge and ``v_i`` per anchor (the rows of ``D Phi`` act on
        these)."""
        return jnp.asarray(self._incidence(), v.dtype) @ v.reshape(self.n_bodies, self.dim)

    def differences(self, q: Float[Array, " nd"]) -> Float[Array, "k dim"]:
        """``x_i - x_j`` per edge and ``x_i - a`` per anchor, so ``Phi_e = |d_e|^2 - l_e^2``."""
        d = self.relative(q)
        if self.anchors:
            points = np.zeros((self.n_constraints, self.dim), np.float64)
            points[len(self.edges) :] = [a[1] for a in self.anchors]
            d = d - jnp.asarray(points, q.dtype)
        return d

    def jacobian_along(self, vectors: Float[Array, "k dim"]) -> Float[Array, "k nd"]:
        """The ``k x (n_bodies dim)`` matrix ``2 (S^T diag) vectors``: row ``e`` holds
        ``2 vectors_e`` at body ``i`` and ``-2 vectors_e`` at body ``j``.

        ``D Phi(q) = jacobian_along(differences(q))``, and, since ``D Phi(q) v = 2 sum_e d_e .
        (S v)_e`` is linear in ``q``, ``d/dq (D Phi(q) v) = jacobian_along(relative(v))``: closed
        forms, with no autodiff pass per example.
        """
        s = jnp.asarray(self._incidence(), vectors.dtype)
        return (2 * s[:, :, None] * vectors[:, None, :]).reshape(self.n_constraints, -1)

    def jacobian(self, q: Float[Array, " nd"]) -> Float[Array, "k nd"]:
        """``D Phi(q)`` in closed form."""
        return self.jacobian_along(self.differences(q))

    def __call__(self, q: Float[Array, " nd"]) -> Float[Array, " k"]:
        x = q.reshape(self.n_bodies, self.dim)
        out = []
        if self.edges:
            i, j, length = (np.array(v) for v in zip(*self.edges, strict=True))
            out.append(jnp.sum((x[i] - x[j]) ** 2, axis=-1) - jnp.asarray(length, q.dtype) ** 2)
        if self.anchors:
            i = np.array([a[0] for a in self.anchors])
            points = jnp.asarray(np.array([a[1] for a in self.anchors]), q.dtype)
            length = jnp.asarray(np.array([a[2] for a in self.anchors]), q.dtype)
            out.append(jnp.sum((x[i] - points) ** 2, axis=-1) - length**2)
        return jnp.concatenate(out)


def _apply_j(m: Array) -> Array:
    """``J m`` for ``J = [[0, I], [-I, 0]]`` acting on the first axis of ``m``."""
    n = m.shape[0] // 2
    return jnp.concatenate([m[n:], -m[:n]])


def constrained_hamiltonian_field(
    hamiltonian: Callable[[Array], Array],
    constraints: Callable[[Array], Array],
    z: Float[Array, " 2m"],
    velocity: Callable[[Array, Array], Array] | None = None,
    inverse_mass: Float[Array, " m"] | None = None,
) -> Float[Array, " 2m"]:
    """``dz/dt`` of ``H(q, p)`` restricted to ``Phi(q) = 0`` (see the module docstring).

    ``velocity(q, p) = dH/dp`` in closed form, when known (e.g. ``p / m``), keeps the potential's
    network out of ``DPsi``: ``Psi`` then costs no second derivatives of the network.

    ``inverse_mass``, the diagonal of a constant ``M^{-1}`` (``H = p^T M^{-1} p / 2 + V(q)``), says
    that ``dH/dp = M^{-1} p``. With :class:`DistanceConstraints` ``DPsi`` then has a closed form:
    ``[[DPhi, 0], [d/dq (DPhi v), DPhi M^{-1}]]`` with ``v = M^{-1} p``, from
    :meth:`DistanceConstraints.jacobian_along`, instead of a reverse-mode Jacobian per example.
    """
    n = z.shape[0] // 2
    j_grad = _apply_j(jax.grad(hamiltonian)(z))
    if inverse_mass is not None:
        if inverse_mass.shape != (n,):
            raise ValueError(f"`inverse_mass` must have shape ({n},), got {inverse_mass.shape}")
        if velocity is not None:
            raise ValueError("give `velocity` or `inverse_mass`, not both")
        inverse_mass = inverse_mass.astype(z.dtype)
        if isinstance(constraints, DistanceConstraints):
            return _separable_distance_field(constraints, inverse_mass, z, j_grad)

        def velocity(q, p):
            return inverse_mass * p

    elif velocity is None:

        def velocity(q, p):
            return jax.grad(hamiltonian)(jnp.concatenate([q, p]))[n:]

    def psi(z):
        q, p = z[:n], z[n:]
        return jnp.concatenate([constraints(q), jax.jvp(constraints, (q,), (velocity(q, p),))[1]])

    # Reverse mode: 2k < 2n rows (and, measured, far faster than forward mode here).
    dpsi = jax.jacrev(psi)(z)  # (2k, 2n)
    j_dpsi_t = _apply_j(dpsi.T)  # (2n, 2k)
    k = dpsi.shape[0] // 2
    system, rhs = small_matmul(dpsi, j_dpsi_t), small_matvec(dpsi, j_grad)
    # The block inverse of the module docstring: mu_2 = G^-1 r_1, mu_1 = G^-1 (X mu_2 - r_2).
    gram = SPDFactor(system[:k, k:])
    second = gram.solve(rhs[:k])
    first = gram.solve(small_matvec(system[k:, k:], second) - rhs[k:])
    return j_grad - small_matvec(j_dpsi_t, jnp.concatenate([first, second]))


def _separable_distance_field(
    constraints: DistanceConstraints, inverse_mass: Array, z: Array, j_grad: Array
) -> Array:
    """The constrained field for ``dH/dp = M^-1 p`` (diagonal ``M``) and distance constraints, from
    the blocks of ``DPsi = [[DPhi, 0], [A, DPhi M^-1]]``, ``A = d/dq (DPhi v)``, ``v = M^-1 p``:

        G = DPhi M^-1 DPhi^T,  X = A M^-1 DPhi^T - DPhi M^-1 A^T,
        r_1 = DPhi H_p,        r_2 = A H_p - DPhi M^-1 H_q,
        mu_2 = G^-1 r_1,       mu_1 = G^-1 (X mu_2 - r_2),
        dz/dt = (H_p - M^-1 DPhi^T mu_2,  -H_q + DPhi^T mu_1 + A^T mu_2).

    The same numbers as the dense ``2k x 2n`` products (tested), without their zero blocks: every
    product is ``k x n`` or smaller.
    """
    n = z.shape[0] // 2
    q, p = z[:n], z[n:]
    h_p, minus_h_q = j_grad[:n], j_grad[n:]
    dphi = constraints.jacobian(q)  # (k, n)
    a = constraints.jacobian_along(constraints.relative(inverse_mass * p))  # (k, n)
    dphi_m = dphi * inverse_mass[None, :]
    cross = small_matmul(a, dphi_m.T)
    gram = SPDFactor(small_matmul(dphi_m, dphi.T))
    second = gram.solve(small_matvec(dphi, h_p))
    r_2 = small_matvec(a, h_p) + small_matvec(dphi_m, minus_h_q)
    first = gram.solve(small_matvec(cross - cross.T, second) - r_2)
    top = h_p - small_matvec(dphi_m.T, second)
    bottom = minus_h_q + small_matvec(dphi.T, first) + small_matvec(a.T, second)
    return jnp.concatenate([top, bottom])


def constrained_lagrangian_field(
    lagrangian: Callable[[Array, Array], Array],
    constraints: Callable[[Array], Array],
    z: Float[Array, " 2m"],
    inverse_mass: Float[Array, " m"] | None = None,
) -> Float[Array, " 2m"]:
    """``dz/dt = (qdot, qddot)`` of ``L(q, qdot)`` restricted to ``Phi(q) = 0`` (module docstring).

    The acceleration keeps ``d^2/dt^2 Phi = 0`` exactly; ``M`` must be non-singular.

    ``inverse_mass``, the diagonal of ``M^{-1}`` when ``M`` is diagonal and constant (``L = qdot^T M
    qdot / 2 - V(q)``, masses in Cartesian coordinates), replaces the Hessian of ``L`` and the
    ``m x m`` solve: then ``f = dL/dq``, one gradient, and ``DPhi M^{-1} DPhi^T`` is positive
    definite (a Cholesky solve).
    """
    n = z.shape[0] // 2
    q, qdot = z[:n], z[n:]
    if isinstance(constraints, DistanceConstraints):
        # Closed forms: DPhi from the differences, and gamma_e = 2 |(S qdot)_e|^2.
        jac = constraints.jacobian(q)
        gamma = 2 * jnp.sum(constraints.relative(qdot) ** 2, axis=-1)
    else:
        jac = jax.jacfwd(constraints)(q)  # (k, m)
        # gamma = d/dt (DPhi(q) qdot) at fixed qdot: the second derivative of Phi along qdot.
        gamma = jax.jvp(lambda q: jax.jvp(constraints, (q,), (qdot,))[1], (q,), (qdot,))[1]
    if inverse_mass is not None:
        if inverse_mass.shape != (n,):
            raise ValueError(f"`inverse_mass` must have shape ({n},), got {inverse_mass.shape}")
        free = inverse_mass * jax.grad(lagrangian, argnums=0)(q, qdot)
        m_inv_jac_t = inverse_mass[:, None] * jac.T
        multipliers = -spd_solve(jac @ m_inv_jac_t, gamma + jac @ free)
        return jnp.concatenate([qdot, free + m_inv_jac_t @ multipliers])
    mass, force = euler_lagrange_terms(lagrangian, q, qdot)
    solved = jnp.linalg.solve(mass, jnp.concatenate([force[:, None], jac.T], axis=1))
    free, m_inv_jac_t = solved[:, 0], solved[:, 1:]
    multipliers = -jnp.linalg.solve(jac @ m_inv_jac_t, gamma + jac @ free)
    return jnp.concatenate([qdot, free + m_inv_jac_t @ multipliers])


def constraint_violation(constraints: Callable[[Array], Array], trajectory: Array) -> Array:
    """``max_k |Phi_k(q_t)|`` at every time of a ``(..., T, 2m)`` trajectory -> ``(..., T)``."""
    traj = jnp.asarray(trajectory)
    n = traj.shape[-1] // 2
    flat = traj.reshape(-1, traj.shape[-1])[:, :n]
    return jnp.max(jnp.abs(jax.vmap(constraints)(flat)), axis=-1).reshape(traj.shape[:-1])


def project_onto_constraints(
    constraints: Callable[[Array], Array],
    inverse_mass: Float[Array, " m"],
    z: Float[Array, " 2m"],
    iterations: int = 8,
) -> Float[Array, " 2m"]:
    """Nearest valid state: positions by Newton steps ``q <- q - DPhi^T (DPhi DPhi^T)^{-1} Phi(q)``,
    then momenta projected onto the tangent space, ``p <- p - DPhi^T (DPhi M^{-1} DPhi^T)^{-1}
    DPhi M^{-1} p``, so that ``Phi(q) = 0`` and ``d/dt Phi = DPhi M^{-1} p = 0``.

    ``inverse_mass`` is the diagonal of ``M^{-1}`` (one entry per coordinate).
    """
    n = z.shape[0] // 2
    q, p = z[:n], z[n:]

    def newton(_, q):
        jac = jax.jacfwd(constraints)(q)
        return q - jac.T @ jnp.linalg.solve(jac @ jac.T, constraints(q))

    q = jax.lax.fori_loop(0, iterations, newton, q)
    jac = jax.jacfwd(constraints)(q)
    jm = jac * inverse_mass[None, :]
    p = p - jac.T @ jnp.linalg.solve(jm @ jac.T, jm @ p)
    return jnp.concatenate([q, p])
