"""Rectangular domains and collocation points: uniform, Latin hypercube, and points on the sides."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class Box(eqx.Module):
    """The box ``prod_i [lower_i, upper_i]`` with named coordinates (e.g. ``("x", "t")``).

    Example:
        >>> Box((-1.0, 0.0), (1.0, 1.0), ("x", "t")).extent
        (2.0, 1.0)
    """

    lower: tuple[float, ...] = eqx.field(static=True)
    upper: tuple[float, ...] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)

    def __init__(self, lower, upper, names=None):
        lower, upper = tuple(float(v) for v in lower), tuple(float(v) for v in upper)
        if len(lower) != len(upper) or not lower:
            raise ValueError(
                f"Box: `lower` and `upper` need the same non-zero length, got {lower} and {upper}"
            )
        if not all(math.isfinite(v) for v in lower + upper):
            raise ValueError(f"Box: bounds must be finite, got {lower} and {upper}")
        if any(hi <= lo for lo, hi in zip(lower, upper, strict=True)):
            raise ValueError(
                f"Box: every side needs a positive extent (upper > lower), got {lower} and {upper}"
            )
        names = tuple(f"x{i}" for i in range(len(lower))) if names is None else tuple(names)
        if len(names) != len(lower) or len(set(names)) != len(names):
            raise ValueError(f"Box: need {len(lower)} distinct `names`, got {names}")
        self.lower, self.upper, self.names = lower, upper, names

    @property
    def dim(self) -> int:
        return len(self.lower)

    @property
    def extent(self) -> tuple[float, ...]:
        return tuple(hi - lo for lo, hi in zip(self.lower, self.upper, strict=True))

    def axis(self, name: str) -> int:
        """The index of coordinate ``name``; ``ValueError`` naming the valid ones otherwise."""
        if name not in self.names:
            raise ValueError(f"the domain has no coordinate {name!r}; its coordinates are {self.names}")
        return self.names.index(name)

    def _scale(self, unit: Array) -> Array:
        lo, hi = jnp.asarray(self.lower, unit.dtype), jnp.asarray(self.upper, unit.dtype)
        return lo[None] + unit * (hi - lo)[None]

    def uniform(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` points drawn uniformly in the box."""
        _check_count(n)
        return self._scale(jax.random.uniform(key, (n, self.dim)))

    def latin_hypercube(self, key: PRNGKeyArray, n: int) -> Float[Array, "n d"]:
        """``n`` points with exactly one in each of ``n`` equal slices of every coordinate
        (McKay, Beckman & Conover 1979): a random permutation of the slices per coordinate and a
        uniform position inside each slice."""
        _check_count(n)
        k_perm, k_jitter = jax.random.split(key)
        perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(k_perm, self.dim)).T
        jitter = jax.random.uniform(k_jitter, (n, self.dim))
        unit = (perms.astype(jitter.dtype) + jitter) / n
        return self._scale(unit)

    def side(self, key: PRNGKeyArray, n: int, name: str, which: str) -> Float[Array, "n d"]:
        """``n`` uniform points on the side where coordinate ``name`` is at its ``"lower"`` or
        ``"upper"`` bound (e.g. ``side(key, n, "t", "lower")`` for an initial condition)."""
        if which not in ("lower", "upper"):
            raise ValueError(f"`which` must be 'lower' or 'upper', got {which!r}")
        i = self.axis(name)
        points = self.uniform(key, n)
        value = self.lower[i] if which == "lower" else self.upper[i]
        return points.at[:, i].set(value)

    def boundary(self, key: PRNGKeyArray, n: int) -> Float[Array, "m d"]:
        """About ``n`` uniform points on the whole boundary: ``max(1, n // (2 d))`` on each of the
        ``2 d`` sides, in the order (first coordinate lower, upper, second lower, ...)."""
        _check_count(n)
        per_side = max(1, n // (2 * self.dim))
        sides = [(name, which) for name in self.names for which in ("lower", "upper")]
        return jnp.concatenate(
            [
                self.side(jax.random.fold_in(key, i), per_side, name, which)
                for i, (name, which) in enumerate(sides)
            ]
        )


def _check_count(n) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of points must be a positive integer, got {n!r}")


class Disk(eqx.Module):
    """The disk ``|z - centre| <= radius`` in the plane.

    Example:
        >>> Disk((0.0, 0.0), 2.0).radius
        2.0
    """

    centre: tuple[float, float] = eqx.field(static=True)
    radius: float = eqx.field(static=True)

    def __init__(self, centre=(0.0, 0.0), radius: float = 1.0):
        centre = tuple(float(v) for v in centre)
        if len(centre) != 2 or not all(math.isfinite(v) for v in centre):
            raise ValueError(f"Disk: `centre` must be two finite numbers, got {centre}")
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"Disk: `radius` must be positive, got {radius!r}")
        self.centre, self.radius = centre, float(radius)

    def uniform(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
        """``n`` points uniform in the disk (``r = R sqrt(U)``)."""
        _check_count(n)
        k_r, k_theta = jax.random.split(key)
        r = self.radius * jnp.sqrt(jax.random.uniform(k_r, (n,)))
        theta = jax.random.uniform(k_theta, (n,), maxval=2 * jnp.pi)
        return jnp.asarray(self.centre)[None] + r[:, None] * jnp.stack([jnp.cos(theta), jnp.sin(theta)], 1)

    def boundary(self, key: PRNGKeyArray, n: int) -> Float[Array, "n 2"]:
        """``n`` points uniform on the circle."""
        _check_count(n)
        theta = jax.random.uniform(key, (n,), maxval=2 * jnp.pi)
        return jnp.asarray(self.centre)[None] + self.radius * jnp.stack([jnp.cos(theta), jnp.sin(theta)], 1)
