"""Fixed-step integrators for autonomous fields ``dz/dt = f(z)`` and rollouts.

One contract (:class:`AbstractIntegrator`: ``step(field, z, dt)``, ``order``, ``symplectic``), one
short class per method. States are flat vectors; the splitting methods (leapfrog, Yoshida) read
``z = (q, v)`` as two halves, with ``v`` a momentum or a velocity.
"""

import abc
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from equinox import AbstractClassVar
from jaxtyping import Array, Float

from .._ode import check_step, solve_adaptive  # noqa: F401 (solve_adaptive re-exported)

Field = Callable[[Float[Array, " d"]], Float[Array, " d"]]
"""An autonomous vector field: ``field(z) -> dz/dt``, one unbatched state."""


class AbstractIntegrator(eqx.Module):
    """One step ``z(t) -> z(t + dt)`` of a method of order ``order``.

    Capabilities are marker classes, not flags: :class:`AbstractSymplecticIntegrator` (preserves
    the symplectic form, so energy errors stay bounded), :class:`AbstractSplittingIntegrator`
    (reads the state as halves ``(q, v)``: needs an even state size) and
    :class:`AbstractImplicitIntegrator` (solves an equation per step). ``symplectic`` is derived
    from them.
    """

    order: AbstractClassVar[int]
    symplectic: ClassVar[bool] = False  # True exactly for the AbstractSymplecticIntegrator family

    @abc.abstractmethod
    def step(self, field: Field, z: Array, dt: float) -> Array:
        """Advance ``z`` by ``dt``."""


class AbstractSymplecticIntegrator(AbstractIntegrator):
    """Marker: the step is a symplectic map (for separable fields, where a splitting method says so)."""

    symplectic: ClassVar[bool] = True


class AbstractSplittingIntegrator(AbstractIntegrator):
    """Marker: the step splits the state into halves ``(q, v)`` and updates them in turn."""


class AbstractImplicitIntegrator(AbstractIntegrator):
    """Marker: the step solves an implicit equation (fixed-point or Newton iterations)."""


class Euler(AbstractIntegrator):
    """Forward Euler, ``z + dt f(z)``: order 1, not symplectic (energy drifts)."""

    order: ClassVar[int] = 1

    def step(self, field, z, dt):
        return z + dt * field(z)


class RK4(AbstractIntegrator):
    """Classical fourth-order Runge-Kutta: order 4, not symplectic (Kutta 1901)."""

    order: ClassVar[int] = 4

    def step(self, field, z, dt):
        k1 = field(z)
        k2 = field(z + 0.5 * dt * k1)
        k3 = field(z + 0.5 * dt * k2)
        k4 = field(z + dt * k3)
        return z + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def _halves(z):
    n = z.shape[-1] // 2
    return z[..., :n], z[..., n:]


class Leapfrog(AbstractSymplecticIntegrator, AbstractSplittingIntegrator):
    """Störmer-Verlet in kick-drift-kick form: order 2, symplectic for separable
    ``H = T(p) + V(q)`` (or ``q'' = a(q)`` in velocity form).

    .. math:: v_{1/2} = v + \\tfrac{dt}{2} a(q, v),\\quad q' = q + dt\\, u(q, v_{1/2}),\\quad
              v' = v_{1/2} + \\tfrac{dt}{2} a(q', v_{1/2})

    where ``(u, a)`` are the two halves of ``field``. For non-separable fields it is still a
    second-order method, but no longer symplectic: use :class:`ImplicitMidpoint`.
    Reference: Hairer, Lubich & Wanner, *Geometric Numerical Integration* (2006), I.3.
    """

    order: ClassVar[int] = 2

    def step(self, field, z, dt):
        q, v = _halves(z)
        v = v + 0.5 * dt * _halves(field(z))[1]
        q = q + dt * _halves(field(jnp.concatenate([q, v])))[0]
        v = v + 0.5 * dt * _halves(field(jnp.concatenate([q, v])))[1]
        return jnp.concatenate([q, v])


def separable_leapfrog(
    kinetic_gradient: Callable[[Array], Array],
    potential_gradient: Callable[[Array], Array],
    q: Array,
    p: Array,
    dt,
    steps: int,
) -> tuple[Array, Array]:
    """``steps`` leapfrog steps of a separable ``H(q, p) = K(p) + V(q)`` from its two gradients:

    .. math:: p \\leftarrow p - \\tfrac{dt}{2} \\nabla V(q),\\quad q \\leftarrow q + dt \\nabla K(p),\\quad
              p \\leftarrow p - \\tfrac{dt}{2} \\nabla V(q)

    with consecutive half kicks merged (``steps + 1`` evaluations of ``grad V``, ``steps`` of
    ``grad K``; :class:`Leapfrog` on the field ``(grad K, -grad V)`` computes both halves at each of
    its three evaluations). The map is symplectic, so volume-preserving (``det = 1``), and
    ``dt -> -dt`` inverts it exactly up to rounding. ``q``, ``p`` may carry leading batch axes
    when the gradients do.
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    p = p - 0.5 * dt * potential_gradient(q)
    for n in range(steps):
        q = q + dt * kinetic_gradient(p)
        p = p - (0.5 if n == steps - 1 else 1.0) * dt * potential_gradient(q)
    return q, p


_CBRT2 = 2.0 ** (1.0 / 3.0)
_W1 = 1.0 / (2.0 - _CBRT2)
_W0 = -_CBRT2 / (2.0 - _CBRT2)


class Yoshida4(AbstractSymplecticIntegrator, AbstractSplittingIntegrator):
    """Yoshida's fourth-order symplectic composition of three leapfrog steps with weights
    ``w1, w0, w1``, ``w1 = 1 / (2 - 2^{1/3})``, ``w0 = 1 - 2 w1`` (Yoshida 1990)."""

    order: ClassVar[int] = 4

    def step(self, field, z, dt):
        leapfrog = Leapfrog()
        for w in (_W1, _W0, _W1):
            z = leapfrog.step(field, z, w * dt)
        return z


class ImplicitMidpoint(AbstractSymplecticIntegrator, AbstractImplicitIntegrator):
    """Implicit midpoint rule ``z' = z + dt f((z + z') / 2)``: order 2, symplectic for *any*
    Hamiltonian (separable or not), solved by fixed-point iteration.

    ``iterations`` fixed-point sweeps are made (converges when ``dt * Lip(f) < 1``); the default is
    enough for double-precision accuracy on smooth fields at moderate steps.
    """

    iterations: int = eqx.field(static=True, default=12)
    order: ClassVar[int] = 2

    def step(self, field, z, dt):
        def sweep(_, z_new):
            return z + dt * field(0.5 * (z + z_new))

        return jax.lax.fori_loop(0, self.iterations, sweep, z + dt * field(z))


INTEGRATORS: dict[str, type[AbstractIntegrator]] = {
    "euler": Euler,
    "rk4": RK4,
    "leapfrog": Leapfrog,
    "yoshida4": Yoshida4,
    "implicit-midpoint": ImplicitMidpoint,
}


def get_integrator(name: str) -> AbstractIntegrator:
    """The integrator called ``name`` (see :data:`INTEGRATORS`)."""
    try:
        return INTEGRATORS[name]()
    except KeyError:
        raise ValueError(
            f"unknown integrator {name!r}; valid names: {', '.join(sorted(INTEGRATORS))}"
        ) from None


def rollout(
    field: Field,
    z0: Float[Array, "*batch d"],
    dt: float,
    steps: int,
    integrator: AbstractIntegrator | None = None,
    substeps: int = 1,
) -> Float[Array, "*batch steps+1 d"]:
    """Trajectory ``[z0, z(dt), ..., z(steps dt)]`` by ``integrator`` (default :class:`RK4`).

    ``z0`` may carry leading batch axes (one rollout per initial state). ``substeps`` integrator
    steps of ``dt / substeps`` are taken between saved states. Fused with ``lax.scan``.
    """
    check_step(dt, steps)
    if not isinstance(substeps, int) or substeps < 1:
        raise ValueError(f"`substeps` must be a positive integer, got {substeps!r}")
    integrator = RK4() if integrator is None else integrator
    z0 = jnp.asarray(z0)
    if z0.ndim > 1:
        return jax.vmap(lambda z: rollout(field, z, dt, steps, integrator, substeps))(z0)
    h = dt / substeps

    def save(z, _):
        z = jax.lax.fori_loop(0, substeps, lambda _, y: integrator.step(field, y, h), z)
        return z, z

    _, zs = jax.lax.scan(save, z0, None, length=steps)
    return jnp.concatenate([z0[None], zs])


class FlowMap(eqx.Module):
    """The one-step map ``z(t) -> z(t + dt)`` of a learned field by ``substeps`` steps of
    ``integrator`` (default :class:`Euler`): a discrete-time model trained on next-state targets
    (Noether's razor predicts ``x_{t+1}`` with explicit Euler substeps).

    ``flow_map.dynamics`` is the field (any :class:`~physbias.dynamics.AbstractDynamics`).
    """

    dynamics: eqx.Module
    dt: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    integrator: AbstractIntegrator = eqx.field(static=True)

    def __init__(self, dynamics, dt: float, substeps: int = 1, integrator: AbstractIntegrator | None = None):
        check_step(dt, 1)
        if not isinstance(substeps, int) or substeps < 1:
            raise ValueError(f"FlowMap: `substeps` must be a positive integer, got {substeps!r}")
        self.dynamics = dynamics
        self.dt, self.substeps = float(dt), int(substeps)
        self.integrator = Euler() if integrator is None else integrator

    def __call__(self, z: Float[Array, " d"]) -> Float[Array, " d"]:
        h = self.dt / self.substeps
        return jax.lax.fori_loop(0, self.substeps, lambda _, y: self.integrator.step(self.dynamics, y, h), z)
