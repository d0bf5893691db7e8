"""Sweeps: planning, local and Ray execution, resuming and aggregation (a small, short spring)."""

from __future__ import annotations

import json
import math
import shutil
import sys

import numpy as np
import pytest

from physbias import sweep
from physbias.sweep import aggregate_tables, parse_grid, parse_seeds, plan_sweep, run_id, run_sweep

# Small and short: a run takes a few seconds, almost all of it compilation.
FAST = {"epochs": ["10"], "depth": ["1"], "width": ["8"], "n_train": ["32"]}
FAST_OVERRIDES = {k: v for k, (v,) in FAST.items()}
RUN0, RUN1 = "seed0-epochs=10-depth=1-width=8-n_train=32", "seed1-epochs=10-depth=1-width=8-n_train=32"
METRICS = ("rmse_inside", "rmse_mirror", "rmse_outside", "oddness_error")


def _read(path):
    return json.loads(path.read_text())


def _untimed(table):
    """A table without its timing columns (the only ones that differ between two equal runs)."""
    return [{k: v for k, v in row.items() if "seconds" not in k} for row in table]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "spring"
    specs = plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out)
    return out, specs, run_sweep(specs, out=out)


def test_parse_the_cli_text():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    assert parse_grid(["epochs=10|20", "train_range=-0.5,1.0|-0.25,1.5"]) == {
        "epochs": ["10", "20"],
        "train_range": ["-0.5,1.0", "-0.25,1.5"],
    }
    for bad in ("", "0,0", "a", "3-1", "-1"):
        with pytest.raises(ValueError, match="--seeds"):
            parse_seeds(bad)
    for bad in (["epochs"], ["epochs=1", "epochs=2"], ["epochs=1|1"]):
        with pytest.raises(ValueError, match="--set"):
            parse_grid(bad)


def test_plan_is_the_cross_product_with_deterministic_ids(tmp_path):
    grid = parse_grid(["epochs=10|20", "train_range=-0.25,1.0|-0.5,1.0"])
    specs = plan_sweep("spring", seeds=[3, 1], grid=grid, preset="quick", out=tmp_path / "s")
    expected = [
        (seed, {"epochs": e, "train_range": r})
        for e in ("10", "20")
        for r in ("-0.25,1.0", "-0.5,1.0")
        for seed in (3, 1)
    ]
    assert [(s.seed, dict(s.overrides)) for s in specs] == expected
    assert [s.out for s in specs] == [str(tmp_path / "s" / run_id(seed, o)) for seed, o in expected]
    assert specs[0].out.endswith("seed3-epochs=10-train_range=-0.25,1.0")
    assert {s.preset for s in specs} == {"quick"} and {s.experiment for s in specs} == {"spring"}
    assert plan_sweep("spring", seeds=[3, 1], grid=grid, preset="quick", out=tmp_path / "s") == specs
    assert run_id(0, {}) == "seed0" and run_id(2, {"name": "a/b c"}) == "seed2-name=a_b_c"
    assert [s.out for s in plan_sweep("spring", seeds=[0], preset="quick", out=tmp_path / "t")] == [
        str(tmp_path / "t" / "seed0")
    ]
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists()  # planning writes nothing


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"grid": {"epochs": ["10", "-5"]}}, ValueError, "epochs"),  # the second value is bad
        ({"grid": {"epochs": ["10", "ten"]}}, ValueError, "epochs"),
        ({"grid": {"no_such_field": ["1"]}}, ValueError, "no_such_field"),
        ({"grid": {"epochs": "10"}}, ValueError, "list"),
        ({"seeds": []}, ValueError, "seed"),
        ({"seeds": [0, -1]}, ValueError, "seed"),
        ({"preset": "huge"}, ValueError, "preset"),
        ({"name": "no-such-experiment"}, KeyError, "no-such-experiment"),
    ],
)
def test_a_bad_sweep_fails_before_anything_is_written(tmp_path, kwargs, error, match):
    args = {"name": "spring", "seeds": [0, 1], "grid": FAST, "preset": "quick"} | kwargs
    with pytest.raises(error, match=match):
        plan_sweep(args.pop("name"), out=tmp_path / "s", **args)
    assert not (tmp_path / "s").exists()


def test_local_sweep_writes_runs_and_the_aggregate(local_sweep):
    out, specs, result = local_sweep
    ids = [RUN0, RUN1]
    assert result.executed == ids and result.reused == []
    runs = {rid: _read(out / rid / "results.json") for rid in ids}
    for rid, doc in runs.items():
        assert (out / rid / "results.md").is_file() and (out / rid / "spring_fits.png").is_file()
        assert doc["overrides"] == FAST_OVERRIDES and doc["preset"] == "quick"
        assert result.runs[rid] == doc["table"]
    agg = _read(out / "results.json")
    assert agg["experiment"] == "sweep:spring"
    assert agg["config"] == {"experiment": "spring", "preset": "quick", "seeds": [0, 1], "grid": FAST}
    assert [r["id"] for r in agg["runs"]] == ids
    assert [r["command"] for r in agg["runs"]] == [s.command for s in specs]
    assert (out / "results.md").is_file() and (out / "sweep_errors.png").is_file()
    assert "## Runs" in (out / "results.md").read_text()

    tables = [runs[rid]["table"] for rid in ids]
    assert len(agg["table"]) == len(tables[0]) == 7  # one row per variant of spring
    for i, row in enumerate(agg["table"]):
        assert row["row"] == i and row["set:epochs"] == "10" and row["n_seeds"] == 2
        assert row["bias"] == tables[0][i]["bias"] == tables[1][i]["bias"]
        assert row["diverged_count"] == sum(t[i]["diverged"] for t in tables)
        for c in (*METRICS, "train_seconds"):
            values = np.array([t[i][c] for t in tables], dtype=float)
            assert row[f"{c}_mean"] == pytest.approx(np.mean(values), rel=1e-12)
            assert row[f"{c}_std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12, abs=1e-15)
    # the known-form row has fitted constants; the others leave them blank (an identity column)
    assert agg["table"][6]["k1_mean"] == pytest.approx(np.mean([t[6]["k1"] for t in tables]))
    assert agg["table"][0]["k1"] == "" and "k1_mean" not in agg["table"][0]
    assert result.table == agg["table"]


def test_resume_runs_only_the_unfinished_runs(local_sweep, tmp_path, monkeypatch):
    src, _, first = local_sweep
    out = tmp_path / "spring"
    shutil.copytree(src, out)
    calls = []
    real_execute = sweep.execute

    def counting_execute(spec, **kwargs):
        calls.append(spec.seed)
        return real_execute(spec, **kwargs)

    monkeypatch.setattr(sweep, "execute", counting_execute)

    # A finished sweep: its aggregate is replaced only with overwrite, and its runs are reused.
    with pytest.raises(ValueError, match="overwrite"):
        plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out)
    specs = plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out, overwrite=True)
    again = run_sweep(specs, out=out)
    assert calls == [] and again.executed == [] and len(again.reused) == 2
    assert again.table == first.table

    # Killed after seed 0: seed 1's results.json (written last) and the aggregate are missing.
    (out / "results.json").unlink()
    (out / RUN1 / "results.json").unlink()
    kept = out / RUN0 / "results.json"
    before = kept.stat().st_mtime_ns
    specs = plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out)
    resumed = run_sweep(specs, out=out)
    assert calls == [1]
    assert resumed.executed == [RUN1] and resumed.reused == [RUN0]
    assert kept.stat().st_mtime_ns == before
    assert _untimed(resumed.table) == _untimed(first.table)  # CPU runs are deterministic
    assert [r["status"] for r in _read(out / "results.json")["runs"]] == ["reused", "executed"]


def test_a_folder_holding_another_run_needs_overwrite(local_sweep, tmp_path):
    src, _, _ = local_sweep
    out = tmp_path / "spring"
    out.mkdir()
    shutil.copytree(src / RUN0, out / RUN0)
    doc = _read(out / RUN0 / "results.json")
    doc["config"]["noise"] = 0.5  # made by another config (e.g. other defaults)
    (out / RUN0 / "results.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="another run"):
        plan_sweep("spring", seeds=[0], grid=FAST, preset="quick", out=out)
    specs = plan_sweep("spring", seeds=[0], grid=FAST, preset="quick", out=out, overwrite=True)
    assert not sweep._finished(specs[0])  # so run_sweep would rerun it


def test_a_failed_run_stops_the_aggregate_not_the_others(local_sweep, tmp_path, monkeypatch):
    src, _, _ = local_sweep
    out = tmp_path / "spring"

    def fake_execute(spec, **kwargs):  # seed 0 fails; seed 1 "runs" (its folder, as run before)
        if spec.seed == 0:
            raise FloatingPointError("boom")
        shutil.copytree(src / RUN1, spec.out)

    monkeypatch.setattr(sweep, "execute", fake_execute)
    out.mkdir()
    (out / "results.json").write_text("{}")  # an earlier sweep's aggregate, replaced by overwrite
    specs = plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out, overwrite=True)
    with pytest.raises(RuntimeError, match=f"(?s)1 of 2 runs failed.*{RUN0}: FloatingPointError: boom"):
        run_sweep(specs, out=out)
    assert (out / RUN1 / "results.json").is_file()
    assert not (out / RUN0 / "results.json").exists()
    assert not (out / "results.json").exists()  # no aggregate, not even the stale one


def test_aggregate_tables_numbers():
    a = [{"name": "x", "err": 1.0, "bad": "nan", "ok": True}, {"name": "y", "err": 2, "bad": 1, "ok": False}]
    b = [{"name": "x", "err": 3.0, "bad": 2.0, "ok": True}, {"name": "z", "err": 5.0, "bad": 1.0, "ok": True}]
    c = [{"name": "x", "err": 4.0, "bad": 1.0, "ok": False}]
    rows = aggregate_tables([({"k": "1"}, a), ({"k": "1"}, b), ({"k": "2"}, c)])
    assert [(r["set:k"], r["row"], r["name"], r["n_seeds"]) for r in rows] == [
        ("1", 0, "x", 2),
        ("1", 1, "y", 1),  # row 1 differs in its label: not the same row
        ("1", 1, "z", 1),
        ("2", 0, "x", 1),
    ]
    assert rows[0]["err_mean"] == 2.0 and rows[0]["err_std"] == pytest.approx(math.sqrt(2))
    assert math.isnan(rows[0]["bad_mean"]) and rows[0]["ok_count"] == 2
    assert rows[1]["err_mean"] == 2.0 and math.isnan(rows[1]["err_std"])  # one seed: no spread


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    specs = plan_sweep("spring", seeds=[0], grid=FAST, preset="quick", out=tmp_path / "s")
    with pytest.raises(ImportError, match=r"pip install -e '\.\[ray\]'"):
        run_sweep(specs, out=tmp_path / "s", executor="ray")
    assert not (tmp_path / "s" / RUN0 / "results.json").exists()
    with pytest.raises(ValueError, match="executor"):
        run_sweep(specs, out=tmp_path / "s", executor="dask")


def test_ray_executor_matches_local(local_sweep, tmp_path):
    pytest.importorskip("ray")
    _, _, local = local_sweep
    out = tmp_path / "ray"
    specs = plan_sweep("spring", seeds=[0, 1], grid=FAST, preset="quick", out=out)
    result = run_sweep(specs, out=out, executor="ray")
    assert result.executed and sorted(result.executed) == sorted(local.runs)
    assert result.runs.keys() == local.runs.keys()
    for rid, table in result.runs.items():
        assert _untimed(table) == _untimed(local.runs[rid])
        assert (out / rid / "spring_fits.png").is_file()
    assert _untimed(result.table) == _untimed(local.table)
