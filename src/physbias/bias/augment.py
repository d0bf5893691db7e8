"""Observation bias: make the data satisfy the symmetry (soft)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import PRNGKeyArray

from ..data import Dataset
from .base import AbstractBias
from .symmetry import AbstractSymmetry, non_identity_elements, require_symmetry


class Augmentation(AbstractBias):
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

    symmetries: tuple
    copies: int = eqx.field(static=True)
    kind: ClassVar[str] = "observation"
    hard: ClassVar[bool] = False

    def __init__(self, *symmetries: AbstractSymmetry, copies: int = 1):
        if not symmetries:
            raise ValueError("Augmentation needs at least one symmetry")
        symmetries = tuple(require_symmetry(s, "Augmentation") for s in symmetries)
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


class AugmentedLoss(AbstractBias):
    """Observation bias applied online: each batch is moved by random group elements before the loss.

    .. math:: L_{aug}(f, \\{(x_i, y_i)\\}) = L(f, \\{(g_i . x_i, \\rho(g_i) y_i)\\}),
              \\qquad g_i \\sim G \\text{ independently, anew every step}

    A loss transform (the same ``(model, batch, key) -> scalar`` signature), so it composes with
    any loss and never grows the data set; for continuous groups it sees a fresh element for every
    example at every step, unlike the fixed copies of :class:`Augmentation`.

    Args:
        loss: the loss to wrap; ``batch`` is ``(x, y, ...)`` with a leading batch axis.
        symmetry: an :class:`AbstractSymmetry` acting on one ``x`` and one ``y``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> from physbias.bias import Parity
        >>> mse = lambda model, batch, key: jnp.mean((jax.vmap(model)(batch[0]) - batch[1]) ** 2)
        >>> loss = AugmentedLoss(mse, Parity(odd=True))
        >>> float(loss(lambda x: 2 * x, (jnp.ones((4, 1)), 2 * jnp.ones((4, 1))), jax.random.key(0)))
        0.0
    """

    loss: Callable = eqx.field(static=True)
    symmetry: AbstractSymmetry
    kind: ClassVar[str] = "observation"
    hard: ClassVar[bool] = False

    def __init__(self, loss, symmetry: AbstractSymmetry):
        if not callable(loss):
            raise TypeError(f"AugmentedLoss: `loss` must be callable, got {type(loss).__name__}")
        self.loss = loss
        self.symmetry = require_symmetry(symmetry, "AugmentedLoss")

    def __call__(self, model, batch, key: PRNGKeyArray):
        x, y, *rest = batch
        self.symmetry.check(x[0], y[0])  # shapes only (trace time): a wrong action is refused
        g = self.symmetry.sample_batch(key, x.shape[0])
        x = jax.vmap(self.symmetry.act_input)(g, x)
        y = jax.vmap(self.symmetry.act_output)(g, y)
        return self.loss(model, (x, y, *rest), jax.random.fold_in(key, 1))

    def __repr__(self) -> str:
        return f"AugmentedLoss({self.symmetry!r})"
