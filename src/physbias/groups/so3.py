"""The rotation group's Lie algebra so(3): the hat map and the exponential map (Rodrigues)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float


def hat(omega: Float[Array, 3]) -> Float[Array, "3 3"]:
    """The skew-symmetric matrix of ``omega`` (so(3)): ``hat(w) v = w x v``."""
    x, y, z = omega[0], omega[1], omega[2]
    zero = jnp.zeros_like(x)
    return jnp.stack([jnp.stack([zero, -z, y]), jnp.stack([z, zero, -x]), jnp.stack([-y, x, zero])])


def so3_exp(omega: Float[Array, 3]) -> Float[Array, "3 3"]:
    """Exponential map so(3) -> SO(3) by Rodrigues' formula.

    .. math:: \\exp(\\hat\\omega) = I + \\frac{\\sin\\theta}{\\theta}\\hat\\omega
              + \\frac{1-\\cos\\theta}{\\theta^2}\\hat\\omega^2, \\qquad \\theta = \\|\\omega\\|

    Taylor series below ``theta^2 < 1e-8`` keep value and gradient finite at ``omega = 0``
    (the "double where" trick). The result is orthogonal with determinant 1 up to rounding.
    """
    theta2 = jnp.dot(omega, omega)
    small = theta2 < 1e-8
    safe2 = jnp.where(small, jnp.ones_like(theta2), theta2)
    theta = jnp.sqrt(safe2)
    a = jnp.where(small, 1.0 - theta2 / 6.0, jnp.sin(theta) / theta)
    b = jnp.where(small, 0.5 - theta2 / 24.0, (1.0 - jnp.cos(theta)) / safe2)
    k = hat(omega)
    return jnp.eye(3, dtype=omega.dtype) + a * k + b * (k @ k)
