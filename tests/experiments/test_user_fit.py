"""`physbias simulate | fit | rollout`: file layouts, bad input, save/load round trip."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.cli import main
from physbias.data import TrajectoryDataset, load_trajectories, trajectories_to_csv
from physbias.dynamics import RK4, rollout
from physbias.serialization import load, load_metadata, save


@pytest.fixture(scope="module")
def pendulum_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "pendulum.csv"
    assert (
        main(
            [
                "simulate",
                "--system",
                "pendulum",
                "--n",
                "6",
                "--steps",
                "20",
                "--dt",
                "0.1",
                "--out",
                str(path),
            ]
        )
        == 0
    )
    return path


def test_csv_and_npz_layouts_load_identically(pendulum_csv, tmp_path):
    data = load_trajectories(pendulum_csv)
    assert data.states.shape == (6, 21, 2) and data.dt == pytest.approx(0.1)
    npz = tmp_path / "p.npz"
    np.savez(npz, states=np.asarray(data.states), times=0.1 * np.arange(21))
    again = load_trajectories(npz)
    np.testing.assert_allclose(again.states, data.states)
    assert again.dt == pytest.approx(0.1)
    # CSV round trip of the writer
    (tmp_path / "again.csv").write_text(trajectories_to_csv(again))
    np.testing.assert_allclose(load_trajectories(tmp_path / "again.csv").states, data.states, rtol=1e-6)


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text, match",
    [
        ("ragged.csv", "trajectory,t,z0,z1\n0,0,1,2\n0,0.1,1,2\n1,0,1,2\n", "ragged"),
        ("nan.csv", "trajectory,t,z0,z1\n0,0,1,nan\n0,0.1,1,2\n", "NaN or inf"),
        ("back.csv", "trajectory,t,z0,z1\n0,0.1,1,2\n0,0.0,1,2\n", "strictly increasing"),
        ("uneven.csv", "trajectory,t,z0,z1\n0,0,1,2\n0,0.1,1,2\n0,0.3,1,2\n", "uniformly spaced"),
        ("nohead.csv", "0,0,1,2\n0,0.1,1,2\n", "header"),
        ("not.txt", "x", "expected a .npz or .csv"),
    ],
)
def test_bad_files_are_rejected(tmp_path, name, text, match):
    with pytest.raises(ValueError, match=match):
        load_trajectories(_write(tmp_path, name, text))


def test_missing_file_and_missing_dt(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_trajectories(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="time step"):
        load_trajectories(_write(tmp_path, "no_t.csv", "trajectory,z0,z1\n0,1,2\n0,1,3\n"))
    ds = load_trajectories(_write(tmp_path, "no_t2.csv", "trajectory,z0,z1\n0,1,2\n0,1,3\n"), dt=0.5)
    assert ds.dt == 0.5


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--model", "hnn", "--data", "ODD"], "even state size"),
        (["--model", "node", "--data", "MISSING"], "no such data file"),
        (["--model", "node", "--data", "CSV", "--epochs", "0"], "--epochs"),
        (["--model", "node", "--data", "CSV", "--lr", "-1"], "--lr"),
        (["--model", "lnn", "--data", "CSV", "--regularization", "-0.1"], "--regularization"),
        (["--model", "node", "--data", "CSV", "--chunk", "50"], "chunk"),
    ],
)
def test_fit_bad_input_exits_2_before_writing(extra, match, pendulum_csv, tmp_path, capsys):
    odd = _write(
        tmp_path, "odd.csv", "trajectory,t,z0,z1,z2\n0,0,1,2,3\n0,0.1,1,2,3\n1,0,1,2,3\n1,0.1,1,2,3\n"
    )
    paths = {"ODD": str(odd), "MISSING": str(tmp_path / "missing.csv"), "CSV": str(pendulum_csv)}
    argv = ["fit", *[paths.get(a, a) for a in extra], "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unknown_model_name_is_refused(pendulum_csv):
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--data", str(pendulum_csv), "--model", "transformer"])
    assert exc.value.code == 2


def test_fit_save_load_rollout_round_trip(pendulum_csv, tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "fit",
        "--data",
        str(pendulum_csv),
        "--model",
        "node2",
        "--epochs",
        "20",
        "--width",
        "16",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    doc = json.loads((out / "results.json").read_text())
    assert doc["table"][0]["heldout_trajectories"] == 1
    assert (out / "rollout.png").exists() and (out / "model.eqx").exists()
    model, spec = load(out), load_metadata(out)
    assert spec["model"] == "node2" and spec["state_size"] == 2
    # The CLI rollout of the loaded model equals a rollout of the loaded model in Python.
    traj_file = tmp_path / "traj.csv"
    assert (
        main(["rollout", "--model", str(out), "--x0", "0.5,0.0", "--steps", "5", "--out", str(traj_file)])
        == 0
    )
    cli_traj = load_trajectories(traj_file).states[0]
    direct = rollout(model, jnp.array([0.5, 0.0]), spec["dt"], 5, RK4())
    np.testing.assert_array_equal(np.asarray(cli_traj), np.asarray(direct))
    assert main(["rollout", "--model", str(out), "--x0", "0.5", "--steps", "5"]) == 2
    assert "state size" in capsys.readouterr().err


def test_rollout_refuses_a_model_that_is_not_a_fitted_dynamics_model(tmp_path, capsys):
    from physbias.groups import SO, V
    from physbias.nn import EMLP

    save(EMLP(V, V, SO(2), width=8, depth=1, key=jax.random.key(0)), tmp_path / "model.eqx")
    assert main(["rollout", "--model", str(tmp_path), "--x0", "0.5,0.0", "--steps", "5"]) == 2
    assert "not a dynamics model" in capsys.readouterr().err


def test_fit_recovers_pendulum_dynamics(pendulum_csv):
    from physbias.experiments.user_fit import fit_trajectories

    data = load_trajectories(pendulum_csv)
    _, _, result = fit_trajectories(data, "node2", width=32, epochs=300, learning_rate=3e-3, progress=False)
    assert result.table[0]["heldout_error_geomean"] < 0.05


def test_trajectory_dataset_validation():
    with pytest.raises(ValueError, match="dt"):
        TrajectoryDataset(np.zeros((2, 3, 2)), 0.0)
    with pytest.raises(ValueError, match="at least 2 times"):
        TrajectoryDataset(np.zeros((2, 1, 2)), 0.1)
    with pytest.raises(ValueError, match="n_trajectories, n_times, state_size"):
        TrajectoryDataset(np.zeros((2, 3, 2, 1)), 0.1)


def test_fit_that_blows_up_exits_non_zero_and_saves_no_model(pendulum_csv, tmp_path, capsys):
    # `--lr 1000` once finished with a training loss of 6.7e10, diverged False and a saved model.
    out = tmp_path / "blown"
    argv = ["fit", "--data", str(pendulum_csv), "--model", "hnn", "--lr", "1000", "--epochs", "60"]
    with pytest.warns(RuntimeWarning):
        assert main([*argv, "--width", "16", "--out", str(out), "--no-progress"]) == 1
    assert "diverged" in capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    assert doc["table"][0]["diverged"] is True
    assert not (out / "model.eqx").exists()
