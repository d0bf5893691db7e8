"""Nonlinear spring ``F = k1 x + k2 x^3`` (seed 001's running example)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
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


class SpringForm(eqx.Module):
    """The known functional form ``F = k1 x + k2 x^3`` with both constants learned (a full physics
    bias, like Heron's form for the triangle)."""

    k1: Array
    k2: Array

    def __init__(self, k1: float = 0.0, k2: float = 0.0):
        self.k1 = jnp.asarray(k1, dtype=jnp.result_type(float))
        self.k2 = jnp.asarray(k2, dtype=jnp.result_type(float))

    def __call__(self, x: Float[Array, 1]) -> Float[Array, ""]:
        return spring_force(x[0], self.k1, self.k2)


class LinearSpring(eqx.Module):
    """The known linear law ``F = k* x`` (a fixed constant, not trained): the known part of a
    physics bias whose learned residual supplies the rest."""

    k_star: float = eqx.field(static=True)

    def __call__(self, x: Float[Array, 1]) -> Float[Array, ""]:
        return self.k_star * x[0]
