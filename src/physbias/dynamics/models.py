"""Learned dynamics: each model is an ``equinox.Module`` mapping one state ``z`` to ``dz/dt``.

======================  ===========================  ===================================
model                   state                        structure (seed)
======================  ===========================  ===================================
:class:`NeuralODE`      any ``z``                    ``dz/dt = f(z)`` (000)
:class:`SecondOrderNODE` ``(q, qdot)``               ``qddot = a(q, qdot)`` (004, decon-HNN)
:class:`HamiltonianNN`  canonical ``(q, p)``         ``J grad H`` (000, Greydanus 2019)
:class:`LagrangianNN`   ``(q, qdot)``                Euler-Lagrange solve (000, Cranmer 2020)
:class:`DeepLagrangianNN` ``(q, qdot)``              ``L = qdot^T M(q) qdot / 2 - V(q)``, ``M`` SPD
                                                     (Lutter et al. 2019, "DeLaN")
======================  ===========================  ===================================
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import softplus, softplus_one_exp
from .._linalg import spd_solve
from .._mlp import mlp_curvature, supports_mlp_curvature
from ..systems.mechanics import euler_lagrange_acceleration, euler_lagrange_solve, split_state


def _check_even(n: int, owner: str) -> None:
    if n < 2 or n % 2:
        raise ValueError(f"{owner}: the state must have an even size 2n = (q, p) or (q, qdot), got {n}")


def mlp_euler_lagrange_terms(
    net: eqx.nn.MLP, q: Float[Array, " n"], qdot: Float[Array, " n"]
) -> tuple[Float[Array, "n n"], Float[Array, " n"]]:
    """:func:`~physbias.systems.euler_lagrange_terms` of ``L(q, qdot) = net(concat(q, qdot))``
    for a plain MLP, by :func:`~physbias.nn.mlp_curvature` along the ``n + 1`` directions
    ``(0, e_i)`` and ``(qdot, 0)``: ``M = d^2L/dqdot^2`` is the first ``n x n`` block of
    ``V H V^T`` and the mixed term ``(d^2L/dqdot dq) qdot`` its last column. The same numbers as
    the forward-over-reverse form, with no backward tangent passes (5 instead of 8 products of the
    hidden width per example for two hidden layers)."""
    n = q.shape[0]
    z = jnp.concatenate([q, qdot])
    zeros = jnp.zeros((n, n), z.dtype)
    directions = jnp.concatenate(
        [
            jnp.concatenate([zeros, jnp.eye(n, dtype=z.dtype)], axis=1),
            jnp.concatenate([qdot.astype(z.dtype), jnp.zeros(n, z.dtype)])[None],
        ]
    )
    _, grad, quadratic = mlp_curvature(net, z, directions)
    return quadratic[:n, :n], grad[:n] - quadratic[:n, n]


def _mlp(d_in, d_out, width, depth, activation, key):
    return eqx.nn.MLP(d_in, d_out, width, depth, activation=activation, key=key)


class AbstractDynamics(eqx.Module):
    """A learned vector field ``z -> dz/dt`` on states of size ``state_size``."""

    state_size: eqx.AbstractVar[int]
    coordinates: ClassVar[str]
    """``"any"``, ``"velocity"`` (``(q, qdot)``) or ``"canonical"`` (``(q, p)``)."""

    @abc.abstractmethod
    def __call__(self, z: Float[Array, " d"]) -> Float[Array, " d"]:
        """``dz/dt``."""


class NeuralODE(AbstractDynamics):
    """``dz/dt = f_theta(z)`` with an MLP ``f`` (Chen et al. 2018): no physical structure."""

    net: Any
    state_size: int = eqx.field(static=True)
    coordinates: ClassVar[str] = "any"

    def __init__(
        self,
        state_size: int,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus_one_exp,
    ):
        if state_size < 1:
            raise ValueError(f"NeuralODE: `state_size` must be positive, got {state_size}")
        self.state_size = state_size
        self.net = _mlp(state_size, state_size, width, depth, activation, key)

    def __call__(self, z):
        return self.net(z)


class SecondOrderNODE(AbstractDynamics):
    """``qdot`` is the velocity half of the state; a network learns the acceleration
    ``qddot = a_theta(q, qdot)`` - the "deconstructed HNN" of seed 004 (Gruver et al. 2022).

    ``damping=True`` adds a learned non-negative linear damping ``- softplus(c) * qdot`` so that
    friction has an explicit home.
    """

    net: Any
    damping_raw: Array | None
    state_size: int = eqx.field(static=True)
    coordinates: ClassVar[str] = "velocity"

    def __init__(
        self,
        state_size: int,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        damping: bool = False,
        activation=softplus_one_exp,
    ):
        _check_even(state_size, "SecondOrderNODE")
        self.state_size = state_size
        n = state_size // 2
        self.net = _mlp(state_size, n, width, depth, activation, key)
        self.damping_raw = jnp.full((n,), -3.0) if damping else None

    def damping(self) -> Array | None:
        """The learned damping coefficients ``softplus(c) >= 0`` (None without damping)."""
        return None if self.damping_raw is None else jax.nn.softplus(self.damping_raw)

    def __call__(self, z):
        _, qdot = split_state(z)
        acc = self.net(z)
        if self.damping_raw is not None:
            acc = acc - self.damping() * qdot
        return jnp.concatenate([qdot, acc])


class HamiltonianNN(AbstractDynamics):
    """Learn a scalar ``H_theta(q, p)`` and apply Hamilton's equations
    ``qdot = dH/dp, pdot = -dH/dq`` (Greydanus et al. 2019): ``H`` is conserved exactly by the
    continuous flow."""

    net: Any
    state_size: int = eqx.field(static=True)
    coordinates: ClassVar[str] = "canonical"

    def __init__(
        self,
        state_size: int,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus,
        hamiltonian=None,
    ):
        _check_even(state_size, "HamiltonianNN")
        self.state_size = state_size
        self.net = (
            hamiltonian
            if hamiltonian is not None
            else _mlp(state_size, "scalar", width, depth, activation, key)
        )

    def hamiltonian(self, x: Float[Array, " 2n"]) -> Float[Array, ""]:
        return self.net(x)

    def __call__(self, x):
        dq, dp = split_state(jax.grad(self.hamiltonian)(x))
        return jnp.concatenate([dp, -dq])


class LagrangianNN(AbstractDynamics):
    """Learn a scalar ``L_theta(q, qdot)``; the acceleration solves the Euler-Lagrange equations
    with the Hessian of ``L`` in ``qdot`` (Cranmer et al. 2020) by a linear solve.

    ``regularization`` adds ``eps I`` to that Hessian; without it a singular Hessian makes the
    output non-finite, which :func:`physbias.fit` reports and stops on.
    """

    net: Any
    state_size: int = eqx.field(static=True)
    regularization: float = eqx.field(static=True)
    coordinates: ClassVar[str] = "velocity"

    def __init__(
        self,
        state_size: int,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus,
        regularization: float = 0.0,
        lagrangian=None,
    ):
        _check_even(state_size, "LagrangianNN")
        if regularization < 0:
            raise ValueError(f"LagrangianNN: `regularization` must be >= 0, got {regularization}")
        self.state_size = state_size
        self.regularization = regularization
        self.net = (
            lagrangian
            if lagrangian is not None
            else _mlp(state_size, "scalar", width, depth, activation, key)
        )

    def lagrangian(self, q: Array, qdot: Array) -> Array:
        return self.net(jnp.concatenate([q, qdot]))

    def __call__(self, z):
        q, qdot = split_state(z)
        if supports_mlp_curvature(self.net):
            hess, rhs = mlp_euler_lagrange_terms(self.net, q, qdot)
            acc = euler_lagrange_solve(hess, rhs, regularization=self.regularization)
        else:
            acc = euler_lagrange_acceleration(self.lagrangian, q, qdot, regularization=self.regularization)
        return jnp.concatenate([qdot, acc])


class DeepLagrangianNN(AbstractDynamics):
    """Structured Lagrangian ``L = qdot^T M(q) qdot / 2 - V(q)`` (Lutter, Ritter & Peters 2019,
    "DeLaN"): ``M(q) = C C^T + eps I`` from a network giving the lower-triangular ``C`` (positive
    diagonal by softplus), ``V`` a second network.

    The Hessian of ``L`` in ``qdot`` is ``M(q)``, positive definite by construction, so the
    Euler-Lagrange solve never meets a singular matrix (the failure of a free-form
    :class:`LagrangianNN`).
    """

    mass_net: Any
    potential_net: Any
    state_size: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)
    coordinates: ClassVar[str] = "velocity"

    def __init__(
        self,
        state_size: int,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus,
        eps: float = 1e-3,
    ):
        _check_even(state_size, "DeepLagrangianNN")
        if not eps > 0:
            raise ValueError(f"DeepLagrangianNN: `eps` must be positive, got {eps}")
        n = state_size // 2
        self.state_size = state_size
        self.eps = eps
        k_mass, k_pot = jax.random.split(key)
        self.mass_net = _mlp(n, n * (n + 1) // 2, width, depth, activation, k_mass)
        self.potential_net = _mlp(n, "scalar", width, depth, activation, k_pot)

    def mass_matrix(self, q: Float[Array, " n"]) -> Float[Array, "n n"]:
        """``M(q) = C C^T + eps I`` (symmetric positive definite)."""
        n = q.shape[0]
        rows, cols = jnp.tril_indices(n)
        entries = self.mass_net(q)
        # Softplus on the diagonal (offset so that a zero output gives C = I).
        diag = rows == cols
        entries = jnp.where(diag, jax.nn.softplus(entries + 0.5413), entries)
        chol = jnp.zeros((n, n), q.dtype).at[rows, cols].set(entries)
        return chol @ chol.T + self.eps * jnp.eye(n, dtype=q.dtype)

    def lagrangian(self, q: Array, qdot: Array) -> Array:
        return 0.5 * qdot @ self.mass_matrix(q) @ qdot - self.potential_net(q)

    def __call__(self, z):
        q, qdot = split_state(z)
        # The structure gives the Euler-Lagrange terms without a Hessian: d2L/dqdot2 = M(q) and
        # the mixed term (d/dq (M qdot)) qdot = dM/dt qdot, one forward-mode product along qdot.
        mass, mass_rate = jax.jvp(self.mass_matrix, (q,), (qdot,))
        rhs = jax.grad(self.lagrangian, argnums=0)(q, qdot) - mass_rate @ qdot
        return jnp.concatenate([qdot, spd_solve(mass, rhs)])
