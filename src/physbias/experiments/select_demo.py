"""``physbias run select-demo``: what ``physbias select`` picks on data sets whose answer is known.

Four regression tables (:data:`physbias.systems.SELECTION_TASKS`: a rotation-invariant field, a
parity-odd force, a permutation-invariant set function, a function with no symmetry; 200 points,
noise 0.05) with the candidates the library proposes for their input layouts, and three
trajectory sets (10 trajectories of 30 steps, dt = 0.1, the states of ``physbias simulate``):
an undamped pendulum (``node``, ``node2``, ``hnn``, ``noether``), a damped pendulum (the
proposals: ``node``, ``node2``, ``hnn``) and a harmonic oscillator (``hnn`` against ``noether``,
Noether's razor, whose learned conserved quantity is reported).

The known answer is, for the regressions, the most restrictive symmetry the target has; for the
undamped pendulum energy conservation with no quadratic conserved quantity besides (``hnn``); for
the damped one "dissipation allowed" (``node`` or ``node2``); for the oscillator the symmetry
``q^2 + p^2`` that Noether's razor can learn (``noether``). Every candidate is trained by marginal
likelihood from 3 seeds (:func:`physbias.selection.select_regression`,
:func:`~physbias.selection.select_dynamics`).
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from ..data import TrajectoryDataset
from ..report import Figure, Panel, Result, series
from ..selection import SelectionSettings, select_dynamics, select_regression
from ..systems import SELECTION_TASKS, get_system, sample_trajectories, selection_task
from ._config import ExperimentConfig, nonnegative, one_of, positive
from ._registry import Experiment

# task -> (system, candidates (None: the proposals), the known answer(s), how the answer reads).
# Noether's razor (a minute a seed) is ranked where it decides something, in both directions: the
# pendulum conserves its energy but no quadratic quantity (hnn), the harmonic oscillator conserves
# q^2 + p^2 (noether against the plain hnn).
DYNAMICS_TASKS = {
    "undamped-pendulum": (
        "pendulum",
        ("node", "node2", "hnn", "noether"),
        ("hnn",),
        "conserves energy, no quadratic symmetry (hnn)",
    ),
    "damped-pendulum": ("damped-pendulum", None, ("node", "node2"), "dissipation allowed (node, node2)"),
    "harmonic-oscillator": (
        "spring",
        ("hnn", "noether"),
        ("noether",),
        "energy and the symmetry q^2 + p^2 (noether)",
    ),
}
ALL_TASKS = (*SELECTION_TASKS, *DYNAMICS_TASKS)


@dataclasses.dataclass(frozen=True)
class SelectDemoConfig(ExperimentConfig):
    """Four regression tables of 200 points and three trajectory sets of 10 x 30 steps, 3 seeds each."""

    QUICK = {
        "tasks": ("parity-odd-force", "no-symmetry"),
        "n_points": 100,
        "seeds": 2,
        "rounds": 2,
        "epochs_per_round": 300,
        "burn_in": 300,
        "width": 16,
    }
    FULL = {"n_points": 400, "n_trajectories": 20, "seeds": 5}

    tasks: tuple[str, ...] = one_of(ALL_TASKS, ALL_TASKS)
    n_points: int = positive(200)
    noise: float = nonnegative(0.05)
    n_trajectories: int = positive(10)
    steps: int = positive(30)
    dt: float = positive(0.1)
    seeds: int = positive(3)
    width: int = positive(32)
    depth: int = positive(2)
    rounds: int = positive(4)
    epochs_per_round: int = positive(500)
    burn_in: int = nonnegative(1000)
    learning_rate: float = positive(1e-2)
    symmetry_epochs: int = positive(1000)

    def check(self) -> None:
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"config `tasks` lists a task twice: {self.tasks}")


def run(config: SelectDemoConfig, *, seed: int = 0, progress: bool = True) -> Result:
    settings = SelectionSettings(
        seeds=config.seeds,
        width=config.width,
        depth=config.depth,
        rounds=config.rounds,
        epochs_per_round=config.epochs_per_round,
        burn_in=config.burn_in,
        learning_rate=config.learning_rate,
        symmetry_epochs=config.symmetry_epochs,
    )
    say = print if progress else None
    table, panels, notes = [], [], []
    for i, task in enumerate(config.tasks):
        start = time.perf_counter()
        if task in SELECTION_TASKS:
            x, y, layout, answer = selection_task(task, config.n_points, config.noise, seed=seed + i)
            selection = select_regression(x, y, layout=layout, settings=settings, seed=seed, progress=say)
            expected = {answer}
            known = answer
        else:
            system, names, answers, known = DYNAMICS_TASKS[task]
            states = sample_trajectories(
                get_system(system), jax.random.key(seed + i), config.n_trajectories, config.dt, config.steps
            )
            data = TrajectoryDataset(np.asarray(states, np.float32), config.dt, "velocity", task)
            selection = select_dynamics(data, candidates=names, settings=settings, seed=seed, progress=say)
            expected = set(answers)
        rows = selection.rows
        first = rows[0]
        wrong = [r for r in rows if r["candidate"] not in expected]
        table.append(
            {
                "task": task,
                "known_answer": known,
                "selected": first["candidate"],
                "correct": first["candidate"] in expected,
                "log_evidence_per_point": first["log_evidence_per_point"],
                "evidence_spread": first["evidence_spread"],
                "runner_up": rows[1]["candidate"] if len(rows) > 1 else "",
                "gap_to_runner_up": rows[1]["gap_to_best"] if len(rows) > 1 else "",
                "within_noise": selection.warning is not None,
                "ranking": " > ".join(r["candidate"] for r in rows),
                "learned": "; ".join(f"{r['candidate']}: {r['learned']}" for r in rows if r["learned"]),
                "train_points": selection.n_train,
                "seconds": round(time.perf_counter() - start, 2),
            }
        )
        # The margin of the best known answer over the best candidate that is not an answer.
        best_right = max(r["log_evidence_per_point"] for r in rows if r["candidate"] in expected)
        table[-1]["gap_to_best_wrong"] = best_right - wrong[0]["log_evidence_per_point"] if wrong else ""
        panels.append(
            Panel(
                f"{task}: " + ", ".join(f"{k + 1} = {r['candidate']}" for k, r in enumerate(rows)),
                "rank",
                "log p(D) / N",
                [
                    series(
                        "mean over seeds",
                        np.arange(1, len(rows) + 1),
                        [r["log_evidence_per_point"] for r in rows],
                    ),
                    *(
                        series(
                            r["candidate"],
                            [k + 1] * len(selection.per_seed[r["candidate"]]),
                            selection.per_seed[r["candidate"]],
                            "scatter",
                        )
                        for k, r in enumerate(rows)
                    ),
                ],
            )
        )
        notes.append(
            f"{task}: {selection.recommendation}"
            + (f" Warning: {selection.warning}" if selection.warning else "")
        )
    correct = sum(r["correct"] for r in table)
    notes.insert(
        0,
        f"The known answer ranked first on {correct} of {len(table)} data sets. `gap_to_best_wrong` is the "
        "evidence per point by which the best correct candidate beats the best wrong one (negative: a miss).",
    )
    return Result(
        "select-demo",
        dataclasses.asdict(config),
        table,
        figures=[Figure("evidence", "Log evidence per point of every candidate, best first", panels, 2)],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "select-demo",
    "physbias select on synthetic data with known answers (rotation/parity/permutation/no symmetry; "
    "damped vs undamped pendulum, harmonic oscillator with Noether's razor): does the evidence pick "
    "the true bias?",
    SelectDemoConfig,
    run,
)
