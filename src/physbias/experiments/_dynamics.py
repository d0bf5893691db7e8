"""Shared pieces of the dynamics experiments: data from a system, rollout evaluation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..dynamics.integrators import RK4, rollout
from ..metrics import energy_drift, geometric_mean_relative_error, relative_error
from ..systems.mechanics import AbstractMechanicalSystem, sample_initial_states, simulate


def true_trajectories(
    system: AbstractMechanicalSystem, key, n: int, dt: float, steps: int, coordinates: str
) -> np.ndarray:
    """``(n, steps + 1, 2 n_dof)`` float64 trajectories in ``"velocity"`` or ``"canonical"``
    coordinates."""
    traj = simulate(system, sample_initial_states(system, key, n), dt, steps)
    if coordinates == "canonical":
        with jax.enable_x64(True):
            traj = np.asarray(jax.vmap(jax.vmap(system.to_canonical))(jnp.asarray(traj)))
    return traj


def derivative_data(
    system: AbstractMechanicalSystem, traj: np.ndarray, coordinates: str, noise: float = 0.0, key=None
) -> Dataset:
    """``(state, true time derivative)`` pairs at every state of ``traj`` (float32)."""
    field = system.canonical_field if coordinates == "canonical" else system.field
    with jax.enable_x64(True):
        flat = jnp.asarray(traj.reshape(-1, traj.shape[-1]))
        deriv = np.asarray(jax.jit(jax.vmap(field))(flat))
    states = np.asarray(flat, dtype=np.float32)
    if noise > 0:
        states = states + noise * np.asarray(jax.random.normal(key, states.shape))
    return Dataset(states, deriv.astype(np.float32))


def energy_of(system: AbstractMechanicalSystem, coordinates: str):
    return system.hamiltonian if coordinates == "canonical" else system.energy


def evaluate_rollouts(
    model, system: AbstractMechanicalSystem, true: np.ndarray, dt: float, coordinates: str
) -> dict:
    """Roll ``model`` out from the first state of each true trajectory (RK4, float32) and compare.

    Returns the geometric-mean relative error over steps ``1..T`` (the start is exact, so it is
    left out; mean over trajectories), the final
    relative error, the final relative energy error, the predicted trajectories and the
    per-step error curve.
    """
    steps = true.shape[1] - 1
    z0 = jnp.asarray(true[:, 0], jnp.float32)
    pred = np.asarray(jax.jit(lambda z: rollout(model, z, dt, steps, RK4()))(z0), dtype=np.float64)
    finite = np.isfinite(pred).all(axis=(1, 2))
    with jax.enable_x64(True):
        t64 = jnp.asarray(true)
        p64 = jnp.asarray(np.where(np.isfinite(pred), pred, 1e30))
        rel = np.asarray(relative_error(p64, t64))
        gm = np.asarray(geometric_mean_relative_error(p64[:, 1:], t64[:, 1:]))
        drift = np.asarray(energy_drift(energy_of(system, coordinates), p64))
    return {
        "rollout_error_geomean": float(np.mean(gm)),
        "rollout_error_final": float(np.mean(rel[:, -1])),
        "energy_error_final": float(np.median(drift[:, -1])) if finite.all() else float("inf"),
        "diverged_rollouts": int((~finite).sum()),
        "pred": pred,
        "error_curve": np.mean(rel, axis=0),
    }
