"""Exact Ising results to test samplers against.

- 1-D periodic chain of ``L`` spins (transfer matrix, Ising 1925):
  ``Z = lambda_+^L + lambda_-^L`` with
  ``lambda_+- = e^{bJ} cosh(bh) +- sqrt(e^{2bJ} sinh^2(bh) + e^{-2bJ})``; ``u = -d ln Z / d b / L`` and
  ``<m> = d ln Z / d(bh) / L`` (by automatic differentiation, float64).
- 2-D square lattice, ``J = 1``, ``h = 0``, infinite size (Onsager 1944; Yang 1952):
  ``T_c = 2 / ln(1 + sqrt 2)``; ``m = (1 - sinh(2/T)^{-4})^{1/8}`` below ``T_c``, 0 above;
  ``u = -coth(2b) [1 + (2/pi) (2 tanh^2(2b) - 1) K(k)]`` with ``k = 2 sinh(2b) / cosh^2(2b)`` and
  ``K`` the complete elliptic integral of the first kind.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import ellipk

ONSAGER_CRITICAL_TEMPERATURE = 2.0 / math.log(1.0 + math.sqrt(2.0))
"""``T_c = 2 / ln(1 + sqrt 2) = 2.26918...`` (``J = k_B = 1``)."""


def _temperatures(temperature) -> np.ndarray:
    t = np.asarray(temperature, np.float64)
    if t.size == 0 or not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"`temperature` must be positive and finite, got {temperature!r}")
    return t


def onsager_magnetisation(temperature) -> np.ndarray:
    """The spontaneous magnetisation per spin of the infinite 2-D lattice (0 above ``T_c``)."""
    t = _temperatures(temperature)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = (1.0 - np.sinh(2.0 / t) ** -4.0) ** 0.125
    return np.where(t < ONSAGER_CRITICAL_TEMPERATURE, np.nan_to_num(m), 0.0)


def onsager_energy(temperature) -> np.ndarray:
    """The energy per spin ``u(T)`` of the infinite 2-D lattice."""
    t = _temperatures(temperature)
    b = 1.0 / t
    k = 2.0 * np.sinh(2 * b) / np.cosh(2 * b) ** 2
    with np.errstate(invalid="ignore"):
        term = (2 * np.tanh(2 * b) ** 2 - 1) * ellipk(np.minimum(k**2, 1.0))
    # At T_c, K diverges logarithmically while its factor vanishes linearly: the product is 0.
    term = np.where(np.isfinite(term), term, 0.0)
    return -1.0 / np.tanh(2 * b) * (1.0 + 2.0 / np.pi * term)


def ising_chain_exact(size: int, temperature: float, coupling: float = 1.0, field: float = 0.0) -> dict:
    """``{"energy": u, "magnetisation": <m>}`` per spin of the periodic chain of ``size`` spins."""
    if not isinstance(size, int) or size < 2:
        raise ValueError(f"`size` must be an integer >= 2, got {size!r}")
    _temperatures(temperature)

    def log_z(beta, bh):
        a = beta * coupling
        root = jnp.sqrt(jnp.exp(2 * a) * jnp.sinh(bh) ** 2 + jnp.exp(-2 * a))
        lam_plus, lam_minus = jnp.exp(a) * jnp.cosh(bh) + root, jnp.exp(a) * jnp.cosh(bh) - root
        # ln(l+^L + l-^L) = L ln l+ + ln(1 + (l-/l+)^L): no overflow at low temperature.
        return size * jnp.log(lam_plus) + jnp.log1p((lam_minus / lam_plus) ** size)

    with jax.enable_x64(True):
        beta = jnp.asarray(1.0 / temperature, jnp.float64)
        bh = beta * field
        # E = -(d/d beta) ln Z at fixed h (bh moves with beta).
        d_beta = jax.grad(lambda b: log_z(b, b * field))(beta)
        d_bh = jax.grad(lambda x: log_z(beta, x))(bh)
        return {"energy": float(-d_beta / size), "magnetisation": float(d_bh / size)}
