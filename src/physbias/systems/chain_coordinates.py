"""The four coordinate systems of an N-link chain pendulum and the maps between them.

``"angles-velocity"`` ``(theta, thetadot)`` (2N numbers), ``"angles-canonical"`` ``(theta, p)``,
``"cartesian-canonical"`` ``(x, p)`` and ``"cartesian-velocity"`` ``(x, xdot)`` (4N numbers,
positions of the N masses in the plane). Angle states map to every system; every system maps to
``"cartesian-velocity"``, where models of different coordinates are compared.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from .mechanics import CartesianChainPendulum

CHAIN_COORDINATES = ("angles-velocity", "angles-canonical", "cartesian-canonical", "cartesian-velocity")


def _check(coordinates: str, name: str) -> None:
    if coordinates not in CHAIN_COORDINATES:
        raise ValueError(f"`{name}` must be one of {CHAIN_COORDINATES}, got {coordinates!r}")


@eqx.filter_jit
def to_cartesian_velocity(chain: CartesianChainPendulum, states, coordinates: str):
    """``(..., 2N)`` or ``(..., 4N)`` states in ``coordinates`` as Cartesian ``(x, xdot)``."""
    _check(coordinates, "coordinates")
    flat = states.reshape(-1, states.shape[-1])
    if coordinates == "angles-canonical":
        flat = jax.vmap(chain.angles.from_canonical)(flat)
        coordinates = "angles-velocity"
    if coordinates == "angles-velocity":
        out = jax.vmap(lambda s: chain.to_velocity(chain.from_angles(s)))(flat)
    elif coordinates == "cartesian-canonical":
        out = chain.to_velocity(flat)
    else:
        out = flat
    return out.reshape(*states.shape[:-1], out.shape[-1])


@eqx.filter_jit
def from_angle_velocity(chain: CartesianChainPendulum, states, coordinates: str):
    """Angle states ``(..., 2N)`` ``(theta, thetadot)`` in the chain's ``coordinates``."""
    _check(coordinates, "coordinates")
    flat = states.reshape(-1, states.shape[-1])
    if coordinates == "angles-velocity":
        out = flat
    elif coordinates == "angles-canonical":
        out = jax.vmap(chain.angles.to_canonical)(flat)
    elif coordinates == "cartesian-canonical":
        out = jax.vmap(chain.from_angles)(flat)
    else:
        out = jax.vmap(lambda s: chain.to_velocity(chain.from_angles(s)))(flat)
    return out.reshape(*states.shape[:-1], out.shape[-1])


def chain_derivative_dataset(
    chain: CartesianChainPendulum, trajectories: np.ndarray, coordinates: str
) -> Dataset:
    """Exact ``(state, d state / dt)`` pairs in ``coordinates`` from angle trajectories (float64
    JVP of the coordinate map along the true field, stored as float32)."""
    _check(coordinates, "coordinates")
    with jax.enable_x64(True):
        flat = jnp.asarray(trajectories.reshape(-1, trajectories.shape[-1]))
        field = chain.angles.field

        def pair(s):
            return jax.jvp(lambda s: from_angle_velocity(chain, s[None], coordinates)[0], (s,), (field(s),))

        states, derivs = jax.jit(jax.vmap(pair))(flat)
        return Dataset(np.asarray(states, np.float32), np.asarray(derivs, np.float32))
