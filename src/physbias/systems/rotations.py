"""Rotations and point clouds: the task of recovering the rotation that aligns two clouds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ..groups.so3 import so3_exp


def random_rotations(key: PRNGKeyArray, n: int, max_angle: float = jnp.pi) -> Float[Array, "n 3 3"]:
    """``n`` rotations with uniformly random axes and angles uniform in ``[0, max_angle]``."""
    if n <= 0:
        raise ValueError(f"random_rotations: `n` must be positive, got {n}")
    if not 0 < max_angle <= jnp.pi:
        raise ValueError(f"random_rotations: need 0 < max_angle <= pi, got {max_angle}")
    ka, kt = jax.random.split(key)
    axis = jax.random.normal(ka, (n, 3))
    axis = axis / jnp.linalg.norm(axis, axis=-1, keepdims=True)
    angle = jax.random.uniform(kt, (n, 1), maxval=max_angle)
    return jax.vmap(so3_exp)(axis * angle)


def rotated_clouds(
    key: PRNGKeyArray, reference: Float[Array, "k 3"], rotations: Float[Array, "n 3 3"], noise: float = 0.0
) -> Float[Array, "n k 3"]:
    """The reference cloud rotated by each rotation, ``q_j = R p_j + noise``."""
    clouds = jnp.einsum("nij,kj->nki", rotations, reference)
    return clouds + noise * jax.random.normal(key, clouds.shape)
