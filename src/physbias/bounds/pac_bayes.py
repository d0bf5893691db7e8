"""PAC-Bayes bounds on the error rate of a classifier from its training error and a KL divergence.

For a prior ``P`` fixed before seeing the ``n`` training examples and any posterior ``Q``, each bound
holds with probability at least ``1 - delta`` over the draw of the data. In a compression bound
(Lotfi et al. 2022) ``Q`` is a point mass on the quantised model and ``P`` a universal prior over
messages, so ``KL(Q || P) = ell * ln 2`` with ``ell`` the prefix-free message length in bits
(:mod:`physbias.bounds.coding`) plus any bits paid for choices made after seeing the data.

All functions work in float64 NumPy on Python scalars; an error rate ``e`` is a fraction in ``[0, 1]``.
They reproduce the formulas of the reference implementation (``pactl/bounds/get_pac_bounds.py`` of
``activatedgeek/tight-pac-bayes``); the optimisers over the free parameter differ in how they search
but reach the same minimum (to ``1e-8`` in the tests).

* :func:`catoni_bound_at`: Catoni's bound at a fixed ``lam`` (valid as it stands);
* :func:`catoni_bound`: the same minimised over ``lam`` as in the reference (``lam`` is chosen
  after seeing the data without paying for it, so this is optimistic);
* :func:`optimized_catoni_bound`: Lotfi et al.'s Catoni-type bound with a union bound over a
  geometric grid of ``lam`` (valid when minimised over the grid);
* :func:`mcallester_bound`: McAllester's square-root bound;
* :func:`pac_bayes_bounds` / :func:`error_bound`: the entry points (KL given in bits).

References:
    O. Catoni, "PAC-Bayesian supervised classification: the thermodynamics of statistical
    learning", IMS Lecture Notes 56, 2007 (Theorem 1.2.6).
    D. McAllester, "PAC-Bayesian model averaging", COLT 1999.
    S. Lotfi, M. Finzi, S. Kapoor, A. Potapczynski, M. Goldblum, A. G. Wilson, "PAC-Bayes
    compression bounds so tight that they can explain generalization", NeurIPS 2022 (Appendix).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import optimize

DEFAULT_DELTA = 0.05
"""Failure probability of every bound (``epsilon`` in the reference implementation)."""
DEFAULT_ALPHA = 1e-4
"""Grid ratio of the optimised bound: ``lam_k = (1 + alpha)^k`` (Lotfi et al. 2022)."""


def _check_error(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number (an error rate), got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"`{name}` must be an error rate in [0, 1], got {value!r}")
    return value


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"`n` must be a positive integer (number of training examples), got {n!r}")
    if n <= 0:
        raise ValueError(f"`n` must be a positive integer (number of training examples), got {n!r}")
    return int(n)


def _check_nonnegative(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"`{name}` must be finite and >= 0, got {value!r}")
    return value


def _check_open_unit(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a number in (0, 1), got {type(value).__name__}")
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must be in the open interval (0, 1), got {value!r}")
    return value


def _check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"`{name}` must be a positive number, got {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"`{name}` must be a finite positive number, got {value!r}")
    return value


def inverse_bernoulli_laplace(a: float, q: float) -> float:
    """``(1 - e^{-a q}) / (1 - e^{-a})``: Catoni's inverse of the Bernoulli log-Laplace transform.

    Computed with ``expm1`` for accuracy at small ``a``. Increasing in ``q``; equals ``q`` as
    ``a -> 0`` and 1 at ``q = 1``.
    """
    return float(np.expm1(-a * q) / np.expm1(-a))


def catoni_bound_at(train_error: float, kl: float, n: int, lam: float, delta: float = DEFAULT_DELTA) -> float:
    """Catoni's PAC-Bayes bound at a fixed inverse temperature ``lam`` (chosen before the data).

    .. math:: e \\le \\frac{1 - \\exp\\{-\\tfrac{\\lambda}{n} \\hat e
              - \\tfrac{1}{n}(\\mathrm{KL} + \\ln\\tfrac{1}{\\delta})\\}}{1 - e^{-\\lambda/n}}
              = \\Phi^{-1}_{\\lambda/n}\\Big(\\hat e + \\frac{\\mathrm{KL} + \\ln(1/\\delta)}{\\lambda}\\Big)

    Args:
        train_error: empirical error ``hat e`` in [0, 1].
        kl: ``KL(Q || P)`` in nats (>= 0).
        n: number of training examples (> 0).
        lam: inverse temperature ``lambda > 0``.
        delta: failure probability in (0, 1).

    Raises:
        ValueError/TypeError: an argument outside its domain.

    Example:
        >>> round(catoni_bound_at(0.1, 10.0, 1000, 100.0), 6)
        0.23889
    """
    e, kl, n = _check_error(train_error, "train_error"), _check_nonnegative(kl, "kl"), _check_n(n)
    lam, delta = _check_positive(lam, "lam"), _check_open_unit(delta, "delta")
    return inverse_bernoulli_laplace(lam / n, e + (kl + math.log(1.0 / delta)) / lam)


def _minimise(fn, low: float, high: float, points: int = 801) -> tuple[float, float]:
    """Minimum of a scalar function of one variable on ``[low, high]``: the best point of a grid,
    refined by bounded Brent between its neighbours (the grid guards against a local minimum)."""
    grid = np.linspace(low, high, points)
    values = np.array([fn(x) for x in grid])
    values = np.where(np.isfinite(values), values, np.inf)
    i = int(np.argmin(values))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, points - 1)]
    res = optimize.minimize_scalar(fn, bounds=(a, b), method="bounded", options={"xatol": 1e-12})
    if np.isfinite(res.fun) and res.fun <= values[i]:
        return float(res.fun), float(res.x)
    return float(values[i]), float(grid[i])


def catoni_bound(train_error: float, kl: float, n: int, delta: float = DEFAULT_DELTA) -> float:
    """Catoni's bound minimised over ``lam`` (:func:`catoni_bound_at`), as the reference does.

    ``min_lambda Phi^{-1}_{lambda/n}(hat e + (KL + ln(1/delta)) / lambda)`` over
    ``ln lambda`` in ``[-2, ln n + 12]``. Picking ``lambda`` after seeing the data is not paid
    for here, so the value is optimistic; :func:`optimized_catoni_bound` pays for it.

    Raises:
        ValueError/TypeError: an argument outside its domain.

    Example:
        >>> round(catoni_bound(0.1, 10.0, 1000), 6)
        0.155164
    """
    e, kl, n = _check_error(train_error, "train_error"), _check_nonnegative(kl, "kl"), _check_n(n)
    delta = _check_open_unit(delta, "delta")
    log_inv_delta = math.log(1.0 / delta)

    def bound(log_lam):
        lam = math.exp(log_lam)
        return inverse_bernoulli_laplace(lam / n, e + (kl + log_inv_delta) / lam)

    return _minimise(bound, -2.0, math.log(n) + 12.0)[0]


def optimized_catoni_objective(
    g: float,
    train_error: float,
    kl: float,
    n: int,
    alpha: float = DEFAULT_ALPHA,
    delta: float = DEFAULT_DELTA,
) -> float:
    """The objective of :func:`optimized_catoni_bound` at ``g = ln lambda >= 0``.

    .. math:: \\Phi^{-1}_{e^g/n}\\Big(\\hat e + (1 + \\alpha) e^{-g}\\big(\\mathrm{KL}
              + \\ln\\tfrac{1}{\\delta} + 2 \\ln(2 + g / \\ln(1 + \\alpha))\\big)\\Big)

    with ``Phi^{-1}_a(q) = (1 - e^{-a q}) / (1 - e^{-a})`` (:func:`inverse_bernoulli_laplace`).
    """
    exp_g = math.exp(g)
    penalty = kl + math.log(1.0 / delta) + 2.0 * math.log(2.0 + g / math.log1p(alpha))
    return inverse_bernoulli_laplace(exp_g / n, train_error + (1.0 + alpha) / exp_g * penalty)


def optimized_catoni_bound(
    train_error: float, kl: float, n: int, alpha: float = DEFAULT_ALPHA, delta: float = DEFAULT_DELTA
) -> float:
    """Lotfi et al.'s Catoni-type bound, minimised over ``lambda`` with the union bound paid.

    Catoni's bound (:func:`catoni_bound_at`) holds at each ``lambda_k = (1 + alpha)^k``,
    ``k = 0, 1, ...``, with failure probability ``delta_k = delta / (k + 2)^2`` (these sum to less
    than ``delta``). For any ``lambda = e^g >= 1`` the grid point ``lambda_k <= lambda`` with
    ``k = floor(g / ln(1 + alpha))`` loses at most a factor ``1 + alpha``, so with probability
    ``>= 1 - delta`` simultaneously for all ``g >= 0``:

    .. math:: e \\le \\min_{g \\ge 0} \\Phi^{-1}_{e^g/n}\\Big(\\hat e + (1 + \\alpha) e^{-g}
              \\big(\\mathrm{KL} + \\ln\\tfrac{1}{\\delta} + 2\\ln(2 + g / \\ln(1 + \\alpha))\\big)\\Big)

    The minimum is searched over ``g`` in ``[0, ln n + 12]`` (beyond it ``Phi^{-1}`` is 1 to
    float precision).

    Args:
        train_error: empirical error ``hat e`` in [0, 1].
        kl: ``KL(Q || P)`` in nats (>= 0).
        n: number of training examples (> 0).
        alpha: grid ratio (> 0); ``1e-4`` as in the paper.
        delta: failure probability in (0, 1).

    Raises:
        ValueError/TypeError: an argument outside its domain.

    Example:
        >>> round(optimized_catoni_bound(0.1, 10.0, 1000), 6)
        0.197626
    """
    e, kl, n = _check_error(train_error, "train_error"), _check_nonnegative(kl, "kl"), _check_n(n)
    alpha, delta = _check_positive(alpha, "alpha"), _check_open_unit(delta, "delta")
    objective = lambda g: optimized_catoni_objective(g, e, kl, n, alpha, delta)
    return _minimise(objective, 0.0, math.log(n) + 12.0)[0]


def mcallester_bound(train_error: float, kl: float, n: int, delta: float = DEFAULT_DELTA) -> float:
    """McAllester's PAC-Bayes bound, in the form of the reference implementation.

    .. math:: e \\le \\hat e + \\sqrt{\\frac{\\mathrm{KL} + \\ln(1/\\delta) + \\ln n}{2n - 1}}

    Raises:
        ValueError/TypeError: an argument outside its domain.

    Example:
        >>> round(mcallester_bound(0.1, 10.0, 1000), 6)
        0.199783
    """
    e, kl, n = _check_error(train_error, "train_error"), _check_nonnegative(kl, "kl"), _check_n(n)
    delta = _check_open_unit(delta, "delta")
    return e + math.sqrt((kl + math.log(1.0 / delta) + math.log(n)) / (2.0 * n - 1.0))


@dataclasses.dataclass(frozen=True)
class PacBayesBounds:
    """Every bound for one (train error, n, KL).

    Attributes:
        kl_nats: ``KL = kl_bits * ln 2``.
        optimized: :func:`optimized_catoni_bound` (Lotfi et al. 2022).
        catoni: :func:`catoni_bound` (``lambda`` minimised without a union bound).
        mcallester: :func:`mcallester_bound`.
        error_bound: the reference's choice: ``optimized`` when the train error is at most 1/2,
            else ``catoni``.
    """

    kl_nats: float
    optimized: float
    catoni: float
    mcallester: float
    error_bound: float


def pac_bayes_bounds(
    train_error: float,
    n: int,
    kl_bits: float,
    delta: float = DEFAULT_DELTA,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> PacBayesBounds:
    """All PAC-Bayes bounds for a compressed model: ``KL = kl_bits * ln 2`` nats.

    ``kl_bits`` is the prefix-free message length of the model plus the bits of any choice made
    with the data (``log2`` of the number of configurations searched, a union bound).

    Raises:
        ValueError/TypeError: an argument outside its domain (error rate outside [0, 1],
            non-positive ``n``, negative or non-finite ``kl_bits``, ``delta`` not in (0, 1)).

    Example:
        >>> b = pac_bayes_bounds(0.05, 1500, 800.0)
        >>> 0 < b.optimized < 1 and b.optimized == b.error_bound
        True
    """
    e, n = _check_error(train_error, "train_error"), _check_n(n)
    kl = _check_nonnegative(kl_bits, "kl_bits") * math.log(2.0)
    delta, alpha = _check_open_unit(delta, "delta"), _check_positive(alpha, "alpha")
    optimized = optimized_catoni_bound(e, kl, n, alpha, delta)
    catoni = catoni_bound(e, kl, n, delta)
    return PacBayesBounds(
        kl_nats=kl,
        optimized=optimized,
        catoni=catoni,
        mcallester=mcallester_bound(e, kl, n, delta),
        error_bound=optimized if e <= 0.5 else catoni,
    )


def error_bound(train_error: float, n: int, kl_bits: float, delta: float = DEFAULT_DELTA) -> float:
    """The error bound of a compressed model: :attr:`PacBayesBounds.error_bound`.

    Example:
        >>> round(error_bound(0.05, 1500, 800.0), 4)
        0.4358
    """
    return pac_bayes_bounds(train_error, n, kl_bits, delta).error_bound


__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DELTA",
    "PacBayesBounds",
    "catoni_bound",
    "catoni_bound_at",
    "error_bound",
    "inverse_bernoulli_laplace",
    "mcallester_bound",
    "optimized_catoni_bound",
    "optimized_catoni_objective",
    "pac_bayes_bounds",
]
