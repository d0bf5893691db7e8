"""Inductive bias: a model of rotation invariants, exactly invariant under SO(d) (hard).

By the first fundamental theorem of invariant theory for SO(d) (Weyl 1939, "The classical
groups", II.9), every polynomial invariant of ``n`` vectors ``x_1 ... x_n`` in ``R^d`` under a
simultaneous rotation is a polynomial in the inner products ``<x_i, x_j>`` and the determinants
``det[x_{i_1} ... x_{i_d}]``; the inner products alone are the O(d) invariants (rotations and
reflections). :class:`RotationInvariant` feeds exactly these to any model:

    f(x) = g(<x_i, x_j>_{i <= j}, det[x_{i_1}, ..., x_{i_d}]_{i_1 < ... < i_d}),

so ``f(R x_1, ..., R x_n) = f(x)`` for every ``R`` in SO(d), and every smooth invariant function is
of this form (the class a network ``g`` can fit).
"""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .base import AbstractBias


def _det(a: Float[Array, "m d d"]) -> Float[Array, " m"]:
    """Determinants, written out for d = 2 and 3 (cheap, and smooth derivatives)."""
    if a.shape[-1] == 2:
        return a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
    if a.shape[-1] == 3:
        return jnp.sum(a[:, 0] * jnp.cross(a[:, 1], a[:, 2]), axis=-1)
    return jnp.linalg.det(a)


def rotation_invariant_count(n_vectors: int, dim: int, reflections: bool = False) -> int:
    """Number of features :class:`RotationInvariant` gives: ``n(n+1)/2`` inner products, plus
    ``C(n, d)`` determinants unless ``reflections`` (O(d) instead of SO(d))."""
    inner = n_vectors * (n_vectors + 1) // 2
    return inner if reflections else inner + len(list(itertools.combinations(range(n_vectors), dim)))


class RotationInvariant(AbstractBias):
    """``f(x) = model(invariants(x))`` for an input of ``n_vectors`` vectors in ``R^dim``, given flat
    ``(n_vectors * dim,)`` (vector after vector) or as ``(n_vectors, dim)``.

    Args:
        model: a model of the ``rotation_invariant_count(n_vectors, dim, reflections)`` invariants.
        n_vectors, dim: the input layout (``dim`` >= 2).
        reflections: invariant under reflections too (O(d)): only inner products.
    """

    model: Any
    n_vectors: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    reflections: bool = eqx.field(static=True, default=False)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = True

    def __check_init__(self):
        if not isinstance(self.n_vectors, int) or self.n_vectors < 1:
            raise ValueError(
                f"RotationInvariant: `n_vectors` must be a positive integer, got {self.n_vectors!r}"
            )
        if not isinstance(self.dim, int) or self.dim < 2:
            raise ValueError(f"RotationInvariant: `dim` must be an integer >= 2, got {self.dim!r}")

    def invariants(self, x: Float[Array, " n*d"]) -> Float[Array, " m"]:
        n, d = self.n_vectors, self.dim
        if x.shape not in ((n * d,), (n, d)):
            raise ValueError(
                f"RotationInvariant: one input must have shape ({n * d},) or ({n}, {d}), got {x.shape}"
            )
        v = jnp.reshape(x, (n, d))
        gram = v @ v.T
        rows, cols = jnp.triu_indices(n)
        features = [gram[rows, cols]]
        if not self.reflections:
            subsets = np.asarray(list(itertools.combinations(range(n), d)), dtype=np.int32)
            if len(subsets):
                features.append(_det(v[subsets]))
        return jnp.concatenate(features)

    def __call__(self, x: Array) -> Array:
        return self.model(self.invariants(x))
