"""Inductive bias of learnable extent: averaging a model over part of a continuous group
(Immer, van der Ouderaa et al. 2022, "Invariance learning in deep neural networks with
differentiable Laplace approximations"; Benton et al. 2020, Augerino).

.. math:: \\hat f(x) = \\frac{1}{S} \\sum_{s=1}^{S} f\\big(T(\\epsilon_s \\odot \\eta)\\, x\\big),
          \\qquad T(t) = \\exp\\Big(\\sum_k t_k G_k\\Big),

for Lie-algebra generators ``G_k`` (e.g. the 2-D rotation ``[[0, -1], [1, 0]]``) and an extent
``eta`` per generator. ``eta = 0`` is the plain model; as ``eta`` grows, ``f_hat`` becomes
invariant to ever larger transformations (for a rotation, ``eta = pi`` is full SO(2)
invariance). The extent is a hyperparameter: the training loss always prefers ``eta = 0``, the
evidence does not (:func:`physbias.marglik.invariance_fit`).

The ``epsilon_s`` are fixed points of ``[-1, 1]^K`` (the midpoint rule for one generator, a fixed
random draw otherwise), not fresh samples per call: ``f_hat`` is then a deterministic,
differentiable function of ``eta``, with the same expectation as random sampling and less noise.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .base import AbstractBias

ROTATION_2D = np.array([[[0.0, -1.0], [1.0, 0.0]]])
"""The generator of 2-D rotations (angle ``t``: ``exp(t G)`` rotates by ``t`` radians)."""


class LearnedInvariance(AbstractBias):
    """``f_hat(x) = mean_s f(T(epsilon_s * eta) x)`` with a learnable extent ``eta`` (radians for a
    rotation generator).

    Args:
        model: any model of one input ``(d,)``.
        generators: ``(K, d, d)`` Lie-algebra generators acting on inputs.
        extent: initial ``eta`` (scalar or ``(K,)``, >= 0).
        n_samples: ``S``.
        seed: the draw of ``epsilon`` when ``K > 1``.

    Input ``(d,)``; output as ``model``.
    """

    model: Any
    extent: Float[Array, " K"]
    # Constants, kept out of the arrays (not parameters of any prior or curvature); tuples hash.
    generators: tuple = eqx.field(static=True)  # (K, d, d)
    epsilons: tuple = eqx.field(static=True)  # (S, K)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = False

    def __init__(self, model, generators=ROTATION_2D, extent=0.05, *, n_samples: int = 32, seed: int = 0):
        generators = np.asarray(generators, dtype=float)
        if generators.ndim != 3 or generators.shape[1] != generators.shape[2] or generators.shape[0] == 0:
            raise ValueError(f"LearnedInvariance: `generators` must have shape (K, d, d), got {generators.shape}")
        if not np.all(np.isfinite(generators)):
            raise ValueError("LearnedInvariance: `generators` contains NaN or inf")
        k = generators.shape[0]
        extent = np.broadcast_to(np.asarray(extent, dtype=float), (k,)) if np.ndim(extent) == 0 else np.asarray(extent, float)
        if extent.shape != (k,) or not np.all(np.isfinite(extent)) or np.any(extent < 0):
            raise ValueError(f"LearnedInvariance: `extent` must be >= 0, scalar or shape ({k},), got {extent!r}")
        if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"LearnedInvariance: `n_samples` must be a positive integer, got {n_samples!r}")
        if k == 1:
            eps = (2 * np.arange(n_samples) + 1) / n_samples - 1  # midpoints of [-1, 1]
            eps = eps[:, None]
        else:
            eps = np.random.default_rng(seed).uniform(-1.0, 1.0, (n_samples, k))
        self.model = model
        self.extent = jnp.asarray(extent, jnp.result_type(float))
        self.generators = _as_tuple(generators)
        self.epsilons = _as_tuple(eps)

    def transformations(self) -> Float[Array, "S d d"]:
        """The ``S`` matrices ``T(epsilon_s * eta)``."""
        gens = jnp.asarray(self.generators, self.extent.dtype)
        eps = jnp.asarray(self.epsilons, self.extent.dtype)
        return jax.vmap(lambda e: jax.scipy.linalg.expm(jnp.einsum("k,kij->ij", e * self.extent, gens)))(eps)

    def __call__(self, x: Float[Array, " d"]) -> Array:
        d = len(self.generators[0])
        if x.shape != (d,):
            raise ValueError(f"LearnedInvariance: one input must have shape ({d},), got {x.shape}")
        mats = self.transformations().astype(x.dtype)
        return jnp.mean(jax.vmap(lambda m: self.model(m @ x))(mats), axis=0)


def _as_tuple(a: np.ndarray) -> tuple:
    return tuple(_as_tuple(r) for r in a) if a.ndim > 1 else tuple(float(v) for v in a)


def extent_degrees(model: LearnedInvariance) -> np.ndarray:
    """The learned extent in degrees (for rotation generators)."""
    return np.asarray(model.extent) * 180.0 / math.pi
