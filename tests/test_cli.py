"""The command line: list, run, bad input (exit 2, nothing written), results schema."""

import json
import subprocess
import sys

import numpy as np
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


def _bad_outs(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    done = tmp_path / "done"
    done.mkdir()
    (done / "results.json").write_text("{}")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return {
        "existing file": (a_file, "not a folder"),
        "under a file": (a_file / "sub", "is a file"),
        "existing results": (done, "--overwrite"),
        "unwritable": (locked / "run", "not writable"),
    }


@pytest.mark.parametrize("case", ["existing file", "under a file", "existing results", "unwritable"])
@pytest.mark.parametrize(
    "command",
    [
        ["run", "spring", "--quick"],
        ["fit", "--data", "DATA", "--model", "node", "--epochs", "5"],
    ],
    ids=["run", "fit"],
)
def test_bad_out_exits_2_before_any_work(case, command, tmp_path, capsys, monkeypatch):
    import os

    if case == "unwritable" and os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    out, match = _bad_outs(tmp_path)[case]
    data = tmp_path / "data.csv"
    data.write_text(
        "trajectory,t,z0,z1\n" + "".join(f"{k},{i * 0.1},{i},{-i}\n" for k in range(3) for i in range(5))
    )
    # Any training goes through fit: make it fail loudly if reached.
    import physbias.experiments._runner as runner
    import physbias.experiments.user_fit as user_fit

    for module in (runner, user_fit):
        monkeypatch.setattr(module, "fit", lambda *a, **k: pytest.fail("training started"))
    argv = [str(data) if a == "DATA" else a for a in command]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    assert match in capsys.readouterr().err
    assert not (out / "results.json").exists() or case == "existing results"


@pytest.mark.parametrize("case", ["existing file", "under a file"])
def test_bad_out_file_for_simulate_and_rollout(case, tmp_path, capsys):
    out, _ = _bad_outs(tmp_path)[case]
    target = out if case == "under a file" else tmp_path
    assert main(["simulate", "--system", "pendulum", "--n", "2", "--steps", "3", "--out", str(target)]) == 2
    assert "--out" in capsys.readouterr().err


def test_results_json_says_how_to_repeat_the_run(tmp_path, capsys):
    out = tmp_path / "spring"
    argv = [
        "run",
        "spring",
        "--quick",
        "--seed",
        "3",
        "--set",
        "epochs=5",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["seed"] == 3 and doc["preset"] == "quick" and doc["overrides"] == {"epochs": "5"}
    assert doc["command"] == "physbias run spring --seed 3 --quick --set epochs=5"
    from physbias import __version__

    assert doc["version"] == __version__ and "git_commit" in doc
    # Running the recorded command again refuses to overwrite, and with --overwrite gives the same table.
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    again = json.loads((out / "results.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_seconds"} for r in rows]
    assert strip(again["table"]) == strip(doc["table"])


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--set", "epochs=5|many"], "epochs"),
        (["--seeds", "0,-1"], "seed"),
        (["--set", "bogus=1|2"], "unknown config field"),
    ],
)
def test_bad_sweep_exits_2_and_writes_nothing(extra, match, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep", "spring", "--quick", *extra, "--out", str(out), "--no-progress"]) == 2
    assert match in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_sweep_cli_runs_and_aggregates(tmp_path, capsys):
    out = tmp_path / "sweep"
    # The sizes of tests/test_sweep.py's sweep: the session's compilation cache already holds them.
    sizes = ["--set", "epochs=10", "--set", "depth=1", "--set", "width=8", "--set", "n_train=32"]
    argv = ["sweep", "spring", "--quick", "--seeds", "0,1", *sizes]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["experiment"] == "sweep:spring" and len(doc["runs"]) == 2
    assert {r["n_seeds"] for r in doc["table"]} == {2}
    assert "2 run(s) executed" in capsys.readouterr().out


def _oscillator_csv(path, n=6, steps=8, odd=False):
    rng = np.random.default_rng(0)
    rows = ["trajectory,t," + ",".join(f"z{i}" for i in range(3 if odd else 2))]
    for k in range(n):
        q0, p0 = rng.normal(size=2)
        for i in range(steps):
            t = 0.2 * i
            state = [q0 * np.cos(t) + p0 * np.sin(t), -q0 * np.sin(t) + p0 * np.cos(t)] + (
                [0.0] if odd else []
            )
            rows.append(f"{k},{t}," + ",".join(repr(float(v)) for v in state))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.slow  # an experiment-sized run (20-50 s on 2 cores): `pytest -m slow`
def test_fit_learn_symmetry_prints_the_conserved_quantities(tmp_path, capsys):
    data = _oscillator_csv(tmp_path / "sho.csv")
    out = tmp_path / "run"
    argv = ["fit", "--data", str(data), "--learn-symmetry", "--quantities", "2", "--epochs", "20"]
    assert (
        main([*argv, "--width", "8", "--coordinates", "canonical", "--out", str(out), "--no-progress"]) == 0
    )
    printed = capsys.readouterr().out
    assert "C1" in printed and "q1" in printed
    doc = json.loads((out / "results.json").read_text())
    assert [r["quantity"] for r in doc["table"]] == ["C1", "C2"]
    assert doc["command"].startswith("physbias fit --learn-symmetry")
    assert (out / "posterior.eqx").is_file()


@pytest.mark.parametrize(
    "extra, odd, match",
    [
        (["--coordinates", "velocity"], False, "canonical"),
        ([], True, "even size"),
        (["--quantities", "0"], False, "--quantities"),
    ],
)
def test_fit_learn_symmetry_refuses_bad_input_before_writing(extra, odd, match, tmp_path, capsys):
    data = _oscillator_csv(tmp_path / "d.csv", odd=odd)
    out = tmp_path / "run"
    assert (
        main(["fit", "--data", str(data), "--learn-symmetry", *extra, "--out", str(out), "--no-progress"])
        == 2
    )
    assert match in capsys.readouterr().err
    assert not (out / "results.json").exists()
