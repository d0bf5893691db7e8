"""``physbias run laplace-regression``: noise and prior precision of a network, learned by its
Laplace evidence (M19; laplace-torch's toy regression).

150 points ``y = sin x + 0.3 eps``, ``x ~ U(0, 8)``; an MLP 1-50-1 (tanh) trained to its MAP
(Adam 1e-2, cosine decay, 1000 epochs, full batch, a vanishing prior). Then, for the full,
Kronecker-factored and diagonal generalised Gauss-Newton curvature, ``log delta`` and ``log sigma``
(both starting at 1, i.e. ``e``) are set by 1000 Adam steps (0.1) on the Laplace evidence. A last
row trains the network by marginal likelihood from scratch (KFAC refits during training).
Reference (laplace-torch, full GGN): ``sigma ~ 0.28``, ``delta ~ 0.10``.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..evidence import laplace, map_loss, optimize_hyperparameters, predictive
from ..marglik import marglik_fit
from ..metrics import gaussian_nll, rmse
from ..report import Figure, Panel, Result, series
from ..train import adam_cosine, fit
from ._config import ExperimentConfig, interval, one_of, positive
from ._registry import Experiment

CURVATURES = {"full": "full", "kfac": "kfac", "diagonal": "diagonal"}


@dataclasses.dataclass(frozen=True)
class LaplaceRegressionConfig(ExperimentConfig):
    """laplace-torch's example: 150 points, noise 0.3, MLP 1-50-1 tanh, Adam 1e-2 for 1000 epochs;
    hyperparameters by Adam 0.1 for 1000 steps."""

    QUICK = {"epochs": 600, "hyper_steps": 500, "marglik_epochs": 300}
    FULL = {}

    n_train: int = positive(150)
    n_test: int = positive(500)
    noise: float = positive(0.3)
    x_range: tuple[float, float] = interval((0.0, 8.0))
    width: int = positive(50)
    epochs: int = positive(1000)
    learning_rate: float = positive(1e-2)
    map_prior_precision: float = positive(1e-4)
    hyper_steps: int = positive(1000)
    hyper_learning_rate: float = positive(0.1)
    curvatures: tuple[str, ...] = one_of(("full", "kfac", "diagonal"), CURVATURES)
    marglik_epochs: int = positive(1000)
    marglik_frequency: int = positive(100)


def _data(config, key):
    kx, ke = jax.random.split(key)
    lo, hi = config.x_range
    x = jax.random.uniform(kx, (config.n_train, 1), jnp.float64, lo, hi)
    return x, jnp.sin(x) + config.noise * jax.random.normal(ke, x.shape, jnp.float64)


def run(config: LaplaceRegressionConfig, *, seed: int = 0, progress: bool = True) -> Result:
    table, panels, histories = [], [], []
    with jax.enable_x64(True):
        key = jax.random.key(seed)
        k_data, k_test, k_model, k_fit = jax.random.split(key, 4)
        x, y = _data(config, k_data)
        x_test, y_test = _data(dataclasses.replace(config, n_train=config.n_test), k_test)
        grid = jnp.linspace(config.x_range[0] - 2.0, config.x_range[1] + 2.0, 200)[:, None]
        net = eqx.nn.MLP(1, 1, config.width, 1, activation=jnp.tanh, key=k_model, dtype=jnp.float64)
        start = time.perf_counter()
        result = fit(
            net,
            map_loss("regression", config.map_prior_precision, 1.0, config.n_train),
            (x, y),
            key=k_fit,
            epochs=config.epochs,
            optimizer=adam_cosine(config.learning_rate, config.epochs),
            progress=progress,
            description="MAP",
        )
        map_seconds = time.perf_counter() - start
        model = result.model
        predict = jax.jit(jax.vmap(model))
        for curvature in config.curvatures:
            start = time.perf_counter()
            lap = laplace(model, (x, y), curvature=curvature)
            hyper = optimize_hyperparameters(
                lap,
                steps=config.hyper_steps,
                learning_rate=config.hyper_learning_rate,
                prior_precision=float(np.e),
                noise_std=float(np.e),
            )
            seconds = time.perf_counter() - start
            row = {
                "method": f"post-hoc {curvature}",
                "curvature": curvature,
                "noise_std": hyper.noise_std,
                "prior_precision": float(hyper.prior_precision),
                "log_evidence": hyper.log_evidence,
                "train_rmse": rmse(predict(x), y),
                "test_rmse": rmse(predict(x_test), y_test),
                "test_nll": "",
                "seconds": round(seconds + map_seconds, 2),
                "diverged": result.diverged,
            }
            histories.append(series(curvature, np.arange(len(hyper.history)), -hyper.history))
            if curvature != "kfac":  # the predictive needs the full or diagonal posterior covariance
                mean, var = predictive(model, lap, x_test, hyper.prior_precision, hyper.noise_std)
                row["test_nll"] = gaussian_nll(mean, var + hyper.noise_std**2, y_test)
                mean, var = predictive(model, lap, grid, hyper.prior_precision, hyper.noise_std)
                sd = jnp.sqrt(var[:, 0] + hyper.noise_std**2)
                panels.append(
                    Panel(
                        f"{curvature} GGN: sigma={hyper.noise_std:.3f}, "
                        f"delta={float(hyper.prior_precision):.3f}",
                        "x",
                        "y",
                        [
                            series("data", x[:, 0], y[:, 0], style="scatter"),
                            series("sin x", grid[:, 0], jnp.sin(grid[:, 0])),
                            series("mean", grid[:, 0], mean[:, 0]),
                            series("mean + 2 sd", grid[:, 0], mean[:, 0] + 2 * sd),
                            series("mean - 2 sd", grid[:, 0], mean[:, 0] - 2 * sd),
                        ],
                    )
                )
            table.append(row)
        if config.marglik_epochs:
            start = time.perf_counter()
            ml = marglik_fit(
                eqx.nn.MLP(1, 1, config.width, 1, activation=jnp.tanh, key=k_model, dtype=jnp.float64),
                (x, y),
                key=k_fit,
                curvature="kfac",
                epochs=config.marglik_epochs,
                learning_rate=config.learning_rate,
                frequency=config.marglik_frequency,
                burn_in=config.marglik_frequency,
                hyper_steps=100,
                hyper_learning_rate=config.hyper_learning_rate,
                progress=progress,
            )
            predict_ml = jax.jit(jax.vmap(ml.model))
            table.append(
                {
                    "method": "marglik training (kfac)",
                    "curvature": "kfac",
                    "noise_std": ml.noise_std,
                    "prior_precision": float(ml.prior_precision),
                    "log_evidence": ml.log_evidence,
                    "train_rmse": rmse(predict_ml(x), y),
                    "test_rmse": rmse(predict_ml(x_test), y_test),
                    "test_nll": "",
                    "seconds": round(time.perf_counter() - start, 2),
                    "diverged": False,
                }
            )
            histories.append(
                series(
                    "marglik kfac (per refit)",
                    [e for e, _ in ml.evidence_history],
                    [-v for _, v in ml.evidence_history],
                    style="scatter",
                )
            )
    figures = [
        Figure("predictive", "Linearised Laplace predictive (mean +- 2 sd of y)", panels, columns=2),
        Figure(
            "evidence",
            "Negative log evidence during hyperparameter optimisation",
            [Panel("-log p(D | delta, sigma)", "step", "-log evidence", histories, logy=False)],
            1,
        ),
    ]
    notes = [
        f"MAP: {config.epochs} epochs in {map_seconds:.2f} s, final loss {result.final_loss:.4f}; data noise "
        f"{config.noise}. Reference (laplace-torch, full GGN): sigma ~ 0.28, delta ~ 0.10.",
        "test_nll: Gaussian negative log predictive density per test point of the linearised (GLM) "
        "predictive with the learned sigma (full and diagonal curvatures).",
    ]
    return Result("laplace-regression", dataclasses.asdict(config), table, figures=figures, notes=notes)


EXPERIMENT = Experiment(
    "laplace-regression",
    "laplace-torch's toy regression: noise and prior precision of an MLP learned by its Laplace "
    "evidence (full, KFAC and diagonal GGN) and by marginal-likelihood training.",
    LaplaceRegressionConfig,
    run,
)
