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

AFFINE_2D = np.array(
    [
        [[0, 0, 1], [0, 0, 0], [0, 0, 0]],  # translation in x (columns), pixels
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],  # translation in y (rows), pixels
        [[0, -1, 0], [1, 0, 0], [0, 0, 0]],  # rotation, radians
        [[1, 0, 0], [0, 0, 0], [0, 0, 0]],  # log-scale in x
        [[0, 0, 0], [0, 1, 0], [0, 0, 0]],  # log-scale in y
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],  # shear
    ],
    dtype=float,
)
"""The six generators of 2-D affine maps of an image, in homogeneous pixel coordinates centred on
the image (LILA's ``AffineLayer2d``); ``AFFINE_2D[2:3]`` is rotation alone."""


def affine_resample(image: Float[Array, "... H W"], matrix: Float[Array, "3 3"]) -> Float[Array, "... H W"]:
    """``image`` seen through the affine map ``matrix`` (homogeneous, centred pixel coordinates):
    output pixel ``p`` takes the bilinear interpolation of ``image`` at ``matrix @ p`` (zero
    outside). Leading axes (channels) are mapped alike."""
    h, w = image.shape[-2:]
    rows, cols = jnp.meshgrid(
        jnp.arange(h, dtype=matrix.dtype), jnp.arange(w, dtype=matrix.dtype), indexing="ij"
    )
    points = jnp.stack([cols - (w - 1) / 2, rows - (h - 1) / 2, jnp.ones_like(rows)])  # (3, H, W)
    source = jnp.einsum("ij,jhw->ihw", matrix, points)
    coords = [source[1] + (h - 1) / 2, source[0] + (w - 1) / 2]
    flat = image.reshape(-1, h, w)
    out = jax.vmap(
        lambda im: jax.scipy.ndimage.map_coordinates(im, coords, order=1, mode="constant", cval=0.0)
    )(flat)
    return out.reshape(image.shape)


def rotate_images(images: Float[Array, "N ... H W"], angles: Float[Array, " N"]) -> Float[Array, "N ... H W"]:
    """Each image rotated by its angle (radians) about its centre, bilinear, zero outside."""
    if angles.shape != (images.shape[0],):
        raise ValueError(f"rotate_images: `angles` must have shape ({images.shape[0]},), got {angles.shape}")
    generator = jnp.asarray(AFFINE_2D[2], images.dtype)
    turn = jax.vmap(
        lambda im, a: affine_resample(im, jax.scipy.linalg.expm(a.astype(images.dtype) * generator))
    )
    return jax.jit(turn)(images, angles)


class LearnedInvariance(AbstractBias):
    """``f_hat(x) = mean_s f(T(epsilon_s * eta) x)`` with a learnable extent ``eta`` (radians for a
    rotation generator).

    Args:
        model: any model of one input ``(d,)`` (or one image ``(..., H, W)``).
        generators: ``(K, d, d)`` Lie-algebra generators acting on inputs; for images ``(K, 3,
            3)`` in homogeneous pixel coordinates (e.g. :data:`AFFINE_2D`), applied by
            :func:`affine_resample`.
        extent: initial ``eta`` (scalar or ``(K,)``, >= 0).
        n_samples: ``S``.
        seed: the draw of ``epsilon`` when ``K > 1``.
        images: inputs are images transformed by resampling, not vectors multiplied.

    Input ``(d,)`` or an image; output as ``model``.
    """

    model: Any
    extent: Float[Array, " K"]
    # Constants, kept out of the arrays (not parameters of any prior or curvature); tuples hash.
    generators: tuple = eqx.field(static=True)  # (K, d, d)
    epsilons: tuple = eqx.field(static=True)  # (S, K)
    images: bool = eqx.field(static=True, default=False)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = False

    def __init__(
        self,
        model,
        generators=ROTATION_2D,
        extent=0.05,
        *,
        n_samples: int = 32,
        seed: int = 0,
        images: bool = False,
    ):
        generators = np.asarray(generators, dtype=float)
        if generators.ndim != 3 or generators.shape[1] != generators.shape[2] or generators.shape[0] == 0:
            raise ValueError(
                f"LearnedInvariance: `generators` must have shape (K, d, d), got {generators.shape}"
            )
        if not np.all(np.isfinite(generators)):
            raise ValueError("LearnedInvariance: `generators` contains NaN or inf")
        if images and generators.shape[1] != 3:
            raise ValueError(
                f"LearnedInvariance: image generators must be (K, 3, 3) homogeneous, got {generators.shape}"
            )
        k = generators.shape[0]
        extent = (
            np.broadcast_to(np.asarray(extent, dtype=float), (k,))
            if np.ndim(extent) == 0
            else np.asarray(extent, float)
        )
        if extent.shape != (k,) or not np.all(np.isfinite(extent)) or np.any(extent < 0):
            raise ValueError(
                f"LearnedInvariance: `extent` must be >= 0, scalar or shape ({k},), got {extent!r}"
            )
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
        self.images = bool(images)

    def transformations(self) -> Float[Array, "S d d"]:
        """The ``S`` matrices ``T(epsilon_s * eta)``."""
        gens = jnp.asarray(self.generators, self.extent.dtype)
        eps = jnp.asarray(self.epsilons, self.extent.dtype)
        return jax.vmap(lambda e: jax.scipy.linalg.expm(jnp.einsum("k,kij->ij", e * self.extent, gens)))(eps)

    def __call__(self, x: Array) -> Array:
        if self.images:
            if x.ndim < 2:
                raise ValueError(
                    f"LearnedInvariance: an image input must have shape (..., H, W), got {x.shape}"
                )
            mats = self.transformations().astype(x.dtype)
            return jnp.mean(jax.vmap(lambda m: self.model(affine_resample(x, m)))(mats), axis=0)
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
