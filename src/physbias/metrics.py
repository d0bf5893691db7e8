"""Evaluation functions: pure, usable on any model."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .bias import as_symmetry
from .data import check_array, require_same_shape
from .dynamics import RK4, rollout
from .groups.measure import relative_equivariance_error


def rmse(pred: Array, target: Array) -> float:
    """Root-mean-square error ``sqrt(mean ||pred - target||^2)`` (summed over output entries)."""
    pred, target = np.asarray(pred), np.asarray(target)
    require_same_shape(pred, target, "rmse")
    diff = np.reshape(pred - target, (len(pred), -1))
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=-1))))


def accuracy(logits: Array, labels: Array) -> float:
    """Fraction of rows of ``logits`` ``(N, K)`` whose largest entry is at ``labels`` ``(N,)``."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise ValueError(
            f"accuracy needs logits (N, K) and labels (N,), N > 0; got {logits.shape} and {labels.shape}"
        )
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def gaussian_nll(mean: Array, variance: Array, target: Array) -> float:
    """Mean negative log density of ``target`` under ``N(mean, variance)`` (elementwise)."""
    require_same_shape(mean, target, "gaussian_nll (mean)")
    require_same_shape(variance, target, "gaussian_nll (variance)")
    mean, variance, target = (np.asarray(a, dtype=float) for a in (mean, variance, target))
    return float(np.mean(0.5 * np.log(2 * np.pi * variance) + 0.5 * (target - mean) ** 2 / variance))


def rank_correlation(a, b) -> float:
    """Spearman's rank correlation of two equal-length 1-D sequences (ties get average ranks)."""
    import scipy.stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape or a.size < 2:
        raise ValueError(
            f"rank_correlation needs two 1-D sequences of equal length >= 2, got {a.shape} and {b.shape}"
        )
    return float(scipy.stats.spearmanr(a, b).statistic)


def relative_rmse(pred: Array, target: Array) -> float:
    """``rmse(pred, target) / rms(target)``: scale-free, comparable across data ranges."""
    t = np.reshape(np.asarray(target), (len(target), -1))
    return rmse(pred, target) / float(np.sqrt(np.mean(np.sum(t**2, axis=-1))))


def equivariance_error(
    model, symmetry, inputs: Array, *, key: PRNGKeyArray | None = None, n_elements: int = 8
) -> float:
    """How far ``model`` is from equivariant under ``symmetry``: the worst over group elements of

    .. math:: \\frac{\\|F(g \\cdot X) - \\rho(g) F(X)\\|_F}{\\|F(g \\cdot X)\\|_F + \\|\\rho(g) F(X)\\|_F}

    over the batch ``X = inputs`` ``(N, *in_shape)`` (:func:`physbias.groups.relative_equivariance_error`,
    the one normalisation used throughout physbias; 0 is exact). A finite symmetry is checked at
    every element (each applied to the whole batch); a continuous one at ``n_elements`` draws from
    ``key``, each giving every example its own random element.

    ``symmetry`` is anything :func:`physbias.bias.as_symmetry` accepts (a symmetry, a
    ``MatrixSymmetry``, a lattice group or ``"p4"``/``"p4m"``).
    """
    symmetry = as_symmetry(symmetry, "equivariance_error")
    inputs = check_array(inputs, "inputs")  # non-empty, finite
    n = inputs.shape[0]
    # Each example goes through the same compiled single-example kernel (lax.map, not vmap):
    # a batched matmul may round a row differently depending on its position in the batch, and
    # the metric must measure the function's violation, not the batching kernel's.
    evaluate = jax.jit(lambda xs: jax.lax.map(model, xs))
    fx = evaluate(inputs)

    def error(g):  # g batched over examples
        left = evaluate(jax.vmap(symmetry.act_input)(g, inputs))
        return relative_equivariance_error(left, jax.vmap(symmetry.act_output)(g, fx))

    if symmetry.is_finite:
        elements = symmetry.elements()

        def element(i):  # the i-th element, repeated for every example
            return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a[i], (n, *a.shape[1:])), elements)

        return max(error(element(i)) for i in range(symmetry.order))
    if key is None:
        raise ValueError("equivariance_error: a continuous symmetry needs `key` to sample elements")
    return max(error(symmetry.sample_batch(k, n)) for k in jax.random.split(key, n_elements))


def outputs_under_symmetry(model, symmetry, inputs: Array) -> Array:
    """``model`` on every transformed batch of a finite symmetry: ``(|G|, N, *out_shape)``, row
    ``g`` holding ``F(g . X)`` (row 0 the identity)."""
    symmetry = as_symmetry(symmetry, "outputs_under_symmetry")
    if not symmetry.is_finite:
        raise ValueError(f"outputs_under_symmetry needs a finite symmetry; {symmetry!r} is continuous")
    act = jax.vmap(symmetry.act_input, in_axes=(None, 0))
    return jax.jit(jax.vmap(lambda g: jax.vmap(model)(act(g, inputs))))(symmetry.elements())


def oddness_error(model, inputs: Array) -> float:
    """``max_i |f(x_i) + f(-x_i)|``: zero for an odd function."""
    f = jax.vmap(model)
    return float(jnp.max(jnp.abs(f(inputs) + f(-inputs))))


def orthogonality_error(rotations: Array) -> Array:
    """``||R^T R - I||_F`` for each matrix of a stack of shape ``(..., 3, 3)``."""
    r = jnp.asarray(rotations)
    eye = jnp.broadcast_to(jnp.eye(r.shape[-1], dtype=r.dtype), r.shape)
    return jnp.linalg.norm(jnp.swapaxes(r, -1, -2) @ r - eye, axis=(-2, -1))


def project_to_rotation(matrices: Array) -> Array:
    """Nearest rotation (Frobenius) to each ``(..., 3, 3)`` matrix: ``U diag(1, 1, det(U V^T)) V^T``."""
    u, _, vt = jnp.linalg.svd(matrices)
    d = jnp.sign(jnp.linalg.det(u @ vt))
    u = u.at[..., :, -1].multiply(d[..., None])
    return u @ vt


def rotation_angle_error(pred: Array, target: Array) -> Array:
    """Geodesic angle (radians) between rotations: ``arccos((tr(R_true^T R_pred) - 1) / 2)``.

    For a matrix that is not a rotation the trace is clipped to ``[-1, 3]`` first.
    """
    tr = jnp.trace(jnp.swapaxes(target, -1, -2) @ pred, axis1=-2, axis2=-1)
    return jnp.arccos(jnp.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def relative_error(pred: Array, true: Array) -> Array:
    """Per-step relative error ``|z_hat - z| / (|z_hat| + |z|)`` over the last axis (seed 004's
    rollout metric; bounded in ``[0, 1]``). Shapes ``(..., T, d) -> (..., T)``."""
    pred, true = jnp.asarray(pred), jnp.asarray(true)
    require_same_shape(pred, true, "relative_error")
    num = jnp.linalg.norm(pred - true, axis=-1)
    den = jnp.linalg.norm(pred, axis=-1) + jnp.linalg.norm(true, axis=-1)
    return num / jnp.where(den > 0, den, 1.0)


def geometric_mean(values: Array, axis: int = -1) -> Array:
    """``exp(mean(log v))`` along ``axis`` (zeros are floored at 1e-30)."""
    return jnp.exp(jnp.mean(jnp.log(jnp.maximum(jnp.asarray(values), 1e-30)), axis=axis))


def geometric_mean_relative_error(pred: Array, true: Array) -> Array:
    """Geometric mean over time of :func:`relative_error`: ``(..., T, d) -> (...)``."""
    return geometric_mean(relative_error(pred, true), axis=-1)


def energy_drift(energy_fn, trajectory: Array) -> Array:
    """``|E(z_t) - E(z_0)| / |E(z_0)|`` along a trajectory of shape ``(..., T, d) -> (..., T)``."""
    traj = jnp.asarray(trajectory)
    flat = traj.reshape(-1, traj.shape[-1])
    e = jax.vmap(energy_fn)(flat).reshape(traj.shape[:-1])
    e0 = e[..., :1]
    return jnp.abs(e - e0) / jnp.where(jnp.abs(e0) > 0, jnp.abs(e0), 1.0)


def chaos_floor(
    system,
    z0: Array,
    dt: float,
    steps: int,
    *,
    key: PRNGKeyArray,
    epsilon: float = 1e-4,
    per_step: bool = False,
) -> Array:
    """The error floor of any learned model on a (chaotic) system (Finzi et al. 2020).

    The true trajectory from ``z0`` (shape ``(B, d)``) is compared with the true trajectory from
    ``z0 + epsilon * u`` (``u`` a random unit direction per state), projected back onto the
    constraints when the system has a ``project`` method. Returns the geometric-mean relative
    error over steps ``1..steps`` for each initial state, shape ``(B,)`` (float64 simulation);
    with ``per_step`` the relative error at every time instead, shape ``(B, steps + 1)``.
    """
    from .systems.mechanics import simulate

    z0 = np.asarray(z0, dtype=np.float64)
    u = np.asarray(jax.random.normal(key, z0.shape), dtype=np.float64)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    perturbed = z0 + epsilon * u
    if hasattr(system, "project"):
        with jax.enable_x64(True):
            perturbed = np.asarray(jax.vmap(system.project)(jnp.asarray(perturbed)))
    both = simulate(system, np.concatenate([z0, perturbed]), dt, steps)  # one solver compilation
    true, near = both[: len(z0)], both[len(z0) :]
    with jax.enable_x64(True):
        rel = np.asarray(relative_error(jnp.asarray(near), jnp.asarray(true)))
    return rel if per_step else np.asarray(geometric_mean(rel[..., 1:], axis=-1))


def convergence_order(step_sizes, errors, *, window: tuple[float, float] = (1e-11, 1e-2)) -> float:
    """Measured order ``p`` of ``error ~ C dt^p``: the least-squares slope of ``log error`` against
    ``log dt`` over the points with ``window[0] < error < window[1]`` (above float64 rounding,
    below saturation); all points if fewer than two fall inside.

    Example:
        >>> round(convergence_order([0.1, 0.05, 0.025], [1e-4, 6.25e-6, 3.90625e-7]), 6)
        4.0
    """
    dts, errs = np.asarray(step_sizes, dtype=float), np.asarray(errors, dtype=float)
    if dts.shape != errs.shape or dts.ndim != 1 or len(dts) < 2:
        raise ValueError(
            f"`step_sizes` and `errors` must be 1-D of the same length >= 2, got {dts.shape} and {errs.shape}"
        )
    inside = (errs > window[0]) & (errs < window[1])
    if inside.sum() >= 2:
        dts, errs = dts[inside], errs[inside]
    return float(np.polyfit(np.log(dts), np.log(errs), 1)[0])


def parameter_count(model) -> int:
    """Number of trainable (inexact-array) entries of an Equinox model."""
    import equinox as eqx

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(x.size for x in leaves))


class RolloutErrors(NamedTuple):
    """What :func:`rollout_errors` returns (NumPy, float64).

    Attributes:
        pred: the predicted trajectories ``(B, T + 1, d)`` in the model's coordinates
            (non-finite states replaced by ``1e30``).
        relative: ``(B, T + 1)`` relative error per step (:func:`relative_error`).
        geomean: ``(B,)`` geometric mean of ``relative`` over steps ``1..T`` (the exact start is
            left out).
        energy: ``(B, T + 1)`` relative energy drift of the prediction (``None`` without ``energy``).
        diverged: ``(B,)`` whether the rollout became non-finite.
    """

    pred: np.ndarray
    relative: np.ndarray
    geomean: np.ndarray
    energy: np.ndarray | None
    diverged: np.ndarray


def rollout_errors(
    model,
    true: np.ndarray,
    dt: float,
    *,
    z0=None,
    integrator=None,
    substeps: int = 1,
    compare=None,
    energy=None,
) -> RolloutErrors:
    """Roll ``model`` out (float32) from the first state of each true trajectory and compare.

    Args:
        model: a vector field ``z -> dz/dt`` (any :mod:`physbias.dynamics` model).
        true: ``(B, T + 1, d)`` true trajectories (the comparison is in float64).
        dt: time step between saved states.
        z0: ``(B, d')`` initial states in the model's coordinates (default ``true[:, 0]``).
        integrator: default :class:`~physbias.dynamics.RK4`; ``substeps`` steps per ``dt``.
        compare: maps predicted trajectories into ``true``'s coordinates (default: identity).
        energy: the true energy of one state in ``true``'s coordinates, for the drift.

    The relative error per step is ``|z_hat - z| / (|z_hat| + |z|)``: 0 exact, 1 unrelated; a
    non-finite prediction counts as 1.
    """
    true = np.asarray(true, dtype=np.float64)
    if true.ndim != 3:
        raise ValueError(f"`true` must have shape (B, T + 1, d), got {true.shape}")
    steps = true.shape[1] - 1
    start = true[:, 0] if z0 is None else np.asarray(z0)
    integrator = RK4() if integrator is None else integrator
    pred = np.asarray(
        jax.jit(lambda z: rollout(model, z, dt, steps, integrator, substeps))(
            jnp.asarray(start, jnp.float32)
        ),
        dtype=np.float64,
    )
    diverged = ~np.isfinite(pred).all(axis=(1, 2))
    pred = np.where(np.isfinite(pred), pred, 1e30)
    with jax.enable_x64(True):
        p64, t64 = jnp.asarray(pred), jnp.asarray(true)
        if compare is not None:
            p64 = jnp.asarray(compare(p64))
        rel = np.asarray(relative_error(p64, t64))
        gm = np.asarray(geometric_mean_relative_error(p64[:, 1:], t64[:, 1:]))
        drift = np.asarray(energy_drift(energy, p64)) if energy is not None else None
    rel = np.where(np.isfinite(rel), rel, 1.0)
    gm = np.where(np.isfinite(gm), gm, 1.0)
    return RolloutErrors(pred, rel, gm, drift, diverged)


def mean_squared_error_per_entry(pred: Array, target: Array) -> float:
    """``mean (pred - target)^2`` over every point and output entry (the EMLP paper's test MSE).

    Raises:
        ValueError: if the shapes differ (no broadcasting).
    """
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    require_same_shape(pred, target, "mean_squared_error_per_entry")
    return float(np.mean((pred - target) ** 2))


def equivariant_regression_scores(
    model, inputs, targets, rep_in, rep_out, G, *, n_equivariance: int = 256
) -> dict:
    """Test MSE (:func:`mean_squared_error_per_entry`), the MSE relative to the targets' variance,
    and the equivariance error (:func:`physbias.groups.equivariance_error`, batch-relative, 4
    sampled elements) on the first ``n_equivariance`` inputs."""
    from .groups import equivariance_error

    inputs, targets = np.asarray(inputs), np.asarray(targets)
    pred = np.asarray(jax.jit(jax.vmap(model))(jnp.asarray(inputs, jnp.float32)), np.float64)
    err = mean_squared_error_per_entry(pred, targets)
    return {
        "test_mse": err,
        "test_mse_relative": float(err / np.mean((targets - targets.mean(0)) ** 2)),
        "equivariance_error": equivariance_error(
            model, rep_in, rep_out, G, inputs[:n_equivariance], n_elements=4
        ),
    }


def median_bandwidth(x: Array, y: Array) -> float:
    """The median heuristic: the median distance between distinct points of ``x`` and ``y`` pooled
    (Gretton et al. 2012), a scale for :func:`mmd_squared`."""
    z = np.concatenate([np.asarray(x, np.float64), np.asarray(y, np.float64)])
    z = z[np.linspace(0, len(z) - 1, min(len(z), 2000)).astype(int)]  # a median needs no more
    d2 = _squared_distances(z, z)
    return float(np.sqrt(np.median(d2[np.triu_indices(len(z), 1)])))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * a @ b.T, 0.0)


def mmd_squared(x: Array, y: Array, bandwidth=None) -> float:
    """The unbiased estimate of the squared maximum mean discrepancy between samples ``x`` ``(n, d)``
    and ``y`` ``(m, d)`` with the Gaussian kernel ``k(a, b) = exp(-|a - b|^2 / (2 h^2))``:

    .. math:: \\widehat{MMD}^2 = \\frac{1}{n(n-1)} \\sum_{i \\ne j} k(x_i, x_j)
              + \\frac{1}{m(m-1)} \\sum_{i \\ne j} k(y_i, y_j) - \\frac{2}{nm} \\sum_{i, j} k(x_i, y_j)

    (Gretton et al. 2012, eq. 3). Its expectation is 0 exactly when the distributions agree (it can
    be slightly negative); for ``N(mu_1, s^2 I)`` against ``N(mu_2, s^2 I)`` it is
    ``2 c (1 - exp(-|mu_1 - mu_2|^2 / (2 (h^2 + 2 s^2))))`` with ``c = (h^2 / (h^2 + 2 s^2))^{d/2}``.

    ``bandwidth``: ``h`` (> 0), a sequence of them (the kernel is their average, so that
    ``k(x, x) = 1`` and ``MMD^2 <= 2`` at every scale), or None for :func:`median_bandwidth`.
    Computed in float64 on the host.

    Raises:
        ValueError: mismatched feature sizes, fewer than 2 samples, non-finite samples, or a
            non-positive bandwidth.
    """
    x = np.asarray(check_array(x, "x", min_ndim=2), np.float64)
    y = np.asarray(check_array(y, "y", min_ndim=2), np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"`x` and `y` must be (n, d) and (m, d) samples, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"`x` and `y` need at least 2 samples each, got {len(x)} and {len(y)}")
    widths = np.atleast_1d(np.asarray(median_bandwidth(x, y) if bandwidth is None else bandwidth, np.float64))
    if widths.ndim != 1 or not np.all(np.isfinite(widths)) or np.any(widths <= 0):
        raise ValueError(f"`bandwidth` must be positive (a number or a sequence), got {bandwidth!r}")

    def kernel_sum(a, b, same):
        d2 = _squared_distances(a, b)
        k = sum(np.exp(-d2 / (2.0 * h**2)) for h in widths) / len(widths)
        return (np.sum(k) - np.trace(k)) / (len(a) * (len(a) - 1)) if same else np.mean(k)

    return float(kernel_sum(x, x, True) + kernel_sum(y, y, True) - 2.0 * kernel_sum(x, y, False))


def autocorrelation(windows, lag: int) -> np.ndarray:
    """Per-coordinate autocorrelation at ``lag`` of windows ``(n, T, d)`` about their pooled mean:
    ``<x_t x_{t+lag}> / <x_t^2>`` over samples and times, shape ``(d,)``."""
    windows = np.asarray(windows, dtype=float)
    if windows.ndim != 3:
        raise ValueError(f"`windows` must be (n, T, d), got shape {windows.shape}")
    if not isinstance(lag, int) or not 0 < lag < windows.shape[1]:
        raise ValueError(f"`lag` must be an integer in (0, {windows.shape[1]}), got {lag!r}")
    x = windows - windows.mean(axis=(0, 1))
    return np.mean(x[:, lag:] * x[:, :-lag], axis=(0, 1)) / np.mean(x * x, axis=(0, 1))
