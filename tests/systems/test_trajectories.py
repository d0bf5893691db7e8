"""Trajectories and derivative data of a mechanical system (physbias.systems.trajectories).

References:
  * a central finite difference of the simulated trajectory, (z(t+h) - z(t-h)) / 2h, whose error
    is (h^2 / 6) z''' + O(h^4): halving h divides it by 4 (measured 3.99 here);
  * the pendulum written out: L = m l^2 qdot^2 / 2 + m g l cos q, so p = m l^2 qdot and
    E = m l^2 qdot^2 / 2 - m g l cos q = p^2 / (2 m l^2) - m g l cos q, conserved;
  * the simulation is float64 at tolerance 1e-10: energy is conserved to ~1e-9 of m g l.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.systems import Pendulum, derivative_dataset, energy_function, sample_trajectories

M, L, G = 0.7, 1.3, 9.81
DT, STEPS, N = 0.02, 100, 3


@pytest.fixture(scope="module")
def pendulum():
    return Pendulum(mass=M, length=L, gravity=G)


@pytest.fixture(scope="module")
def trajectories(pendulum):
    key = jax.random.key(4)
    return {c: sample_trajectories(pendulum, key, N, DT, STEPS, c) for c in ("velocity", "canonical")}


@pytest.mark.parametrize("coordinates", ["velocity", "canonical"])
def test_derivative_targets_are_a_central_difference_to_second_order(pendulum, trajectories, coordinates):
    traj = trajectories[coordinates]
    assert traj.shape == (N, STEPS + 1, 2) and traj.dtype == np.float64
    data = derivative_dataset(pendulum, traj, coordinates)
    assert data.inputs.shape == data.targets.shape == (N * (STEPS + 1), 2)
    np.testing.assert_allclose(data.inputs, traj.reshape(-1, 2), rtol=1e-6, atol=1e-6)  # float32 states
    exact = np.asarray(data.targets, np.float64).reshape(traj.shape)
    # central differences with h = dt and h = 2 dt, at the same interior times 2 .. T-2
    fd_h = (traj[:, 3:-1] - traj[:, 1:-3]) / (2 * DT)
    fd_2h = (traj[:, 4:] - traj[:, :-4]) / (4 * DT)
    err_h = np.max(np.abs(fd_h - exact[:, 2:-2]))
    err_2h = np.max(np.abs(fd_2h - exact[:, 2:-2]))
    scale = np.max(np.abs(exact))
    assert err_h < 1e-3 * scale
    assert 3.7 < err_2h / err_h < 4.3  # O(h^2)


def test_canonical_momentum_of_the_pendulum_is_m_l2_qdot(trajectories):
    z, x = trajectories["velocity"], trajectories["canonical"]
    np.testing.assert_allclose(x[..., 0], z[..., 0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(x[..., 1], M * L**2 * z[..., 1], rtol=1e-12, atol=1e-14)


def test_energy_function_matches_the_formula_and_is_conserved(pendulum, trajectories):
    z, x = trajectories["velocity"], trajectories["canonical"]
    by_hand_z = 0.5 * M * L**2 * z[..., 1] ** 2 - M * G * L * np.cos(z[..., 0])
    by_hand_x = x[..., 1] ** 2 / (2 * M * L**2) - M * G * L * np.cos(x[..., 0])
    with jax.enable_x64(True):
        e_z = np.asarray(jax.vmap(jax.vmap(energy_function(pendulum)))(jnp.asarray(z)))
        e_x = np.asarray(jax.vmap(jax.vmap(energy_function(pendulum, "canonical")))(jnp.asarray(x)))
    assert e_z.dtype == np.float64
    np.testing.assert_allclose(e_z, by_hand_z, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e_x, by_hand_x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e_x, e_z, rtol=1e-12, atol=1e-12)
    # drift in units of the energy scale m g l (an energy may pass near zero): measured 2e-9
    drift = np.max(np.abs(e_z - e_z[:, :1])) / (M * G * L)
    assert drift < 1e-8
    # not trivially constant: the trajectories start at different energies
    assert np.ptp(e_z[:, 0]) > 1e-2 * np.max(np.abs(e_z[:, 0]))


def test_noise_is_added_to_the_states_only(pendulum, trajectories):
    traj = trajectories["velocity"]
    clean = derivative_dataset(pendulum, traj)
    noisy = derivative_dataset(pendulum, traj, noise=0.1, key=jax.random.key(0))
    np.testing.assert_array_equal(noisy.targets, clean.targets)
    residual = np.asarray(noisy.inputs) - np.asarray(clean.inputs)
    assert abs(np.std(residual) - 0.1) < 0.01 and abs(np.mean(residual)) < 0.01  # 606 draws
    with pytest.raises(ValueError, match="`key`"):
        derivative_dataset(pendulum, traj, noise=0.1)
    with pytest.raises(ValueError, match="`noise`"):
        derivative_dataset(pendulum, traj, noise=-0.1, key=jax.random.key(0))


def test_unknown_coordinates_raise(pendulum, trajectories):
    for bad in ("polar", "Velocity", ""):
        with pytest.raises(ValueError, match="`coordinates`"):
            sample_trajectories(pendulum, jax.random.key(0), 2, DT, 3, coordinates=bad)
        with pytest.raises(ValueError, match="`coordinates`"):
            derivative_dataset(pendulum, trajectories["velocity"], bad)
        with pytest.raises(ValueError, match="`coordinates`"):
            energy_function(pendulum, bad)


def test_bad_trajectories_are_refused_before_any_work():
    import numpy as np
    import pytest

    from physbias.systems import Pendulum, derivative_dataset

    with pytest.raises(ValueError, match=r"\(n, T, 2\)"):
        derivative_dataset(Pendulum(), np.zeros((3, 5, 4)))
    with pytest.raises(ValueError, match="NaN or inf"):
        derivative_dataset(Pendulum(), np.full((3, 5, 2), np.nan))
    with pytest.raises(ValueError, match="empty"):
        derivative_dataset(Pendulum(), np.zeros((0, 5, 2)))


def test_canonical_trajectories_conserve_the_hamiltonian_and_give_its_field():
    from physbias.systems import Pendulum, canonical_trajectories

    x0 = np.array([[1.0, 0.5], [-0.3, 1.2]])
    states, deriv = canonical_trajectories(Pendulum(mass=0.5, length=1.0, gravity=6.0), x0, 0.1, 30)
    assert states.shape == deriv.shape == (2, 31, 2)
    np.testing.assert_allclose(states[:, 0], x0, atol=1e-12)
    energy = states[..., 1] ** 2 - 3 * np.cos(states[..., 0])  # H = 3 (1 - cos q) + p^2 (Greydanus 2019)
    assert np.max(np.ptp(energy, axis=1)) < 1e-7
    np.testing.assert_allclose(deriv[..., 0], 2 * states[..., 1], atol=1e-9)  # dq/dt = dH/dp
    np.testing.assert_allclose(deriv[..., 1], -3 * np.sin(states[..., 0]), atol=1e-9)
    with pytest.raises(ValueError, match="x0"):
        canonical_trajectories(Pendulum(), np.ones((2, 3)), 0.1, 5)


def test_transition_pairs_are_one_exact_step_apart():
    from physbias.systems import MassSpring, transition_pairs

    system = MassSpring(mass=1.0, k1=1.0)  # q(t + dt) = q cos dt + p sin dt
    x, y = transition_pairs(system, np.random.default_rng(0), 3, 5, 0.1, q_scale=1.0, p_scale=0.5)
    assert x.shape == y.shape == (15, 2)
    c, s = np.cos(0.1), np.sin(0.1)
    np.testing.assert_allclose(
        y, np.stack([c * x[:, 0] + s * x[:, 1], c * x[:, 1] - s * x[:, 0]], 1), atol=1e-5
    )
    np.testing.assert_allclose(x[1:5], y[0:4], atol=1e-6)  # consecutive pairs chain


def test_radial_trajectory_split_halves_exact_trajectories_with_noise():
    from physbias.systems import MassSpring, radial_trajectory_split

    system = MassSpring(mass=1.0, k1=1.0)
    data = radial_trajectory_split(system, np.random.default_rng(0), 8, 11, (0.5, 1.0), 1.0, 0.0)
    assert data["train"].shape == data["test"].shape == (4, 11, 2)
    r = np.linalg.norm(data["test_clean"], axis=2)  # circles: the radius is conserved
    assert np.all((r > 0.5 - 1e-6) & (r < 1.0 + 1e-6)) and np.ptp(r, axis=1).max() < 1e-6
    noisy = radial_trajectory_split(system, np.random.default_rng(0), 8, 11, (0.5, 1.0), 1.0, 0.1)
    assert 0.05 < np.std(noisy["test"] - noisy["test_clean"]) < 0.15
