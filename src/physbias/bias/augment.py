"""Observation bias: make the data satisfy the symmetry (soft)."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..data import Dataset
from .symmetry import AbstractSymmetry, non_identity_elements, require_symmetry


class Augmentation:
    """Add transformed copies of every sample: ``(x, y) -> (g.x, rho(g) y)``.

    For a finite symmetry every non-identity element adds one copy of the data (a triangle's 3
    edges give 5 more samples); for a continuous one, ``copies`` randomly transformed copies are
    added, each sample with its own random element. Several symmetries add their copies side by
    side (a union, not a product), as in seed 001's level 1.

    Args:
        *symmetries: one or more :class:`AbstractSymmetry`.
        copies: random copies per continuous symmetry (>= 1).

    Example:
        >>> from physbias.bias import Augmentation, Parity
        >>> import jax, numpy as np
        >>> data = Dataset(np.array([[1.0], [2.0]]), np.array([3.0, 5.0]))
        >>> len(Augmentation(Parity())(data, key=jax.random.key(0)))
        4
    """

    kind: ClassVar[str] = "observation"
    hard: ClassVar[bool] = False

    def __init__(self, *symmetries: AbstractSymmetry, copies: int = 1):
        if not symmetries:
            raise ValueError("Augmentation needs at least one symmetry")
        for s in symmetries:
            require_symmetry(s, "Augmentation")
        if not isinstance(copies, int) or copies < 1:
            raise ValueError(f"Augmentation: `copies` must be a positive integer, got {copies!r}")
        self.symmetries = symmetries
        self.copies = copies

    def __call__(self, data: Dataset, *, key: PRNGKeyArray) -> Dataset:
        x, y = data.as_tuple()
        xs, ys = [x], [y]
        keys = jax.random.split(key, len(self.symmetries))
        for symmetry, sym_key in zip(self.symmetries, keys, strict=True):
            symmetry.check(x[0], y[0])
            if symmetry.is_finite:
                act_x = jax.vmap(symmetry.act_input, in_axes=(None, 0))
                act_y = jax.vmap(symmetry.act_output, in_axes=(None, 0))
                gx, gy = jax.lax.map(
                    lambda g, fx=act_x, fy=act_y: (fx(g, x), fy(g, y)), non_identity_elements(symmetry)
                )
            else:
                keys = jax.random.split(sym_key, (self.copies, len(x)))
                g = jax.vmap(jax.vmap(symmetry.sample))(keys)
                gx = jax.vmap(jax.vmap(symmetry.act_input), in_axes=(0, None))(g, x)
                gy = jax.vmap(jax.vmap(symmetry.act_output), in_axes=(0, None))(g, y)
            xs.append(gx.reshape((-1, *x.shape[1:])))
            ys.append(gy.reshape((-1, *y.shape[1:])))
        return Dataset(jnp.concatenate(xs), jnp.concatenate(ys), name=f"{data.name}+augmented")

    def __repr__(self) -> str:
        return f"Augmentation({', '.join(map(repr, self.symmetries))}, copies={self.copies})"
