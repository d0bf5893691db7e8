"""Exact solutions to test PDE solvers against: viscous Burgers by the Cole-Hopf transform, and
harmonic functions for the Laplace equation on the disk and the square.

Burgers (Raissi et al. 2019's benchmark): ``u_t + u u_x = nu u_xx`` on ``x in [-1, 1]``,
``u(0, x) = -sin(pi x)``, ``u(t, +-1) = 0``. Cole-Hopf (Basdevant et al. 1986) turns it into the
heat equation; with ``eta = sqrt(4 nu t) z``,

.. math:: u(t, x) = -\\frac{\\int \\sin(\\pi(x - \\eta)) f(x - \\eta) e^{-z^2} dz}
                         {\\int f(x - \\eta) e^{-z^2} dz}, \\qquad
          f(y) = \\exp\\Big(-\\frac{\\cos \\pi y}{2 \\pi \\nu}\\Big),

both integrals by Gauss-Hermite quadrature. The exponent of ``f`` spans ``+-1/(2 pi nu)`` (+-50 at
``nu = 0.01/pi``), so the weights are formed in log space with their maximum subtracted; ``t = 0``
is the initial condition itself.
"""

from __future__ import annotations

import math

import numpy as np

RAISSI_VISCOSITY = 0.01 / math.pi
"""``nu`` of the Burgers benchmark (Raissi, Perdikaris & Karniadakis 2019)."""


def _finite(name: str, value) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0:
        raise ValueError(f"`{name}` is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` must be finite (no NaN or inf)")
    return a


def burgers_cole_hopf(x, t, viscosity: float = RAISSI_VISCOSITY, nodes: int = 100) -> np.ndarray:
    """The exact viscous Burgers solution ``u(t, x)`` for ``u(0, x) = -sin(pi x)`` (float64).

    Args:
        x, t: positions and times (broadcast against each other; ``t >= 0``).
        viscosity: ``nu > 0``.
        nodes: Gauss-Hermite nodes, in ``[2, 399]`` (NumPy's ``hermgauss`` breaks down at 400).
            100 nodes reproduce Raissi's reference grid to 3e-12.

    Returns:
        ``u`` with the broadcast shape of ``x`` and ``t``.

    Example:
        >>> float(burgers_cole_hopf(0.5, 0.0))
        -1.0
    """
    x, t = _finite("x", x), _finite("t", t)
    if not (isinstance(viscosity, (int, float)) and math.isfinite(viscosity) and viscosity > 0):
        raise ValueError(f"`viscosity` must be a positive number, got {viscosity!r}")
    if not isinstance(nodes, int) or not 2 <= nodes < 400:
        raise ValueError(f"`nodes` must be an integer in [2, 399], got {nodes!r}")
    if np.any(t < 0):
        raise ValueError("`t` must be >= 0")
    x, t = np.broadcast_arrays(x, t)
    z, w = np.polynomial.hermite.hermgauss(nodes)
    safe_t = np.where(t > 0, t, 1.0)
    y = x[..., None] - np.sqrt(4 * viscosity * safe_t)[..., None] * z  # x - eta, (..., nodes)
    log_weight = np.log(w) - np.cos(np.pi * y) / (2 * np.pi * viscosity)
    weight = np.exp(log_weight - np.max(log_weight, axis=-1, keepdims=True))
    u = -np.sum(np.sin(np.pi * y) * weight, axis=-1) / np.sum(weight, axis=-1)
    return np.where(t > 0, u, -np.sin(np.pi * x))


def laplace_disk_solution(x, y, order: int = 1) -> np.ndarray:
    """``u = r^k cos(k theta) = Re((x + i y)^k)``: harmonic, and ``cos(k theta)`` on the unit circle
    (``k = 1`` is DeepXDE's ``u = r cos theta``)."""
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"`order` must be a positive integer, got {order!r}")
    x, y = _finite("x", x), _finite("y", y)
    return np.real((x + 1j * y) ** order)


def laplace_square_solution(x, y) -> np.ndarray:
    """``u = sin(pi x) sinh(pi y) / sinh(pi)`` on ``[0, 1]^2``: harmonic, ``u = sin(pi x)`` on the
    top side ``y = 1`` and 0 on the other three."""
    x, y = _finite("x", x), _finite("y", y)
    return np.sin(np.pi * x) * np.sinh(np.pi * y) / np.sinh(np.pi)


def raissi_grid() -> tuple[np.ndarray, np.ndarray]:
    """The ``x`` (256 points on ``[-1, 1]``) and ``t`` (100 points on ``[0, 0.99]``) axes of Raissi
    et al.'s ``burgers_shock.mat``."""
    return np.linspace(-1, 1, 256), np.linspace(0, 0.99, 100)


def raissi_condition_points(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` of the 456 initial (256 at ``t = 0``, ``u = -sin(pi x)``) and wall (100 per side,
    ``u = 0``) points of Raissi's grid, without replacement, as their data set ``N_u`` is drawn.

    Returns ``(points, values)``: float32 ``(n, 2)`` columns ``(x, t)``, and ``(n,)``.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    x, t = raissi_grid()
    points = np.concatenate(
        [
            np.stack([x, np.zeros_like(x)], 1),
            np.stack([-np.ones_like(t), t], 1),
            np.stack([np.ones_like(t), t], 1),
        ]
    )
    values = np.where(points[:, 1] == 0, -np.sin(np.pi * points[:, 0]), 0.0)
    idx = rng.choice(len(points), size=min(n, len(points)), replace=False)
    return points[idx].astype(np.float32), values[idx].astype(np.float32)
