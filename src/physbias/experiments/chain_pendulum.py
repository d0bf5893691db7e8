"""``physbias run chain-pendulum``: generalised vs Cartesian coordinates on 2-, 3- and 5-link chain
pendulums (seed 004; Finzi, Wang & Wilson 2020, "Simplifying Hamiltonian and Lagrangian Neural
Networks via Explicit Constraints").

Seven models learn the dynamics from exact time derivatives at states along simulated trajectories:
Neural ODE, second-order NODE, HNN, LNN and DeLaN (structured LNN) in the angles; CHNN and CLNN in
Cartesian coordinates, with the chain's distance constraints enforced by Lagrange multipliers.
Every model is rolled out
(RK4) from unseen initial states; predictions are mapped to Cartesian positions and velocities
``(x, xdot)`` of the masses and compared with the truth by the geometric mean over the rollout of
``|z_hat - z| / (|z_hat| + |z|)``. The chaos floor is the same metric between the true trajectory
and the true trajectory from a state perturbed by ``chaos_epsilon`` (and projected back onto the
constraints): no model can be expected to beat it.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..data import Dataset
from ..dynamics.constrained import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from ..dynamics.integrators import RK4, rollout
from ..dynamics.losses import derivative_loss
from ..dynamics.models import DeepLagrangianNN, HamiltonianNN, LagrangianNN, NeuralODE, SecondOrderNODE
from ..metrics import chaos_floor, geometric_mean, geometric_mean_relative_error, relative_error
from ..report import Figure, Panel, Result, series
from ..systems.mechanics import CartesianChainPendulum, ChainPendulum, sample_initial_states, simulate
from ..train import adam_cosine, fit
from . import Experiment
from ._config import validate_config

MODELS = ("NODE", "NODE2", "HNN", "LNN", "DeLaN", "CHNN", "CLNN")
"""Model names: coordinates and structure of each are in :data:`_SPECS`."""

# name -> (coordinates the model works in, constructor (config, n_links, chain, key) -> model)
_SPECS = {
    "NODE": ("angles-velocity", lambda c, n, ch, k: NeuralODE(2 * n, c.width, c.depth, key=k)),
    "NODE2": ("angles-velocity", lambda c, n, ch, k: SecondOrderNODE(2 * n, c.width, c.depth, key=k)),
    "HNN": ("angles-canonical", lambda c, n, ch, k: HamiltonianNN(2 * n, c.width, c.depth, key=k)),
    "LNN": (
        "angles-velocity",
        lambda c, n, ch, k: LagrangianNN(2 * n, c.width, c.depth, key=k, regularization=c.lnn_regularization),
    ),
    "DeLaN": ("angles-velocity", lambda c, n, ch, k: DeepLagrangianNN(2 * n, c.width, c.depth, key=k)),
    "CHNN": (
        "cartesian-canonical",
        lambda c, n, ch, k: ConstrainedHamiltonianNN(ch.constraints, c.width, c.depth, key=k),
    ),
    "CLNN": (
        "cartesian-velocity",
        lambda c, n, ch, k: ConstrainedLagrangianNN(ch.constraints, c.width, c.depth, key=k),
    ),
}


@dataclasses.dataclass(frozen=True)
class ChainPendulumConfig:
    links: tuple[int, ...] = (2, 3, 5)
    models: tuple[str, ...] = MODELS
    dt: float = 0.03
    n_train: int = 100
    train_steps: int = 20
    n_test: int = 20
    test_steps: int = 100
    substeps: int = 4
    width: int = 128
    depth: int = 2
    epochs: int = 1000
    learning_rate: float = 3e-3
    batch_size: int = 256
    lnn_regularization: float = 0.0
    chaos_epsilon: float = 1e-4

    def __post_init__(self):
        validate_config(self)
        if not self.links:
            raise ValueError("config `links` must list at least one chain length")
        unknown = [m for m in self.models if m not in _SPECS]
        if unknown or not self.models:
            raise ValueError(
                f"config `models` must be a non-empty subset of {list(MODELS)}, got {self.models}"
            )
        if self.batch_size < 0 or self.lnn_regularization < 0 or self.chaos_epsilon <= 0:
            raise ValueError("config `batch_size`, `lnn_regularization` must be >= 0 and `chaos_epsilon` > 0")

    @classmethod
    def quick(cls) -> ChainPendulumConfig:
        return cls(links=(2,), n_train=20, n_test=4, test_steps=50, width=32, epochs=150, batch_size=0)

    @classmethod
    def full(cls) -> ChainPendulumConfig:
        return cls(n_train=200, epochs=2000, n_test=50)


@eqx.filter_jit
def _to_cartesian_velocity(coordinates: str, chain: CartesianChainPendulum, traj):
    """Map ``(..., 2n)`` or ``(..., 4n)`` states in ``coordinates`` to Cartesian ``(x, xdot)``."""
    angles = chain.angles
    flat = traj.reshape(-1, traj.shape[-1])
    if coordinates == "angles-canonical":
        flat = jax.vmap(angles.from_canonical)(flat)
        coordinates = "angles-velocity"
    if coordinates == "angles-velocity":
        out = jax.vmap(lambda s: chain.to_velocity(chain.from_angles(s)))(flat)
    elif coordinates == "cartesian-canonical":
        out = chain.to_velocity(flat)
    else:
        out = flat
    return out.reshape(*traj.shape[:-1], out.shape[-1])


@eqx.filter_jit
def _from_angle_velocity(coordinates: str, chain: CartesianChainPendulum, traj):
    """Map angle-coordinate ``(theta, thetadot)`` trajectories into a model's ``coordinates``."""
    flat = traj.reshape(-1, traj.shape[-1])
    if coordinates == "angles-velocity":
        out = flat
    elif coordinates == "angles-canonical":
        out = jax.vmap(chain.angles.to_canonical)(flat)
    elif coordinates == "cartesian-canonical":
        out = jax.vmap(chain.from_angles)(flat)
    else:
        out = jax.vmap(lambda s: chain.to_velocity(chain.from_angles(s)))(flat)
    return out.reshape(*traj.shape[:-1], out.shape[-1])


def _derivative_dataset(coordinates: str, chain: CartesianChainPendulum, train: np.ndarray) -> Dataset:
    """Exact ``(state, d state/dt)`` pairs in a model's coordinates (computed in float64)."""
    with jax.enable_x64(True):
        flat = jnp.asarray(train.reshape(-1, train.shape[-1]))
        field = chain.angles.field

        def pair(s):
            return jax.jvp(lambda s: _from_angle_velocity(coordinates, chain, s[None])[0], (s,), (field(s),))

        states, derivs = jax.jit(jax.vmap(pair))(flat)
        return Dataset(np.asarray(states, np.float32), np.asarray(derivs, np.float32))


def _rollout_errors(model, coordinates, chain, test: np.ndarray, dt: float, substeps: int):
    """Per-trajectory geometric-mean relative error over steps 1..T and the per-step curve."""
    steps = test.shape[1] - 1
    with jax.enable_x64(True):
        z0 = np.asarray(_from_angle_velocity(coordinates, chain, jnp.asarray(test[:, 0])), np.float32)
    pred = np.asarray(
        jax.jit(lambda z: rollout(model, z, dt, steps, RK4(), substeps))(jnp.asarray(z0)), np.float64
    )
    pred = np.where(np.isfinite(pred), pred, 1e30)
    with jax.enable_x64(True):
        pred_cart = _to_cartesian_velocity(coordinates, chain, jnp.asarray(pred))
        true_cart = _to_cartesian_velocity("angles-velocity", chain, jnp.asarray(test))
        rel = np.asarray(relative_error(pred_cart, true_cart))
        gm = np.asarray(geometric_mean_relative_error(pred_cart[:, 1:], true_cart[:, 1:]))
    rel = np.where(np.isfinite(rel), rel, 1.0)
    gm = np.where(np.isfinite(gm), gm, 1.0)
    return gm, rel


def _chaos_floor(chain: CartesianChainPendulum, test: np.ndarray, config, key) -> np.ndarray:
    """Per-step relative error ``(B, T + 1)`` of perturbed true trajectories (unit masses, so
    ``(x, p)`` equals ``(x, xdot)``)."""
    with jax.enable_x64(True):
        z0 = np.asarray(jax.vmap(chain.from_angles)(jnp.asarray(test[:, 0])))
    return chaos_floor(
        chain, z0, config.dt, config.test_steps, key=key, epsilon=config.chaos_epsilon, per_step=True
    )


def _adam_cosine(config: ChainPendulumConfig, n_data: int) -> optax.GradientTransformation:
    """Adam with a cosine-decayed step size over all of this config's steps."""
    per_epoch = -(-n_data // config.batch_size) if config.batch_size else 1
    return adam_cosine(config.learning_rate, config.epochs * per_epoch)


def run(config: ChainPendulumConfig, *, seed: int = 0, progress: bool = True) -> Result:
    start = time.perf_counter()
    table, figures = [], []
    t = config.dt * np.arange(1, config.test_steps + 1)
    for n in config.links:
        n = int(n)
        angles = ChainPendulum((1.0,) * n, (1.0,) * n)
        chain = CartesianChainPendulum(angles)
        k_train, k_test, k_model, k_fit, k_floor = jax.random.split(
            jax.random.fold_in(jax.random.key(seed), n), 5
        )
        train = simulate(
            angles, sample_initial_states(angles, k_train, config.n_train), config.dt, config.train_steps
        )
        test = simulate(
            angles, sample_initial_states(angles, k_test, config.n_test), config.dt, config.test_steps
        )
        floor_steps = _chaos_floor(chain, test, config, k_floor)
        floor = geometric_mean(floor_steps[:, 1:], axis=-1)
        curves, datasets = [], {}
        for name in config.models:
            coordinates, make = _SPECS[name]
            if coordinates not in datasets:  # models in the same coordinates share their data
                datasets[coordinates] = _derivative_dataset(coordinates, chain, train)
            data = datasets[coordinates]
            result = fit(
                make(config, n, chain, k_model),
                derivative_loss(),
                data,
                key=k_fit,
                epochs=config.epochs,
                optimizer=_adam_cosine(config, len(data)),
                batch_size=config.batch_size or None,
                progress=progress,
                description=f"{n}-link {name}",
            )
            gm, rel = _rollout_errors(result.model, coordinates, chain, test, config.dt, config.substeps)
            row = {
                "links": n,
                "model": name,
                "coordinates": coordinates,
                "rollout_error_geomean": float(np.mean(gm)),
                "rollout_error_geomean_median": float(np.median(gm)),
                "chaos_floor": float(np.mean(floor)),
                "derivative_mse": result.final_loss,
                "train_seconds": result.seconds,
                "diverged": bool(result.diverged),
            }
            if name in ("CHNN", "CLNN"):
                # Masses are identified only up to a common factor (L and c L have the same motion).
                masses = np.asarray(result.model.masses())
                row["mass_ratio_error_max"] = float(np.max(np.abs(masses / np.mean(masses) - 1.0)))
            table.append(row)
            curves.append(series(name, t, np.mean(rel[:, 1:], axis=0)))
        curves.append(series("chaos floor", t, np.mean(floor_steps[:, 1:], axis=0), style="reference"))
        figures.append(
            Panel(f"{n}-link chain", "time", "relative error (mean over test rollouts)", curves, logy=True)
        )
    figure = Figure(
        "chain_pendulum",
        "Rollout error vs time: angles (NODE, NODE2, HNN, LNN, DeLaN) vs Cartesian (CHNN, CLNN)",
        figures,
        len(figures),
    )
    notes = [
        f"unit masses and rod lengths, g = 9.81; initial angles uniform in +-pi/2, angular velocities "
        f"0.5 N(0, 1); {config.n_train} training trajectories of {config.train_steps} steps, "
        f"{config.n_test} test trajectories of {config.test_steps} steps at dt = {config.dt}.",
        "rollout_error_geomean: mean over test trajectories of the geometric mean over steps 1..T of "
        "|z_hat - z| / (|z_hat| + |z|), z = Cartesian positions and velocities of the masses "
        "(for every model).",
        f"chaos_floor: the same metric between the true trajectory and the true trajectory from a state "
        f"perturbed by {config.chaos_epsilon} and projected onto the constraints.",
        "models are trained on exact time derivatives (derivative MSE) with Adam (cosine-decayed "
        "step size) and rolled out with RK4 in float32, "
        f"{config.substeps} RK4 steps per dt (one RK4 step of 0.03 alone errs by ~3e-3 on the true "
        "5-link field).",
    ]
    return Result(
        "chain-pendulum", dataclasses.asdict(config), table, time.perf_counter() - start, [figure], notes
    )


EXPERIMENT = Experiment(
    "chain-pendulum",
    "2/3/5-link chain pendulums: NODE, NODE2, HNN, LNN, DeLaN in angles vs CHNN, CLNN in Cartesian "
    "coordinates.",
    ChainPendulumConfig,
    run,
)
