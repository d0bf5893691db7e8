"""Training and test data from a mechanical system: simulated trajectories, exact time derivatives.

Coordinates are ``"velocity"`` (``z = (q, qdot)``) or ``"canonical"`` (``x = (q, p)``,
``p = dL/dqdot``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from ..data import Dataset, check_array
from .mechanics import AbstractMechanicalSystem, sample_initial_states, simulate

COORDINATES = ("velocity", "canonical")


def _check_coordinates(coordinates: str) -> None:
    if coordinates not in COORDINATES:
        raise ValueError(f"`coordinates` must be one of {COORDINATES}, got {coordinates!r}")


def sample_trajectories(
    system: AbstractMechanicalSystem,
    key: PRNGKeyArray,
    n: int,
    dt: float,
    steps: int,
    coordinates: str = "velocity",
) -> np.ndarray:
    """``(n, steps + 1, 2 n_dof)`` float64 trajectories from random initial states.

    Simulated in float64 at tolerance 1e-10 (:func:`simulate`), then mapped to ``coordinates``.
    """
    _check_coordinates(coordinates)
    traj = simulate(system, sample_initial_states(system, key, n), dt, steps)
    if coordinates == "canonical":
        with jax.enable_x64(True):
            traj = np.asarray(jax.vmap(jax.vmap(system.to_canonical))(jnp.asarray(traj)))
    return traj


def derivative_dataset(
    system: AbstractMechanicalSystem,
    trajectories: np.ndarray,
    coordinates: str = "velocity",
    noise: float = 0.0,
    key: PRNGKeyArray | None = None,
) -> Dataset:
    """``(state, exact d state / dt)`` pairs at every state of ``trajectories`` (float32).

    The derivative is the system's own field (computed in float64); with ``noise > 0`` the
    states (not the derivatives) get Gaussian noise of that standard deviation from ``key``.
    """
    _check_coordinates(coordinates)
    if noise < 0:
        raise ValueError(f"`noise` must be >= 0, got {noise}")
    if noise > 0 and key is None:
        raise ValueError("`key` is required when `noise` > 0")
    check_array(trajectories, "trajectories", min_ndim=3)  # non-empty and finite
    if trajectories.ndim != 3 or trajectories.shape[-1] != system.state_size:
        raise ValueError(
            f"`trajectories` must have shape (n, T, {system.state_size}) for {type(system).__name__}, "
            f"got {trajectories.shape}"
        )
    field = system.canonical_field if coordinates == "canonical" else system.field
    with jax.enable_x64(True):
        flat = jnp.asarray(trajectories.reshape(-1, trajectories.shape[-1]))
        deriv = np.asarray(jax.jit(jax.vmap(field))(flat))
    states = np.asarray(flat, dtype=np.float32)
    if noise > 0:
        states = states + noise * np.asarray(jax.random.normal(key, states.shape))
    return Dataset(states, deriv.astype(np.float32))


def energy_function(
    system: AbstractMechanicalSystem, coordinates: str = "velocity"
) -> Callable[[Array], Array]:
    """The system's energy as a function of one state in ``coordinates``."""
    _check_coordinates(coordinates)
    return system.hamiltonian if coordinates == "canonical" else system.energy


def canonical_trajectories(
    system: AbstractMechanicalSystem, x0: np.ndarray, dt: float, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact trajectories and time derivatives in canonical coordinates ``(q, p)`` from canonical
    initial states ``x0`` ``(n, 2 n_dof)`` (float64, tolerance 1e-10).

    Returns ``(states, derivatives)``, both ``(n, steps + 1, 2 n_dof)``.

    Example: the pendulum of Greydanus et al. (2019), ``H = 3 (1 - cos q) + p^2``, is
    ``Pendulum(mass=0.5, length=1.0, gravity=6.0)``.
    """
    x0 = np.asarray(check_array(x0, "x0", min_ndim=2), np.float64)
    if x0.ndim != 2 or x0.shape[1] != system.state_size:
        raise ValueError(f"`x0` must have shape (n, {system.state_size}), got {x0.shape}")
    with jax.enable_x64(True):
        z0 = np.asarray(jax.vmap(system.from_canonical)(jnp.asarray(x0)))
    traj = simulate(system, z0, dt, steps)
    with jax.enable_x64(True):
        flat = jnp.asarray(traj.reshape(-1, system.state_size))
        states = np.asarray(jax.vmap(system.to_canonical)(flat))
        deriv = np.asarray(jax.jit(jax.vmap(system.canonical_field))(jnp.asarray(states)))
    shape = traj.shape
    return states.reshape(shape), deriv.reshape(shape)


def transition_pairs(
    system: AbstractMechanicalSystem,
    rng: np.random.Generator,
    n: int,
    steps: int,
    dt: float,
    *,
    q_scale: float,
    p_scale: float,
    shift: float = 0.0,
    noise_std: float = 0.0,
) -> tuple[Array, Array]:
    """One-step pairs ``(x_t, x_{t+1})`` of ``n`` simulated trajectories of ``steps`` steps.

    ``x0 ~ N(0, diag(q_scale^2, p_scale^2))`` with ``q`` shifted by ``shift``; the targets carry
    ``N(0, noise_std^2)`` noise. Unit masses are assumed, so velocities are momenta.

    Returns ``(x, y)``, both float32 ``(n * steps, state_size)``.
    """
    d = system.state_size
    h = d // 2
    x0 = rng.normal(size=(n, d)) * np.r_[np.full(h, q_scale), np.full(h, p_scale)]
    x0[:, :h] += shift
    traj = simulate(system, x0, dt, steps)
    x, y = traj[:, :-1].reshape(-1, d), traj[:, 1:].reshape(-1, d)
    y = y + noise_std * rng.normal(size=y.shape)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def radial_trajectory_split(
    system: AbstractMechanicalSystem,
    rng: np.random.Generator,
    n: int,
    points: int,
    radius: tuple[float, float],
    t_end: float,
    noise_std: float,
) -> dict:
    """Greydanus et al. (2019) style data for a one-degree-of-freedom system: ``x0`` in a uniformly
    random direction at radius ``U[r0, r1]``, ``points`` exact canonical states per trajectory on
    ``[0, t_end]``, ``N(0, noise_std^2)`` noise on every state; the first half for training.

    Returns ``{"dt", "train", "train_derivatives", "test", "test_clean"}`` (arrays
    ``(n/2, points, 2)``).
    """
    direction = rng.uniform(-1, 1, (n, 2))
    x0 = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    x0 *= rng.uniform(*radius, (n, 1))
    dt = t_end / (points - 1)
    clean, deriv = canonical_trajectories(system, x0, dt, points - 1)
    noisy = clean + noise_std * rng.standard_normal(clean.shape)
    half = n // 2
    return {
        "dt": dt,
        "train": noisy[:half],
        "train_derivatives": deriv[:half],
        "test": noisy[half:],
        "test_clean": clean[half:],
    }
