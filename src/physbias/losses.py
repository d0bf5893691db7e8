"""Loss functions with the :data:`physbias.train.LossFn` signature ``(model, batch, key) -> scalar``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array

from .data import require_same_shape
from .train import LossFn


def mean_squared_error(pred: Array, target: Array) -> Array:
    """``mean_i ||pred_i - target_i||^2`` over the leading axis (summed over output entries).

    Raises:
        ValueError: if the shapes differ (no broadcasting).
    """
    require_same_shape(pred, target, "mean_squared_error")
    diff = jnp.reshape(pred - target, (pred.shape[0], -1))
    return jnp.mean(jnp.sum(diff**2, axis=-1))


def supervised_loss(*penalties, scale: float = 1.0) -> LossFn:
    """Mean squared error of ``model(x)`` against ``y`` plus optional penalty terms.

    .. math:: L = \\frac{1}{N s^2} \\sum_i \\|y_i - f(x_i)\\|^2 + \\sum_k P_k(f, x, y)

    ``scale`` ``s`` measures the error in units of the targets' size (standardised MSE).

    Each penalty is called as ``penalty(model, x, y, key)`` (e.g. a
    :class:`~physbias.bias.SymmetryPenalty`, which carries its own weight).
    """
    for p in penalties:
        if not callable(p):
            raise TypeError(f"supervised_loss: penalties must be callable, got {type(p).__name__}")

    if not scale > 0:
        raise ValueError(f"supervised_loss: `scale` must be positive, got {scale!r}")

    def loss(model, batch, key):
        x, y = batch
        value = mean_squared_error(jax.vmap(model)(x), y)
        if scale != 1.0:
            value = value / scale**2
        if penalties:
            for penalty, k in zip(penalties, jax.random.split(key, len(penalties)), strict=True):
                value = value + penalty(model, x, y, k)
        return value

    return loss


def cross_entropy_loss() -> LossFn:
    """Mean softmax cross-entropy of the logits ``model(x)`` against integer class labels ``y``.

    .. math:: L = -\\frac{1}{N} \\sum_i \\log \\mathrm{softmax}(f(x_i))_{y_i}

    Labels may arrive as floats (``fit`` stores every array as float); they are cast to ``int32``.
    """
    import optax

    def loss(model, batch, key):
        x, y = batch
        logits = jax.vmap(model)(x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y.astype(jnp.int32)))

    return loss
