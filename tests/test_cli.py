"""The command line: list, run, bad input (exit 2, nothing written), results schema."""

import json
import subprocess
import sys

import pytest

from physbias.cli import main
from physbias.experiments import EXPERIMENTS


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("triangle", "spring", "rotation"):
        assert name in out
    assert len(out.strip().splitlines()) == len(EXPERIMENTS)


def test_version_and_help():
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    proc = subprocess.run(
        [sys.executable, "-m", "physbias.cli", "--help"], capture_output=True, text=True, check=True
    )
    assert "run" in proc.stdout and "list" in proc.stdout


@pytest.mark.parametrize(
    "argv, match",
    [
        (["run", "no-such-experiment"], "valid names"),
        (["run", "spring", "--set", "epochs=0"], "epochs"),
        (["run", "spring", "--set", "learning_rate=-1"], "learning_rate"),
        (["run", "spring", "--set", "epochs=many"], "expects a int"),
        (["run", "spring", "--set", "bogus=1"], "unknown config field"),
        (["run", "spring", "--set", "epochs"], "KEY=VALUE"),
        (["run", "spring", "--seed", "-1"], "seed"),
        (["run", "triangle", "--set", "train_range=1.0,0.2"], "train_range"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(argv, match, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err
    if "valid names" in match:
        for name in EXPERIMENTS:
            assert name in err
    assert not out.exists()


def test_quick_and_full_are_exclusive(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "spring", "--quick", "--full"])
    assert exc.value.code == 2


def test_run_writes_results_folder(tmp_path, capsys):
    # A cheap run (one small model per variant); the experiments themselves are tested elsewhere.
    out = tmp_path / "rpp"
    argv = [
        "run",
        "rpp",
        "--quick",
        "--set",
        "models=MLP",
        "--set",
        "epochs=20",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["experiment"] == "rpp"
    assert doc["config"]["epochs"] == 20 and doc["config"]["models"] == ["MLP"]
    assert [(r["variant"], r["model"]) for r in doc["table"]] == [("exact", "MLP"), ("broken (0.3)", "MLP")]
    assert all(set(r) >= {"test_mse", "equivariance_error", "train_seconds"} for r in doc["table"])
    assert set(doc) >= {"experiment", "config", "environment", "seconds", "table"}
    assert (out / "results.md").exists() and (out / "training_loss.png").exists()
    assert "equivariance_error" in capsys.readouterr().out
