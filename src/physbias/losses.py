"""Loss functions with the :data:`physbias.train.LossFn` signature ``(model, batch, key) -> scalar``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .train import LossFn


def mean_squared_error(pred: Array, target: Array) -> Array:
    """``mean_i ||pred_i - target_i||^2`` over the leading axis (summed over output entries)."""
    diff = jnp.reshape(pred - target, (pred.shape[0], -1))
    return jnp.mean(jnp.sum(diff**2, axis=-1))


def supervised_loss(*penalties) -> LossFn:
    """Mean squared error of ``model(x)`` against ``y`` plus optional penalty terms.

    .. math:: L = \\frac{1}{N} \\sum_i \\|y_i - f(x_i)\\|^2 + \\sum_k P_k(f, x, y)

    Each penalty is called as ``penalty(model, x, y, key)`` (e.g. a
    :class:`~physbias.bias.SymmetryPenalty`, which carries its own weight).
    """
    for p in penalties:
        if not callable(p):
            raise TypeError(f"supervised_loss: penalties must be callable, got {type(p).__name__}")

    def loss(model, batch, key):
        x, y = batch
        value = mean_squared_error(jax.vmap(model)(x), y)
        if penalties:
            for penalty, k in zip(penalties, jax.random.split(key, len(penalties)), strict=True):
                value = value + penalty(model, x, y, k)
        return value

    return loss
