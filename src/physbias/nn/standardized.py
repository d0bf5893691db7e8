"""A network in standardised units that stays equivariant."""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike


class Standardized(eqx.Module):
    """``x -> y_mean + y_scale * net(x / x_scale)``: the network sees inputs and targets of unit size.

    Equivariance is kept whenever ``net`` is equivariant, ``x_scale`` is one number per copy of
    the input representation (broadcast over that copy's entries) and ``y_mean`` is invariant
    (zero otherwise). The scales are constants, not parameters: no gradient reaches them.

    Args:
        net: the network, on one unbatched input of shape ``(d_in,)``.
        x_scale: ``(d_in,)`` or a scalar, positive.
        y_mean: ``(d_out,)`` or a scalar.
        y_scale: a positive number.
    """

    net: eqx.Module
    # Static (hashable tuples), not arrays: no optimiser can move them (weight decay included)
    # and they are not counted as parameters.
    x_scale: tuple[float, ...] = eqx.field(static=True)
    y_mean: tuple[float, ...] = eqx.field(static=True)
    x_shape: tuple[int, ...] = eqx.field(static=True)
    y_shape: tuple[int, ...] = eqx.field(static=True)
    y_scale: float = eqx.field(static=True)

    def __init__(self, net, x_scale: ArrayLike, y_mean: ArrayLike, y_scale: float):
        x_scale, y_mean = np.asarray(x_scale, np.float64), np.asarray(y_mean, np.float64)
        if not (np.all(np.isfinite(x_scale)) and np.all(x_scale > 0)):
            raise ValueError(f"Standardized: `x_scale` must be positive and finite, got {x_scale.tolist()}")
        if not np.all(np.isfinite(y_mean)):
            raise ValueError(f"Standardized: `y_mean` must be finite, got {y_mean.tolist()}")
        if not (np.isfinite(y_scale) and float(y_scale) > 0):
            raise ValueError(f"Standardized: `y_scale` must be positive and finite, got {y_scale!r}")
        self.net = net
        self.x_scale, self.x_shape = tuple(x_scale.ravel().tolist()), x_scale.shape
        self.y_mean, self.y_shape = tuple(y_mean.ravel().tolist()), y_mean.shape
        self.y_scale = float(y_scale)

    def __call__(self, x: Array) -> Array:
        x_scale = jnp.asarray(self.x_scale, jnp.float32).reshape(self.x_shape)
        y_mean = jnp.asarray(self.y_mean, jnp.float32).reshape(self.y_shape)
        return y_mean + self.y_scale * self.net(x / x_scale)
