"""``physbias run gp``: spectral mixtures, coregionalisation over a graph and structured kernel
interpolation (M24; seeds 002 and 004).

**(a) Extrapolation.** A series is detrended by a least-squares polynomial of degree
``trend_degree`` fitted on its training part, standardised, and modelled by a GP with a spectral
mixture kernel (periodogram initialisation, ``restarts`` jittered starts) and by a GP with a
squared-exponential kernel, both learned by their marginal likelihood; the extrapolation MSE over
the held-out end is the comparison (Wilson & Adams 2013 expect the spectral mixture to continue
the pattern where the squared exponential reverts to the mean). The default series is simulated
(a quasi-periodic signal with a linear trend, deterministic given the seed); ``series = "co2"``
uses the Mauna Loa CO2 record bundled with statsmodels (monthly means, trained on t < 1996 as in
tinygp's quickstart; needs ``pip install physbias[gp]``).

**(b) Coregionalisation on a graph.** ``lmc_nodes`` nodes on a path; node ``q`` carries a latent
oscillation (short coherence) whose frequency grows with the node's position, and every node
observes its own latent and, with weight ``lmc_coupling``, those of its neighbours. A segment of
node 0 is held out. Independent per-node GPs (the graph without edges) are compared with the LMC
over the graph, and with the LMC whose latent spectra are modulated by the node position (a node
feature).

**(c) SKI scaling.** For ``n`` points at ``ski_density`` per unit length (squared-exponential
kernel, length scale 1), the time of one SKI matrix-vector product and one CG solve (compiled
first, the fastest of ``ski_repeats``) against the exact GP's Cholesky solve (tinygp) up to
``max(exact_sizes)``; the SKI product's relative error against the exact product (on
``error_rows`` random rows beyond the exact sizes), and on the exact sizes the predictive-mean and
log-determinant errors.
"""

from __future__ import annotations

import dataclasses
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..gp import (
    SKI,
    ExactGP,
    GraphLMC,
    SpectralMixture,
    SquaredExponential,
    fit_marginal_likelihood,
    spectral_mixture_from_periodogram,
)
from ..report import Figure, Panel, Result, series
from ._config import ExperimentConfig, fraction, interval, nonnegative, one_of, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class GPConfig(ExperimentConfig):
    """Synthetic series of 240 points; a 4-node path graph; SKI up to n = 1e5, exact up to 4000."""

    QUICK = {
        "synthetic_points": 180,
        "steps": 300,
        "restarts": 2,
        "lmc_nodes": 3,
        "lmc_points": 45,
        "lmc_steps": 300,
        "ski_sizes": (1000, 2000, 8000),
        "exact_sizes": (1000, 2000),
        "ski_repeats": 2,
        "error_rows": 200,
    }
    FULL = {"restarts": 6, "steps": 1000, "ski_sizes": (1000, 3000, 10_000, 30_000, 100_000, 300_000)}

    series: str = one_of("synthetic", ("synthetic", "co2"))
    synthetic_points: int = positive(240)
    train_fraction: float = fraction(0.7)
    noise: float = nonnegative(0.1)
    trend_degree: int = nonnegative(1)
    sm_components: int = positive(4)
    steps: int = positive(500)
    learning_rate: float = positive(0.05)
    restarts: int = positive(3)
    lmc_nodes: int = positive(4)
    lmc_points: int = positive(60)
    lmc_coupling: float = nonnegative(0.8)
    lmc_gap: tuple[float, float] = interval((0.35, 0.65), positive=True)
    lmc_steps: int = positive(400)
    lmc_learning_rate: float = positive(0.1)
    lmc_restarts: int = positive(3)
    lmc_node_features: bool = True
    ski_sizes: tuple[int, ...] = positive((1000, 3000, 10_000, 30_000, 100_000))
    exact_sizes: tuple[int, ...] = positive((500, 1000, 2000, 4000))
    ski_density: float = positive(10.0)
    ski_grid_per_unit: float = positive(5.0)
    ski_noise: float = positive(0.3)
    ski_repeats: int = positive(3)
    error_rows: int = positive(1000)

    def check(self) -> None:
        if self.synthetic_points < 20:
            raise ValueError(f"config `synthetic_points` must be at least 20, got {self.synthetic_points}")
        if self.lmc_nodes < 2:
            raise ValueError(
                f"config `lmc_nodes` must be at least 2 (a graph with an edge), got {self.lmc_nodes}"
            )
        if self.lmc_gap[1] >= 1:
            raise ValueError(f"config `lmc_gap` must lie inside (0, 1), got {self.lmc_gap}")
        if min(self.ski_sizes + self.exact_sizes) < 10:
            raise ValueError("config `ski_sizes` and `exact_sizes` must be at least 10")


# --------------------------------------------------------------------------- (a) extrapolation


def _synthetic_series(config: GPConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Monthly samples (t in years) of a linear trend plus a yearly cycle with a harmonic, whose
    amplitude is modulated over 7 years, plus white noise: ``(t, y, is_train)``."""
    t = np.arange(config.synthetic_points) / 12.0
    envelope = 1.0 + 0.4 * np.sin(2 * np.pi * t / 7.0)
    clean = 0.3 * t + envelope * (1.5 * np.sin(2 * np.pi * t) + 0.6 * np.sin(4 * np.pi * t + 1.0))
    noise = config.noise * np.random.default_rng([seed, 0]).normal(size=t.shape)
    return t, clean + noise, t < t[int(config.train_fraction * len(t))]


def load_co2() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mauna Loa CO2 (``statsmodels.datasets.co2``): monthly means (t in years), training mask t < 1996.

    Raises:
        ImportError: when statsmodels is not installed, saying how to get it.
    """
    try:
        from statsmodels.datasets import co2
    except ImportError as exc:
        raise ImportError(
            "series='co2' needs statsmodels (its bundled Mauna Loa data): `pip install physbias[gp]`, "
            "or use series='synthetic'"
        ) from exc
    monthly = co2.load_pandas().data["co2"].resample("MS").mean().dropna()
    t = np.asarray(monthly.index.year + (monthly.index.month - 0.5) / 12.0, np.float64)
    return t, np.asarray(monthly.to_numpy(), np.float64), t < 1996.0


def _extrapolation(config: GPConfig, key, seed: int, progress: bool):
    if config.series == "co2":
        t, y, train = load_co2()
    else:
        t, y, train = _synthetic_series(config, seed)
    # Both models see the same detrended, standardised residuals of the training part.
    trend = (
        np.polynomial.Polynomial.fit(t[train], y[train], config.trend_degree) if config.trend_degree else None
    )
    baseline = trend(t) if trend is not None else np.full_like(t, y[train].mean())
    scale = float(np.std(y[train] - baseline[train]))
    r = (y - baseline) / scale
    t_origin = float(t[train][0])
    x = jnp.asarray(t - t_origin, jnp.float32)
    r_train = jnp.asarray(r[train], jnp.float32)
    models = {
        "spectral mixture": ExactGP(
            spectral_mixture_from_periodogram(x[train], r_train, config.sm_components), noise=0.3
        ),
        "squared exponential": ExactGP(SquaredExponential.from_data(x[train], r_train), noise=0.3),
    }
    rows, predictions, kernels = [], {}, {}
    for name, model in models.items():
        fit = fit_marginal_likelihood(
            model,
            x[train],
            r_train,
            steps=config.steps,
            learning_rate=config.learning_rate,
            restarts=config.restarts,
            key=jax.random.fold_in(key, 1),
        )
        mean = np.asarray(fit.model.predict(x[train], r_train, x), np.float64) * scale + baseline
        mse = float(np.mean((mean[~train] - y[~train]) ** 2))
        predictions[name], kernels[name] = mean, fit.model.kernel
        rows.append(
            {
                "part": "extrapolation",
                "series": config.series,
                "model": name,
                "train_points": int(train.sum()),
                "test_points": int((~train).sum()),
                "extrapolation_mse": mse,
                "extrapolation_rmse": math.sqrt(mse),
                "test_variance": float(np.var(y[~train])),
                "nll_per_point": fit.final_loss,
                "noise_std": float(jnp.exp(fit.model.log_noise)) * scale,
                "fit_seconds": round(fit.seconds, 3),
            }
        )
        if progress:
            print(f"gp: {config.series}: {name} extrapolation RMSE {math.sqrt(mse):.4g}", flush=True)
    panels = [
        Panel(
            f"{config.series}: extrapolation beyond the training data",
            "t",
            "y",
            [
                series("data (train)", t[train], y[train], "scatter"),
                series("data (test)", t[~train], y[~train], "scatter"),
            ]
            + [series(name, t, predictions[name]) for name in models],
        )
    ]
    sm = kernels["spectral mixture"]
    freq = np.linspace(1e-3, 2.5 * float(jnp.max(sm.frequencies)), 400)
    density = np.asarray(jax.vmap(sm.spectral_density)(jnp.asarray(freq, jnp.float32)))
    panels.append(
        Panel(
            "learned spectral density (spectral mixture)",
            "frequency (cycles per unit t)",
            "S(f)",
            [series("S(f)", freq, np.maximum(density, 1e-12))],
            logy=True,
        )
    )
    return rows, panels


# --------------------------------------------------------------------------- (b) LMC on a graph


def _lmc_truth(config: GPConfig) -> tuple[list[tuple[int, int]], np.ndarray, GraphLMC]:
    n = config.lmc_nodes
    edges = [(i, i + 1) for i in range(n - 1)]
    position = np.linspace(0.0, 1.0, n)[:, None]
    frequencies = 0.25 * np.exp(1.2 * position[:, 0])  # the node feature sets the latent frequency
    latents = [SpectralMixture([1.0], [float(f)], [0.01]) for f in frequencies]
    truth = GraphLMC.from_graph(edges, n, latents)
    mask = np.asarray(truth.mask)
    loadings = np.where(np.eye(n, dtype=bool), 1.0, np.where(mask, config.lmc_coupling, 0.0))[:, :, None]
    truth = eqx.tree_at(
        lambda m: (m.loadings, m.log_kappa),
        truth,
        (jnp.asarray(loadings, jnp.float32), jnp.full((n, n), math.log(1e-3), jnp.float32)),
    )
    return edges, position, truth


def _lmc(config: GPConfig, key, seed: int, progress: bool):
    edges, position, truth = _lmc_truth(config)
    n, span = config.lmc_nodes, 20.0
    x = jnp.linspace(0.0, span, config.lmc_points)
    X = (jnp.tile(x, n), jnp.repeat(jnp.arange(n), config.lmc_points))
    cov = np.asarray(eqx.filter_jit(lambda k, X: k(X, X))(truth, X), np.float64)
    cov += config.noise**2 * np.eye(cov.shape[0])
    z = np.random.default_rng([seed, 1]).normal(size=cov.shape[0])
    y = np.linalg.cholesky(cov) @ z
    xs, nodes = np.asarray(X[0]), np.asarray(X[1])
    gap = (nodes == 0) & (xs > config.lmc_gap[0] * span) & (xs < config.lmc_gap[1] * span)
    train_X = (X[0][~gap], X[1][~gap])
    train_y = jnp.asarray(y[~gap], jnp.float32)
    test_X = (X[0][gap], X[1][gap])
    grid = jnp.linspace(0.0, span, 200)
    node0 = (grid, jnp.zeros(200, test_X[1].dtype))
    latents = [
        spectral_mixture_from_periodogram(xs[~gap][nodes[~gap] == i], y[~gap][nodes[~gap] == i], 1)
        for i in range(n)
    ]
    variants = {
        "independent GPs": GraphLMC.from_graph([], n, latents),
        "LMC over the graph": GraphLMC.from_graph(edges, n, latents),
    }
    if config.lmc_node_features:
        variants["LMC + node features"] = GraphLMC.from_graph(edges, n, latents, node_features=position)
    rows, curves = [], []
    for name, kernel in variants.items():
        fit = fit_marginal_likelihood(
            ExactGP(kernel, noise=0.3),
            train_X,
            train_y,
            steps=config.lmc_steps,
            learning_rate=config.lmc_learning_rate,
            restarts=config.lmc_restarts,
            key=jax.random.fold_in(key, 1),
        )
        # One prediction call (one compilation) for the held-out points and the plotted curve.
        both = (jnp.concatenate([test_X[0], node0[0]]), jnp.concatenate([test_X[1], node0[1]]))
        prediction = np.asarray(fit.model.predict(train_X, train_y, both), np.float64)
        mse = float(np.mean((prediction[: int(gap.sum())] - y[gap]) ** 2))
        learned = [float(fit.model.kernel.latent_kernel(q).frequencies[0, 0]) for q in range(n)]
        rows.append(
            {
                "part": "lmc",
                "model": name,
                "nodes": n,
                "edges": len(edges) if name != "independent GPs" else 0,
                "held_out_points": int(gap.sum()),
                "held_out_mse": mse,
                "held_out_variance": float(np.var(y[gap])),
                "nll_per_point": fit.final_loss,
                "latent_frequencies": ", ".join(f"{f:.3f}" for f in learned),
                "fit_seconds": round(fit.seconds, 3),
            }
        )
        curves.append(series(name, grid, prediction[int(gap.sum()) :]))
        if progress:
            print(f"gp: lmc: {name}: held-out MSE {mse:.4g}", flush=True)
    node0_mask = nodes == 0
    panel = Panel(
        f"node 0 of a {n}-node path: held-out segment predicted",
        "x",
        "f_0(x)",
        [
            series("node 0 (train)", xs[node0_mask & ~gap], y[node0_mask & ~gap], "scatter"),
            series("node 0 (held out)", xs[gap], y[gap], "reference"),
            *curves,
        ],
    )
    truth_frequencies = ", ".join(f"{float(truth.latent_kernel(q).frequencies[0, 0]):.3f}" for q in range(n))
    return rows, [panel], truth_frequencies


# --------------------------------------------------------------------------- (c) SKI scaling


def _best_seconds(fn, repeats: int) -> float:
    """The fastest of ``repeats`` calls after a first (compiling) one: the least disturbed by other
    work on a shared machine."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return min(times)


@eqx.filter_jit
def _exact_solve(model: ExactGP, x, y):
    solver = model.gaussian_process(x).solver
    return solver.solve_triangular(solver.solve_triangular(y), transpose=True)


@eqx.filter_jit
def _ski_matvec(ski: SKI, v):
    return ski.matvec(v)


@eqx.filter_jit
def _exact_errors(model: ExactGP, ski: SKI, x, y, alpha):
    """Relative errors of SKI's predictive mean at the inputs and of its matrix-vector product
    against the exact GP (dense kernel matrix), and the exact ``log det(K + sigma^2 I)``."""
    solver = model.gaussian_process(x).solver
    dense = model.kernel(x, x)
    exact_mean = dense @ solver.solve_triangular(solver.solve_triangular(y), transpose=True)
    mean_error = jnp.linalg.norm(ski.kernel_matvec(alpha) - exact_mean) / jnp.linalg.norm(exact_mean)
    reference = dense @ y + ski.noise_variance * y
    matvec_error = jnp.linalg.norm(ski.matvec(y) - reference) / jnp.linalg.norm(reference)
    logdet = 2 * jnp.sum(jnp.log(jnp.diag(solver.scale_tril)))
    return mean_error, matvec_error, logdet


@eqx.filter_jit
def _row_error(ski: SKI, x, y, pick):
    """Relative error of SKI's ``K v`` on the rows ``pick``, the exact rows computed 50 at a time
    (never the whole ``n x n`` matrix)."""
    exact = jax.lax.map(lambda r: ski.kernel(r, x) @ y, x[pick].reshape(-1, 50)).reshape(-1)
    reference = exact + ski.noise_variance * y[pick]
    return jnp.linalg.norm(ski.matvec(y)[pick] - reference) / jnp.linalg.norm(reference)


def _ski_problem(n: int, config: GPConfig, seed: int):
    """``n`` sorted uniform inputs at ``ski_density`` per unit, targets ``sin x + sin(0.31 x) / 2``
    plus noise (NumPy, deterministic given the seed), and the grid size (``ski_grid_per_unit``
    points per unit, plus padding)."""
    span = n / config.ski_density
    rng = np.random.default_rng([seed, n])
    x = np.sort(rng.uniform(0.0, span, n))
    y = np.sin(x) + 0.5 * np.sin(0.31 * x) + config.ski_noise * rng.normal(size=n)
    num_grid = max(6, int(round(config.ski_grid_per_unit * span)) + 5)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32), num_grid


def _ski(config: GPConfig, key, seed: int, progress: bool):
    kernel = SquaredExponential(1.0, 1.0)
    noise_variance = config.ski_noise**2
    exact_model = ExactGP(kernel, noise=config.ski_noise)
    rows = []
    for n in sorted(set(config.ski_sizes) | set(config.exact_sizes)):
        x, y, num_grid = _ski_problem(n, config, seed)
        row = {"part": "ski", "n": n, "grid_points": num_grid}
        ski = SKI(kernel, x, noise_variance=noise_variance, num_grid=num_grid)
        row["ski_matvec_s"] = _best_seconds(lambda s=ski, v=y: _ski_matvec(s, v), config.ski_repeats)
        row["ski_solve_s"] = _best_seconds(lambda s=ski, v=y: s.solve(v), config.ski_repeats)
        alpha, steps = ski.solve(y)
        row["cg_steps"] = int(steps)
        exact = n in config.exact_sizes
        if exact:
            row["exact_solve_s"] = _best_seconds(
                lambda x=x, y=y: _exact_solve(exact_model, x, y), config.ski_repeats
            )
            mean_error, matvec_error, exact_logdet = _exact_errors(exact_model, ski, x, y, alpha)
            row["mean_rel_error"], row["matvec_rel_error"] = float(mean_error), float(matvec_error)
            if n == max(config.exact_sizes):  # one size only: the estimator compiles anew for every n
                logdet, _ = ski.log_determinant(jax.random.fold_in(key, 7), num_probes=16, num_steps=30)
                row["logdet_rel_error"] = abs(float(logdet - exact_logdet)) / abs(float(exact_logdet))
        else:
            rows_count = min(config.error_rows, n) // 50 * 50 or 50
            pick = jnp.asarray(np.random.default_rng([seed, n, 1]).choice(n, rows_count, replace=False))
            row["matvec_rel_error"] = float(_row_error(ski, x, y, pick))
        if n not in config.ski_sizes:
            row["note"] = "exact size only"
        rows.append(row)
        if progress:
            exact_text = f", exact solve {row['exact_solve_s']:.3g} s" if exact else ""
            print(
                f"gp: ski n = {n}: matvec {row['ski_matvec_s']:.3g} s, CG solve {row['ski_solve_s']:.3g} s "
                f"({row['cg_steps']} steps){exact_text}, matvec error {row['matvec_rel_error']:.2e}",
                flush=True,
            )
    return rows


def _slope(rows, key: str, min_n: int) -> float:
    pts = [(r["n"], r[key]) for r in rows if key in r and r["n"] >= min_n and r[key] > 0]
    if len(pts) < 2:
        return float("nan")
    n, t = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(n, t, 1)[0])


def run(config: GPConfig, *, seed: int = 0, progress: bool = True) -> Result:
    key = jax.random.key(seed)
    extrapolation, panels_a = _extrapolation(config, jax.random.fold_in(key, 0), seed, progress)
    lmc, panels_b, truth_frequencies = _lmc(config, jax.random.fold_in(key, 1), seed, progress)
    ski = _ski(config, jax.random.fold_in(key, 2), seed, progress)
    ski_rows = [r for r in ski if "note" not in r]
    large = sorted(r["n"] for r in ski_rows)
    floor = large[len(large) // 2 - 1] if len(large) >= 3 else large[0]  # skip the overhead-bound sizes
    slopes = {
        "ski_matvec": _slope(ski_rows, "ski_matvec_s", floor),
        "ski_solve": _slope(ski_rows, "ski_solve_s", floor),
        "exact_solve": _slope(
            ski, "exact_solve_s", sorted(config.exact_sizes)[max(0, len(config.exact_sizes) // 2 - 1)]
        ),
    }
    summary = {"part": "scaling"} | {f"loglog_slope_{k}": round(v, 3) for k, v in slopes.items()}
    timing = [
        series(label, [r["n"] for r in ski if name in r], [r[name] for r in ski if name in r])
        for label, name in (
            ("SKI matvec", "ski_matvec_s"),
            ("SKI CG solve", "ski_solve_s"),
            ("exact Cholesky solve", "exact_solve_s"),
        )
    ]
    errors = [
        series(label, [r["n"] for r in ski if name in r], [r[name] for r in ski if name in r], "scatter")
        for label, name in (
            ("matvec rel. error", "matvec_rel_error"),
            ("predictive mean rel. error", "mean_rel_error"),
            ("log det rel. error", "logdet_rel_error"),
        )
    ]
    panels_c = [
        Panel("SKI vs exact GP: seconds per operation", "n", "seconds", timing, logx=True, logy=True),
        Panel("SKI errors against the exact GP", "n", "relative error", errors, logx=True, logy=True),
    ]
    sm, se = (
        next(r for r in extrapolation if r["model"] == m) for m in ("spectral mixture", "squared exponential")
    )
    best_lmc = min((r for r in lmc if r["model"] != "independent GPs"), key=lambda r: r["held_out_mse"])
    independent = next(r for r in lmc if r["model"] == "independent GPs")
    notes = [
        f"Extrapolation ({config.series}): spectral mixture RMSE {sm['extrapolation_rmse']:.4g} vs squared "
        f"exponential {se['extrapolation_rmse']:.4g} over {sm['test_points']} held-out points "
        f"(polynomial trend of degree {config.trend_degree} removed first; Q = {config.sm_components}, "
        f"{config.restarts} restarts of {config.steps} Adam steps).",
        f"LMC: held-out MSE on node 0 {best_lmc['held_out_mse']:.4g} ({best_lmc['model']}) vs "
        f"{independent['held_out_mse']:.4g} for independent GPs (segment variance "
        f"{independent['held_out_variance']:.4g}); true latent frequencies {truth_frequencies}.",
        f"Scaling (log-log slope of seconds against n): SKI matvec {slopes['ski_matvec']:.2f}, SKI CG solve "
        f"{slopes['ski_solve']:.2f} (n >= {floor}), exact Cholesky solve {slopes['exact_solve']:.2f}; a "
        "slope of 1 is linear, 3 cubic (the exact solve also forms the n^2 kernel matrix, so its slope "
        "approaches 3 only at large n).",
        f"SKI: Keys cubic interpolation on {config.ski_grid_per_unit:g} grid points per length scale, FFT "
        "Toeplitz products, lineax CG (tolerance 1e-4), stochastic Lanczos quadrature (16 Rademacher probes, "
        "30 steps) for the log-determinant; float32. Timings are on this machine, compiled first.",
        "GP library: tinygp (depends only on jax and equinox) rather than GPJax 1.0, which pins jax < 0.11.",
    ]
    figures = [
        Figure("extrapolation", "Spectral mixture vs squared exponential", panels_a, columns=2),
        Figure("lmc", "Coregionalisation over a graph", panels_b, columns=1),
        Figure("ski_scaling", "Structured kernel interpolation", panels_c, columns=2),
    ]
    return Result(
        "gp", dataclasses.asdict(config), extrapolation + lmc + ski + [summary], figures=figures, notes=notes
    )


EXPERIMENT = Experiment(
    "gp",
    "Gaussian processes: spectral mixture vs squared exponential on extrapolation, a linear model of "
    "coregionalisation over a graph vs independent GPs, SKI time and error vs n against the exact GP.",
    GPConfig,
    run,
)
