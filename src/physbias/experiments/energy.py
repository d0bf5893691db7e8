"""``physbias run energy``: Hamiltonian NN vs Neural ODE on pendulum, mass-spring and 2-body
gravity (seed 000; Greydanus et al. 2019).

Both models learn the time derivative of the canonical state ``(q, p)`` from exact derivatives at
states along simulated trajectories; they are then rolled out (RK4) far beyond the training
horizon and compared with the true trajectories: relative error and the true energy's drift.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from ..dynamics.losses import derivative_loss
from ..dynamics.models import HamiltonianNN, NeuralODE
from ..report import Figure, Panel, Result, series
from ..systems.mechanics import MassSpring, NBody2D, Pendulum
from ..train import fit
from . import Experiment
from ._config import validate_config
from ._dynamics import derivative_data, energy_of, evaluate_rollouts, true_trajectories

SYSTEMS = {
    "pendulum": (Pendulum(gravity=3.0), 0.1),
    "spring": (MassSpring(k1=1.0), 0.1),
    "2-body": (NBody2D((1.0, 1.0), perturbation=0.1), 0.05),
}


@dataclasses.dataclass(frozen=True)
class EnergyConfig:
    n_train: int = 40
    train_steps: int = 30
    n_test: int = 8
    test_steps: int = 1000
    width: int = 128
    depth: int = 2
    epochs: int = 2000
    learning_rate: float = 1e-3
    noise: float = 0.0
    systems: tuple[str, ...] = ("pendulum", "spring", "2-body")

    def __post_init__(self):
        validate_config(self)
        unknown = [s for s in self.systems if s not in SYSTEMS]
        if unknown or not self.systems:
            raise ValueError(
                f"config `systems` must be a non-empty subset of {sorted(SYSTEMS)}, got {self.systems}"
            )

    @classmethod
    def quick(cls) -> EnergyConfig:
        return cls(n_train=20, epochs=400, test_steps=300, width=64)

    @classmethod
    def full(cls) -> EnergyConfig:
        return cls(n_train=100, epochs=5000, test_steps=3000)


def run(config: EnergyConfig, *, seed: int = 0, progress: bool = True) -> Result:
    start = time.perf_counter()
    key = jax.random.key(seed)
    table, figures = [], []
    for i, name in enumerate(config.systems):
        system, dt = SYSTEMS[name]
        k_train, k_test, k_model, k_fit, k_noise = jax.random.split(jax.random.fold_in(key, i), 5)
        train = true_trajectories(system, k_train, config.n_train, dt, config.train_steps, "canonical")
        test = true_trajectories(system, k_test, config.n_test, dt, config.test_steps, "canonical")
        data = derivative_data(system, train, "canonical", config.noise, k_noise)
        d = data.input_shape[0]
        models = {
            "Neural ODE": NeuralODE(d, config.width, config.depth, key=k_model),
            "HNN": HamiltonianNN(d, config.width, config.depth, key=k_model),
        }
        t = dt * np.arange(config.test_steps + 1)
        with jax.enable_x64(True):
            true_energy = np.asarray(jax.vmap(energy_of(system, "canonical"))(test[0]))
        energy_curves = [series("truth", t, true_energy, style="reference")]
        error_curves = []
        for model_name, model in models.items():
            result = fit(
                model,
                derivative_loss(),
                data,
                key=k_fit,
                epochs=config.epochs,
                learning_rate=config.learning_rate,
                progress=progress,
                description=f"{name}: {model_name}",
            )
            ev = evaluate_rollouts(result.model, system, test, dt, "canonical")
            table.append(
                {
                    "system": name,
                    "model": model_name,
                    "derivative_mse": result.final_loss,
                    "rollout_error_geomean": ev["rollout_error_geomean"],
                    "rollout_error_final": ev["rollout_error_final"],
                    "energy_error_final": ev["energy_error_final"],
                    "horizon_steps": config.test_steps,
                    "train_seconds": result.seconds,
                }
            )
            with jax.enable_x64(True):
                pred_energy = np.asarray(jax.vmap(energy_of(system, "canonical"))(ev["pred"][0]))
            energy_curves.append(series(model_name, t, pred_energy))
            error_curves.append(series(model_name, t[1:], ev["error_curve"][1:]))
        figures.append(
            Figure(
                f"energy_{name}",
                f"{name}: true energy along one test rollout",
                [
                    Panel(name, "time", "energy", energy_curves),
                    Panel(name, "time", "relative error", error_curves, logy=True),
                ],
                2,
            )
        )
    notes = [
        "trained on exact time derivatives of (q, p) at states along short trajectories; tested by "
        "RK4 rollouts from unseen initial states over `horizon_steps` steps.",
        "rollout_error_geomean: geometric mean over steps 1..T (the exact start left out) of "
        "|z_hat - z| / (|z_hat| + |z|), averaged "
        "over test trajectories; energy_error_final: median relative drift of the true energy.",
    ]
    return Result("energy", dataclasses.asdict(config), table, time.perf_counter() - start, figures, notes)


EXPERIMENT = Experiment(
    "energy",
    "Hamiltonian NN vs Neural ODE on pendulum, spring and 2-body gravity: long rollouts, energy drift.",
    EnergyConfig,
    run,
)
