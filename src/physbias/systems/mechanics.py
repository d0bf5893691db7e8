"""Mechanical systems defined by a Lagrangian ``L(q, qdot)``; everything else is derived.

State layout (``"velocity"`` coordinates): ``z = (q, qdot)``, a flat vector of length ``2 n``.
Canonical coordinates for Hamiltonian models: ``x = (q, p)`` with ``p = dL/dqdot``.

The acceleration solves the Euler-Lagrange equations (seed 000, eq. 8)

.. math:: \\ddot q = (\\nabla_{\\dot q}\\nabla_{\\dot q}^\\top L)^{-1}
          [\\nabla_q L - (\\nabla_q\\nabla_{\\dot q}^\\top L)\\dot q + F]

by a linear solve (never a pseudo-inverse), ``F`` a generalised dissipative force.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._ode import check_step, solve_adaptive
from .base import AbstractSystem

Lagrangian = Callable[[Array, Array], Array]


def euler_lagrange_terms(
    lagrangian: Lagrangian, q: Float[Array, " n"], qdot: Float[Array, " n"]
) -> tuple[Float[Array, "n n"], Float[Array, " n"]]:
    """``(M, f)`` with ``M = d^2L/dqdot^2`` and ``f = dL/dq - (d^2L/dq dqdot) qdot``, so that the
    Euler-Lagrange equations read ``M qddot = f`` (plus any generalised force).

    Both come from one linearisation of the gradient ``(dL/dq, dL/dqdot)``: ``M``'s columns are its
    tangents along ``(0, e_i)`` and the mixed term is its tangent along ``(qdot, 0)``, ``n + 1``
    forward-over-reverse products sharing one primal pass, instead of a Hessian, a Jacobian
    (``2n`` products) and a separate gradient. The tangents are concrete arrays, so a Lagrangian
    with structure (``M(q)`` free of ``qdot``) pays for terms that symbolic zeros would skip:
    :class:`~physbias.dynamics.DeepLagrangianNN` forms its terms from its structure instead.
    """
    n = q.shape[0]
    (grad_q, _), tangent = jax.linearize(jax.grad(lagrangian, argnums=(0, 1)), q, qdot)
    eye = jnp.eye(n, dtype=qdot.dtype)
    along_q = jnp.concatenate([jnp.zeros((n, n), q.dtype), qdot[None].astype(q.dtype)])
    along_qdot = jnp.concatenate([eye, jnp.zeros((1, n), qdot.dtype)])
    _, columns = jax.vmap(tangent)(along_q, along_qdot)  # (n + 1, n): d(dL/dqdot) along each
    # Row i is M e_i, a column of the symmetric M.
    return columns[:n], grad_q - columns[n]


def euler_lagrange_acceleration(
    lagrangian: Lagrangian,
    q: Float[Array, " n"],
    qdot: Float[Array, " n"],
    force: Float[Array, " n"] | None = None,
    regularization: float = 0.0,
) -> Float[Array, " n"]:
    """``qddot`` from the Euler-Lagrange equations of ``lagrangian(q, qdot)`` plus ``force``.

    ``regularization`` adds ``eps * I`` to the Hessian in ``qdot`` (for learned Lagrangians whose
    Hessian may be singular). A singular Hessian without it gives non-finite accelerations.
    """
    hess, rhs = euler_lagrange_terms(lagrangian, q, qdot)
    return euler_lagrange_solve(hess, rhs, force, regularization)


def euler_lagrange_solve(
    hess: Float[Array, "n n"],
    rhs: Float[Array, " n"],
    force: Float[Array, " n"] | None = None,
    regularization: float = 0.0,
) -> Float[Array, " n"]:
    """``qddot = (M + eps I)^{-1} (f + force)`` from the terms of :func:`euler_lagrange_terms`."""
    if force is not None:
        rhs = rhs + force
    if regularization:
        hess = hess + regularization * jnp.eye(hess.shape[0], dtype=hess.dtype)
    return jnp.linalg.solve(hess, rhs)


def split_state(z: Array) -> tuple[Array, Array]:
    """``(q, v)`` halves of a state ``z = (q, v)``."""
    n = z.shape[-1] // 2
    return z[..., :n], z[..., n:]


class AbstractMechanicalSystem(AbstractSystem):
    """Contract: ``n_dof``, ``lagrangian(q, qdot)``, ``sample_initial(key)``; optional
    ``dissipative_force(q, qdot)`` (zero by default: energy is conserved)."""

    @property
    @abc.abstractmethod
    def n_dof(self) -> int:
        """Number of generalised coordinates ``n`` (the state has ``2 n`` entries)."""

    @property
    def state_size(self) -> int:
        return 2 * self.n_dof

    @abc.abstractmethod
    def lagrangian(self, q: Array, qdot: Array) -> Array:
        """``L = T - V``."""

    @abc.abstractmethod
    def sample_initial(self, key: PRNGKeyArray) -> Float[Array, " 2n"]:
        """A random valid initial state ``(q, qdot)``."""

    def dissipative_force(self, q: Array, qdot: Array) -> Array:
        return jnp.zeros_like(q)

    @property
    def conservative(self) -> bool:
        return True

    def field(self, z: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """``dz/dt = (qdot, qddot)`` in velocity coordinates."""
        q, qdot = split_state(z)
        force = None if self.conservative else self.dissipative_force(q, qdot)
        return jnp.concatenate([qdot, euler_lagrange_acceleration(self.lagrangian, q, qdot, force)])

    def energy(self, z: Float[Array, " 2n"]) -> Float[Array, ""]:
        """``E = qdot . dL/dqdot - L`` (conserved when there is no dissipation)."""
        q, qdot = split_state(z)
        return jnp.dot(qdot, jax.grad(self.lagrangian, argnums=1)(q, qdot)) - self.lagrangian(q, qdot)

    def to_canonical(self, z: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """``(q, qdot) -> (q, p)`` with ``p = dL/dqdot``."""
        q, qdot = split_state(z)
        return jnp.concatenate([q, jax.grad(self.lagrangian, argnums=1)(q, qdot)])

    def from_canonical(self, x: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """``(q, p) -> (q, qdot)``; exact for kinetic energies quadratic in ``qdot``:
        ``qdot = M(q)^{-1} (p - dL/dqdot|_{qdot=0})``."""
        q, p = split_state(x)
        zero = jnp.zeros_like(q)
        mass = jax.hessian(self.lagrangian, argnums=1)(q, zero)
        offset = jax.grad(self.lagrangian, argnums=1)(q, zero)
        return jnp.concatenate([q, jnp.linalg.solve(mass, p - offset)])

    def hamiltonian(self, x: Float[Array, " 2n"]) -> Float[Array, ""]:
        """``H(q, p)``: the energy expressed in canonical coordinates."""
        return self.energy(self.from_canonical(x))

    def canonical_field(self, x: Float[Array, " 2n"]) -> Float[Array, " 2n"]:
        """``dx/dt`` in canonical coordinates (chain rule through the Legendre map)."""
        z = self.from_canonical(x)
        return jax.jvp(self.to_canonical, (z,), (self.field(z),))[1]


def _positive(owner: str, **values) -> None:
    for name, value in values.items():
        if not jnp.all(jnp.asarray(value) > 0):
            raise ValueError(f"{owner}: `{name}` must be positive, got {value!r}")


class Pendulum(AbstractMechanicalSystem):
    """Planar pendulum, angle ``q`` from the downward vertical:
    ``L = m l^2 qdot^2 / 2 + m g l cos q``; with ``damping > 0`` a torque ``-damping * qdot``."""

    mass: float = 1.0
    length: float = 1.0
    gravity: float = 9.81
    damping: float = 0.0
    max_energy_fraction: float = 0.7

    def __check_init__(self):
        _positive("Pendulum", mass=self.mass, length=self.length, gravity=self.gravity)
        if self.damping < 0:
            raise ValueError(f"Pendulum: `damping` must be >= 0, got {self.damping}")

    @property
    def n_dof(self):
        return 1

    @property
    def conservative(self):
        return self.damping == 0

    def lagrangian(self, q, qdot):
        m, ell, g = self.mass, self.length, self.gravity
        return 0.5 * m * ell**2 * jnp.sum(qdot**2) + m * g * ell * jnp.sum(jnp.cos(q))

    def dissipative_force(self, q, qdot):
        return -self.damping * qdot

    def period(self, amplitude: float) -> float:
        """Period of the undamped swing released from rest at angle ``amplitude`` (radians):
        ``T = 4 K(sin^2(a / 2)) sqrt(l / g)``, ``K`` the complete elliptic integral of the first kind.

        Example:
            >>> round(Pendulum(gravity=9.81).period(1e-6) / (2 * 3.141592653589793 / 9.81**0.5), 9)
            1.0
        """
        import numpy as np
        from scipy.special import ellipk

        if not 0 < amplitude < np.pi:
            raise ValueError(f"Pendulum.period: `amplitude` must be in (0, pi), got {amplitude}")
        return float(4 * ellipk(np.sin(amplitude / 2) ** 2) * np.sqrt(self.length / self.gravity))

    def sample_initial(self, key):
        """Oscillations (no full turns): energy uniform up to ``max_energy_fraction`` of the
        separatrix, random phase."""
        k1, k2 = jax.random.split(key)
        m, ell, g = self.mass, self.length, self.gravity
        e = jax.random.uniform(k1, minval=0.1, maxval=self.max_energy_fraction) * 2 * m * g * ell
        amplitude = jnp.arccos(1 - e / (m * g * ell))
        q = jax.random.uniform(k2, minval=-amplitude, maxval=amplitude)
        sign = jnp.sign(jax.random.normal(k1))
        qdot = sign * jnp.sqrt(2 * (e - m * g * ell * (1 - jnp.cos(q))) / (m * ell**2))
        return jnp.stack([q, qdot])


class MassSpring(AbstractMechanicalSystem):
    """``L = m qdot^2 / 2 - k1 q^2 / 2 - k3 q^4 / 4`` (``k3 = 0``: harmonic; ``k3 != 0``: the
    nonlinear spring ``F = -(k1 q + k3 q^3)``)."""

    mass: float = 1.0
    k1: float = 1.0
    k3: float = 0.0

    def __check_init__(self):
        _positive("MassSpring", mass=self.mass, k1=self.k1)

    @property
    def n_dof(self):
        return 1

    def lagrangian(self, q, qdot):
        return jnp.sum(0.5 * self.mass * qdot**2 - 0.5 * self.k1 * q**2 - 0.25 * self.k3 * q**4)

    def sample_initial(self, key):
        k1, k2 = jax.random.split(key)
        radius = jax.random.uniform(k1, minval=0.2, maxval=1.0)
        angle = jax.random.uniform(k2, maxval=2 * jnp.pi)
        omega = jnp.sqrt(self.k1 / self.mass)
        return jnp.stack([radius * jnp.cos(angle), omega * radius * jnp.sin(angle)])


class CoupledOscillators(AbstractMechanicalSystem):
    """``n`` unit masses with ``L = |qdot|^2 / 2 - q^T K q / 2``; ``K`` symmetric positive
    definite (default: a spring chain with fixed ends, ``K = tridiag(-k, 2k, -k)``)."""

    stiffness: Array

    def __init__(self, n: int = 3, k: float = 1.0, stiffness=None):
        if stiffness is None:
            if n < 1:
                raise ValueError(f"CoupledOscillators: `n` must be positive, got {n}")
            eye = jnp.eye(n)
            stiffness = k * (2 * eye - jnp.eye(n, k=1) - jnp.eye(n, k=-1))
        stiffness = jnp.asarray(stiffness)
        if stiffness.ndim != 2 or stiffness.shape[0] != stiffness.shape[1]:
            raise ValueError(f"CoupledOscillators: `stiffness` must be square, got {stiffness.shape}")
        if not jnp.allclose(stiffness, stiffness.T) or jnp.min(jnp.linalg.eigvalsh(stiffness)) <= 0:
            raise ValueError("CoupledOscillators: `stiffness` must be symmetric positive definite")
        self.stiffness = stiffness

    @property
    def n_dof(self):
        return self.stiffness.shape[0]

    def lagrangian(self, q, qdot):
        return 0.5 * jnp.dot(qdot, qdot) - 0.5 * q @ self.stiffness.astype(q.dtype) @ q

    def sample_initial(self, key):
        return jax.random.uniform(key, (2 * self.n_dof,), minval=-1.0, maxval=1.0)


class ChainPendulum(AbstractMechanicalSystem):
    """``n`` point masses on massless rods in a vertical plane (the double pendulum is ``n=2``),
    in generalised coordinates: absolute angles ``q_i`` from the downward vertical.

    Positions ``x_k = sum_{i<=k} l_i (sin q_i, -cos q_i)``;
    ``L = sum_k m_k |xdot_k|^2 / 2 - m_k g y_k``. Chaotic for ``n >= 2``.
    """

    masses: tuple[float, ...] = (1.0, 1.0)
    lengths: tuple[float, ...] = (1.0, 1.0)
    gravity: float = 9.81
    max_angle: float = 0.5 * jnp.pi

    def __check_init__(self):
        if len(self.masses) != len(self.lengths) or not self.masses:
            raise ValueError("ChainPendulum: `masses` and `lengths` must be non-empty and equally long")
        _positive("ChainPendulum", masses=self.masses, lengths=self.lengths, gravity=self.gravity)

    @property
    def n_dof(self):
        return len(self.masses)

    def positions(self, q: Array) -> Float[Array, "n 2"]:
        """Cartesian positions of the masses, shape ``(n, 2)``."""
        lengths = jnp.asarray(self.lengths, q.dtype)
        steps = lengths[:, None] * jnp.stack([jnp.sin(q), -jnp.cos(q)], axis=-1)
        return jnp.cumsum(steps, axis=0)

    def lagrangian(self, q, qdot):
        x, xdot = jax.jvp(self.positions, (q,), (qdot,))
        m = jnp.asarray(self.masses, q.dtype)
        return 0.5 * jnp.sum(m * jnp.sum(xdot**2, axis=-1)) - self.gravity * jnp.sum(m * x[:, 1])

    def sample_initial(self, key):
        k1, k2 = jax.random.split(key)
        q = jax.random.uniform(k1, (self.n_dof,), minval=-self.max_angle, maxval=self.max_angle)
        qdot = 0.5 * jax.random.normal(k2, (self.n_dof,))
        return jnp.concatenate([q, qdot])


class NBody2D(AbstractMechanicalSystem):
    """Point masses in the plane under Newtonian gravity,
    ``L = sum m_i |v_i|^2 / 2 + sum_{i<j} G m_i m_j / sqrt(r_ij^2 + softening^2)``.

    ``q`` holds the positions ``(x_1, y_1, x_2, y_2, ...)``. ``sample_initial`` places the bodies
    on a circle around the centre of mass with near-circular orbital velocities (zero total
    momentum), perturbed by ``perturbation``.
    """

    masses: tuple[float, ...] = (1.0, 1.0)
    G: float = 1.0
    softening: float = 0.0
    perturbation: float = 0.05

    def __check_init__(self):
        if len(self.masses) < 2:
            raise ValueError("NBody2D: at least two `masses` are needed")
        _positive("NBody2D", masses=self.masses, G=self.G)

    @property
    def n_dof(self):
        return 2 * len(self.masses)

    def potential(self, q):
        pos = q.reshape(-1, 2)
        m = jnp.asarray(self.masses, q.dtype)
        i, j = jnp.triu_indices(len(self.masses), k=1)
        r = jnp.sqrt(jnp.sum((pos[i] - pos[j]) ** 2, axis=-1) + self.softening**2)
        return -self.G * jnp.sum(m[i] * m[j] / r)

    def lagrangian(self, q, qdot):
        m = jnp.repeat(jnp.asarray(self.masses, q.dtype), 2)
        return 0.5 * jnp.sum(m * qdot**2) - self.potential(q)

    def sample_initial(self, key):
        n = len(self.masses)
        k_rot, k_rad, k_pert = jax.random.split(key, 3)
        m = jnp.asarray(self.masses)
        angles = jax.random.uniform(k_rot, maxval=2 * jnp.pi) + 2 * jnp.pi * jnp.arange(n, dtype=m.dtype) / n
        radius = jax.random.uniform(k_rad, minval=0.5, maxval=1.5)
        pos = radius * jnp.stack([jnp.cos(angles), jnp.sin(angles)], axis=-1)
        pos = pos - jnp.sum(m[:, None] * pos, 0, keepdims=True) / jnp.sum(m)
        # Circular speed from the force towards the centre of mass on each body.
        force = -jax.grad(self.potential)(pos.ravel()).reshape(n, 2)
        r = jnp.linalg.norm(pos, axis=-1)
        speed = jnp.sqrt(jnp.linalg.norm(force, axis=-1) * r / m)
        tangent = jnp.stack([-pos[:, 1], pos[:, 0]], axis=-1) / r[:, None]
        vel = speed[:, None] * tangent
        vel = vel * (1 + self.perturbation * jax.random.normal(k_pert, (n, 1)))
        vel = vel - jnp.sum(m[:, None] * vel, 0, keepdims=True) / jnp.sum(m)
        return jnp.concatenate([pos.ravel(), vel.ravel()])


class Kepler(AbstractMechanicalSystem):
    """A body in the plane around a fixed centre, ``L = |v|^2 / 2 + GM / |q|`` (unit mass).

    ``sample_initial`` starts at perihelion ``(a (1 - e), 0)`` with the vis-viva speed for
    semi-major axis ``a = 1`` and eccentricity ``e`` uniform in ``eccentricity``; the period is
    ``2 pi sqrt(a^3 / GM)``.
    """

    GM: float = 1.0
    eccentricity: tuple[float, float] = (0.3, 0.6)

    def __check_init__(self):
        _positive("Kepler", GM=self.GM)
        lo, hi = self.eccentricity
        if not 0 <= lo <= hi < 1:
            raise ValueError(f"Kepler: need 0 <= e_low <= e_high < 1, got {self.eccentricity}")

    @property
    def n_dof(self):
        return 2

    def lagrangian(self, q, qdot):
        return 0.5 * jnp.dot(qdot, qdot) + self.GM / jnp.sqrt(jnp.dot(q, q))

    def sample_initial(self, key):
        e = jax.random.uniform(key, minval=self.eccentricity[0], maxval=self.eccentricity[1])
        r = 1.0 - e
        speed = jnp.sqrt(self.GM * (2.0 / r - 1.0))
        zero = jnp.zeros_like(r)
        return jnp.stack([r, zero, zero, speed])


def simulate(
    system: AbstractSystem,
    z0: Float[Array, "*batch 2n"],
    dt: float,
    steps: int,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
) -> Float[Array, "*batch steps+1 2n"]:
    """True trajectories in float64 by an adaptive 8th-order solver (tolerances ``rtol``/``atol``).

    Returns a float64 NumPy array of states at ``t = 0, dt, ..., steps dt``.
    """
    import numpy as np

    check_step(dt, steps)
    with jax.enable_x64(True):
        z0 = jnp.asarray(np.asarray(z0, dtype=np.float64))
        system64 = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a, jnp.float64) if eqx.is_inexact_array(a) else a, system
        )
        ts = jnp.arange(steps + 1, dtype=jnp.float64) * dt
        solve = jax.jit(lambda z: solve_adaptive(system64.field, z, ts, rtol=rtol, atol=atol))
        out = jax.vmap(solve)(z0.reshape(-1, z0.shape[-1]))
        return np.asarray(out).reshape(*z0.shape[:-1], steps + 1, z0.shape[-1])


def sample_initial_states(system: AbstractSystem, key: PRNGKeyArray, n: int) -> Array:
    """``n`` initial states, shape ``(n, system.state_size)``."""
    if n < 1:
        raise ValueError(f"`n` must be positive, got {n}")
    return jax.vmap(system.sample_initial)(jax.random.split(key, n))


class CartesianChainPendulum(AbstractSystem):
    """The N-link chain pendulum in Cartesian coordinates with explicit constraints.

    Canonical state ``z = (x, p)`` with ``x`` the ``N`` positions in the plane (``2N`` entries)
    and ``p = m xdot``; ``H = sum |p_k|^2 / (2 m_k) + g sum m_k y_k`` subject to the chain's
    distance constraints (:class:`~physbias.systems.constraints.DistanceConstraints`). The same
    physics as :class:`ChainPendulum`, which uses angles.

    ``field``/``hamiltonian`` act on ``(x, p)`` (what :func:`simulate` integrates);
    ``velocity_field``/``lagrangian`` on ``(x, xdot)``; ``to_velocity``/``to_canonical`` convert.
    """

    angles: ChainPendulum = ChainPendulum()

    @property
    def n_dof(self) -> int:
        return 2 * self.angles.n_dof

    @property
    def constraints(self):
        from .constraints import DistanceConstraints

        return DistanceConstraints.chain(self.angles.lengths)

    def _mass(self, dtype):
        return jnp.repeat(jnp.asarray(self.angles.masses, dtype), 2)

    def potential(self, x: Float[Array, " 2N"]) -> Float[Array, ""]:
        """Gravitational energy ``g sum m_k y_k``."""
        m = jnp.asarray(self.angles.masses, x.dtype)
        return self.angles.gravity * jnp.sum(m * x.reshape(-1, 2)[:, 1])

    @property
    def state_size(self) -> int:
        return 4 * self.angles.n_dof

    def hamiltonian(self, z: Float[Array, " 4N"]) -> Float[Array, ""]:
        x, p = split_state(z)
        return 0.5 * jnp.sum(p**2 / self._mass(z.dtype)) + self.potential(x)

    energy = hamiltonian

    def field(self, z: Float[Array, " 4N"]) -> Float[Array, " 4N"]:
        from .constraints import constrained_hamiltonian_field

        return constrained_hamiltonian_field(self.hamiltonian, self.constraints, z)

    def lagrangian(self, x: Float[Array, " 2N"], xdot: Float[Array, " 2N"]) -> Float[Array, ""]:
        """``L = sum m_k |xdot_k|^2 / 2 - g sum m_k y_k`` (the constraints are kept separately)."""
        return 0.5 * jnp.sum(self._mass(x.dtype) * xdot**2) - self.potential(x)

    def velocity_field(self, z: Float[Array, " 4N"]) -> Float[Array, " 4N"]:
        """``d/dt (x, xdot)`` by the constrained Euler-Lagrange equations."""
        from .constraints import constrained_lagrangian_field

        return constrained_lagrangian_field(self.lagrangian, self.constraints, z)

    def to_velocity(self, z: Float[Array, "*b 4N"]) -> Float[Array, "*b 4N"]:
        """``(x, p) -> (x, xdot)``."""
        x, p = split_state(z)
        return jnp.concatenate([x, p / jnp.broadcast_to(self._mass(z.dtype), p.shape)], axis=-1)

    def to_canonical(self, z: Float[Array, "*b 4N"]) -> Float[Array, "*b 4N"]:
        """``(x, xdot) -> (x, p)``."""
        x, v = split_state(z)
        return jnp.concatenate([x, v * jnp.broadcast_to(self._mass(z.dtype), v.shape)], axis=-1)

    def from_angles(self, state: Float[Array, " 2N"]) -> Float[Array, " 4N"]:
        """Map an angle-coordinate state ``(theta, thetadot)`` to ``(x, p)``."""
        theta, thetadot = split_state(state)
        x, xdot = jax.jvp(self.angles.positions, (theta,), (thetadot,))
        return jnp.concatenate([x.ravel(), self._mass(state.dtype) * xdot.ravel()])

    def sample_initial(self, key) -> Float[Array, " 4N"]:
        return self.from_angles(self.angles.sample_initial(key))

    def project(self, z: Float[Array, " 4N"]) -> Float[Array, " 4N"]:
        """The nearest state satisfying the chain's constraints (positions and velocities)."""
        from .constraints import project_onto_constraints

        return project_onto_constraints(self.constraints, 1.0 / self._mass(z.dtype), z)
