"""`physbias run pac-bayes` on a tiny config: every row's bound is the library's bound of its own
numbers, the union bound is paid, and the best row is marked."""

import dataclasses
import math

import pytest

from physbias.bounds import pac_bayes_bounds
from physbias.experiments import pac_bayes

TINY = pac_bayes.PacBayesConfig(
    n_train=300,
    n_test=100,
    dims=(12,),
    architectures=("CNN",),
    width=2,
    depth=1,
    epochs=3,
    batch_size=100,
    levels=(3, 5),
    quant_epochs=0,  # straight-through fine-tuning is tested in tests/bounds (QuantizedSubspace)
    curvature_samples=100,
)


@pytest.mark.slow  # an experiment-sized run: `pytest -m slow`
def test_tiny_run_reports_consistent_bounds():
    result = pac_bayes.EXPERIMENT.run(TINY, seed=0, progress=False)
    rows = result.table
    assert [(r["architecture"], r["d"]) for r in rows] == [("CNN", 12)]
    extra = math.log2(1 * 1 * 2)  # architectures x dims x levels
    for r in rows:
        assert r["levels"] in (3, 5)
        assert r["message_bits"] >= r["symbol_bits"] + 16 * r["levels"]
        assert r["prefix_free_bits"] == pytest.approx(r["message_bits"] + 2 * math.log2(r["message_bits"]))
        assert r["kl_bits"] == pytest.approx(r["prefix_free_bits"] + extra)
        b = pac_bayes_bounds(r["train_error"], TINY.n_train, r["kl_bits"], TINY.delta)
        assert (r["bound"], r["bound_catoni"], r["bound_mcallester"]) == (b.optimized, b.catoni, b.mcallester)
        assert r["train_error"] <= r["bound"] <= 1.0
        assert 0.0 <= r["test_error"] <= 1.0 and r["params"] > r["d"]
    assert [r["best"] for r in rows].count(True) == 1
    best = next(r for r in rows if r["best"])
    assert best["bound"] == min(r["bound"] for r in rows)
    assert result.figures and result.figures[0].panels[0].series[0].x == [12.0]
    assert best["fine_tuned"] is False and best["seconds"] > 0


def test_bad_config_is_refused_before_work():
    with pytest.raises(ValueError, match="n_train"):
        dataclasses.replace(TINY, n_train=1700, n_test=200)
    with pytest.raises(ValueError, match="levels"):
        dataclasses.replace(TINY, levels=(0,))
    with pytest.raises(ValueError, match="levels"):
        dataclasses.replace(TINY, dims=(4,), levels=(5,))  # more levels than entries of w
    with pytest.raises(ValueError, match="dims"):
        dataclasses.replace(TINY, dims=(-5,))
    with pytest.raises(ValueError, match="architectures"):
        dataclasses.replace(TINY, architectures=("MLP",))
    with pytest.raises(ValueError, match="exceeds the number of parameters"):
        pac_bayes.EXPERIMENT.run(dataclasses.replace(TINY, dims=(100_000,)), seed=0, progress=False)
