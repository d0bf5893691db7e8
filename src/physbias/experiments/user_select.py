"""The job behind ``physbias select``: rank candidate biases on the user's own data by evidence.

Composition only: read the file (:func:`physbias.data.load_regression` or
:func:`physbias.data.load_trajectories`), rank the candidates (:func:`physbias.selection.select_regression`
or :func:`~physbias.selection.select_dynamics`) and return a :class:`~physbias.report.Result`
with the ranked table, the recommendation, a warning when the top two are within the evidence
noise, and the evidence plot.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..report import Figure, Panel, Result, series
from ..selection import Selection, SelectionSettings, select_dynamics, select_regression

TASKS = ("regression", "dynamics")


def selection_figure(selection: Selection, title: str) -> Figure:
    """Log evidence per point of every candidate (each seed, and their mean), best first."""
    names = [r["candidate"] for r in selection.rows]
    seeds = [
        series(f"{nm} (seeds)", [i + 1] * len(selection.per_seed[nm]), selection.per_seed[nm], "scatter")
        for i, nm in enumerate(names)
    ]
    mean = series(
        "mean over seeds", np.arange(1, len(names) + 1), [r["log_evidence_per_point"] for r in selection.rows]
    )
    rmse = series("train RMSE", np.arange(1, len(names) + 1), [r["train_rmse"] for r in selection.rows])
    ranks = ", ".join(f"{i + 1} = {nm}" for i, nm in enumerate(names))
    return Figure(
        "evidence",
        title,
        [
            Panel(f"log evidence / N ({ranks})", "rank", "log p(D) / N", [mean, *seeds]),
            Panel("training error (not used to rank)", "rank", "RMSE", [rmse], logy=True),
        ],
        2,
    )


def selection_result(selection: Selection, config: dict, seconds: float, name: str, seed: int) -> Result:
    """The :class:`Result` of one selection (the table is ``selection.rows``)."""
    notes = [selection.recommendation]
    if selection.warning:
        notes.append("Warning: " + selection.warning)
    learned = [f"{r['candidate']}: {r['learned']}" for r in selection.rows if r["learned"]]
    if learned:
        notes.append("Learned symmetry parameters: " + "; ".join(learned) + ".")
    notes.append(
        "Ranked by the mean over seeds of the Laplace log evidence per training point (marginal-likelihood "
        "training, full GGN curvature); `evidence_spread` is its standard deviation over seeds. "
        "`heldout_rmse` (only with --holdout) is for information and never used to rank."
    )
    return Result(
        "select",
        config,
        selection.rows,
        seconds,
        [selection_figure(selection, f"physbias select on {name} ({selection.task})")],
        notes,
        seed=seed,
    )


def select_file(
    path,
    *,
    task: str = "regression",
    candidates=None,
    layout: str | None = None,
    soft: bool = False,
    dt: float | None = None,
    coordinates: str = "any",
    holdout: float | None = None,
    settings: SelectionSettings | None = None,
    seed: int = 0,
    progress=None,
) -> tuple[Selection, Result]:
    """``physbias select`` as a function: read ``path``, rank, return ``(Selection, Result)``.
    Everything is validated (``ValueError``/``FileNotFoundError``) before any training."""
    from ..data import load_regression, load_trajectories

    if task not in TASKS:
        raise ValueError(f"--task must be one of {TASKS}, got {task!r}")
    settings = settings or SelectionSettings()
    start = time.perf_counter()
    if task == "regression":
        if dt is not None or coordinates != "any":
            raise ValueError("--dt and --coordinates apply to --task dynamics only")
        x, y, _ = load_regression(path)
        selection = select_regression(
            x,
            y,
            layout=layout,
            candidates=candidates,
            soft=soft,
            settings=settings,
            holdout=holdout,
            seed=seed,
            progress=progress,
        )
    else:
        if layout is not None or soft:
            raise ValueError("--layout and --soft apply to --task regression only")
        data = load_trajectories(path, dt=dt, coordinates=coordinates)
        selection = select_dynamics(
            data, candidates=candidates, settings=settings, holdout=holdout, seed=seed, progress=progress
        )
    config = {
        "data": str(path),
        "task": task,
        "candidates": [r["candidate"] for r in selection.rows],
        "layout": layout,
        "soft": soft,
        "dt": dt,
        "coordinates": coordinates,
        "holdout": holdout,
        **dataclasses.asdict(settings),
    }
    return selection, selection_result(selection, config, time.perf_counter() - start, Path(path).stem, seed)
