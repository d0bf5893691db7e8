"""Constrained Hamiltonian and Lagrangian NNs in Cartesian coordinates (Finzi, Wang & Wilson,
NeurIPS 2020).

CHNN: ``H(x, p) = sum_i |p_i|^2 / (2 m_i) + V_theta(x)``; CLNN: ``L(x, xdot) = sum_i m_i
|xdot_i|^2 / 2 - V_theta(x)``; both with learned positive masses and a learned potential. The
known holonomic constraints enter through Lagrange multipliers
(:func:`~physbias.systems.constraints.constrained_hamiltonian_field`,
:func:`~physbias.systems.constraints.constrained_lagrangian_field`). In Cartesian coordinates
the mass matrix is constant, so the network only has to learn a potential.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import softplus
from ..systems.constraints import (
    DistanceConstraints,
    constrained_hamiltonian_field,
    constrained_lagrangian_field,
)
from ..systems.mechanics import split_state
from .models import AbstractDynamics


class _ConstrainedCartesian(AbstractDynamics):
    """Shared parts: a potential network ``V_theta(x)`` and log-masses, one per body."""

    potential: Any
    log_mass: Array
    constraints: DistanceConstraints
    state_size: int = eqx.field(static=True)

    def __init__(
        self,
        constraints: DistanceConstraints,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus,
        potential=None,
        masses=None,
    ):
        if not isinstance(constraints, DistanceConstraints):
            raise TypeError(
                f"{type(self).__name__}: `constraints` must be DistanceConstraints, got "
                f"{type(constraints).__name__}"
            )
        self.constraints = constraints
        d = constraints.n_bodies * constraints.dim
        self.state_size = 2 * d
        self.potential = (
            potential
            if potential is not None
            else eqx.nn.MLP(d, "scalar", width, depth, activation=activation, key=key)
        )
        masses = jnp.ones(constraints.n_bodies) if masses is None else jnp.asarray(masses, float)
        if masses.shape != (constraints.n_bodies,) or not bool(jnp.all(masses > 0)):
            raise ValueError(
                f"{type(self).__name__}: `masses` must be {constraints.n_bodies} positive numbers, "
                f"got {masses}"
            )
        self.log_mass = jnp.log(masses)

    def masses(self) -> Array:
        """The learned masses ``exp(log_mass)``, one per body."""
        return jnp.exp(self.log_mass)

    def _coordinate_masses(self, dtype) -> Array:
        return jnp.repeat(self.masses(), self.constraints.dim).astype(dtype)


class ConstrainedHamiltonianNN(_ConstrainedCartesian):
    """CHNN: learned masses and potential, known constraints; state ``(x, p)`` of size
    ``2 n_bodies dim``."""

    coordinates: ClassVar[str] = "canonical"

    def hamiltonian(self, z: Float[Array, " 2d"]) -> Float[Array, ""]:
        x, p = split_state(z)
        return 0.5 * jnp.sum(p**2 / self._coordinate_masses(z.dtype)) + self.potential(x)

    def velocity(self, x: Float[Array, " d"], p: Float[Array, " d"]) -> Float[Array, " d"]:
        """``dH/dp = M^{-1} p``."""
        return p / self._coordinate_masses(p.dtype)

    def __call__(self, z):
        inverse_mass = 1.0 / self._coordinate_masses(z.dtype)  # dH/dp = M^-1 p: DPsi in closed form
        return constrained_hamiltonian_field(self.hamiltonian, self.constraints, z, inverse_mass=inverse_mass)


class ConstrainedLagrangianNN(_ConstrainedCartesian):
    """CLNN: learned masses and potential, known constraints; state ``(x, xdot)`` of size
    ``2 n_bodies dim``. The mass matrix is positive by construction, so the Euler-Lagrange solve
    never meets a singular Hessian (unlike a free-form :class:`~physbias.dynamics.LagrangianNN`)."""

    coordinates: ClassVar[str] = "velocity"

    def lagrangian(self, x: Float[Array, " d"], xdot: Float[Array, " d"]) -> Float[Array, ""]:
        return 0.5 * jnp.sum(self._coordinate_masses(x.dtype) * xdot**2) - self.potential(x)

    def __call__(self, z):
        # The mass matrix is diagonal and constant: no Hessian of the Lagrangian, no mass solve.
        inverse_mass = 1.0 / self._coordinate_masses(z.dtype)
        return constrained_lagrangian_field(self.lagrangian, self.constraints, z, inverse_mass)
