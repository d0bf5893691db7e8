"""The job behind ``physbias fit``: learn dynamics from the user's trajectories.

Composition only: hold out trajectories, build the model, train on rollout chunks (or
finite-difference derivatives) with :func:`physbias.fit`, evaluate held-out rollouts, return the
model, its spec and a :class:`~physbias.report.Result`.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..data import TrajectoryDataset
from ..dynamics import build_model, derivative_loss, rollout_loss
from ..metrics import rollout_errors
from ..report import Figure, Panel, Result, series
from ..train import fit
from ._config import ExperimentConfig, fraction, nonnegative, one_of, positive

FIT_MODELS = ("node", "node2", "hnn", "lnn", "delan")  # built from the state size alone
FIT_FLAGS = {"learning_rate": "--lr"}  # config field -> CLI flag, where they differ


@dataclasses.dataclass(frozen=True)
class FitConfig(ExperimentConfig):
    """The settings of ``physbias fit``, validated once, here (the data-dependent checks are in
    :func:`check_fit_settings`).

    ``regularization`` (``lnn`` only) adds ``eps I`` to the learned Lagrangian's Hessian in
    ``qdot`` so that the Euler-Lagrange solve cannot meet a singular matrix.
    """

    model: str = one_of("node2", FIT_MODELS)
    width: int = positive(128)
    depth: int = positive(2)
    epochs: int = positive(500)
    learning_rate: float = positive(1e-3)
    loss: str = one_of("rollout", ("rollout", "derivative"))
    chunk: int = positive(4)
    holdout: float = fraction(0.2)
    regularization: float = nonnegative(0.0)

    @classmethod
    def from_cli(cls, **values) -> FitConfig:
        """The config from CLI values; errors name the CLI flag (``--lr``, ``--epochs``)."""
        try:
            return cls(**values)
        except ValueError as exc:
            message = str(exc)
            for field in dataclasses.fields(cls):
                flag = FIT_FLAGS.get(field.name, "--" + field.name)
                message = message.replace(f"config `{field.name}`", flag)
            raise ValueError(message) from None


def check_fit_settings(data: TrajectoryDataset, config: FitConfig) -> None:
    """Raise ``ValueError`` before any work for settings that cannot fit this data."""
    if config.model != "node" and data.state_size % 2:
        raise ValueError(
            f"model {config.model!r} needs an even state size 2n = (q, p) or (q, qdot); the data's states "
            f"have size {data.state_size}"
        )
    if config.loss == "rollout" and not 1 <= config.chunk < data.n_times:
        raise ValueError(f"`chunk` must be in [1, {data.n_times - 1}] for this data, got {config.chunk}")
    if config.loss == "derivative" and data.n_times < 3:
        raise ValueError("derivative training needs at least 3 times per trajectory")
    if len(data) < 2:
        raise ValueError("at least 2 trajectories are needed (one is held out for testing)")


def fit_trajectories(
    data: TrajectoryDataset,
    config: FitConfig | str = "node2",
    *,
    seed: int = 0,
    progress: bool = True,
    **settings,
):
    """Train a dynamics model on ``data``; returns ``(model, spec, Result)``.

    ``config`` is a :class:`FitConfig`, or a model name with the other settings as keywords
    (``fit_trajectories(data, "hnn", epochs=300)``).
    """
    if isinstance(config, str):
        config = FitConfig(model=config, **settings)
    elif settings:
        raise TypeError("give the settings either as a FitConfig or as keywords, not both")
    check_fit_settings(data, config)
    model, width, depth, epochs = config.model, config.width, config.depth, config.epochs
    learning_rate, loss, chunk, holdout = config.learning_rate, config.loss, config.chunk, config.holdout
    regularization = config.regularization
    start = time.perf_counter()
    n_test = max(1, int(round(holdout * len(data))))
    train = TrajectoryDataset(data.states[:-n_test], data.dt, data.coordinates, data.name)
    test = np.asarray(data.states[-n_test:], dtype=np.float64)
    spec = {
        "model": model,
        "state_size": data.state_size,
        "width": width,
        "depth": depth,
        "dt": data.dt,
        "coordinates": data.coordinates,
        "integrator": "rk4",
        "loss": loss,
        "chunk": chunk,
        "epochs": epochs,
        "learning_rate": learning_rate,
        "seed": seed,
        "data": data.name,
    }
    if model == "lnn" and regularization:
        spec["regularization"] = regularization
    k_model, k_fit = jax.random.split(jax.random.key(seed))
    net = build_model(spec, k_model)
    if loss == "rollout":
        batch, loss_fn = train.chunks(chunk), rollout_loss(data.dt)
    else:
        batch, loss_fn = train.finite_difference_derivatives(), derivative_loss()
    result = fit(
        net,
        loss_fn,
        batch,
        key=k_fit,
        epochs=epochs,
        learning_rate=learning_rate,
        progress=progress,
        description=f"fit {model}",
    )
    steps = test.shape[1] - 1
    ev = rollout_errors(result.model, test, data.dt)
    pred, rel = ev.pred, ev.relative
    table = [
        {
            "model": model,
            "train_trajectories": len(train),
            "heldout_trajectories": n_test,
            "rollout_steps": steps,
            "heldout_error_geomean": float(np.mean(ev.geomean)),
            "heldout_error_final": float(np.mean(rel[:, -1])),
            "final_train_loss": result.final_loss,
            "train_seconds": result.seconds,
            "diverged": result.diverged,
        }
    ]
    t = data.dt * np.arange(steps + 1)
    panels = [
        Panel(
            f"held-out trajectory 0, z{i}",
            "time",
            f"z{i}",
            [series("data", t, test[0, :, i], style="reference"), series(model, t, pred[0, :, i])],
        )
        for i in range(min(data.state_size, 4))
    ]
    panels.append(
        Panel(
            "relative error",
            "time",
            "|z_hat - z| / (|z_hat| + |z|)",
            [series(model, t[1:], np.mean(rel, axis=0)[1:])],
            logy=True,
        )
    )
    if result.diverged and model == "lnn":
        notes_extra = [
            "LNN: the learned Lagrangian's Hessian in qdot became singular, so the Euler-Lagrange solve "
            "gave non-finite accelerations; --regularization EPS guards the solve, and a second-order NODE "
            "(--model node2) or an HNN avoids it."
        ]
    else:
        notes_extra = []
    notes = [
        result.message,
        *notes_extra,
        f"held-out rollouts: RK4 from each held-out trajectory's first state, dt = {data.dt:.6g}.",
    ]
    res = Result(
        "fit",
        spec | dataclasses.asdict(config),
        table,
        time.perf_counter() - start,
        [Figure("rollout", f"{model} on {data.name}: held-out rollout", panels, 3)],
        notes,
        seed=seed,
    )
    return result.model, spec, res


def learn_symmetry_trajectories(
    data: TrajectoryDataset,
    config: FitConfig,
    *,
    quantities: int = 4,
    noise_std: float = 0.03,
    symmetry_samples: int = 16,
    substeps: int = 5,
    seed: int = 0,
    progress: bool = True,
):
    """Noether's razor on the user's trajectories (``physbias fit --learn-symmetry``): a
    Hamiltonian network symmetrised over ``quantities`` learned quadratic conserved quantities,
    trained by the matrix-normal ELBO on one-step pairs (:func:`physbias.marglik.noether_fit`).

    States are read as canonical ``(q, p)``. Returns ``(posterior, spec, Result)``; the table lists
    the learned conserved quantities (the principal directions of their generators, strongest first).
    """
    from ..dynamics import (
        FlowMap,
        QuadraticConservedQuantities,
        SymmetrizedHamiltonianNN,
        describe_quadratic,
        generator_singular_values,
        quadratic_of_generator,
    )
    from ..evidence import bayesian_model_average
    from ..marglik import elbo_terms, noether_fit

    if data.state_size % 2:
        raise ValueError(
            f"--learn-symmetry needs canonical states (q, p) of even size; the data's states have size "
            f"{data.state_size}"
        )
    if data.coordinates == "velocity":
        raise ValueError(
            "--learn-symmetry needs canonical coordinates (q, p), not (q, qdot): give --coordinates "
            "canonical (unit masses: velocities are momenta)"
        )
    if not isinstance(quantities, int) or quantities < 1:
        raise ValueError(f"--quantities must be a positive integer, got {quantities!r}")
    if len(data) < 2:
        raise ValueError("at least 2 trajectories are needed (one is held out for testing)")
    start = time.perf_counter()
    n_test = max(1, int(round(config.holdout * len(data))))
    pairs = (
        lambda s: (  # noqa: E731
            jnp.asarray(s[:, :-1].reshape(-1, data.state_size), jnp.float32),
            jnp.asarray(s[:, 1:].reshape(-1, data.state_size), jnp.float32),
        )
    )
    train, test = pairs(np.asarray(data.states[:-n_test])), pairs(np.asarray(data.states[-n_test:]))
    d = data.state_size
    k_sym, k_net, k_fit, k_eval = jax.random.split(jax.random.key(seed), 4)
    conserved = QuadraticConservedQuantities(d, quantities, key=k_sym, init_std=0.01)
    dynamics = SymmetrizedHamiltonianNN(
        conserved, config.width, config.depth, symmetry_samples, key=k_net, activation=jax.nn.elu
    )
    n = train[0].shape[0]
    fitted = noether_fit(
        FlowMap(dynamics, data.dt, substeps),
        train,
        key=k_fit,
        epochs=config.epochs,
        batch_size=None if n <= 512 else 64,
        learning_rate=config.learning_rate,
        noise_std=noise_std,
        prior_variance=1.0,
        progress=progress,
    )
    generators = np.asarray(fitted.conserved.generators())
    sv = generator_singular_values(generators)
    _, _, vt = np.linalg.svd(generators.reshape(len(generators), -1), full_matrices=False)
    table = [
        {
            "quantity": f"C{i + 1}",
            "formula": describe_quadratic(*quadratic_of_generator(vt[i].reshape(d + 1, d + 1))),
            "singular_value": float(sv[i] / sv[0]),
            "dominant": bool(sv[i] / sv[0] > 0.1),
        }
        for i in range(len(sv))
    ]
    predict = lambda x: eqx.filter_jit(bayesian_model_average)(fitted.posterior, x, k_eval, 8)  # noqa: E731
    terms = elbo_terms(fitted.posterior, train, k_eval, noise_std=noise_std, n_samples=8, prior_variance=1.0)
    test_mse = float(jnp.mean((predict(test[0]) - test[1]) ** 2))
    spec = {
        "model": "symmetrized-hnn",
        "state_size": d,
        "quantities": quantities,
        "width": config.width,
        "depth": config.depth,
        "dt": data.dt,
        "substeps": substeps,
        "symmetry_samples": symmetry_samples,
        "noise_std": noise_std,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        "seed": seed,
        "data": data.name,
    }
    panels = [
        Panel(
            "learned generators",
            "index",
            "singular value / largest",
            [series("learned", np.arange(1, len(sv) + 1), sv / sv[0])],
            logy=True,
        ),
        Panel(
            "training",
            "step",
            "-ELBO/N",
            [series("noether's razor", np.arange(len(fitted.losses)), fitted.losses)],
        ),
    ]
    notes = [
        fitted.message,
        f"{int(sum(r['dominant'] for r in table))} dominant conserved quantities (singular value > 0.1 of "
        "the largest); formulas are the principal directions of the learned generators, scaled to a "
        "largest coefficient of 1 (states read as canonical (q1..qn, p1..pn)).",
        f"train -ELBO/N = {terms['neg_elbo_per_n']:.4g} (NLL/N {terms['nll_per_n']:.4g}, KL/N "
        f"{terms['kl_per_n']:.4g}); held-out one-step MSE (Bayesian model average) = {test_mse:.4g} on "
        f"{n_test} trajectories.",
    ]
    result = Result(
        "fit-learn-symmetry",
        spec | dataclasses.asdict(config),
        table,
        time.perf_counter() - start,
        [Figure("symmetry", f"Noether's razor on {data.name}", panels, 2)],
        notes,
        seed=seed,
    )
    return fitted.posterior, spec, result
