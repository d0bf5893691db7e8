"""Systems: energies conserved in float64, analytic accelerations, Legendre maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.metrics import energy_drift
from physbias.systems import (
    ChainPendulum,
    CoupledOscillators,
    MassSpring,
    NBody2D,
    Pendulum,
    sample_initial_states,
    simulate,
)

CONSERVATIVE = {
    "pendulum": Pendulum(),
    "nonlinear-spring": MassSpring(k3=0.5),
    "coupled-oscillators": CoupledOscillators(3),
    "double-pendulum": ChainPendulum(),
    "3-body": NBody2D((1.0, 1.0, 1.0)),
}


@pytest.mark.parametrize("name", CONSERVATIVE)
def test_simulated_energy_is_conserved_float64(name):
    system = CONSERVATIVE[name]
    z0 = sample_initial_states(system, jax.random.key(1), 2)
    traj = simulate(system, z0, 0.05, 40)
    assert traj.dtype == np.float64 and traj.shape == (2, 41, 2 * system.n_dof)
    with jax.enable_x64(True):
        drift = np.asarray(energy_drift(system.energy, jnp.asarray(traj)))
    assert drift.max() < 1e-7


def test_pendulum_acceleration_is_analytic():
    with jax.enable_x64(True):
        p = Pendulum(mass=2.0, length=1.5, gravity=9.81)
        for q in (-1.0, 0.2, 0.9):
            acc = p.field(jnp.array([q, 0.4]))[1]
            assert float(acc) == pytest.approx(-9.81 / 1.5 * np.sin(q), rel=1e-12)


def test_damped_pendulum_loses_energy_at_the_damping_rate():
    with jax.enable_x64(True):
        p = Pendulum(damping=0.2)
        z = jnp.array([0.3, 0.5])
        # dE/dt = -damping * qdot^2 for a unit-mass, unit-length pendulum
        de_dt = jax.jvp(p.energy, (z,), (p.field(z),))[1]
        assert float(de_dt) == pytest.approx(-0.2 * 0.5**2, rel=1e-12)


def test_mass_spring_matches_cosine():
    traj = simulate(MassSpring(mass=1.0, k1=4.0), jnp.array([1.0, 0.0]), 0.1, 50)
    t = 0.1 * np.arange(51)
    np.testing.assert_allclose(traj[:, 0], np.cos(2.0 * t), atol=1e-8)


def test_kepler_circular_orbit_has_the_right_period():
    # Two unit masses at distance 2 with G = 1: circular speed 0.5, period 2 pi r / v = 4 pi.
    body = NBody2D((1.0, 1.0), perturbation=0.0)
    z0 = jnp.array([1.0, 0.0, -1.0, 0.0, 0.0, 0.5, 0.0, -0.5])
    traj = simulate(body, z0, np.pi, 4)
    np.testing.assert_allclose(traj[-1], z0, atol=1e-7)
    np.testing.assert_allclose(traj[2, :2], [-1.0, 0.0], atol=1e-7)


def test_legendre_maps_are_inverse_and_hamiltonian_equals_energy():
    with jax.enable_x64(True):
        dp = ChainPendulum()

        @jax.jit  # one compilation for all the nested derivatives
        def check(z):
            x = dp.to_canonical(z)
            grad = jax.grad(dp.hamiltonian)(x)
            hamilton = jnp.concatenate([grad[2:], -grad[:2]])
            return dp.from_canonical(x), dp.hamiltonian(x), dp.energy(z), hamilton, dp.canonical_field(x)

        z = jnp.array([0.3, -0.5, 0.2, 0.1])
        z_back, h, e, hamilton, field = check(z)
        np.testing.assert_allclose(z_back, z, atol=1e-12)
        assert float(h) == pytest.approx(float(e), rel=1e-12)
        # Hamilton's equations from H reproduce the Lagrangian dynamics mapped to (q, p).
        np.testing.assert_allclose(hamilton, field, atol=1e-10)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Pendulum(length=0.0), "length"),
        (lambda: Pendulum(damping=-1.0), "damping"),
        (lambda: ChainPendulum(masses=(1.0,), lengths=(1.0, 1.0)), "equally long"),
        (lambda: NBody2D(masses=(1.0,)), "two"),
        (lambda: CoupledOscillators(stiffness=[[1.0, 2.0], [0.0, 1.0]]), "symmetric"),
    ],
)
def test_bad_system_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_gyroscope_conserves_energy_and_both_cyclic_momenta():
    from physbias.systems import Gyroscope

    top = Gyroscope()
    traj = simulate(top, sample_initial_states(top, jax.random.key(0), 2), 0.01, 300)
    with jax.enable_x64(True):
        t = jnp.asarray(traj)
        energy = np.asarray(jax.vmap(jax.vmap(top.energy))(t))
        momenta = np.asarray(jax.vmap(jax.vmap(top.to_canonical))(t))[..., 4:]  # p_phi, p_psi
    assert np.max(np.abs(energy - energy[:, :1])) < 1e-7 * np.max(np.abs(energy))
    assert np.max(np.abs(momenta - momenta[:, :1])) < 1e-7 * np.max(np.abs(momenta))
    assert np.ptp(traj[..., 3]) > 1e-3  # it nutates: theta is not constant


def test_gyroscope_steady_precession_matches_the_analytic_rate():
    # theta = const requires I1 cos(theta) phidot^2 - I3 w3 phidot + m g l = 0 (slow root).
    from physbias.systems import Gyroscope

    top = Gyroscope()
    theta, w3 = 0.8, 15.0
    a, b, c = top.I1 * np.cos(theta), -top.I3 * w3, top.mass * top.gravity * top.length
    phidot = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)
    z0 = np.array([theta, 0.0, 0.0, 0.0, phidot, w3 - phidot * np.cos(theta)])
    traj = simulate(top, z0, 0.01, 200)
    np.testing.assert_allclose(traj[:, 0], theta, atol=1e-8)
    np.testing.assert_allclose(traj[:, 1], phidot * 0.01 * np.arange(201), atol=1e-7)
