"""``physbias run friction``: a damped pendulum learned by a Hamiltonian NN, a Neural ODE and a
second-order Neural ODE with learned damping (seed 004; Gruver et al. 2022, "deconstructed" HNN).

An HNN conserves its learned energy by construction and so cannot represent friction; the
second-order structure (``qdot`` copied, acceleration learned) is the bias that helps.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from ..dynamics.losses import derivative_loss
from ..dynamics.models import HamiltonianNN, NeuralODE, SecondOrderNODE
from ..report import Figure, Panel, Result, series
from ..systems.mechanics import Pendulum
from ..train import fit
from . import Experiment
from ._config import validate_config
from ._dynamics import derivative_data, evaluate_rollouts, true_trajectories


@dataclasses.dataclass(frozen=True)
class FrictionConfig:
    damping: float = 0.3
    dt: float = 0.1
    n_train: int = 40
    train_steps: int = 30
    n_test: int = 8
    test_steps: int = 300
    width: int = 128
    depth: int = 2
    epochs: int = 2000
    learning_rate: float = 1e-3

    def __post_init__(self):
        validate_config(self)
        if self.damping <= 0:
            raise ValueError(f"config `damping` must be positive, got {self.damping}")

    @classmethod
    def quick(cls) -> FrictionConfig:
        return cls(n_train=20, epochs=400, width=64, test_steps=150)

    @classmethod
    def full(cls) -> FrictionConfig:
        return cls(n_train=100, epochs=5000)


def run(config: FrictionConfig, *, seed: int = 0, progress: bool = True) -> Result:
    start = time.perf_counter()
    # m = l = 1: (q, qdot) are also the canonical coordinates, so all models see the same data.
    system = Pendulum(gravity=3.0, damping=config.damping)
    k_train, k_test, k_model, k_fit = jax.random.split(jax.random.key(seed), 4)
    train = true_trajectories(system, k_train, config.n_train, config.dt, config.train_steps, "velocity")
    test = true_trajectories(system, k_test, config.n_test, config.dt, config.test_steps, "velocity")
    data = derivative_data(system, train, "velocity")
    models = {
        "HNN": HamiltonianNN(2, config.width, config.depth, key=k_model),
        "Neural ODE": NeuralODE(2, config.width, config.depth, key=k_model),
        "2nd-order NODE": SecondOrderNODE(2, config.width, config.depth, key=k_model),
        "2nd-order NODE + damping": SecondOrderNODE(2, config.width, config.depth, key=k_model, damping=True),
    }
    t = config.dt * np.arange(config.test_steps + 1)
    table = []
    angle = [series("truth", t, test[0, :, 0], style="reference")]
    errors = []
    for name, model in models.items():
        result = fit(
            model,
            derivative_loss(),
            data,
            key=k_fit,
            epochs=config.epochs,
            learning_rate=config.learning_rate,
            progress=progress,
            description=name,
        )
        ev = evaluate_rollouts(result.model, system, test, config.dt, "velocity")
        damping = result.model.damping() if isinstance(result.model, SecondOrderNODE) else None
        table.append(
            {
                "model": name,
                "derivative_mse": result.final_loss,
                "rollout_error_geomean": ev["rollout_error_geomean"],
                "rollout_error_final": ev["rollout_error_final"],
                "learned_damping": float(damping[0]) if damping is not None else "",
                "true_damping": config.damping,
                "train_seconds": result.seconds,
            }
        )
        angle.append(series(name, t, ev["pred"][0, :, 0]))
        errors.append(series(name, t[1:], ev["error_curve"][1:]))
    fig = Figure(
        "friction",
        "Damped pendulum: angle of one test rollout and mean relative error",
        [Panel("angle", "time", "q", angle), Panel("error", "time", "relative error", errors, logy=True)],
        2,
    )
    notes = [
        f"pendulum with damping torque -{config.damping} qdot (g = 3, m = l = 1); models learn dz/dt from "
        "exact derivatives and are rolled out with RK4 from unseen initial states.",
        "learned_damping: the explicit coefficient softplus(c) of the damped model (the network can also "
        "absorb friction, so it need not equal the true value).",
    ]
    return Result("friction", dataclasses.asdict(config), table, time.perf_counter() - start, [fig], notes)


EXPERIMENT = Experiment(
    "friction",
    "Damped pendulum: HNN vs Neural ODE vs second-order NODE with damping (the decon-HNN finding).",
    FrictionConfig,
    run,
)
