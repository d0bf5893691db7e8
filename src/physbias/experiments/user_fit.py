"""The job behind ``physbias fit``: learn dynamics from the user's trajectories.

Composition only: hold out trajectories, build the model, train on rollout chunks (or
finite-difference derivatives) with :func:`physbias.fit`, evaluate held-out rollouts, return the
model, its spec and a :class:`~physbias.report.Result`.
"""

from __future__ import annotations

import time

import jax
import numpy as np

from ..data import TrajectoryDataset
from ..dynamics import MODELS, build_model, derivative_loss, rollout_loss
from ..metrics import rollout_errors
from ..report import Figure, Panel, Result, series
from ..train import fit


def check_fit_settings(data: TrajectoryDataset, model: str, *, loss: str, chunk: int, holdout: float) -> None:
    """Raise ``ValueError`` before any work for settings that cannot fit this data."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; valid names: {', '.join(sorted(MODELS))}")
    if model != "node" and data.state_size % 2:
        raise ValueError(
            f"model {model!r} needs an even state size 2n = (q, p) or (q, qdot); the data's states "
            f"have size {data.state_size}"
        )
    if loss not in ("rollout", "derivative"):
        raise ValueError(f"`loss` must be 'rollout' or 'derivative', got {loss!r}")
    if loss == "rollout" and not 1 <= chunk < data.n_times:
        raise ValueError(f"`chunk` must be in [1, {data.n_times - 1}] for this data, got {chunk}")
    if loss == "derivative" and data.n_times < 3:
        raise ValueError("derivative training needs at least 3 times per trajectory")
    if not 0 < holdout < 1:
        raise ValueError(f"`holdout` must be a fraction in (0, 1), got {holdout}")
    if len(data) < 2:
        raise ValueError("at least 2 trajectories are needed (one is held out for testing)")


def fit_trajectories(
    data: TrajectoryDataset,
    model: str = "node2",
    *,
    width: int = 128,
    depth: int = 2,
    epochs: int = 500,
    learning_rate: float = 1e-3,
    loss: str = "rollout",
    chunk: int = 4,
    holdout: float = 0.2,
    seed: int = 0,
    progress: bool = True,
    regularization: float = 0.0,
):
    """Train a dynamics model on ``data``; returns ``(model, spec, Result)``.

    ``regularization`` (``lnn`` only) adds ``eps I`` to the learned Lagrangian's Hessian in
    ``qdot`` so that the Euler-Lagrange solve cannot meet a singular matrix.
    """
    if regularization < 0:
        raise ValueError(f"`regularization` must be >= 0, got {regularization}")
    check_fit_settings(data, model, loss=loss, chunk=chunk, holdout=holdout)
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
        spec,
        table,
        time.perf_counter() - start,
        [Figure("rollout", f"{model} on {data.name}: held-out rollout", panels, 3)],
        notes,
    )
    return result.model, spec, res
