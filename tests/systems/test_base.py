"""Contract over every simulated mechanical system: energy is conserved along a float64 simulation,
or, for a dissipative system, lost at exactly the rate its dissipative force does work.

One instance of every system class (and the damped variant where there is one), each one line of
``SYSTEMS_UNDER_CONTRACT``; ``test_every_system_class_is_under_contract`` fails if a system class
exported by ``physbias.systems`` (or registered in ``SYSTEMS``) has no instance here. (One per
class rather than every registry entry: each simulation costs a ~1.5 s compilation.)

Tolerances: ``simulate`` runs Dopri8 at rtol = atol = 1e-10 in float64; over 20 steps the energy
error is ~1e-9 to 5e-8 of the energy scale ``|T| + |V| = max(|E|, |L|)`` (a scale that cannot
vanish where ``E`` happens to cross zero), so a relative drift below 1e-6 leaves a margin of 20x
or more. The energy balance of a damped system is integrated by Simpson's rule over the saved
states (error O(dt^4), ~3e-6 relative at dt = 0.05), checked at 1e-4.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import simpson

import physbias.systems as systems_module
from physbias.systems import (
    SYSTEMS,
    AbstractMechanicalSystem,
    CartesianChainPendulum,
    ChainPendulum,
    CoupledOscillators,
    Gyroscope,
    Kepler,
    MassSpring,
    NBody2D,
    Pendulum,
    sample_initial_states,
    simulate,
)

SYSTEMS_UNDER_CONTRACT = {
    "pendulum": Pendulum(),
    "damped-pendulum": Pendulum(damping=0.3),
    "nonlinear-spring": MassSpring(k3=1.0),
    "coupled-oscillators": CoupledOscillators(3),
    "chain-pendulum-3": ChainPendulum((1.0, 0.8, 1.2), (1.0, 1.5, 0.5)),
    "3-body": NBody2D((1.0, 2.0, 0.5)),
    "kepler": Kepler(),
    "gyroscope": Gyroscope(),
    "cartesian-chain-3": CartesianChainPendulum(ChainPendulum((1.0, 0.8, 1.2), (1.0, 1.5, 0.5))),
}
CONSERVATIVE = [name for name, s in SYSTEMS_UNDER_CONTRACT.items() if getattr(s, "conservative", True)]
DISSIPATIVE = [name for name in SYSTEMS_UNDER_CONTRACT if name not in CONSERVATIVE]

DT, STEPS = 0.05, 20


def _halves(z):
    n = z.shape[-1] // 2
    return z[..., :n], z[..., n:]


def _energy_and_scale(system, traj):
    """Energy ``E`` along a float64 trajectory ``(B, T, 2n)`` and the scale ``max(|E|, |L|)`` of
    its first state (= ``|T| + |V|`` for a kinetic energy quadratic in the velocities)."""

    def lagrangian(z):
        if isinstance(system, CartesianChainPendulum):  # state (x, p); its Lagrangian takes xdot
            z = system.to_velocity(z)
        return system.lagrangian(*_halves(z))

    @jax.jit  # one compilation instead of one per eager operation
    def evaluate(traj):
        energy = jax.vmap(jax.vmap(system.energy))(traj)
        return energy, jnp.maximum(jnp.abs(energy[:, 0]), jnp.abs(jax.vmap(lagrangian)(traj[:, 0])))

    with jax.enable_x64(True):
        energy, scale = evaluate(jnp.asarray(traj))
    return np.asarray(energy), np.asarray(scale)


def _simulate(system, n=2, seed=1):
    z0 = jax.jit(lambda key: sample_initial_states(system, key, n))(jax.random.key(seed))
    traj = simulate(system, z0, DT, STEPS)
    assert traj.dtype == np.float64 and traj.shape == (n, STEPS + 1, z0.shape[-1])
    assert np.all(np.isfinite(traj))
    return traj


def test_every_system_class_is_under_contract():
    classes = {
        obj
        for obj in vars(systems_module).values()
        if inspect.isclass(obj)
        and (issubclass(obj, AbstractMechanicalSystem) or obj is CartesianChainPendulum)
        and not inspect.isabstract(obj)
    }
    classes |= {type(s) for s in SYSTEMS.values()}
    tested = {type(s) for s in SYSTEMS_UNDER_CONTRACT.values()}
    assert classes - tested == set()
    assert CONSERVATIVE and DISSIPATIVE


@pytest.mark.parametrize("name", CONSERVATIVE)
def test_conservative_system_keeps_its_energy_float64(name):
    system = SYSTEMS_UNDER_CONTRACT[name]
    traj = _simulate(system)
    energy, scale = _energy_and_scale(system, traj)
    drift = np.max(np.abs(energy - energy[:, :1]), axis=1) / scale
    assert drift.max() < 1e-6, f"{name}: relative energy drift {drift.max():.2e}"
    # The trajectory really moves (energy conservation of a state at rest would prove nothing).
    moved = np.max(np.abs(traj - traj[:, :1]), axis=(1, 2))
    assert moved.min() > 1e-3, f"{name}: the simulated state barely changes"


@pytest.mark.parametrize("name", DISSIPATIVE)
def test_dissipative_system_loses_energy_at_the_rate_of_its_force(name):
    system = SYSTEMS_UNDER_CONTRACT[name]
    traj = _simulate(system)
    energy, scale = _energy_and_scale(system, traj)
    # Energy decreases monotonically and noticeably ...
    assert np.all(np.diff(energy, axis=1) < 0), f"{name}: energy does not decrease monotonically"
    lost = energy[:, 0] - energy[:, -1]
    assert np.all(lost > 1e-3 * scale)
    # ... by exactly the work of the dissipative force: E(t) - E(0) = int_0^t qdot . F(q, qdot) dt.
    with jax.enable_x64(True):
        power_fn = jax.jit(
            jax.vmap(jax.vmap(lambda z: _halves(z)[1] @ system.dissipative_force(*_halves(z))))
        )
        power = np.asarray(power_fn(jnp.asarray(traj)))
    work = simpson(power, dx=DT, axis=1)
    np.testing.assert_allclose(energy[:, -1] - energy[:, 0], work, rtol=1e-4)
