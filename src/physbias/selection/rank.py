"""Rank candidate biases on one data set by their Laplace evidence, without validation data.

For each candidate (:mod:`physbias.selection.candidates`) and each of ``seeds`` initialisations,
a network is trained by marginal likelihood (:func:`physbias.marglik.marglik_scan`: MAP steps and
type-II updates of the prior precision ``delta`` and the noise ``sigma`` through the Laplace
evidence with the full generalised Gauss-Newton curvature) and its log evidence is recorded. The
candidates are ranked by the mean over seeds of ``log p(D) / N``; the spread over seeds is the
evidence's noise (MacKay 1992; Immer et al. 2021, 2022 for invariances learned this way). A
model that cannot fit the data pays in the likelihood; a flexible one pays in the Occam factor
``-1/2 log det(c G + delta I) + P/2 log delta``, so the most restrictive bias the data allow wins.

Inputs and outputs are divided by one scale each (their root mean square; no centring, which
would break parities and rotations); evidences are reported in the data's own units,
``log p(y) = log p(y / s) - N K log s``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import TrajectoryDataset
from ..dynamics import RK4, FlowMap, describe_quadratic, orbit_flow_times, quadratic_of_generator
from ..evidence import laplace, optimize_hyperparameters
from ..marglik import invariance_fit, marglik_scan, noether_fit
from .candidates import (
    CONSERVATIVE,
    NOETHER_SAMPLES,
    Candidate,
    Layout,
    build_dynamics_model,
    build_regression_model,
    cast,
    check_dynamics_candidate,
    check_regression_candidate,
    parse_candidate,
    propose_dynamics,
    propose_regression,
)

NOISE_SIGMAS = 2.0  # top two within this many standard errors of their difference: a warning


@dataclasses.dataclass(frozen=True)
class SelectionSettings:
    """Training settings shared by every candidate (small networks: the curvature is dense)."""

    seeds: int = 3
    width: int = 32
    depth: int = 2
    rounds: int = 8
    epochs_per_round: int = 500
    burn_in: int = 1000
    learning_rate: float = 1e-2
    hyper_steps: int = 100
    symmetry_epochs: int = 1000

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "learning_rate":
                if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                    raise ValueError(f"`learning_rate` must be a positive number, got {v!r}")
            elif f.name == "burn_in":
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    raise ValueError(f"`burn_in` must be a non-negative integer, got {v!r}")
            elif not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"`{f.name}` must be a positive integer, got {v!r}")


@dataclasses.dataclass
class Selection:
    """What :func:`select_regression` and :func:`select_dynamics` return.

    ``rows``: one record per candidate, best first (``rank``, ``candidate``, ``bias``,
    ``log_evidence_per_point`` (mean over seeds), ``evidence_spread`` (their standard deviation),
    ``train_rmse``, ``noise_std``, ``heldout_rmse`` (only with a hold-out; never used to rank),
    ``learned``, ``seconds``). ``per_seed``: candidate -> log evidence per point for each seed.
    """

    task: str
    rows: list[dict]
    per_seed: dict[str, list[float]]
    recommendation: str
    warning: str | None
    n_train: int
    models: dict[str, object]  # candidate -> the best seed's trained model

    @property
    def best(self) -> str:
        return self.rows[0]["candidate"]


def _rms(a: np.ndarray) -> float:
    s = float(np.sqrt(np.mean(np.square(a))))
    return s if s > 0 else 1.0


def _split(n: int, holdout: float | None, key) -> tuple[np.ndarray, np.ndarray]:
    if holdout is None or holdout == 0:
        return np.arange(n), np.arange(0)
    if not 0 < holdout < 1:
        raise ValueError(f"`holdout` must be a fraction in (0, 1), got {holdout!r}")
    n_test = max(1, int(round(holdout * n)))
    if n - n_test < 2:
        raise ValueError(f"holdout {holdout} leaves {n - n_test} training examples; at least 2 are needed")
    perm = np.asarray(jax.random.permutation(key, n))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _marglik(model, data, settings: SelectionSettings, noise_std: float, hyperparameters=None):
    """:func:`~physbias.marglik.marglik_scan` with the selection's training settings."""
    return marglik_scan(
        model,
        data,
        rounds=settings.rounds,
        epochs_per_round=settings.epochs_per_round,
        learning_rate=settings.learning_rate,
        hyper_steps=settings.hyper_steps,
        noise_std=noise_std,
        burn_in=settings.burn_in,
        hyperparameters=hyperparameters,
    )


def _train_noether(model, data, settings: SelectionSettings, noise_std: float, scale: float, key):
    """Noether's razor, then the Laplace evidence of what it found.

    1. The conserved quantity: a :class:`~physbias.dynamics.SymmetrizedHamiltonianNN` (ELU) over one
       quadratic quantity trained by the matrix-normal ELBO (:func:`~physbias.marglik.noether_fit`,
       ``symmetry_epochs`` full-batch steps, fixed noise a tenth of the starting one), whose Occam
       pressure grows the symmetry the data allow (van der Ouderaa et al. 2024).
    2. The evidence: the same network, fresh, averaged over evenly spaced flow times of the learned
       quantity (a full orbit when it closes, :func:`~physbias.dynamics.orbit_flow_times`), trained
       by :func:`~physbias.marglik.marglik_scan` like every other candidate, the quantity's
       coefficients refined with the weights (in the prior and the curvature) and the flow times
       held fixed. The evidence is therefore a Laplace evidence comparable with the others'.

    Returns ``(model, log evidence, noise std, the learned quantity in the data's units: the
    razor's, then the refined one)``.
    """
    # The search uses ELU, as the reference does: with softplus the quantity found varied by seed
    # (q p on one probe seed, a sheared ellipse on another), with ELU it was q^2 + p^2 on both; the
    # evidence network keeps softplus, as ``hnn``, whose smooth second derivatives fit better.
    searcher = eqx.tree_at(lambda m: m.dynamics.net.activation, model, jax.nn.elu)
    first = noether_fit(
        searcher,
        data,
        key=key,
        epochs=settings.symmetry_epochs,
        learning_rate=settings.learning_rate,
        noise_std=0.1 * noise_std,
        progress=False,
    )
    found = first.conserved
    times = orbit_flow_times(found, NOETHER_SAMPLES)
    model = eqx.tree_at(lambda m: (m.dynamics.conserved, m.dynamics.flow_times), model, (found, times))
    r = _marglik(model, data, settings, noise_std, hyperparameters=lambda m: m.dynamics.flow_times)

    def formula(quantities) -> str:  # C in the data's units: x_scaled = x / scale
        a, b = quadratic_of_generator(np.asarray(quantities.generators()[0]))
        return describe_quadratic(a / scale**2, b / scale)

    # The razor's answer, and where the evidence fit's refinement took it (it can drift: on one
    # oscillator seed q^2 + p^2 became q^2 + 0.78 p^2, at a lower evidence than the other seed's).
    found_text, refined_text = formula(found), formula(r.model.dynamics.conserved)
    return r.model, r.log_evidence, r.noise_std, f"C = {found_text} (refined: {refined_text})"


def _train(
    model, data, settings: SelectionSettings, candidate: Candidate, noise_std: float, scale: float, key
):
    """Marginal-likelihood training of ``candidate``'s model from the initial noise ``noise_std``;
    returns ``(model, log evidence, noise std, what was learned)``."""
    if candidate.base == "noether":
        return _train_noether(model, data, settings, noise_std, scale, key)
    if not candidate.learned_extent:
        r = _marglik(model, data, settings, noise_std)
        return r.model, r.log_evidence, r.noise_std, None
    # The extent is a hyperparameter: learned up the evidence, whose curvature is recomputed and
    # differentiated every epoch (about 0.3 s an epoch for a 1000-parameter network on 200
    # points: capped at 300 epochs), then a final refit.
    epochs = min(300, settings.rounds * settings.epochs_per_round)
    r = invariance_fit(
        model,
        data,
        likelihood="regression",
        curvature="full",
        epochs=epochs,
        learning_rate=settings.learning_rate,
        noise_std=noise_std,
    )
    lap = laplace(
        r.model, data, likelihood="regression", curvature="full", hyperparameters=lambda m: m.extent
    )
    hyper = optimize_hyperparameters(lap, steps=500, prior_precision=r.prior_precision, noise_std=r.noise_std)
    extent = np.degrees(np.asarray(r.model.extent))
    return (
        r.model,
        hyper.log_evidence,
        hyper.noise_std,
        "extent " + ", ".join(f"{e:.1f}" for e in extent) + " deg",
    )


def _rank(
    task: str,
    candidates: Sequence[Candidate],
    build: Callable[[Candidate, jax.Array], object],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray] | None,
    scales: tuple[float, float, float],
    settings: SelectionSettings,
    describe: Callable[[Candidate], str],
    seed: int,
    progress: Callable[[str], None] | None,
) -> Selection:
    # The evidence's log-determinants and small noise levels need float64 (as the exact-evidence
    # experiments); the switch is scoped to this call.
    with jax.enable_x64(True):
        return _rank_x64(task, candidates, build, train, test, scales, settings, describe, seed, progress)


def _rank_x64(task, candidates, build, train, test, scales, settings, describe, seed, progress) -> Selection:
    sx, sy, noise0 = scales
    x, y = train
    n, k = y.shape
    data = (jnp.asarray(x / sx), jnp.asarray(y / sy))
    rows, per_seed, models = [], {}, {}
    for c in candidates:
        start = time.perf_counter()
        evidences, fits = [], []
        for s in range(settings.seeds):
            key = jax.random.fold_in(jax.random.key(seed), s)
            with jax.numpy_dtype_promotion("standard"):
                model = cast(build(c, key), jnp.float64)
                trained, log_z, sigma, learned = _train(
                    model, data, settings, c, noise0, sx, jax.random.fold_in(key, 1)
                )
            # Back to the data's units: log p(y) = log p(y / s_y) - N K log s_y.
            evidences.append((log_z - n * k * math.log(sy)) / n)
            fits.append((trained, sigma * sy, learned))
        best = int(np.argmax(evidences))
        trained, sigma, learned = fits[best]
        predict = jax.jit(jax.vmap(trained))

        def rmse(xs, ys, predict=predict):
            pred = np.asarray(predict(jnp.asarray(xs / sx))).reshape(ys.shape) * sy
            return float(np.sqrt(np.mean((pred - ys) ** 2)))

        finite = [e for e in evidences if math.isfinite(e)]
        row = {
            "candidate": c.name,
            "bias": describe(c),
            "log_evidence_per_point": float(np.mean(finite)) if finite else -math.inf,
            "evidence_spread": float(np.std(finite)) if len(finite) > 1 else 0.0,
            "train_rmse": rmse(x, y),
            "noise_std": float(sigma),
            "heldout_rmse": rmse(*test) if test is not None and len(test[0]) else "",
            "learned": learned or "",
            "seconds": round(time.perf_counter() - start, 2),
        }
        rows.append(row)
        per_seed[c.name] = [float(e) for e in evidences]
        models[c.name] = trained
        if progress is not None:
            progress(
                f"{c.name}: log evidence / N = {row['log_evidence_per_point']:.4f} "
                f"(spread {row['evidence_spread']:.4f}), train RMSE {row['train_rmse']:.4g}"
            )
    rows.sort(key=lambda r: -r["log_evidence_per_point"])
    for i, r in enumerate(rows):
        r["rank"] = i + 1
        r["gap_to_best"] = rows[0]["log_evidence_per_point"] - r["log_evidence_per_point"]
    rows = [{"rank": r.pop("rank"), **r} for r in rows]
    first = rows[0]
    recommendation = (
        f"The data support {first['candidate']!r} ({first['bias']}): "
        f"log evidence {first['log_evidence_per_point']:.3f} "
        f"per point, ahead of the next ({rows[1]['candidate'] if len(rows) > 1 else 'none'}) by "
        f"{rows[1]['gap_to_best'] if len(rows) > 1 else 0.0:.3f} per point ({n} points)."
        if len(rows) > 1
        else f"Only one candidate was compared: {first['candidate']!r}."
    )
    warning = None
    if len(rows) > 1:
        noise = math.hypot(first["evidence_spread"], rows[1]["evidence_spread"]) / math.sqrt(settings.seeds)
        gap = rows[1]["gap_to_best"]
        if gap < NOISE_SIGMAS * noise or gap * n < 1.0:
            warning = (
                f"the top two candidates ({first['candidate']!r}, {rows[1]['candidate']!r}) are within "
                "the evidence "
                f"noise: gap {gap:.4f} per point ({gap * n:.2f} nats in all) against a standard error of "
                f"{noise:.4f} over {settings.seeds} seeds; more data or seeds would separate them"
            )
    return Selection(task, rows, per_seed, recommendation, warning, n, models)


def _check_finite(a: np.ndarray, name: str) -> None:
    if a.size == 0:
        raise ValueError(f"`{name}` is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"`{name}` contains NaN or inf")


def select_regression(
    x,
    y,
    *,
    layout: str | Layout | None = None,
    candidates: Sequence[str] | None = None,
    soft: bool = False,
    settings: SelectionSettings | None = None,
    holdout: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Rank regression biases (inputs ``x (N, d)`` -> outputs ``y (N,)`` or ``(N, K)``) by their
    Laplace evidence (module docstring). ``layout`` is ``"NxM"`` (N groups of M inputs; default: d
    groups of one); ``candidates`` are names (:mod:`~physbias.selection.candidates`), default the
    proposals for the layout (with ``soft``: and their soft versions). ``holdout`` (a fraction)
    sets examples aside for an *informative* held-out RMSE; they are never used to rank.

    Every argument is checked before any training (``ValueError`` naming it).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"`x` must be (N, d) and `y` (N,) or (N, K); got {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"`x` has {x.shape[0]} examples but `y` has {y.shape[0]}")
    _check_finite(x, "x")
    _check_finite(y, "y")
    settings = settings or SelectionSettings()
    layout = layout if isinstance(layout, Layout) else Layout.parse(layout, x.shape[1])
    if layout.size != x.shape[1]:
        raise ValueError(f"`layout` {layout} describes {layout.size} inputs but `x` has {x.shape[1]}")
    k = y.shape[1]
    names = list(candidates) if candidates else propose_regression(layout, k, soft=soft)
    if len(set(names)) != len(names):
        raise ValueError(f"`candidates` lists a name twice: {names}")
    parsed = [parse_candidate(nm) for nm in names]
    for c in parsed:
        check_regression_candidate(c, layout, k)
    train_idx, test_idx = _split(x.shape[0], holdout, jax.random.key(10_000 + seed))
    if len(train_idx) < 2:
        raise ValueError(f"at least 2 training examples are needed, got {len(train_idx)}")
    train, test = (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])

    def build(c, key):
        return build_regression_model(
            c, layout, k, width=settings.width, depth=settings.depth, key=key, dtype=jnp.float64
        )

    def describe(c):
        if c.base == "none":
            return "no bias"
        kind = {
            "hard": "hard",
            "soft": "soft (learned extent)" if c.learned_extent else "soft (lambda = 1/2)",
        }
        return f"{c.base} symmetry, {kind[c.strength]}"

    return _rank(
        "regression",
        parsed,
        build,
        train,
        test if len(test_idx) else None,
        (_rms(train[0]), _rms(train[1]), 1.0),
        settings,
        describe,
        seed,
        progress,
    )


def select_dynamics(
    data: TrajectoryDataset,
    *,
    candidates: Sequence[str] | None = None,
    settings: SelectionSettings | None = None,
    holdout: float | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Selection:
    """Rank dynamics models on trajectories by the Laplace evidence of their one-step maps
    ``x_t -> x_{t+1}`` (one RK4 step of the learned field, :class:`~physbias.dynamics.FlowMap`).
    ``candidates`` default to ``node``, ``node2``, ``hnn``; ``holdout`` holds out whole
    trajectories for an informative one-step RMSE."""
    if not isinstance(data, TrajectoryDataset):
        raise TypeError(f"`data` must be a TrajectoryDataset, got {type(data).__name__}")
    states = np.asarray(data.states, np.float64)
    _check_finite(states, "states")
    if data.n_times < 2:
        raise ValueError("trajectories need at least 2 times for one-step pairs")
    settings = settings or SelectionSettings()
    d = data.state_size
    names = list(candidates) if candidates else propose_dynamics(d, data.coordinates)
    if len(set(names)) != len(names):
        raise ValueError(f"`candidates` lists a name twice: {names}")
    parsed = [parse_candidate(nm) for nm in names]
    for c in parsed:
        check_dynamics_candidate(c, d, data.coordinates)
    train_idx, test_idx = _split(len(data), holdout, jax.random.key(10_000 + seed))
    if holdout and len(train_idx) < 1:
        raise ValueError("the hold-out leaves no training trajectory")

    def pairs(s):
        return s[:, :-1].reshape(-1, d), s[:, 1:].reshape(-1, d)

    train = pairs(states[train_idx])
    test = pairs(states[test_idx]) if len(test_idx) else None
    scale = _rms(train[0])
    dt = data.dt

    def build(c, key):
        field = build_dynamics_model(c, d, width=settings.width, depth=settings.depth, key=key)
        # The field acts on states / scale; time is unchanged, so the step is dt.
        return FlowMap(field, dt, 1, RK4())

    def describe(c):
        return "conserves energy" if CONSERVATIVE[c.base] else "dissipation allowed"

    # The next state is mostly the current one: the noise starts at the size of a step (in the
    # scaled units), not of the state, or the prior would pin a Hamiltonian network at H = const.
    noise0 = _rms(train[1] - train[0]) / scale
    return _rank(
        "dynamics", parsed, build, train, test, (scale, scale, noise0), settings, describe, seed, progress
    )
