"""The spectral-mixture kernel (Wilson & Adams 2013) and its initialisation from the periodogram.

A stationary kernel is the Fourier transform of its spectral density (Bochner). Modelling the
density as a symmetrised mixture of ``Q`` Gaussians with means ``mu_q`` and diagonal covariances
``v_q`` (in cycles per unit of ``x``) gives, for ``tau = x - x'`` in ``D`` dimensions,

    k(tau) = sum_q w_q exp(-2 pi^2 sum_p tau_p^2 v_qp) cos(2 pi sum_p mu_qp tau_p).

In one dimension this is ``sum_q w_q exp(-2 pi^2 tau^2 v_q) cos(2 pi tau mu_q)``. In several, the
cosine takes the dot product ``mu_q . tau``: the form printed as eq. (12) of the paper, a product
of one cosine per dimension, is a typo that the author corrected (A. G. Wilson, "Correction to
spectral mixture (SM) kernel derivation for multidimensional inputs", 2015); the product form is
the transform of ``2^D`` mirrored Gaussians per component instead of two.

Reference: A. G. Wilson and R. P. Adams, "Gaussian process kernels for pattern discovery and
extrapolation", ICML 2013.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import tinygp
from jaxtyping import Array, Float

from ..data import check_array


def _positive(value, name: str, shape_hint: str) -> Array:
    arr = jnp.asarray(value)
    if not jnp.issubdtype(arr.dtype, jnp.floating):
        arr = arr.astype(jnp.result_type(float))
    if not isinstance(arr, jax.core.Tracer):
        values = np.asarray(arr)
        if values.size == 0:
            raise ValueError(f"`{name}` is empty; expected shape {shape_hint} with at least one component")
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValueError(f"`{name}` must be positive and finite, got {values.tolist()}")
    return arr


class SpectralMixture(tinygp.kernels.Kernel):
    """The spectral-mixture kernel, a ``tinygp`` kernel with log-parameters (positive by design).

    ``k(tau) = sum_q w_q exp(-2 pi^2 sum_p tau_p^2 v_qp) cos(2 pi sum_p mu_qp tau_p)``.

    Args:
        weights: ``w_q > 0``, shape ``(Q,)``; ``k(0) = sum_q w_q``.
        frequencies: spectral means ``mu_q > 0`` (cycles per unit of ``x``), shape ``(Q,)`` for
            scalar inputs or ``(Q, D)`` for inputs of dimension ``D``.
        variances: spectral variances ``v_q > 0``, the shape of ``frequencies``; a component's
            envelope is a squared exponential of length scale ``1 / (2 pi sqrt(v_q))``.

    Inputs are scalars (``X`` of shape ``(n,)``) when ``frequencies`` is ``(Q,)`` and vectors
    (``X`` of shape ``(n, D)``) otherwise.

    Raises:
        ValueError: empty, non-positive or non-finite parameters, or shapes that disagree.

    Example:
        >>> import jax.numpy as jnp
        >>> k = SpectralMixture(weights=[1.0, 0.5], frequencies=[1.0, 0.25], variances=[0.01, 0.02])
        >>> float(k.evaluate(jnp.array(0.3), jnp.array(0.3)))  # k(0) = sum of the weights
        1.5
    """

    log_weights: Float[Array, " Q"]
    log_frequencies: Float[Array, "Q D"]
    log_variances: Float[Array, "Q D"]
    scalar_input: bool = eqx.field(static=True)

    def __init__(self, weights, frequencies, variances):
        w = _positive(weights, "weights", "(Q,)")
        mu = _positive(frequencies, "frequencies", "(Q,) or (Q, D)")
        v = _positive(variances, "variances", "the shape of `frequencies`")
        if w.ndim != 1:
            raise ValueError(f"`weights` must have shape (Q,), got {w.shape}")
        if mu.ndim not in (1, 2) or mu.shape[0] != w.shape[0]:
            raise ValueError(
                f"`frequencies` must have shape (Q,) or (Q, D) with Q = {w.shape[0]} (from `weights`), "
                f"got {mu.shape}"
            )
        if v.shape != mu.shape:
            raise ValueError(f"`variances` must have the shape of `frequencies` {mu.shape}, got {v.shape}")
        self.scalar_input = mu.ndim == 1
        self.log_weights = jnp.log(w)
        self.log_frequencies = jnp.log(mu.reshape(mu.shape[0], -1))
        self.log_variances = jnp.log(v.reshape(v.shape[0], -1))

    @property
    def weights(self) -> Array:
        return jnp.exp(self.log_weights)

    @property
    def frequencies(self) -> Array:
        """``(Q, D)`` spectral means (also for scalar inputs, where ``D = 1``)."""
        return jnp.exp(self.log_frequencies)

    @property
    def variances(self) -> Array:
        """``(Q, D)`` spectral variances."""
        return jnp.exp(self.log_variances)

    @property
    def num_components(self) -> int:
        return self.log_weights.shape[0]

    @property
    def input_dim(self) -> int:
        return self.log_frequencies.shape[1]

    def evaluate(self, X1, X2) -> Array:
        return spectral_mixture_value(
            self.log_weights, self.log_frequencies, self.log_variances, X1 - X2, self.scalar_input
        )

    def spectral_density(self, s) -> Array:
        """The symmetrised Gaussian mixture ``S(s) = sum_q w_q [N(s; mu_q, v_q) + N(s; -mu_q, v_q)] / 2``
        at one frequency ``s`` (a scalar, or shape ``(D,)``), whose Fourier transform is ``k``."""
        s = jnp.reshape(jnp.asarray(s, self.log_weights.dtype), (-1,))
        mu, v = self.frequencies, self.variances
        norm = jnp.prod(2 * jnp.pi * v, axis=1) ** -0.5
        plus = jnp.exp(-0.5 * jnp.sum((s[None, :] - mu) ** 2 / v, axis=1))
        minus = jnp.exp(-0.5 * jnp.sum((s[None, :] + mu) ** 2 / v, axis=1))
        return jnp.sum(self.weights * norm * 0.5 * (plus + minus))


def spectral_mixture_value(log_weights, log_frequencies, log_variances, tau, scalar_input: bool) -> Array:
    """``k(tau)`` of the spectral mixture from its log-parameters ``(Q,)``, ``(Q, D)``, ``(Q, D)``
    at one lag ``tau`` (a scalar when ``scalar_input``, else shape ``(D,)``)."""
    tau = jnp.atleast_1d(tau)
    dim = log_frequencies.shape[1]
    if tau.shape != (dim,):
        expected = "scalars, X of shape (n,)" if scalar_input else f"vectors, X of shape (n, {dim})"
        raise ValueError(f"SpectralMixture: inputs must be {expected}; got an input of shape {tau.shape}")
    envelope = jnp.exp(-2 * jnp.pi**2 * (jnp.exp(log_variances) @ jnp.square(tau)))
    cosine = jnp.cos(2 * jnp.pi * (jnp.exp(log_frequencies) @ tau))
    return jnp.sum(jnp.exp(log_weights) * envelope * cosine)


def periodogram(x, y, frequencies) -> np.ndarray:
    """The (non-uniform) periodogram ``P(f) = |sum_j y_j exp(-2 pi i f x_j)|^2 / n`` of samples
    ``y`` at times ``x`` ``(n,)``, at each of ``frequencies`` ``(K,)`` (NumPy, float64); ``y`` of
    shape ``(R, n)`` gives one periodogram per series, ``(R, K)``.

    For white noise of variance ``s^2`` its expectation is ``s^2`` at every frequency; a sinusoid of
    amplitude ``a`` adds a peak of height about ``n a^2 / 4`` at its frequency.
    """
    x, f = (np.asarray(a, dtype=np.float64).reshape(-1) for a in (x, frequencies))
    y = np.asarray(y, dtype=np.float64)
    phase = 2 * np.pi * f[:, None] * x[None, :]
    power = (np.square(y @ np.cos(phase).T) + np.square(y @ np.sin(phase).T)) / len(x)
    return power


def _peaks_1d(x: np.ndarray, y: np.ndarray, num_components: int, grid_size: int):
    """Means, variances and relative weights of ``num_components`` spectral peaks of ``y(x)``
    (``y`` of shape ``(R, n)``: the periodograms of the ``R`` series are averaged)."""
    order = np.argsort(x)
    x, y = x[order], y[:, order] - np.mean(y, axis=1, keepdims=True)
    span = float(x[-1] - x[0])
    steps = np.diff(x)
    step = float(np.median(steps[steps > 0]))
    f = np.linspace(0.25 / span, 0.5 / step, grid_size)  # up to the Nyquist frequency of the median step
    power = np.mean(periodogram(x, y, f), axis=0)
    power = np.clip(power - np.median(power), 0.0, None)  # the median is the white-noise floor
    resolution = 1.0 / span  # no peak of the periodogram is narrower than this
    is_peak = np.r_[power[0] > power[1], (power[1:-1] > power[:-2]) & (power[1:-1] >= power[2:]), False]
    chosen: list[int] = []
    for i in np.flatnonzero(is_peak)[np.argsort(power[is_peak])[::-1]]:
        # Side lobes of a chosen peak lie within a few resolutions of it: skip them.
        if power[i] > 0 and all(abs(f[i] - f[j]) > 2 * resolution for j in chosen):
            chosen.append(int(i))
        if len(chosen) == num_components:
            break
    means, variances, masses = [], [], []
    for i in chosen:
        half = power[i] / 2
        lo, hi = i, i
        while lo > 0 and power[lo - 1] > half:
            lo -= 1
        while hi < len(f) - 1 and power[hi + 1] > half:
            hi += 1
        fwhm = f[hi] - f[lo] + (f[1] - f[0])
        means.append(f[i])
        variances.append(max((fwhm / 2.355) ** 2, (0.25 * resolution) ** 2))  # FWHM of a Gaussian
        masses.append(power[i] * fwhm)
    while len(means) < num_components:  # fewer peaks than components: spread the rest, light
        means.append(f[0] + (len(means) + 1) * (f[-1] - f[0]) / (num_components + 1))
        variances.append(resolution**2)
        masses.append(1e-3 * (max(masses) if masses else 1.0))
    return np.asarray(means), np.asarray(variances), np.asarray(masses) / np.sum(masses)


def spectral_mixture_from_periodogram(x, y, num_components: int, *, grid_size: int = 2000) -> SpectralMixture:
    """A :class:`SpectralMixture` with ``num_components`` components initialised from the data.

    The periodogram of ``y`` (mean removed) on ``grid_size`` frequencies from ``1 / (4 span)`` to
    the Nyquist frequency ``1 / (2 median spacing)`` has its white-noise floor (its median)
    subtracted; its ``num_components`` highest local maxima at least two resolutions ``1/span``
    apart become the means ``mu_q`` (light band-spread components fill in when there are fewer
    peaks); a peak's full width at half maximum gives its variance ``v_q = (FWHM / 2.355)^2``
    (at least ``(1/(4 span))^2``), and its height times width its share of the weights, which sum
    to the sample variance ``var(y) = k(0)``. For inputs of dimension ``D`` this is
    done on each coordinate separately (the ``q``-th peak of every coordinate forms component
    ``q``), a heuristic for data that are not separable.

    Args:
        x: inputs ``(n,)`` or ``(n, D)``.
        y: targets ``(n,)``, or ``(R, n)`` series at the same inputs (their periodograms are
            averaged).
        num_components: ``Q > 0``.
        grid_size: frequencies of the periodogram (> 1).

    Raises:
        ValueError: non-finite or mismatched data, fewer than 3 points, ``num_components`` or
            ``grid_size`` not a positive integer.
    """
    if (
        not isinstance(num_components, (int, np.integer))
        or isinstance(num_components, bool)
        or num_components < 1
    ):
        raise ValueError(f"`num_components` must be a positive integer, got {num_components!r}")
    if not isinstance(grid_size, (int, np.integer)) or grid_size < 2:
        raise ValueError(f"`grid_size` must be an integer >= 2, got {grid_size!r}")
    x = np.asarray(check_array(x, "x"), dtype=np.float64)
    y = np.asarray(check_array(y, "y"), dtype=np.float64)
    if y.ndim not in (1, 2) or x.ndim not in (1, 2) or x.shape[0] != y.shape[-1]:
        raise ValueError(
            f"`x` must be (n,) or (n, D) and `y` (n,) or (R, n) with the same n; got {x.shape} and {y.shape}"
        )
    if x.shape[0] < 3:
        raise ValueError(
            f"at least 3 data points are needed to initialise from the periodogram, got {x.shape[0]}"
        )
    y = y.reshape(-1, x.shape[0])
    columns = x[:, None] if x.ndim == 1 else x
    if np.any(np.ptp(columns, axis=0) <= 0):
        raise ValueError("every input coordinate must take at least two distinct values")
    means, variances, shares = zip(
        *(_peaks_1d(columns[:, p], y, num_components, grid_size) for p in range(columns.shape[1])),
        strict=True,
    )
    share = np.mean(np.stack(shares), axis=0)
    variance = float(np.mean(np.var(y, axis=1)))
    weights = variance * share / share.sum()
    dtype = jnp.result_type(float)
    mu, v = np.stack(means, axis=1), np.stack(variances, axis=1)
    if x.ndim == 1:
        mu, v = mu[:, 0], v[:, 0]
    return SpectralMixture(
        jnp.asarray(np.maximum(weights, 1e-6 * max(variance, 1e-12)), dtype),
        jnp.asarray(mu, dtype),
        jnp.asarray(v, dtype),
    )
