"""An exact Gaussian process (``tinygp`` does the Cholesky solve) and kernel learning by its
marginal likelihood, Adam steps fused with ``jax.lax.scan`` (one compiled call per restart).

The log marginal likelihood of targets ``y`` (``n`` values) at inputs ``X`` is

    log p(y | X) = -1/2 (y - m)^T (K + S)^{-1} (y - m) - 1/2 log det(K + S) - n/2 log(2 pi),

with ``K`` the kernel's Gram matrix, ``S`` the noise variances on its diagonal and ``m`` a
constant mean (Rasmussen & Williams, *Gaussian Processes for Machine Learning*, 2006, eq. 2.30).
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tinygp
from jaxtyping import Array, PRNGKeyArray


def _is_traced(tree) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(tree))


def _check_leaf(value, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"`{name}` must hold numbers, got dtype {arr.dtype}")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"`{name}` must have a non-empty leading (data) axis, got shape {arr.shape}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"`{name}` contains {bad} NaN or inf value(s); GP data must be finite")
        return arr.astype(jnp.result_type(float))
    return arr


def check_gp_data(X, y=None, kernel=None):
    """Validate GP inputs ``X`` (an array ``(n,)``/``(n, D)``, or a tuple of them such as
    ``(x, node)``) and targets ``y`` (``(n,)``, or ``(R, n)`` for ``R`` series observed at the same
    inputs); return them as JAX arrays (floating arrays in the default float dtype).

    A kernel with a ``check_inputs(X)`` method (e.g. :class:`~physbias.gp.GraphLMC`, which checks
    node indices) is asked to check ``X`` too.

    Raises:
        ValueError: NaN/inf, empty data, inputs whose leading axes differ, targets whose length is
            not that of the inputs, or inputs the kernel rejects.
    """
    leaves = X if isinstance(X, tuple) else (X,)
    names = [f"X[{i}]" for i in range(len(leaves))] if isinstance(X, tuple) else ["X"]
    checked = tuple(_check_leaf(a, n) for a, n in zip(leaves, names, strict=True))
    lengths = {a.shape[0] for a in checked}
    if len(lengths) > 1:
        desc = ", ".join(f"`{n}` has {a.shape[0]}" for n, a in zip(names, checked, strict=True))
        raise ValueError(f"every input array must have the same number of points: {desc}")
    X = checked if isinstance(X, tuple) else checked[0]
    if kernel is not None and hasattr(kernel, "check_inputs"):
        kernel.check_inputs(X)
    X = jax.tree_util.tree_map(jnp.asarray, X)
    if y is None:
        return X
    y = _check_leaf(y, "y")
    n = lengths.pop()
    if y.ndim not in (1, 2) or y.shape[-1] != n:
        raise ValueError(f"`y` must have shape ({n},) or (R, {n}) to match the {n} inputs, got {y.shape}")
    return X, jnp.asarray(y, jnp.result_type(float))


class ExactGP(eqx.Module):
    """A GP regression model: a ``tinygp`` kernel, Gaussian noise and a constant mean.

    Args:
        kernel: any ``tinygp.kernels.Kernel`` (its floating-point arrays are what
            :func:`fit_marginal_likelihood` learns).
        noise: noise standard deviation ``sigma > 0``, a scalar, or shape ``(G,)`` for one level
            per output when inputs are ``(x, group)`` tuples (the integer ``group`` picks it).
        mean: the constant prior mean.

    Raises:
        ValueError: non-positive or non-finite ``noise``, non-finite ``mean``.

    Example:
        >>> import jax.numpy as jnp
        >>> from physbias.gp import SquaredExponential
        >>> gp = ExactGP(SquaredExponential(1.0, 1.0), noise=0.1)
        >>> x = jnp.linspace(0.0, 1.0, 5)
        >>> mean = gp.predict(x, jnp.sin(x), x)
        >>> bool(jnp.max(jnp.abs(mean - jnp.sin(x))) < 0.05)
        True
    """

    kernel: tinygp.kernels.Kernel
    log_noise: Array
    mean: Array

    def __init__(self, kernel: tinygp.kernels.Kernel, noise=0.1, mean: float = 0.0):
        if not isinstance(kernel, tinygp.kernels.Kernel):
            raise TypeError(f"`kernel` must be a tinygp.kernels.Kernel, got {type(kernel).__name__}")
        sigma = np.asarray(noise, dtype=np.float64)
        if sigma.ndim > 1 or sigma.size == 0 or not np.all(np.isfinite(sigma)) or np.any(sigma <= 0):
            raise ValueError(f"`noise` must be a positive finite scalar or a (G,) vector, got {noise!r}")
        if not np.isfinite(mean):
            raise ValueError(f"`mean` must be finite, got {mean!r}")
        dtype = jnp.result_type(float)
        self.kernel = kernel
        self.log_noise = jnp.log(jnp.asarray(sigma, dtype))
        self.mean = jnp.asarray(mean, dtype)

    def noise_variance(self, X) -> Array:
        """``sigma^2``, a scalar, or ``(n,)`` per-point variances ``sigma[group]^2`` for ``(x, group)``
        inputs."""
        variance = jnp.exp(2 * self.log_noise)
        if variance.ndim == 0:
            return variance
        if not isinstance(X, tuple) or len(X) < 2:
            raise ValueError(
                "a (G,) `noise` needs inputs X = (x, group) whose integer `group` picks the level"
            )
        return variance[X[1]]

    def gaussian_process(self, X) -> tinygp.GaussianProcess:
        """The prior over noisy observations at ``X``, as a ``tinygp.GaussianProcess``."""
        return tinygp.GaussianProcess(self.kernel, X, diag=self.noise_variance(X), mean=self.mean)

    def log_marginal_likelihood(self, X, y) -> Array:
        """``log p(y | X)``; for ``y`` of shape ``(R, n)`` the sum over the ``R`` independent series."""
        if not _is_traced((self, X, y)):
            X, y = check_gp_data(X, y, self.kernel)
        return _log_marginal_likelihood(self, X, y)

    def predict(self, X, y, X_test, *, return_var: bool = False):
        """Posterior mean ``m + K_*X (K + S)^{-1} (y - m)`` at ``X_test`` given targets ``y`` ``(n,)``
        at ``X``; with ``return_var`` also the latent function's posterior variance
        ``k(x_*, x_*) - K_*X (K + S)^{-1} K_X*`` (``tinygp``'s Cholesky solver and its
        ``Conditioned`` kernel; the test points' joint covariance is never formed)."""
        if not _is_traced((self, X, y, X_test)):
            X, y = check_gp_data(X, y, self.kernel)
            X_test = check_gp_data(X_test, None, self.kernel)
            if y.ndim != 1:
                raise ValueError(f"`y` must have shape (n,) to predict from, got {y.shape}")
        return _predict(self, X, y, X_test, return_var)


@eqx.filter_jit
def _log_marginal_likelihood(model: ExactGP, X, y) -> Array:
    gp = model.gaussian_process(X)
    if y.ndim == 2:
        return jnp.sum(jax.vmap(gp.log_probability)(y))
    return gp.log_probability(y)


@eqx.filter_jit
def _predict(model: ExactGP, X, y, X_test, return_var: bool):
    solver = model.gaussian_process(X).solver
    alpha = solver.solve_triangular(solver.solve_triangular(y - model.mean), transpose=True)
    mean = model.kernel.matmul(X_test, X, alpha) + model.mean
    if not return_var:
        return mean
    return mean, tinygp.kernels.Conditioned(X, solver, model.kernel)(X_test)


@dataclasses.dataclass(frozen=True)
class GPFit:
    """What :func:`fit_marginal_likelihood` returns.

    Attributes:
        model: the parameters with the lowest loss seen, over every restart.
        losses: the chosen restart's loss (negative log marginal likelihood per observation) at
            every step, ``(steps,)`` (NumPy).
        restart_losses: each restart's best loss, ``(restarts,)``.
        seconds: wall time, compilation included.
    """

    model: ExactGP
    losses: np.ndarray
    restart_losses: np.ndarray
    seconds: float

    @property
    def final_loss(self) -> float:
        return float(np.min(self.restart_losses))


@eqx.filter_jit
def jitter_log_parameters(params, key: PRNGKeyArray, scale: float):
    """``params`` with ``N(0, scale^2)`` added to every array whose field name starts with
    ``log_`` (log-frequencies, log-variances, log-noise...): multiplicative jitter of positive
    parameters, the random restarts of :func:`fit_marginal_likelihood`."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, max(len(leaves), 1))
    out = []
    for (path, leaf), k in zip(leaves, keys, strict=False):
        last = path[-1] if path else None
        name = getattr(last, "name", "")
        if eqx.is_inexact_array(leaf) and name.startswith("log_"):
            leaf = leaf + scale * jax.random.normal(k, leaf.shape, leaf.dtype)
        out.append(leaf)
    return jax.tree_util.tree_unflatten(treedef, out)


def fit_marginal_likelihood(
    model: ExactGP,
    X,
    y,
    *,
    steps: int = 500,
    learning_rate: float = 0.05,
    restarts: int = 1,
    jitter: float = 0.3,
    key: PRNGKeyArray | None = None,
) -> GPFit:
    """Learn ``model``'s kernel, noise and mean by maximising the log marginal likelihood.

    Adam (step size cosine-decayed from ``learning_rate`` to a tenth of it) on the negative log
    marginal likelihood per observation, all ``steps`` fused in one ``lax.scan``. Restart 0
    starts at ``model`` (e.g. a periodogram initialisation); restarts ``1..R-1`` at copies whose
    ``log_*`` parameters are jittered by ``N(0, jitter^2)`` (:func:`jitter_log_parameters`); the
    parameters with the lowest loss seen over all restarts are returned. A step with a
    non-finite loss or gradient leaves the parameters where they were.

    Args:
        model: the :class:`ExactGP` to start from.
        X: inputs (see :func:`check_gp_data`).
        y: targets ``(n,)``, or ``(R, n)`` independent series sharing ``X`` and the kernel.
        steps, learning_rate, restarts: positive; ``jitter >= 0``.
        key: PRNG key of the restarts' jitter (needed when ``restarts > 1``).

    Raises:
        ValueError: invalid data (:func:`check_gp_data`) or settings, or no ``key`` for restarts.
    """
    for name, value in (("steps", steps), ("restarts", restarts)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}")
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"`jitter` must be >= 0, got {jitter!r}")
    if restarts > 1 and key is None:
        raise ValueError("`key` is needed to jitter the starts when `restarts` > 1")
    if not isinstance(model, ExactGP):
        raise TypeError(f"`model` must be an ExactGP, got {type(model).__name__}")
    X, y = check_gp_data(X, y, model.kernel)
    count = y.size
    start = time.perf_counter()
    params, static = eqx.partition(model, eqx.is_inexact_array)
    starts = [params]
    if restarts > 1:
        starts += [jitter_log_parameters(params, k, jitter) for k in jax.random.split(key, restarts - 1)]
    # One compiled run, called once per start (a vmap over starts compiles twice as long and
    # gains little on a CPU).
    runs = [_run_adam(p, static, X, y, count, steps, learning_rate) for p in starts]
    best = np.asarray([float(r[2]) for r in runs])
    chosen = int(np.argmin(np.where(np.isfinite(best), best, np.inf)))
    trained = eqx.combine(runs[chosen][0], static)
    return GPFit(trained, np.asarray(runs[chosen][1]), best, time.perf_counter() - start)


@eqx.filter_jit
def _run_adam(start, static, X, y, count: int, steps: int, learning_rate: float):
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.1)
    optimizer = optax.adam(schedule)

    def loss(params):
        return -eqx.combine(params, static).log_marginal_likelihood(X, y) / count

    def step(carry, _):
        params, state, best, best_params = carry
        value, grads = jax.value_and_grad(loss)(params)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int32 counts with floats
            updates, new_state = optimizer.update(grads, state, params)
        finite = jnp.isfinite(value) & jnp.all(
            jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
        )
        improved = finite & (value < best)
        best_params = jax.tree_util.tree_map(lambda p, b: jnp.where(improved, p, b), params, best_params)
        best = jnp.where(improved, value, best)
        keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        params = jax.tree_util.tree_map(keep, eqx.apply_updates(params, updates), params)
        state = jax.tree_util.tree_map(keep, new_state, state)
        return (params, state, best, best_params), value

    carry = (start, optimizer.init(start), jnp.array(jnp.inf, y.dtype), start)
    (_, _, best, best_params), values = jax.lax.scan(step, carry, None, length=steps)
    return best_params, values, best
