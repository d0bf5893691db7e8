"""``physbias run friction``: a damped pendulum learned by a Hamiltonian NN, a Neural ODE and a
second-order Neural ODE with learned damping (seed 004; Gruver et al. 2022, "deconstructed" HNN).

An HNN conserves its learned energy by construction and so cannot represent friction; the
second-order structure (``qdot`` copied, acceleration learned) is the bias that helps.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from ..dynamics import HamiltonianNN, NeuralODE, SecondOrderNODE, derivative_loss
from ..metrics import rollout_errors
from ..report import Figure, Panel, Result, series
from ..systems import Pendulum, derivative_dataset, sample_trajectories
from ._config import ExperimentConfig, positive
from ._registry import Experiment
from ._runner import Variant, compare


@dataclasses.dataclass(frozen=True)
class FrictionConfig(ExperimentConfig):
    QUICK = {"n_train": 20, "epochs": 400, "width": 64, "test_steps": 150}
    FULL = {"n_train": 100, "epochs": 5000}

    damping: float = positive(0.3)
    dt: float = positive(0.1)
    n_train: int = positive(40)
    train_steps: int = positive(30)
    n_test: int = positive(8)
    test_steps: int = positive(300)
    width: int = positive(128)
    depth: int = positive(2)
    epochs: int = positive(2000)
    learning_rate: float = positive(1e-3)


def run(config: FrictionConfig, *, seed: int = 0, progress: bool = True) -> Result:
    # m = l = 1: (q, qdot) are also the canonical coordinates, so all models see the same data.
    system = Pendulum(gravity=3.0, damping=config.damping)
    k_train, k_test, k_model, k_fit = jax.random.split(jax.random.key(seed), 4)
    train = sample_trajectories(system, k_train, config.n_train, config.dt, config.train_steps)
    test = sample_trajectories(system, k_test, config.n_test, config.dt, config.test_steps)
    data = derivative_dataset(system, train)
    models = {
        "HNN": HamiltonianNN(2, config.width, config.depth, key=k_model),
        "Neural ODE": NeuralODE(2, config.width, config.depth, key=k_model),
        "2nd-order NODE": SecondOrderNODE(2, config.width, config.depth, key=k_model),
        "2nd-order NODE + damping": SecondOrderNODE(2, config.width, config.depth, key=k_model, damping=True),
    }
    errors = {}

    def evaluate(variant: Variant, fit) -> dict:
        ev = errors[variant.name] = rollout_errors(fit.model, test, config.dt)
        damping = fit.model.damping() if isinstance(fit.model, SecondOrderNODE) else None
        return {
            "derivative_mse": fit.final_loss,
            "rollout_error_geomean": float(np.mean(ev.geomean)),
            "rollout_error_final": float(np.mean(ev.relative[:, -1])),
            "learned_damping": float(damping[0]) if damping is not None else "",
            "true_damping": config.damping,
        }

    variants = [
        Variant(name, model, derivative_loss(), data, {"model": name}, learning_rate=config.learning_rate)
        for name, model in models.items()
    ]
    comparison = compare(variants, evaluate, key=k_fit, epochs=config.epochs, progress=progress)
    t = config.dt * np.arange(config.test_steps + 1)
    angle = [series("truth", t, test[0, :, 0], style="reference")]
    angle += [series(name, t, ev.pred[0, :, 0]) for name, ev in errors.items()]
    curves = [series(name, t[1:], np.mean(ev.relative, axis=0)[1:]) for name, ev in errors.items()]
    fig = Figure(
        "friction",
        "Damped pendulum: angle of one test rollout and mean relative error",
        [Panel("angle", "time", "q", angle), Panel("error", "time", "relative error", curves, logy=True)],
        2,
    )
    notes = [
        f"pendulum with damping torque -{config.damping} qdot (g = 3, m = l = 1); models learn dz/dt from "
        "exact derivatives and are rolled out with RK4 from unseen initial states.",
        "learned_damping: the explicit coefficient softplus(c) of the damped model (the network can also "
        "absorb friction, so it need not equal the true value).",
    ]
    return Result("friction", dataclasses.asdict(config), comparison.rows, figures=[fig], notes=notes)


EXPERIMENT = Experiment(
    "friction",
    "Damped pendulum: HNN vs Neural ODE vs second-order NODE with damping (the decon-HNN finding).",
    FrictionConfig,
    run,
)
