"""A network in standardised units that stays equivariant."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
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
    x_scale: Array
    y_mean: Array
    y_scale: float = eqx.field(static=True)

    def __init__(self, net, x_scale: ArrayLike, y_mean: ArrayLike, y_scale: float):
        self.net = net
        self.x_scale = jnp.asarray(x_scale, jnp.float32)
        self.y_mean = jnp.asarray(y_mean, jnp.float32)
        if not float(y_scale) > 0 or not bool(jnp.all(self.x_scale > 0)):
            raise ValueError(f"Standardized: `x_scale` and `y_scale` must be positive, got {y_scale!r}")
        self.y_scale = float(y_scale)

    def __call__(self, x):
        x_scale, y_mean = jax.lax.stop_gradient((self.x_scale, self.y_mean))
        return y_mean + self.y_scale * self.net(x / x_scale)
