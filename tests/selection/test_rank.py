"""The evidence ranks the true bias first, in both directions: a symmetric target picks its
symmetry, a target without one picks no bias; bad input is refused before any training."""

import numpy as np
import pytest

from physbias.data import TrajectoryDataset
from physbias.selection import SelectionSettings, select_dynamics, select_regression
from physbias.systems import selection_task

SMALL = SelectionSettings(seeds=1, width=16, depth=2, rounds=2, epochs_per_round=300)


@pytest.mark.parametrize("task", ["parity-odd-force", "no-symmetry"])
def test_the_known_answer_ranks_first(task):
    x, y, layout, answer = selection_task(task, 100, 0.05, seed=0)
    sel = select_regression(
        x, y, layout=layout, candidates=["none", "parity-odd", "parity-even"], settings=SMALL
    )
    assert sel.best == answer
    ranked = [r["log_evidence_per_point"] for r in sel.rows]
    assert ranked == sorted(ranked, reverse=True)
    assert sel.rows[1]["gap_to_best"] > 0.1  # a clear margin, not a coin toss
    assert set(sel.per_seed) == {"none", "parity-odd", "parity-even"}
    # The model that cannot fit (even, for an odd force) has a training error far above the noise.
    even = next(r for r in sel.rows if r["candidate"] == "parity-even")
    assert even["train_rmse"] > 5 * 0.05


def test_holdout_is_reported_and_evidence_in_data_units():
    x, y, layout, _ = selection_task("no-symmetry", 60, 0.05, seed=1)
    one = SelectionSettings(seeds=1, width=8, rounds=1, epochs_per_round=100)
    a = select_regression(x, y, layout=layout, candidates=["none"], settings=one, holdout=0.25)
    assert a.n_train == 45 and a.rows[0]["heldout_rmse"] > 0
    b = select_regression(x, 10.0 * y, layout=layout, candidates=["none"], settings=one, holdout=0.25)
    # Scaling y by 10 scales the density by 10^-K per point: log p / N drops by log 10.
    assert abs(a.rows[0]["log_evidence_per_point"] - b.rows[0]["log_evidence_per_point"] - np.log(10)) < 1e-6


def test_bad_input_is_refused_before_training():
    x, y, _, _ = selection_task("no-symmetry", 20, 0.05)
    with pytest.raises(ValueError, match="unknown candidate"):
        select_regression(x, y, candidates=["none", "mirror"])
    with pytest.raises(ValueError, match="twice"):
        select_regression(x, y, candidates=["none", "none"])
    with pytest.raises(ValueError, match="NaN"):
        select_regression(np.where(x > 1.5, np.nan, x), y)
    with pytest.raises(ValueError, match="examples"):
        select_regression(x, y[:-1])
    with pytest.raises(ValueError, match="describes 4 inputs"):
        select_regression(x, y, layout="2x2")
    with pytest.raises(ValueError, match="2-D or 3-D"):
        select_regression(x, y, candidates=["rotation"])  # default layout: 2 groups of 1
    with pytest.raises(ValueError, match="seeds"):
        SelectionSettings(seeds=0)
    with pytest.raises(ValueError, match="holdout"):
        select_regression(x, y, holdout=1.5)
    data = TrajectoryDataset(np.zeros((2, 5, 3), np.float32), 0.1)
    with pytest.raises(ValueError, match="even state size"):
        select_dynamics(data, candidates=["hnn"])
    with pytest.raises(ValueError, match="regression bias"):
        select_dynamics(TrajectoryDataset(np.zeros((2, 5, 2), np.float32), 0.1), candidates=["parity-odd"])


@pytest.mark.slow
@pytest.mark.parametrize("system,conserves", [("pendulum", True), ("damped-pendulum", False)])
def test_dynamics_energy_conservation_is_decided_by_the_evidence(system, conserves):
    import jax

    from physbias.systems import get_system, sample_trajectories

    states = sample_trajectories(get_system(system), jax.random.key(0), 8, 0.1, 25)
    data = TrajectoryDataset(np.asarray(states, np.float32), 0.1, "velocity", system)
    sel = select_dynamics(data, settings=SelectionSettings(seeds=2, width=32, rounds=3, epochs_per_round=400))
    assert (sel.best == "hnn") == conserves


def _oscillator(n_trajectories=10, steps=30):
    import jax

    from physbias.systems import get_system, sample_trajectories

    states = sample_trajectories(get_system("spring"), jax.random.key(0), n_trajectories, 0.1, steps)
    return TrajectoryDataset(np.asarray(states, np.float32), 0.1, "velocity", "spring")


def test_noether_candidate_is_ranked_with_its_learned_quantity():
    tiny = SelectionSettings(
        seeds=1,
        width=8,
        depth=1,
        rounds=1,
        epochs_per_round=50,
        burn_in=50,
        hyper_steps=20,
        symmetry_epochs=50,
    )
    sel = select_dynamics(_oscillator(4, 10), candidates=["hnn", "noether"], settings=tiny)
    row = next(r for r in sel.rows if r["candidate"] == "noether")
    assert np.isfinite(row["log_evidence_per_point"]) and row["bias"] == "conserves energy"
    assert row["learned"].startswith("C = ") and "(refined: " in row["learned"]
    model = sel.models["noether"]
    assert model.dynamics.flow_times.shape == (8, 1) and model.dynamics.conserved.n_quantities == 1
    with pytest.raises(ValueError, match="symmetry_epochs"):
        SelectionSettings(symmetry_epochs=0)


@pytest.mark.slow
def test_noether_finds_the_oscillators_rotation_and_conserves_energy():
    import re

    sel = select_dynamics(
        _oscillator(), candidates=["node", "noether"], settings=SelectionSettings(seeds=1, rounds=4)
    )
    assert sel.best == "noether"  # the conservative model wins against the free field
    # The razor's quantity (the refined one follows in brackets).
    learned = next(r for r in sel.rows if r["candidate"] == "noether")["learned"].split(" (refined")[0]
    # C = q^2 + p^2 up to scale (both coefficients near 1, nothing else above 5% of them).
    coefficients = {name: float(c) for c, name in re.findall(r"(-?[\d.]+) (q1\^2|p1\^2)", learned)}
    assert set(coefficients) == {"q1^2", "p1^2"}, learned
    assert abs(abs(coefficients["q1^2"]) - abs(coefficients["p1^2"])) < 0.1, learned
    assert re.sub(r"-?[\d.]+ (q1\^2|p1\^2)", "", learned).strip(" C=+-") == "", learned
