"""`physbias select`: bad input exits 2 before anything is written; a run writes its folder and
ranks the known symmetry first."""

import json

import pytest

from physbias.cli import main
from physbias.data import save_regression
from physbias.systems import selection_task


@pytest.fixture(scope="module")
def odd_csv(tmp_path_factory):
    x, y, _, _ = selection_task("parity-odd-force", 80, 0.05, seed=3)
    return save_regression(tmp_path_factory.mktemp("data") / "force.csv", x, y)


SMALL = ["--seeds", "1", "--width", "16", "--rounds", "2", "--epochs-per-round", "300", "--no-progress"]


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--candidates", "none,mirror"], "unknown candidate 'mirror'"),
        (["--layout", "3x3"], "describes 9 inputs"),
        (["--candidates", "rotation"], "2-D or 3-D"),
        (["--seeds", "0"], "--seeds must be a positive integer"),
        (["--epochs-per-round", "-5"], "--epochs-per-round"),
        (["--lr", "0"], "--lr"),
        (["--holdout", "1.0"], "--holdout"),
        (["--task", "dynamics"], "header must start with 'trajectory'"),
        (["--dt", "0.1"], "--task dynamics only"),
    ],
)
def test_bad_input_exits_2_before_writing(extra, match, odd_csv, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["select", "--data", str(odd_csv), "--out", str(out), *extra]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists()


def test_bad_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["select", "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "output column" in capsys.readouterr().err
    assert main(["select", "--data", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_select_writes_the_ranked_table_and_picks_parity_odd(odd_csv, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        ["select", "--data", str(odd_csv), "--candidates", "none,parity-odd,parity-even", "--holdout", "0.2",
         "--out", str(out), *SMALL]
    )  # fmt: skip
    assert code == 0
    record = json.loads((out / "results.json").read_text())
    table = record["table"]
    assert [r["rank"] for r in table] == [1, 2, 3]
    assert table[0]["candidate"] == "parity-odd"
    assert all(r["heldout_rmse"] != "" for r in table)
    assert record["command"].startswith("physbias select --data")
    assert (out / "evidence.png").exists() and (out / "results.md").exists()
    assert "The data support 'parity-odd'" in capsys.readouterr().out
