"""A squared-exponential kernel with log-parameters, the baseline the spectral mixture is compared
with: ``tinygp.kernels.ExpSquared`` scaled by an amplitude, both positive by construction."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import tinygp
from jaxtyping import Array, Float

from ..data import check_array


class SquaredExponential(tinygp.kernels.Kernel):
    """``k(x, x') = a^2 exp(-|x - x'|^2 / (2 l^2))``: ``tinygp``'s ``ExpSquared`` of scale ``l``
    times ``a^2``, stored as ``log a`` and ``log l`` so that gradient steps keep both positive.

    Args:
        amplitude: ``a > 0`` (``k(0) = a^2``).
        length_scale: ``l > 0``.

    Raises:
        ValueError: a non-positive or non-finite parameter.

    Example:
        >>> import jax.numpy as jnp
        >>> k = SquaredExponential(amplitude=2.0, length_scale=1.0)
        >>> round(float(k.evaluate(jnp.array(0.0), jnp.array(1.0))), 4)  # 4 exp(-1/2)
        2.4261
    """

    log_amplitude: Float[Array, ""]
    log_length_scale: Float[Array, ""]

    def __init__(self, amplitude: float = 1.0, length_scale: float = 1.0):
        for name, value in (("amplitude", amplitude), ("length_scale", length_scale)):
            if not (np.ndim(value) == 0 and np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a positive finite scalar, got {value!r}")
        dtype = jnp.result_type(float)
        self.log_amplitude = jnp.log(jnp.asarray(amplitude, dtype))
        self.log_length_scale = jnp.log(jnp.asarray(length_scale, dtype))

    def evaluate(self, X1, X2) -> Array:
        base = tinygp.kernels.ExpSquared(scale=jnp.exp(self.log_length_scale))
        return jnp.exp(2 * self.log_amplitude) * base.evaluate(X1, X2)

    @classmethod
    def from_data(cls, x, y, *, length_fraction: float = 0.1) -> SquaredExponential:
        """Amplitude the standard deviation of ``y``; length scale ``length_fraction`` of the span
        of ``x`` (its largest coordinate range for vector inputs)."""
        x, y = np.asarray(check_array(x, "x")), np.asarray(check_array(y, "y"))
        span = float(np.max(np.ptp(x.reshape(len(x), -1), axis=0)))
        if not span > 0:
            raise ValueError("`x` must take at least two distinct values")
        return cls(float(max(np.std(y), 1e-6)), length_fraction * span)
