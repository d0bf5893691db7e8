"""Triangle area from edge lengths (seed 001's illustrative example)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def heron_area(edges: Float[Array, "... 3"]) -> Float[Array, ...]:
    """Heron's formula ``A = 1/4 sqrt((a+b+c)(a+b-c)(a-b+c)(-a+b+c))``."""
    a, b, c = edges[..., 0], edges[..., 1], edges[..., 2]
    prod = (a + b + c) * (a + b - c) * (a - b + c) * (-a + b + c)
    return 0.25 * jnp.sqrt(jnp.maximum(prod, 0.0))


def sample_triangles(
    key: PRNGKeyArray, n: int, low: float, high: float, min_area_fraction: float = 0.0
) -> Float[Array, "n 3"]:
    """``n`` valid triangles with each edge uniform in ``(low, high)`` (rejection sampling).

    Draws that violate the triangle inequality are rejected; ``min_area_fraction`` rejects near
    degenerate ones whose area is below that fraction of an equilateral triangle's with the same
    perimeter.
    """
    if n <= 0:
        raise ValueError(f"sample_triangles: `n` must be positive, got {n}")
    if not 0 < low < high:
        raise ValueError(f"sample_triangles: need 0 < low < high, got low={low}, high={high}")
    kept: list[np.ndarray] = []
    count = 0
    while count < n:
        key, sub = jax.random.split(key)
        edges = np.asarray(jax.random.uniform(sub, (2 * n + 16, 3), minval=low, maxval=high))
        area = np.asarray(heron_area(edges))
        perimeter = edges.sum(-1)
        ok = (2 * edges.max(-1) < perimeter) & (area > min_area_fraction * np.sqrt(3) / 36 * perimeter**2)
        kept.append(edges[ok])
        count += int(ok.sum())
    return jnp.asarray(np.concatenate(kept)[:n])


class HeronForm(eqx.Module):
    """Seed 001's level-4 model: ``C sqrt((a+b+c)(a+b-c)(a-b+c)(-a+b+c))``, one parameter ``C``
    (the truth is ``C = 1/4``)."""

    C: Array

    def __init__(self, C: float = 0.0):
        self.C = jnp.asarray(C, dtype=float)

    def __call__(self, edges: Float[Array, 3]) -> Float[Array, ""]:
        return 4.0 * self.C * heron_area(edges)
