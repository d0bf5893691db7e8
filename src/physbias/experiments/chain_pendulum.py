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

import jax
import jax.numpy as jnp
import numpy as np

from ..dynamics import (
    RK4,
    ConstrainedHamiltonianNN,
    ConstrainedLagrangianNN,
    DeepLagrangianNN,
    HamiltonianNN,
    LagrangianNN,
    NeuralODE,
    SecondOrderNODE,
    derivative_loss,
)
from ..metrics import chaos_floor, geometric_mean, rollout_errors
from ..report import Figure, Panel, Result, series
from ..systems import (
    CartesianChainPendulum,
    ChainPendulum,
    chain_derivative_dataset,
    from_angle_velocity,
    sample_initial_states,
    simulate,
    to_cartesian_velocity,
)
from ..train import adam_cosine
from ._config import ExperimentConfig, nonnegative, one_of, positive
from ._registry import Experiment
from ._runner import Variant, compare

MODELS = ("NODE", "NODE2", "HNN", "LNN", "DeLaN", "CHNN", "CLNN")
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
class ChainPendulumConfig(ExperimentConfig):
    QUICK = {
        "links": (2,),
        "n_train": 20,
        "n_test": 4,
        "test_steps": 50,
        "width": 32,
        "epochs": 150,
        "batch_size": 0,
    }
    FULL = {"n_train": 200, "epochs": 2000, "n_test": 50}

    links: tuple[int, ...] = positive((2, 3, 5))
    models: tuple[str, ...] = one_of(MODELS, MODELS)
    dt: float = positive(0.03)
    n_train: int = positive(100)
    train_steps: int = positive(20)
    n_test: int = positive(20)
    test_steps: int = positive(100)
    substeps: int = positive(4)
    width: int = positive(128)
    depth: int = positive(2)
    epochs: int = positive(1000)
    learning_rate: float = positive(3e-3)
    batch_size: int = nonnegative(256)  # 0: full batch
    lnn_regularization: float = nonnegative(0.0)
    chaos_epsilon: float = positive(1e-4)
    workers: int = positive(2)  # models trained at once (threads); results do not depend on it

    def check(self):
        if not self.links:
            raise ValueError("config `links` must list at least one chain length")


def run(config: ChainPendulumConfig, *, seed: int = 0, progress: bool = True) -> Result:
    table, panels = [], []
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
        with jax.enable_x64(True):  # unit masses: (x, p) equals (x, xdot)
            z0 = np.asarray(jax.vmap(chain.from_angles)(jnp.asarray(test[:, 0])))
            true_cartesian = np.asarray(to_cartesian_velocity(chain, jnp.asarray(test), "angles-velocity"))
        floor_steps = chaos_floor(
            chain, z0, config.dt, config.test_steps, key=k_floor, epsilon=config.chaos_epsilon, per_step=True
        )
        floor = geometric_mean(floor_steps[:, 1:], axis=-1)
        datasets, errors = {}, {}

        def variant(name, n=n, chain=chain, train=train, k_model=k_model, datasets=datasets) -> Variant:
            coordinates, make = _SPECS[name]
            if coordinates not in datasets:  # models in the same coordinates share their data
                datasets[coordinates] = chain_derivative_dataset(chain, train, coordinates)
            data = datasets[coordinates]
            per_epoch = -(-len(data) // config.batch_size) if config.batch_size else 1
            return Variant(
                f"{n}-link {name}",
                make(config, n, chain, k_model),
                derivative_loss(),
                data,
                {"links": n, "model": name, "coordinates": coordinates},
                optimizer=adam_cosine(config.learning_rate, config.epochs * per_epoch),
                batch_size=config.batch_size or None,
            )

        def evaluate(
            v: Variant, fit, chain=chain, test=test, truth=true_cartesian, floor=floor, errors=errors
        ):
            coordinates = v.labels["coordinates"]
            with jax.enable_x64(True):
                start = np.asarray(
                    from_angle_velocity(chain, jnp.asarray(test[:, 0]), coordinates), np.float32
                )
            ev = errors[v.labels["model"]] = rollout_errors(
                fit.model,
                truth,
                config.dt,
                z0=start,
                integrator=RK4(),
                substeps=config.substeps,
                compare=lambda pred: to_cartesian_velocity(chain, pred, coordinates),
            )
            row = {
                "rollout_error_geomean": float(np.mean(ev.geomean)),
                "rollout_error_geomean_median": float(np.median(ev.geomean)),
                "chaos_floor": float(np.mean(floor)),
                "derivative_mse": fit.final_loss,
            }
            if v.labels["model"] in ("CHNN", "CLNN"):
                # Masses are identified only up to a common factor (L and c L have the same motion).
                masses = np.asarray(fit.model.masses())
                row["mass_ratio_error_max"] = float(np.max(np.abs(masses / np.mean(masses) - 1.0)))
            return row

        comparison = compare(
            (variant(m) for m in config.models),
            evaluate,
            key=k_fit,
            epochs=config.epochs,
            progress=progress,
            workers=config.workers,
        )
        table += comparison.rows
        curves = [series(m, t, np.mean(ev.relative[:, 1:], axis=0)) for m, ev in errors.items()]
        curves.append(series("chaos floor", t, np.mean(floor_steps[:, 1:], axis=0), style="reference"))
        panels.append(
            Panel(f"{n}-link chain", "time", "relative error (mean over test rollouts)", curves, logy=True)
        )
    figure = Figure(
        "chain_pendulum",
        "Rollout error vs time: angles (NODE, NODE2, HNN, LNN, DeLaN) vs Cartesian (CHNN, CLNN)",
        panels,
        len(panels),
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
        f"train_seconds: each model's own training time; {config.workers} model(s) train at once "
        "(`--set workers=1` trains one at a time, with the same results).",
    ]
    return Result("chain-pendulum", dataclasses.asdict(config), table, figures=[figure], notes=notes)


EXPERIMENT = Experiment(
    "chain-pendulum",
    "2/3/5-link chain pendulums: NODE, NODE2, HNN, LNN, DeLaN in angles vs CHNN, CLNN in Cartesian "
    "coordinates.",
    ChainPendulumConfig,
    run,
)
