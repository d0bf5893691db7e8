"""``physbias run rpp``: residual pathway priors on a symmetry that holds exactly or only
approximately (Finzi, Benton & Wilson 2021; seed 004).

The task is EMLP's Inertia (O(3)): masses and positions -> inertia tensor. Its broken variant adds
``broken * sum_i m_i (z r_i^T + r_i z^T)``, a term tied to a fixed direction ``z`` (think of
gravity), which no O(3)-equivariant model can represent. MLP, EMLP and RPP (EMLP + a flexible
path with a strong prior) are trained on both; RPP should be best or tied on each.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import numpy as np

from ..nn.emlp import EMLP
from ..nn.rpp import flexible_fraction, rpp_emlp, rpp_penalty
from ..report import Figure, Panel, Result, series
from ..systems.symmetric_tasks import inertia
from . import Experiment
from ._config import validate_config
from ._symmetric import Standardized, n_params, score, train_regressor

MODELS = ("MLP", "EMLP", "RPP")


@dataclasses.dataclass(frozen=True)
class RPPConfig:
    broken: float = 0.3
    models: tuple[str, ...] = MODELS
    n_train: int = 1000
    n_test: int = 2000
    width: int = 256
    depth: int = 3
    epochs: int = 600
    batch_size: int = 500
    learning_rate: float = 3e-3
    equivariant_prior: float = 1e-5
    flexible_prior: float = 1.0  # swept 0.01 / 0.1 / 1.0: 1.0 ties EMLP on exact data and is best on broken

    def __post_init__(self):
        validate_config(self)
        for m in self.models:
            if m not in MODELS:
                raise ValueError(f"config `models`: unknown model {m!r}; valid: {', '.join(MODELS)}")
        if self.broken < 0 or self.equivariant_prior < 0 or self.flexible_prior < 0:
            raise ValueError("config `broken`, `equivariant_prior` and `flexible_prior` must be >= 0")

    @classmethod
    def quick(cls) -> RPPConfig:
        return cls(n_train=300, n_test=500, width=96, depth=2, epochs=200)

    @classmethod
    def full(cls) -> RPPConfig:
        return cls(width=384, epochs=900)


def _model(name, task, config, key):
    if name == "EMLP":
        net = EMLP(task.rep_in, task.rep_out, task.G, config.width, config.depth, key=key)
    elif name == "RPP":
        net = rpp_emlp(task.rep_in, task.rep_out, task.G, config.width, config.depth, key=key)
    else:
        n_in, n_out = task.rep_in.size(task.G), task.rep_out.size(task.G)
        net = eqx.nn.MLP(n_in, n_out, config.width, config.depth, activation=jax.nn.silu, key=key)
    return Standardized(net, task)


def run(config: RPPConfig, *, seed: int = 0, progress: bool = True) -> Result:
    start = time.perf_counter()
    key = jax.random.key(seed)
    table, curves = [], []
    for broken in (0.0, config.broken):
        task = inertia(np.random.default_rng(seed), config.n_train + config.n_test, broken=broken)
        train_idx = np.arange(config.n_train)
        test_idx = np.arange(config.n_train, config.n_train + config.n_test)
        # Same initial weights (RPP starts as the EMLP) and the same minibatches for every model.
        key, k_model, k_fit = jax.random.split(key, 3)
        for name in config.models:
            model = _model(name, task, config, k_model)
            penalty = None
            if name == "RPP":
                penalty = lambda m: rpp_penalty(m, config.equivariant_prior, config.flexible_prior)  # noqa: E731
            result = train_regressor(
                model,
                task,
                train_idx,
                key=k_fit,
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                batch_size=config.batch_size,
                penalty=penalty,
                progress=progress,
                description=f"{task.name} {name}",
            )
            row = {"variant": "exact" if broken == 0 else f"broken ({broken:g})", "model": name}
            row |= {"params": n_params(model.net)}
            row |= score(result.model, task, test_idx)
            row["flexible_fraction"] = flexible_fraction(result.model.net) if name == "RPP" else float("nan")
            row |= {"train_seconds": result.seconds, "diverged": result.diverged}
            table.append(row)
            curves.append(series(f"{row['variant']} {name}", range(1, len(result.losses) + 1), result.losses))
    fig = Figure(
        "training_loss",
        "RPP: training loss (standardised MSE, plus the prior for RPP)",
        [Panel("training loss", "step", "loss", curves, logy=True)],
        1,
    )
    notes = [
        "Task: EMLP's Inertia, O(3); the broken variant adds broken * sum_i m_i (z r_i^T + r_i z^T) "
        "with z the fixed unit vector along the third axis.",
        f"RPP prior: {config.equivariant_prior:g} * ||equivariant coefficients||^2 + "
        f"{config.flexible_prior:g} * ||flexible weights||^2 added to the standardised MSE.",
        "flexible_fraction: sum ||B||_F / (sum ||A||_F + sum ||B||_F) over RPP's layers (0 = exactly "
        "equivariant).",
        "equivariance_error: as in emlp-synthetic (batch-relative, 4 sampled elements, float32).",
    ]
    return Result("rpp", dataclasses.asdict(config), table, time.perf_counter() - start, [fig], notes)


EXPERIMENT = Experiment(
    "rpp",
    "Residual pathway priors: MLP vs EMLP vs RPP on exact and broken O(3) inertia.",
    RPPConfig,
    run,
)
