"""Constrained Hamiltonian NN in Cartesian coordinates (Finzi, Wang & Wilson, NeurIPS 2020).

``H(x, p) = sum_i |p_i|^2 / (2 m_i) + V_theta(x)`` with learned positive masses and a learned
potential; the known holonomic constraints enter through Lagrange multipliers
(:func:`~physbias.systems.constraints.constrained_hamiltonian_field`). In Cartesian coordinates
the mass matrix is constant, so the network only has to learn a potential.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..systems.constraints import DistanceConstraints, constrained_hamiltonian_field
from ..systems.mechanics import split_state
from .models import AbstractDynamics


class ConstrainedHamiltonianNN(AbstractDynamics):
    """CHNN: learned masses and potential, known constraints; state ``(x, p)`` of size
    ``2 n_bodies dim``."""

    potential: Any
    log_mass: Array
    constraints: DistanceConstraints
    state_size: int = eqx.field(static=True)
    coordinates: ClassVar[str] = "canonical"

    def __init__(
        self,
        constraints: DistanceConstraints,
        width: int = 128,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=jax.nn.softplus,
        potential=None,
        masses=None,
    ):
        if not isinstance(constraints, DistanceConstraints):
            raise TypeError(
                f"ConstrainedHamiltonianNN: `constraints` must be DistanceConstraints, got "
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
        self.log_mass = jnp.log(masses)

    def masses(self) -> Array:
        return jnp.exp(self.log_mass)

    def hamiltonian(self, z: Float[Array, " 2d"]) -> Float[Array, ""]:
        x, p = split_state(z)
        m = jnp.repeat(self.masses(), self.constraints.dim).astype(z.dtype)
        return 0.5 * jnp.sum(p**2 / m) + self.potential(x)

    def __call__(self, z):
        return constrained_hamiltonian_field(self.hamiltonian, self.constraints, z)
