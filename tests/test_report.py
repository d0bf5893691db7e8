"""Results folder: schema, markdown, plots rebuilt from JSON, atomic writes."""

import json
from pathlib import Path

import pytest

from physbias.report import Figure, Panel, Result, markdown_table, replot, series, write_results


def _result():
    fig = Figure("curve", "a curve", [Panel("p", "x", "y", [series("s", [0, 1, 2], [0, 1, 4])])])
    table = [{"model": "a", "rmse": 0.125, "n": 3}, {"model": "b", "rmse": float("nan"), "n": 4}]
    return Result("demo", {"epochs": 3}, table, 1.5, [fig], ["a note"])


def test_write_results_schema(tmp_path):
    out = write_results(_result(), tmp_path / "run")
    doc = json.loads((out / "results.json").read_text())
    assert {"experiment", "config", "environment", "seconds", "table"} <= set(doc)
    assert doc["experiment"] == "demo" and doc["config"] == {"epochs": 3}
    assert {"python", "jax", "equinox", "platform", "device"} <= set(doc["environment"])
    assert doc["table"][0] == {"model": "a", "rmse": 0.125, "n": 3}
    assert doc["table"][1]["rmse"] == "nan"  # JSON has no NaN: stored as a string
    assert doc["seconds"] == 1.5
    md = (out / "results.md").read_text()
    assert "| model | rmse | n |" in md and "| a | 0.125 | 3 |" in md
    png = (out / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp"))  # no temporary files left behind


def test_replot_rebuilds_figures_from_json(tmp_path):
    out = write_results(_result(), tmp_path)
    (out / "curve.png").unlink()
    paths = replot(out)
    assert [p.name for p in paths] == ["curve.png"]
    assert (out / "curve.png").stat().st_size > 1000
    with pytest.raises(FileNotFoundError):
        replot(tmp_path / "missing")


def test_series_is_thinned():
    s = series("s", range(5000), range(5000), max_points=100)
    assert len(s.x) == 100 and s.x[0] == 0 and s.x[-1] == 4999


def test_markdown_table_columns_in_first_seen_order():
    text = markdown_table([{"a": 1}, {"b": 2.0, "a": 3}])
    assert text.splitlines()[0] == "| a | b |"
    assert text.splitlines()[3] == "| 3 | 2 |"


@pytest.mark.skipif(not Path("/proc/self").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize("check", ["folder", "file"])
def test_an_output_path_on_a_pseudo_file_system_is_refused_even_for_root(check):
    # os.access answers yes to root on /proc; the check must try a real (unnamed) file there.
    from physbias.report import check_output_file, check_output_folder

    target = Path("/proc/physbias-no-such/run")
    with pytest.raises(ValueError, match="not writable"):
        check_output_folder(target) if check == "folder" else check_output_file(target / "model.eqx")
