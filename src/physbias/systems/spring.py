"""Nonlinear spring ``F = k1 x + k2 x^3`` (seed 001's running example)."""

from __future__ import annotations

import jax
from jaxtyping import Array, Float, PRNGKeyArray


def spring_force(x: Array, k1: float = 1.0, k2: float = 0.5) -> Array:
    """``F = k1 x + k2 x^3`` (odd in ``x``)."""
    return k1 * x + k2 * x**3


def sample_spring(
    key: PRNGKeyArray,
    n: int,
    low: float,
    high: float,
    *,
    k1: float = 1.0,
    k2: float = 0.5,
    noise: float = 0.0,
) -> tuple[Float[Array, "n 1"], Float[Array, " n"]]:
    """``n`` samples ``x ~ U(low, high)`` of shape ``(n, 1)`` and noisy forces of shape ``(n,)``."""
    if n <= 0:
        raise ValueError(f"sample_spring: `n` must be positive, got {n}")
    if not low < high:
        raise ValueError(f"sample_spring: need low < high, got low={low}, high={high}")
    kx, kn = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 1), minval=low, maxval=high)
    force = spring_force(x[:, 0], k1, k2) + noise * jax.random.normal(kn, (n,))
    return x, force
