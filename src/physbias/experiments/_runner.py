"""The experiment runner: variants fitted and evaluated one way, runs validated and recorded one way.

Two halves:

* :func:`compare` — what every experiment does with the models it compares: fit each
  :class:`Variant` with :func:`physbias.fit`, evaluate it with library metrics, and collect one row
  per variant plus its loss curve (:class:`Comparison`).
* :func:`prepare` / :func:`execute` — what every *run* does: validate the experiment name, preset,
  overrides, seed and output folder before any work (:class:`RunSpec`), run, stamp the
  :class:`~physbias.report.Result` with how it was made, print and write it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..report import (
    Figure,
    Panel,
    Result,
    Series,
    check_output_folder,
    print_table,
    progress_bar,
    series,
    write_results,
)
from ..train import FitResult, LossFn, fit
from ._config import PRESETS, apply_overrides
from ._registry import Experiment, get_experiment


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model (with its bias) that an experiment compares.

    Attributes:
        name: the row's name and the progress bar's description.
        model: the ``equinox.Module`` to train.
        loss: ``loss_fn(model, batch, key) -> scalar``.
        data: what :func:`physbias.fit` trains on (a ``Dataset`` or a tuple of arrays); a data
            transform (augmentation) is applied before it is put here, or inside ``loss``.
        labels: leading columns of the row (e.g. ``{"bias": "observation", "kind": ...}``).
        learning_rate, optimizer, batch_size: as in :func:`physbias.fit`.
        epochs: this variant's epochs (``None``: the comparison's).
        key: this variant's training key (``None``: the comparison's, shared by every variant so
            that all see the same minibatches).
    """

    name: str
    model: Any
    loss: LossFn
    data: Any
    labels: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 1e-3
    optimizer: Any = None
    batch_size: int | None = None
    epochs: int | None = None
    key: Any = None


@dataclasses.dataclass
class Comparison:
    """What :func:`compare` returns: one row and one fit per variant, in order."""

    rows: list[dict[str, Any]]
    fits: dict[str, FitResult]

    def loss_series(self, prefix: str = "") -> list[Series]:
        """Each variant's training loss against the optimisation step."""
        return [
            series(f"{prefix}{name}", range(1, len(r.losses) + 1), r.losses) for name, r in self.fits.items()
        ]

    def loss_figure(self, title: str, ylabel: str = "loss", name: str = "training_loss") -> Figure:
        """One log-scale panel of every variant's training loss."""
        return Figure(name, title, [Panel("training loss", "step", ylabel, self.loss_series(), logy=True)], 1)


Evaluate = Callable[[Variant, FitResult], Mapping[str, Any]]
"""``evaluate(variant, fit_result) -> {column: value}``: the metrics of one trained variant."""


def compare(
    variants: Iterable[Variant],
    evaluate: Evaluate,
    *,
    key,
    epochs: int,
    progress: bool = True,
    description: str = "",
    workers: int = 1,
) -> Comparison:
    """Fit every variant, evaluate it, and collect its row and loss curve.

    Each row is ``variant.labels | evaluate(variant, fit_result) | {"train_seconds", "diverged"}``.
    ``variants`` may be a generator: each model is then built just before it is trained (with
    ``workers > 1``, just before it is queued).

    ``workers > 1`` fits and evaluates that many variants at once, in threads. A small model's
    step is a chain of short operations between which XLA's worker threads wait; two trainings
    fill each other's gaps (measured on 2 cores: two chain-pendulum LNN fits 1.4x and two Neural
    ODE fits 1.6x faster together than one after the other). Every result is the same as with one
    worker: each fit has its own key and data, and XLA's CPU results do not depend on the
    scheduling. Rows keep the order of ``variants``. Each ``train_seconds`` is then that fit's own
    wall time while sharing the machine. One progress bar counts the variants done.
    """
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"`workers` must be a positive integer, got {workers!r}")

    def run_one(v: Variant, bar: bool) -> tuple[dict[str, Any], FitResult]:
        result = fit(
            v.model,
            v.loss,
            v.data,
            key=key if v.key is None else v.key,
            epochs=epochs if v.epochs is None else v.epochs,
            learning_rate=v.learning_rate,
            optimizer=v.optimizer,
            batch_size=v.batch_size,
            progress=bar,
            description=f"{description}{v.name}",
        )
        row = dict(v.labels) | dict(evaluate(v, result))
        row |= {"train_seconds": result.seconds, "diverged": result.diverged}
        return row, result

    rows, fits, names = [], {}, set()

    def check_name(v: Variant) -> Variant:
        if v.name in names:
            raise ValueError(f"two variants are called {v.name!r}; names must be unique")
        names.add(v.name)
        return v

    if workers == 1:
        for v in variants:
            row, result = run_one(check_name(v), progress)
            rows.append(row)
            fits[v.name] = result
        return Comparison(rows, fits)
    # Rich draws one live display at a time: the fits in threads run without their own bars, and
    # one bar counts the variants done.
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        jobs = [(v, pool.submit(run_one, v, False)) for v in map(check_name, variants)]
        with progress_bar(len(jobs), f"{description}variants", enabled=progress) as advance:
            for v, job in jobs:
                row, result = job.result()
                rows.append(row)
                fits[v.name] = result
                advance(1)
    return Comparison(rows, fits)


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One validated run: experiment, seed, preset and overrides (field -> text), output folder."""

    experiment: str
    seed: int = 0
    preset: str = "default"
    overrides: tuple[tuple[str, str], ...] = ()
    out: str | None = None

    @property
    def command(self) -> str:
        """The command line that repeats this run."""
        parts = ["physbias", "run", self.experiment, "--seed", str(self.seed)]
        if self.preset != "default":
            parts.append(f"--{self.preset}")
        for k, v in self.overrides:
            parts += ["--set", f"{k}={v}"]
        return shlex.join(parts)

    def config(self):
        """The validated config of this run."""
        experiment = get_experiment(self.experiment)
        return apply_overrides(experiment.make_config(self.preset), dict(self.overrides))


def prepare(
    name: str,
    *,
    seed: int = 0,
    preset: str = "default",
    overrides: Mapping[str, str] | None = None,
    out: str | Path | None = None,
    overwrite: bool = False,
) -> RunSpec:
    """Validate everything a run needs, before any work and before any file is written.

    Raises:
        KeyError: unknown experiment (the message lists the valid names).
        ValueError: bad seed, preset, override or output folder (the message names it).
    """
    get_experiment(name)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"--seed must be a non-negative integer, got {seed!r}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    spec = RunSpec(name, seed, preset, tuple((overrides or {}).items()), None if out is None else str(out))
    spec.config()  # raises on a bad override
    if out is not None:
        check_output_folder(out, overwrite=overwrite)
    return spec


def execute(spec: RunSpec, *, progress: bool = True, verbose: bool = True) -> Result:
    """Run ``spec`` (already :func:`prepare`-d), stamp the result, print it and write its folder."""
    experiment: Experiment = get_experiment(spec.experiment)
    config = spec.config()
    start = time.perf_counter()
    result = experiment.run(config, seed=spec.seed, progress=progress)
    result.seconds = result.seconds or time.perf_counter() - start
    result.config = dataclasses.asdict(config)
    result.seed, result.preset, result.overrides = spec.seed, spec.preset, dict(spec.overrides)
    result.command = spec.command
    if verbose:
        print_table(result.table, title=f"{spec.experiment} ({spec.preset}, seed {spec.seed})")
        for note in result.notes:
            print(f"- {note}")
    if spec.out is not None:
        folder = write_results(result, spec.out)
        if verbose:
            print(
                f"results: {folder}/results.json, results.md and {len(result.figures)} plot(s); "
                f"{result.seconds:.1f} s"
            )
    return result
