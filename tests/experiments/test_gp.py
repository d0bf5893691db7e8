"""``physbias run gp`` (physbias.experiments.gp): a small run shows what the table is for: the
spectral mixture extrapolates where the squared exponential does not, the LMC predicts a held-out
segment from the neighbours, and SKI agrees with the exact GP."""

import dataclasses
import sys

import numpy as np
import pytest

from physbias.experiments import gp

SMALL = {
    "synthetic_points": 120,
    "steps": 200,
    "restarts": 1,
    "lmc_nodes": 3,
    "lmc_points": 40,
    "lmc_steps": 200,
    "lmc_restarts": 1,
    "lmc_node_features": False,  # its own compilation; the feature map is tested in tests/gp
    "ski_sizes": (400, 800),
    "exact_sizes": (400,),
    "ski_repeats": 1,
    "error_rows": 100,
}


@pytest.fixture(scope="module")
def result():
    config = dataclasses.replace(gp.EXPERIMENT.make_config("quick"), **SMALL)
    return gp.EXPERIMENT.run(config, seed=0, progress=False)


@pytest.mark.slow  # an experiment-sized run: `pytest -m slow`
def test_spectral_mixture_extrapolates_better_than_squared_exponential(result):
    rows = {r["model"]: r for r in result.table if r["part"] == "extrapolation"}
    sm, se = rows["spectral mixture"], rows["squared exponential"]
    assert sm["extrapolation_mse"] < 0.3 * se["extrapolation_mse"]
    assert sm["test_points"] == 36 and sm["train_points"] == 84


@pytest.mark.slow  # an experiment-sized run: `pytest -m slow`
def test_lmc_beats_independent_gps_on_the_held_out_segment(result):
    rows = {r["model"]: r for r in result.table if r["part"] == "lmc"}
    independent = rows["independent GPs"]["held_out_mse"]
    assert rows["LMC over the graph"]["held_out_mse"] < 0.5 * independent
    assert "LMC + node features" not in rows
    assert rows["independent GPs"]["edges"] == 0 and rows["LMC over the graph"]["edges"] == 2


@pytest.mark.slow  # an experiment-sized run: `pytest -m slow`
def test_ski_rows_agree_with_the_exact_gp(result):
    rows = {r["n"]: r for r in result.table if r["part"] == "ski"}
    assert sorted(rows) == [400, 800]
    assert all(r["matvec_rel_error"] < 1e-3 for r in rows.values())
    assert rows[400]["mean_rel_error"] < 1e-2 and rows[400]["logdet_rel_error"] < 0.05
    assert "exact_solve_s" in rows[400] and "exact_solve_s" not in rows[800]
    assert [f.name for f in result.figures] == ["extrapolation", "lmc", "ski_scaling"]


def test_bad_configs_and_a_missing_statsmodels_are_clear_errors(monkeypatch):
    config = gp.EXPERIMENT.make_config("quick")
    with pytest.raises(ValueError, match="lmc_nodes"):
        dataclasses.replace(config, lmc_nodes=1)
    with pytest.raises(ValueError, match="series"):
        dataclasses.replace(config, series="airline")
    with pytest.raises(ValueError, match="sm_components"):
        dataclasses.replace(config, sm_components=0)
    monkeypatch.setitem(sys.modules, "statsmodels.datasets", None)
    with pytest.raises(ImportError, match=r"physbias\[gp\]"):
        gp.load_co2()


def test_co2_is_monthly_and_split_at_1996():
    pytest.importorskip("statsmodels")
    t, y, train = gp.load_co2()
    assert np.all(np.diff(t) > 0) and np.all(np.isfinite(y))
    assert t[train].max() < 1996 <= t[~train].min()
    assert 300 < y.min() < y.max() < 400
