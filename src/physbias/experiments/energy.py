"""``physbias run energy``: Hamiltonian NN vs Neural ODE on pendulum, mass-spring and 2-body
gravity (seed 000; Greydanus et al. 2019).

Both models learn the time derivative of the canonical state ``(q, p)`` from exact derivatives at
states along simulated trajectories; they are then rolled out (RK4) far beyond the training
horizon and compared with the true trajectories: relative error and the true energy's drift.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..dynamics import HamiltonianNN, NeuralODE, derivative_loss
from ..metrics import rollout_errors
from ..report import Figure, Panel, Result, series
from ..systems import MassSpring, NBody2D, Pendulum, derivative_dataset, energy_function, sample_trajectories
from ._config import ExperimentConfig, nonnegative, one_of, positive
from ._registry import Experiment
from ._runner import Variant, compare

SYSTEMS = {
    "pendulum": (Pendulum(gravity=3.0), 0.1),
    "spring": (MassSpring(k1=1.0), 0.1),
    "2-body": (NBody2D((1.0, 1.0), perturbation=0.1), 0.05),
}


@dataclasses.dataclass(frozen=True)
class EnergyConfig(ExperimentConfig):
    QUICK = {"n_train": 20, "epochs": 400, "test_steps": 300, "width": 64}
    FULL = {"n_train": 100, "epochs": 5000, "test_steps": 3000}

    n_train: int = positive(40)
    train_steps: int = positive(30)
    n_test: int = positive(8)
    test_steps: int = positive(1000)
    width: int = positive(128)
    depth: int = positive(2)
    epochs: int = positive(2000)
    learning_rate: float = positive(1e-3)
    noise: float = nonnegative(0.0)
    systems: tuple[str, ...] = one_of(("pendulum", "spring", "2-body"), SYSTEMS)


def run(config: EnergyConfig, *, seed: int = 0, progress: bool = True) -> Result:
    key = jax.random.key(seed)
    table, figures = [], []
    for i, name in enumerate(config.systems):
        system, dt = SYSTEMS[name]
        energy = energy_function(system, "canonical")
        k_train, k_test, k_model, k_fit, k_noise = jax.random.split(jax.random.fold_in(key, i), 5)
        train = sample_trajectories(system, k_train, config.n_train, dt, config.train_steps, "canonical")
        test = sample_trajectories(system, k_test, config.n_test, dt, config.test_steps, "canonical")
        data = derivative_dataset(system, train, "canonical", config.noise, k_noise)
        d = data.input_shape[0]
        models = {
            "Neural ODE": NeuralODE(d, config.width, config.depth, key=k_model),
            "HNN": HamiltonianNN(d, config.width, config.depth, key=k_model),
        }
        errors = {}

        def evaluate(variant: Variant, fit, errors=errors, test=test, dt=dt, energy=energy) -> dict:
            ev = errors[variant.name] = rollout_errors(fit.model, test, dt, energy=energy)
            return {
                "derivative_mse": fit.final_loss,
                "rollout_error_geomean": float(np.mean(ev.geomean)),
                "rollout_error_final": float(np.mean(ev.relative[:, -1])),
                "energy_error_final": float(np.median(ev.energy[:, -1]))
                if not ev.diverged.any()
                else float("inf"),
                "horizon_steps": config.test_steps,
            }

        variants = [
            Variant(
                m,
                model,
                derivative_loss(),
                data,
                {"system": name, "model": m},
                learning_rate=config.learning_rate,
            )
            for m, model in models.items()
        ]
        comparison = compare(
            variants, evaluate, key=k_fit, epochs=config.epochs, progress=progress, description=f"{name}: "
        )
        table += comparison.rows
        t = dt * np.arange(config.test_steps + 1)
        with jax.enable_x64(True):
            energy_curves = [series("truth", t, np.asarray(jax.vmap(energy)(test[0])), style="reference")]
            energy_curves += [
                series(m, t, np.asarray(jax.vmap(energy)(ev.pred[0]))) for m, ev in errors.items()
            ]
        error_curves = [series(m, t[1:], np.mean(ev.relative, axis=0)[1:]) for m, ev in errors.items()]
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
    return Result("energy", dataclasses.asdict(config), table, figures=figures, notes=notes)


EXPERIMENT = Experiment(
    "energy",
    "Hamiltonian NN vs Neural ODE on pendulum, spring and 2-body gravity: long rollouts, energy drift.",
    EnergyConfig,
    run,
)
