"""TrajectoryDataset: training chunks and finite-difference derivatives on hand-built trajectories.

Tolerances: the chunk contents are copies (exact); the finite differences are checked in float64
(``jax.enable_x64``) at 1e-12 relative, far below the O(dt^2) truncation errors they are compared
with.
"""

import jax
import numpy as np
import pytest

from physbias.data import TrajectoryDataset


def _labelled_states(n=2, times=5, d=3):
    """``states[k, i, j] = 100 k + 10 i + j``: every entry names its trajectory, time and slot."""
    k, i, j = np.meshgrid(np.arange(n), np.arange(times), np.arange(d), indexing="ij")
    return (100 * k + 10 * i + j).astype(np.float32)


def test_chunks_are_every_window_of_length_plus_one_states():
    states = _labelled_states()
    chunks = TrajectoryDataset(states, 0.1).chunks(2)
    # 5 - 2 = 3 windows per trajectory, 2 trajectories
    assert chunks.inputs.shape == (6, 3) and chunks.targets.shape == (6, 2, 3)
    expected_inputs, expected_targets = [], []
    for k in range(2):
        for start in range(3):
            expected_inputs.append(states[k, start])
            expected_targets.append(states[k, start + 1 : start + 3])
    np.testing.assert_array_equal(chunks.inputs, np.stack(expected_inputs))
    np.testing.assert_array_equal(chunks.targets, np.stack(expected_targets))


def test_longest_and_shortest_chunks():
    states = _labelled_states()
    data = TrajectoryDataset(states, 0.1)
    longest = data.chunks(4)  # one window per trajectory: the whole trajectory
    np.testing.assert_array_equal(longest.inputs, states[:, 0])
    np.testing.assert_array_equal(longest.targets, states[:, 1:])
    shortest = data.chunks(1)  # consecutive pairs (z_i, z_{i+1})
    np.testing.assert_array_equal(shortest.inputs, states[:, :-1].reshape(-1, 3))
    np.testing.assert_array_equal(shortest.targets, states[:, 1:].reshape(-1, 1, 3))


@pytest.mark.parametrize("length", [0, 5, 2.0, -1])
def test_chunks_rejects_lengths_outside_the_trajectory(length):
    with pytest.raises(ValueError, match="length"):
        TrajectoryDataset(_labelled_states(), 0.1).chunks(length)


def test_central_differences_are_exact_on_a_quadratic_trajectory():
    # z(t) = a + b t + c t^2: (z(t + h) - z(t - h)) / 2h = b + 2 c t exactly.
    dt, times = 0.25, 7
    a, b, c = np.array([1.0, -2.0]), np.array([0.5, 3.0]), np.array([-1.5, 0.75])
    t = dt * np.arange(times)
    traj = a + b * t[:, None] + c * t[:, None] ** 2  # (T, 2)
    states = np.stack([traj, 2.0 * traj])  # two trajectories
    with jax.enable_x64(True):
        pairs = TrajectoryDataset(states, dt).finite_difference_derivatives()
        assert pairs.inputs.shape == (2 * (times - 2), 2) and pairs.targets.shape == pairs.inputs.shape
        interior = t[1:-1, None]
        np.testing.assert_allclose(pairs.inputs, np.concatenate([traj[1:-1], 2.0 * traj[1:-1]]), rtol=1e-12)
        exact = b + 2.0 * c * interior
        np.testing.assert_allclose(pairs.targets, np.concatenate([exact, 2.0 * exact]), rtol=1e-12)


def test_central_differences_of_sine_are_second_order():
    # (sin(t + h) - sin(t - h)) / 2h = cos(t) sin(h) / h exactly; the error against cos(t) is
    # cos(t) (1 - sin(h)/h) ~ cos(t) h^2 / 6, so halving dt divides it by 4.
    errors = []
    for dt in (0.1, 0.05):
        t = dt * np.arange(int(round(2.0 / dt)) + 1)
        with jax.enable_x64(True):
            pairs = TrajectoryDataset(np.sin(t)[None, :, None], dt).finite_difference_derivatives()
            deriv = np.asarray(pairs.targets)[:, 0]
        interior = t[1:-1]
        np.testing.assert_allclose(deriv, np.cos(interior) * np.sin(dt) / dt, rtol=1e-12, atol=1e-12)
        err = np.max(np.abs(deriv - np.cos(interior)))
        assert err <= dt**2 / 6
        errors.append(err)
    assert errors[0] / errors[1] == pytest.approx(4.0, rel=0.05)


def test_loader_errors_name_the_file_and_what_was_expected(tmp_path):
    import numpy as np
    import pytest

    from physbias.data import load_trajectories

    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, states=np.array([np.zeros((3, 2)), np.zeros((4, 2))], dtype=object), dt=0.1)
    with pytest.raises(ValueError, match=r"ragged\.npz.*\(n_trajectories, n_times, state_size\)"):
        load_trajectories(ragged)
    short = tmp_path / "short.csv"
    short.write_text(
        "trajectory,t,z0,z1\n" + "".join(f"0,{i * 0.05},{i},{i}\n" for i in range(8)) + "0,0.4,1\n"
    )
    with pytest.raises(ValueError, match=r"short\.csv: every row must have the header's 4"):
        load_trajectories(short)


def test_a_dt_that_disagrees_with_the_file_is_refused(tmp_path):
    import numpy as np
    import pytest

    from physbias.data import load_trajectories

    csv = tmp_path / "p.csv"
    csv.write_text(
        "trajectory,t,z0,z1\n" + "".join(f"{k},{i * 0.05},{i},{-i}\n" for k in range(2) for i in range(6))
    )
    with pytest.raises(ValueError, match=r"dt = 0\.1 .*disagrees.*0\.05"):
        load_trajectories(csv, dt=0.1)
    assert load_trajectories(csv, dt=0.05).dt == pytest.approx(0.05)
    assert load_trajectories(csv).dt == pytest.approx(0.05)
    npz = tmp_path / "p.npz"
    np.savez(npz, states=np.zeros((2, 5, 2)), dt=0.2)
    with pytest.raises(ValueError, match="disagrees"):
        load_trajectories(npz, dt=0.1)


def test_simulate_writes_float64_precision(tmp_path):
    import jax
    import numpy as np

    from physbias.cli import main
    from physbias.systems import Pendulum, sample_trajectories

    out = tmp_path / "sim.npz"
    assert (
        main(
            ["simulate", "--system", "pendulum", "--n", "2", "--steps", "4", "--dt", "0.1", "--out", str(out)]
        )
        == 0
    )
    with np.load(out) as f:
        states = f["states"]
    assert states.dtype == np.float64
    expected = sample_trajectories(Pendulum(), jax.random.key(0), 2, 0.1, 4)
    np.testing.assert_array_equal(states, expected)


def test_regression_tables_round_trip_and_bad_files_are_named(tmp_path):
    import pytest

    from physbias.data import load_regression, save_regression

    x = np.random.default_rng(0).normal(size=(7, 3))
    y = np.random.default_rng(1).normal(size=(7, 2))
    for suffix in (".csv", ".npz"):
        path = save_regression(tmp_path / f"table{suffix}", x, y)
        x2, y2, names = load_regression(path)
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)
        assert names == ["x0", "x1", "x2"]
    (tmp_path / "named.csv").write_text("a,b,y_force\n1,2,3\n4,5,6\n")
    x3, y3, names = load_regression(tmp_path / "named.csv")
    assert names == ["a", "b"] and y3.tolist() == [[3.0], [6.0]]
    bad = {
        "noy.csv": ("a,b\n1,2\n3,4\n", "output column"),
        "short.csv": ("a,y\n1,2\n3\n", "comma-separated"),
        "nan.csv": ("a,y\n1,nan\n3,4\n", "NaN"),
        "one.csv": ("a,y\n1,2\n", "at least 2"),
    }
    for name, (text, message) in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            load_regression(tmp_path / name)
    np.savez(tmp_path / "nox.npz", y=y)
    with pytest.raises(ValueError, match="missing"):
        load_regression(tmp_path / "nox.npz")
    with pytest.raises(FileNotFoundError):
        load_regression(tmp_path / "absent.csv")
