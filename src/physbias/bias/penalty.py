"""Learning bias: a penalty added to the loss when the model breaks the symmetry (soft)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .base import AbstractBias
from .symmetry import AbstractSymmetry, non_identity_elements, require_symmetry


def _squared_norm(a: Array) -> Array:
    return jnp.sum(jnp.reshape(a, (a.shape[0], -1)) ** 2, axis=-1)


class SymmetryPenalty(AbstractBias):
    """``weight * mean_{i, g} || target_g(x_i) - f(g . x_i) ||^2``.

    Two forms, both from seed 001:

    * ``use_targets=False`` (consistency): ``target = rho(g) f(x_i)`` - no labels needed, e.g.
      the oddness penalty ``|f(x) + f(-x)|^2``.
    * ``use_targets=True``: ``target = rho(g) y_i`` - the transformed label, e.g. the permutation
      penalty ``|A_i - f(a_i, c_i, b_i)|^2`` and the scaling penalty ``|s^2 A_i - f(s a_i, ...)|^2``.

    For a finite symmetry the mean runs over all non-identity elements; for a continuous one over
    ``samples`` random elements per example and step.

    Call as ``penalty(model, x, y, key)`` with batched ``x``/``y``; returns a scalar.
    """

    symmetry: AbstractSymmetry
    weight: float = eqx.field(static=True)
    use_targets: bool = eqx.field(static=True)
    samples: int = eqx.field(static=True)
    kind: ClassVar[str] = "learning"
    hard: ClassVar[bool] = False

    def __init__(
        self,
        symmetry: AbstractSymmetry,
        weight: float = 1.0,
        *,
        use_targets: bool = False,
        samples: int = 1,
    ):
        symmetry = require_symmetry(symmetry, "SymmetryPenalty")
        if not (isinstance(weight, (int, float)) and weight >= 0):
            raise ValueError(f"SymmetryPenalty: `weight` must be a number >= 0, got {weight!r}")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"SymmetryPenalty: `samples` must be a positive integer, got {samples!r}")
        self.symmetry = symmetry
        self.weight = float(weight)
        self.use_targets = use_targets
        self.samples = samples

    def violation(self, model, x: Array, y: Array, g) -> Array:
        """Squared violation for one element ``g`` per example (``g`` batched), shape ``(N,)``."""
        s = self.symmetry
        pred_g = jax.vmap(model)(jax.vmap(s.act_input)(g, x))
        base = y if self.use_targets else jax.vmap(model)(x)
        target = jax.vmap(s.act_output)(g, base)
        return _squared_norm(target - pred_g)

    def __call__(self, model, x: Array, y: Array, key: PRNGKeyArray) -> Array:
        s = self.symmetry
        s.check(x[0], y[0])
        n = x.shape[0]
        if s.is_finite:
            elements = non_identity_elements(s)
            broadcast = lambda g: jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), g)
            # vmap over the (few) elements: one large batched matmul beats a sequential map.
            per_g = jax.vmap(lambda g: jnp.mean(self.violation(model, x, y, broadcast(g))))(elements)
        else:
            keys = jax.random.split(key, (self.samples, n))
            per_g = jax.vmap(lambda k: jnp.mean(self.violation(model, x, y, jax.vmap(s.sample)(k))))(keys)
        return self.weight * jnp.mean(per_g)

    def __repr__(self) -> str:
        return f"SymmetryPenalty({self.symmetry!r}, weight={self.weight}, use_targets={self.use_targets})"
