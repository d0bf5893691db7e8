"""Integrators: measured orders of convergence, symplectic energy behaviour, rollout contract."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import INTEGRATORS, RK4, Leapfrog, Yoshida4, rollout, solve_adaptive


def oscillator(z):
    return jnp.stack([z[1], -z[0]])


def measured_order(integrator, t_end=2.0, steps=(40, 80, 160)):
    """Slope of log(global error) vs log(dt) against the exact solution (cos t, -sin t)."""
    errors = []
    for n in steps:
        traj = rollout(oscillator, jnp.array([1.0, 0.0]), t_end / n, n, integrator)
        exact = jnp.array([math.cos(t_end), -math.sin(t_end)])
        errors.append(float(jnp.linalg.norm(traj[-1] - exact)))
    return np.polyfit(np.log([t_end / n for n in steps]), np.log(errors), 1)[0]


@pytest.mark.parametrize("name", INTEGRATORS)
def test_every_integrator_has_its_stated_order(name):
    with jax.enable_x64(True):
        integrator = INTEGRATORS[name]()
        assert measured_order(integrator) == pytest.approx(integrator.order, abs=0.1)


@pytest.mark.parametrize("integrator", [Leapfrog(), Yoshida4()])
def test_symplectic_energy_error_is_bounded_over_1e5_steps(integrator):
    with jax.enable_x64(True):
        dt = 0.1
        traj = rollout(oscillator, jnp.array([1.0, 0.0]), dt, 100_000, integrator)
        energy = 0.5 * jnp.sum(traj**2, axis=-1)
        err = np.abs(np.asarray(energy) - 0.5)
        # Bounded (no secular growth): the error over the last tenth is no larger than over the
        # first tenth, and stays O(dt^order).
        assert err[-10_000:].max() <= 1.01 * err[:10_000].max()
        assert err.max() < (dt**integrator.order)


def test_rk4_energy_drifts_where_leapfrog_does_not():
    with jax.enable_x64(True):
        traj = rollout(oscillator, jnp.array([1.0, 0.0]), 0.1, 20_000, RK4())
        energy = 0.5 * np.sum(np.asarray(traj) ** 2, axis=-1)
        assert energy[-1] < energy[0] - 1e-4  # RK4 is dissipative on the oscillator


def test_rollout_batches_and_substeps():
    z0 = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    traj = rollout(oscillator, z0, 0.1, 5, RK4(), substeps=4)
    assert traj.shape == (2, 6, 2)
    np.testing.assert_allclose(traj[:, 0], z0)
    np.testing.assert_allclose(traj[0, -1], [math.cos(0.5), -math.sin(0.5)], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"dt": 0.0}, "dt"), ({"dt": -1.0}, "dt"), ({"steps": 0}, "steps"), ({"substeps": 0}, "substeps")],
)
def test_rollout_rejects_bad_steps(kwargs, match):
    args = {"dt": 0.1, "steps": 3} | kwargs
    with pytest.raises(ValueError, match=match):
        rollout(oscillator, jnp.zeros(2), integrator=RK4(), **args)


def test_adaptive_solver_matches_the_analytic_solution():
    with jax.enable_x64(True):
        ts = jnp.linspace(0.0, 10.0, 11)
        ys = solve_adaptive(oscillator, jnp.array([1.0, 0.0]), ts)
        np.testing.assert_allclose(ys[:, 0], np.cos(ts), atol=1e-9)
