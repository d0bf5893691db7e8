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
    # The same run (dt = 0.1, 20 000 steps, ~320 periods, float64) with both methods.
    # RK4 multiplies z by R(i dt) each step, so the energy by |R|^2 = 1 - dt^6/72 + ... < 1: a
    # secular loss, ~2.8e-4 relative by the end. Kick-drift-kick leapfrog exactly conserves the
    # modified energy v^2 + (1 - dt^2/4) q^2, so its energy error stays below dt^2/4 = 2.5e-3
    # relative and does not grow.
    dt, steps = 0.1, 20_000
    tenth = steps // 10
    with jax.enable_x64(True):
        rk4 = np.asarray(rollout(oscillator, jnp.array([1.0, 0.0]), dt, steps, RK4()))
        leapfrog = np.asarray(rollout(oscillator, jnp.array([1.0, 0.0]), dt, steps, Leapfrog()))
    rk4_energy = 0.5 * np.sum(rk4**2, axis=-1)
    gain = (1 - dt**2 / 2 + dt**4 / 24) ** 2 + (dt - dt**3 / 6) ** 2  # |R(i dt)|^2
    np.testing.assert_allclose(rk4_energy, 0.5 * gain ** np.arange(steps + 1), rtol=1e-10)
    assert rk4_energy[-1] < rk4_energy[0] - 1e-4  # RK4 is dissipative on the oscillator
    rk4_error = np.abs(rk4_energy - 0.5) / 0.5
    assert rk4_error[-tenth:].max() > 5 * rk4_error[:tenth].max()  # ... and the loss keeps growing

    leapfrog_error = np.abs(0.5 * np.sum(leapfrog**2, axis=-1) - 0.5) / 0.5
    assert leapfrog_error.max() < 1e-2
    assert leapfrog_error[-tenth:].max() <= 1.01 * leapfrog_error[:tenth].max()  # no growth
    modified = leapfrog[:, 1] ** 2 + (1 - dt**2 / 4) * leapfrog[:, 0] ** 2
    np.testing.assert_allclose(modified, modified[0], rtol=1e-12)


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


def test_separable_leapfrog_is_the_leapfrog_map_and_runs_backwards():
    from physbias.dynamics import separable_leapfrog

    # H = p^4/4 + p^2/2 + (1 - cos q): a non-quadratic kinetic term tests the drift's gradient.
    grad_k = lambda p: p**3 + p
    grad_v = jnp.sin
    field = lambda z: jnp.stack([grad_k(z[1]), -grad_v(z[0])])
    z = jnp.array([0.7, -0.4])
    q, p = separable_leapfrog(grad_k, grad_v, z[0], z[1], 0.1, 5)
    expected = z
    for _ in range(5):
        expected = Leapfrog().step(field, expected, 0.1)
    np.testing.assert_allclose([q, p], expected, rtol=1e-6)
    back = separable_leapfrog(grad_k, grad_v, q, p, -0.1, 5)
    np.testing.assert_allclose(back, z, atol=1e-6)
    jac = jax.jacfwd(lambda s: jnp.stack(separable_leapfrog(grad_k, grad_v, s[0], s[1], 0.1, 5)))(z)
    assert float(jnp.linalg.det(jac)) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError, match="steps"):
        separable_leapfrog(grad_k, grad_v, q, p, 0.1, 0)
