"""Structured kernel interpolation (SKI / KISS-GP) in one dimension.

The Gram matrix of a stationary kernel at ``n`` scalar inputs is approximated through a regular
grid ``u_1 < ... < u_m`` of spacing ``h``:

    K_XX ~ W K_UU W^T,        K + sigma^2 I ~ W K_UU W^T + sigma^2 I,

where each row of ``W`` holds the four cubic-convolution weights (Keys 1981, ``a = -1/2``) of one
input on its four nearest grid points, and ``K_UU[i, j] = k(|i - j| h)`` is symmetric Toeplitz, so
that ``K_UU v`` is a circulant-embedded FFT product in ``O(m log m)``. A matrix-vector product
costs ``O(n + m log m)``; solves are conjugate gradients (``lineax.CG``); the log-determinant is
estimated by stochastic Lanczos quadrature with Rademacher probes (Ubaru, Chen & Saad 2017).

References: A. G. Wilson and H. Nickisch, "Kernel interpolation for scalable structured Gaussian
processes (KISS-GP)", ICML 2015; R. Keys, "Cubic convolution interpolation for digital image
processing", IEEE Trans. ASSP 1981.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import tinygp
from jaxtyping import Array, Float, Int, PRNGKeyArray

KEYS_A = -0.5
"""The cubic-convolution parameter: ``a = -1/2`` makes the interpolant reproduce quadratics
exactly (third-order accurate); cubics are not reproduced."""


def keys_kernel(s) -> Array:
    """Keys' cubic-convolution kernel ``u(s)`` (``a = -1/2``): ``(a+2)|s|^3 - (a+3)|s|^2 + 1`` for
    ``|s| <= 1``, ``a|s|^3 - 5a|s|^2 + 8a|s| - 4a`` for ``1 < |s| < 2``, ``0`` beyond."""
    s = jnp.abs(s)
    a = KEYS_A
    inner = ((a + 2) * s - (a + 3)) * s * s + 1
    outer = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a
    return jnp.where(s <= 1, inner, jnp.where(s < 2, outer, jnp.zeros_like(s)))


class InterpolationWeights(eqx.Module):
    """The sparse interpolation matrix ``W`` ``(n, m)`` as four grid indices and four weights per
    row (each row sums to 1).

    ``W @ u`` is a gather; ``W^T @ v`` a ``segment_sum`` onto the grid.
    """

    indices: Int[Array, "n 4"]
    weights: Float[Array, "n 4"]
    num_grid: int = eqx.field(static=True)

    def matvec(self, u: Float[Array, " m"]) -> Float[Array, " n"]:
        """``W u``: grid values to the inputs."""
        return jnp.sum(self.weights * u[self.indices], axis=1)

    def rmatvec(self, v: Float[Array, " n"]) -> Float[Array, " m"]:
        """``W^T v``: input values onto the grid."""
        contributions = (self.weights * v[:, None]).reshape(-1)
        return jax.ops.segment_sum(contributions, self.indices.reshape(-1), num_segments=self.num_grid)

    def dense(self) -> Float[Array, "n m"]:
        """``W`` as a dense matrix (for tests and small problems)."""
        rows = jnp.arange(self.indices.shape[0])[:, None]
        return (
            jnp.zeros((self.indices.shape[0], self.num_grid), self.weights.dtype)
            .at[rows, self.indices]
            .add(self.weights)
        )


def cubic_interpolation_weights(x, start, step, num_grid: int) -> InterpolationWeights:
    """Keys cubic weights of inputs ``x`` ``(n,)`` on the grid ``start + j step``, ``j < num_grid``.

    Input ``x`` with ``t = (x - start) / step``, ``j = floor(t)``, uses grid points ``j-1 .. j+2``
    with weights ``u(t - i)``; every input must therefore lie in ``[start + step,
    start + (num_grid - 2) step]`` (see :func:`regular_grid`, which pads two cells on each side).

    Raises:
        ValueError: ``num_grid < 4``, a non-positive ``step`` or inputs outside that interval
            (checked when the values are concrete).
    """
    if not isinstance(num_grid, (int, np.integer)) or num_grid < 4:
        raise ValueError(f"`num_grid` must be an integer >= 4, got {num_grid!r}")
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"SKI inputs must be scalars, `x` of shape (n,); got {x.shape}")
    if not isinstance(x, jax.core.Tracer) and not any(isinstance(a, jax.core.Tracer) for a in (start, step)):
        lo, hi = float(start) + float(step), float(start) + (num_grid - 2) * float(step)
        if not float(step) > 0:
            raise ValueError(f"the grid `step` must be positive, got {float(step)}")
        xs = np.asarray(x)
        slack = 1e-4 * float(step)
        if np.any(xs < lo - slack) or np.any(xs > hi + slack):
            raise ValueError(
                f"inputs must lie in [{lo:.6g}, {hi:.6g}] (one cell inside the grid), got range "
                f"[{xs.min():.6g}, {xs.max():.6g}]; build the grid with `regular_grid` over all inputs"
            )
    t = (x - start) / step
    base = jnp.clip(jnp.floor(t), 1, num_grid - 3)
    offsets = jnp.arange(-1, 3, dtype=x.dtype)
    neighbours = base[:, None] + offsets[None, :]
    weights = keys_kernel(t[:, None] - neighbours)
    return InterpolationWeights(neighbours.astype(jnp.int32), weights, int(num_grid))


def regular_grid(low, high, num_grid: int) -> tuple[float, float]:
    """``(start, step)`` of ``num_grid`` points covering ``[low, high]`` with two cells of padding on
    each side (``step = (high - low) / (num_grid - 5)``), so that every point of ``[low, high]``
    has its four interpolation neighbours on the grid.

    Raises:
        ValueError: ``num_grid < 6`` or ``high <= low``.
    """
    if not isinstance(num_grid, (int, np.integer)) or num_grid < 6:
        raise ValueError(f"`num_grid` must be an integer >= 6, got {num_grid!r}")
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high) and high > low):
        raise ValueError(f"the grid needs finite `low` < `high`, got {low} and {high}")
    step = (high - low) / (num_grid - 5)
    return low - 2 * step, step


def toeplitz_matvec(column: Float[Array, " m"], v: Float[Array, " m"]) -> Float[Array, " m"]:
    """``T v`` for the symmetric Toeplitz ``T[i, j] = column[|i - j|]``, by embedding ``T`` in a
    circulant of size ``2m`` (first column ``[c_0 .. c_{m-1}, 0, c_{m-1} .. c_1]``) whose action
    is a pointwise product of FFTs."""
    return _circulant_apply(_circulant_spectrum(column), v)


def _circulant_spectrum(column: Array) -> Array:
    embedded = jnp.concatenate([column, jnp.zeros((1,), column.dtype), column[:0:-1]])
    return jnp.fft.rfft(embedded)


def _circulant_apply(spectrum: Array, v: Array) -> Array:
    m = v.shape[0]
    return jnp.fft.irfft(spectrum * jnp.fft.rfft(v, n=2 * m), n=2 * m)[:m].astype(v.dtype)


class SKI(eqx.Module):
    """``K + sigma^2 I ~ W K_UU W^T + sigma^2 I`` for a stationary ``tinygp`` kernel at scalar
    inputs: matrix-vector products, CG solves, a stochastic log-determinant, the log marginal
    likelihood and the predictive mean.

    Args:
        kernel: a stationary ``tinygp.kernels.Kernel`` on scalars (only ``k(x - x')`` is used:
            ``K_UU`` is built from ``k(0, j h)``).
        x: training inputs ``(n,)``.
        noise_variance: ``sigma^2 > 0``.
        num_grid: grid points ``m >= 6``.
        bounds: ``(low, high)`` the grid must cover (default the range of ``x``); widen it to
            predict beyond the data.

    Raises:
        ValueError: non-finite or non-scalar inputs, ``num_grid < 6``, non-positive noise,
            bounds that do not contain ``x``.

    Example:
        >>> import jax, jax.numpy as jnp, tinygp
        >>> x = jnp.linspace(0.0, 10.0, 200)
        >>> ski = SKI(tinygp.kernels.ExpSquared(scale=1.0), x, noise_variance=0.1, num_grid=100)
        >>> v = jnp.ones(200)
        >>> exact = (tinygp.kernels.ExpSquared(scale=1.0)(x, x) + 0.1 * jnp.eye(200)) @ v
        >>> bool(jnp.linalg.norm(ski.matvec(v) - exact) / jnp.linalg.norm(exact) < 1e-3)
        True
    """

    kernel: tinygp.kernels.Kernel
    interpolation: InterpolationWeights
    grid_start: Float[Array, ""]
    grid_step: Float[Array, ""]
    column: Float[Array, " m"]
    spectrum: Array
    noise_variance: Float[Array, ""]

    def __init__(
        self, kernel, x, *, noise_variance, num_grid: int, bounds: tuple[float, float] | None = None
    ):
        if not isinstance(kernel, tinygp.kernels.Kernel):
            raise TypeError(f"`kernel` must be a tinygp.kernels.Kernel, got {type(kernel).__name__}")
        xs = np.asarray(x)
        if xs.ndim != 1 or xs.size < 2:
            raise ValueError(f"SKI inputs must be scalars, `x` of shape (n,) with n >= 2; got {xs.shape}")
        if not np.all(np.isfinite(xs)):
            raise ValueError("`x` contains NaN or inf; GP data must be finite")
        if not (np.ndim(noise_variance) == 0 and np.isfinite(noise_variance) and noise_variance > 0):
            raise ValueError(f"`noise_variance` must be a positive finite scalar, got {noise_variance!r}")
        low, high = (float(xs.min()), float(xs.max())) if bounds is None else map(float, bounds)
        if low > xs.min() or high < xs.max():
            raise ValueError(f"`bounds` {bounds} must contain every input (range [{xs.min()}, {xs.max()}])")
        start, step = regular_grid(low, high, num_grid)
        dtype = jnp.result_type(float)
        x = jnp.asarray(xs, dtype)
        self.kernel = kernel
        self.grid_start = jnp.asarray(start, dtype)
        self.grid_step = jnp.asarray(step, dtype)
        # inputs were checked to lie on the grid (by construction of `regular_grid`); build under jit
        self.interpolation, self.column, self.spectrum = _build(
            kernel, x, self.grid_start, self.grid_step, num_grid
        )
        self.noise_variance = jnp.asarray(noise_variance, dtype)

    @property
    def num_grid(self) -> int:
        return self.interpolation.num_grid

    @property
    def num_data(self) -> int:
        return self.interpolation.indices.shape[0]

    def kernel_matvec(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """``W K_UU W^T v`` (no noise)."""
        grid = _circulant_apply(self.spectrum, self.interpolation.rmatvec(v))
        return self.interpolation.matvec(grid)

    def matvec(self, v: Float[Array, " n"]) -> Float[Array, " n"]:
        """``(W K_UU W^T + sigma^2 I) v``."""
        return self.kernel_matvec(v) + self.noise_variance * v

    def operator(self) -> lx.FunctionLinearOperator:
        """The noisy SKI covariance as a positive semi-definite ``lineax`` operator."""
        structure = jax.ShapeDtypeStruct((self.num_data,), self.column.dtype)
        return lx.FunctionLinearOperator(self.matvec, structure, tags=lx.positive_semidefinite_tag)

    def solve(self, y, *, tolerance: float = 1e-4, max_steps: int = 1000) -> tuple[Array, Array]:
        """``(K_SKI + sigma^2 I)^{-1} y`` by conjugate gradients, and the number of CG steps.

        Stops when every residual entry is below ``tolerance * (|y_i| + max|y|)`` (and likewise for
        the last update against the solution), or after ``max_steps``.
        """
        y = jnp.asarray(y, self.column.dtype)
        if y.shape != (self.num_data,):
            raise ValueError(f"`y` must have shape ({self.num_data},), got {y.shape}")
        return _cg_solve(self, y, float(tolerance), int(max_steps))

    def log_determinant(
        self, key: PRNGKeyArray, *, num_probes: int = 16, num_steps: int = 30
    ) -> tuple[Array, Array]:
        """Stochastic Lanczos quadrature estimate of ``log det(K_SKI + sigma^2 I)`` and its standard
        error over the probes (see :func:`stochastic_log_determinant`)."""
        return stochastic_log_determinant(
            self.matvec, self.num_data, self.column.dtype, key, num_probes=num_probes, num_steps=num_steps
        )

    def log_marginal_likelihood(
        self, y, key: PRNGKeyArray, *, num_probes: int = 16, num_steps: int = 30, tolerance: float = 1e-4
    ) -> Array:
        """``-1/2 y^T (K + sigma^2 I)^{-1} y - 1/2 log det(K + sigma^2 I) - n/2 log 2 pi`` (zero mean),
        with a CG solve and the stochastic log-determinant."""
        alpha, _ = self.solve(y, tolerance=tolerance)
        logdet, _ = self.log_determinant(key, num_probes=num_probes, num_steps=num_steps)
        return -0.5 * jnp.dot(y, alpha) - 0.5 * logdet - 0.5 * self.num_data * math.log(2 * math.pi)

    def predict_mean(self, y, x_test, *, tolerance: float = 1e-4, max_steps: int = 1000) -> Array:
        """Posterior mean ``W_* K_UU W^T (K_SKI + sigma^2 I)^{-1} y`` at ``x_test`` ``(k,)`` (inside the
        grid's bounds)."""
        y = jnp.asarray(y, self.column.dtype)
        if y.shape != (self.num_data,):
            raise ValueError(f"`y` must have shape ({self.num_data},), got {y.shape}")
        x_test = jnp.asarray(x_test, self.column.dtype)
        if not isinstance(x_test, jax.core.Tracer):
            if not np.all(np.isfinite(np.asarray(x_test))):
                raise ValueError("`x_test` contains NaN or inf")
            # checks that x_test lies inside the grid (the jitted call below cannot)
            cubic_interpolation_weights(
                np.asarray(x_test), float(self.grid_start), float(self.grid_step), self.num_grid
            )
        return _predict_mean(self, y, x_test, float(tolerance), int(max_steps))

    @eqx.filter_jit
    def dense(self) -> Float[Array, "n n"]:
        """``W K_UU W^T + sigma^2 I`` as a dense matrix (for tests and small problems)."""
        w = self.interpolation.dense()
        m = self.num_grid
        idx = jnp.arange(m)
        k_uu = self.column[jnp.abs(idx[:, None] - idx[None, :])]
        return w @ k_uu @ w.T + self.noise_variance * jnp.eye(self.num_data, dtype=w.dtype)


@eqx.filter_jit
def _build(kernel, x: Array, start: Array, step: Array, num_grid: int):
    """The interpolation weights of ``x``, the first column of ``K_UU`` and its circulant spectrum."""
    interpolation = cubic_interpolation_weights(x, start, step, num_grid)
    lags = step * jnp.arange(num_grid, dtype=x.dtype)
    column = jax.vmap(lambda t: kernel.evaluate(jnp.zeros((), x.dtype), t))(lags).astype(x.dtype)
    return interpolation, column, _circulant_spectrum(column)


@eqx.filter_jit
def _cg_solve(ski: SKI, y: Array, tolerance: float, max_steps: int) -> tuple[Array, Array]:
    atol = tolerance * jnp.max(jnp.abs(y))
    solver = lx.CG(rtol=tolerance, atol=atol, max_steps=max_steps)
    solution = lx.linear_solve(ski.operator(), y, solver, throw=False)
    return solution.value, solution.stats["num_steps"]


@eqx.filter_jit
def _predict_mean(ski: SKI, y: Array, x_test: Array, tolerance: float, max_steps: int) -> Array:
    alpha, _ = _cg_solve(ski, y, tolerance, max_steps)
    test = cubic_interpolation_weights(x_test, ski.grid_start, ski.grid_step, ski.num_grid)
    return test.matvec(_circulant_apply(ski.spectrum, ski.interpolation.rmatvec(alpha)))


def stochastic_log_determinant(
    matvec, n: int, dtype, key: PRNGKeyArray, *, num_probes: int = 16, num_steps: int = 30
) -> tuple[Array, Array]:
    """Stochastic Lanczos quadrature: ``log det A = tr log A ~ (n / P) sum_p e_1^T log(T_p) e_1``.

    For each of ``P`` Rademacher probes ``z`` (entries +-1, so ``|z|^2 = n``), ``num_steps`` Lanczos
    steps from ``z / |z|`` (with full reorthogonalisation, which keeps float32 Lanczos stable)
    give a tridiagonal ``T = U diag(theta) U^T``, and ``e_1^T log(T) e_1 = sum_j U_1j^2 log theta_j``
    is a Gauss quadrature of ``z^T log(A) z / n``. The estimator is unbiased up to the quadrature
    error (which decays geometrically in ``num_steps`` for well-conditioned ``A``); its
    standard error over the probes is returned with it.

    Args:
        matvec: ``v -> A v`` for a symmetric positive-definite ``A`` ``(n, n)``.
        n, dtype: size and dtype of the vectors.
        key: PRNG key of the probes.
        num_probes: ``P >= 1``; ``num_steps``: Lanczos steps, ``1 <= num_steps <= n``.

    Returns:
        ``(estimate, standard_error)``.

    Reference: S. Ubaru, J. Chen and Y. Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
    quadrature", SIAM J. Matrix Anal. Appl. 2017.
    """
    if not isinstance(num_probes, (int, np.integer)) or num_probes < 1:
        raise ValueError(f"`num_probes` must be a positive integer, got {num_probes!r}")
    if not isinstance(num_steps, (int, np.integer)) or not 1 <= num_steps <= n:
        raise ValueError(f"`num_steps` must be an integer in [1, n = {n}], got {num_steps!r}")
    return _slq(matvec, n, jnp.dtype(dtype), key, int(num_probes), int(num_steps))


@eqx.filter_jit
def _slq(matvec, n: int, dtype, key, num_probes: int, num_steps: int) -> tuple[Array, Array]:
    probes = jnp.where(jax.random.bernoulli(key, 0.5, (num_probes, n)), 1.0, -1.0).astype(dtype)

    def quadrature(z):
        alphas, betas = _lanczos(matvec, z / jnp.sqrt(jnp.asarray(n, dtype)), num_steps)
        tridiagonal = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
        theta, vectors = jnp.linalg.eigh(tridiagonal)
        theta = jnp.maximum(theta, jnp.finfo(dtype).tiny)
        return n * jnp.sum(jnp.square(vectors[0]) * jnp.log(theta))

    samples = jax.lax.map(quadrature, probes)
    error = jnp.std(samples) / math.sqrt(num_probes) if num_probes > 1 else jnp.asarray(jnp.nan, dtype)
    return jnp.mean(samples), error


def _lanczos(matvec, q0: Array, num_steps: int) -> tuple[Array, Array]:
    """``num_steps`` Lanczos steps from the unit vector ``q0``: the diagonal ``alpha`` and the
    off-diagonal ``beta`` (its last entry unused) of the tridiagonal projection."""
    n = q0.shape[0]
    basis = jnp.zeros((num_steps, n), q0.dtype)
    tiny = jnp.finfo(q0.dtype).tiny

    def step(carry, j):
        basis, q, q_prev, beta_prev = carry
        basis = basis.at[j].set(q)
        w = matvec(q) - beta_prev * q_prev
        alpha = jnp.dot(w, q)
        w = w - alpha * q
        for _ in range(2):  # twice is enough (Parlett's "twice is enough" reorthogonalisation)
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        q_next = jnp.where(beta > tiny, w / jnp.maximum(beta, tiny), jnp.zeros_like(w))
        return (basis, q_next, q, beta), (alpha, beta)

    zero = jnp.zeros((), q0.dtype)
    _, (alphas, betas) = jax.lax.scan(step, (basis, q0, jnp.zeros_like(q0), zero), jnp.arange(num_steps))
    return alphas, betas
