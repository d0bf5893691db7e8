"""Marginal-likelihood training of a network (Immer et al. 2021, "Scalable marginal likelihood
estimation for model selection in deep learning", Algorithm 1; laplace-torch's ``marglik_training``).

MAP steps on ``-(log p(D | theta) + log p(theta))`` (:func:`physbias.evidence.map_loss`) with the
current prior precision and noise; every ``frequency`` epochs after ``burn_in`` a Laplace refit
(:func:`physbias.evidence.laplace`) and Adam steps on the hyperparameters through the evidence. The
model with the best evidence seen is returned.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .evidence.laplace import Curvature, Likelihood, _check_data, laplace, map_loss, optimize_hyperparameters
from .train import fit


@dataclasses.dataclass
class MargLikResult:
    """What :func:`marglik_fit` returns: the best-evidence model and its hyperparameters."""

    model: object
    prior_precision: np.ndarray
    noise_std: float
    log_evidence: float
    evidence_history: list[tuple[int, float]]  # (epoch, log evidence) at every refit
    losses: np.ndarray


def marglik_fit(
    model,
    data: tuple[Array, Array],
    *,
    key: PRNGKeyArray,
    likelihood: Likelihood = "regression",
    curvature: Curvature = "kfac",
    epochs: int = 1000,
    learning_rate: float = 1e-2,
    batch_size: int | None = None,
    frequency: int = 50,
    burn_in: int = 50,
    hyper_steps: int = 100,
    hyper_learning_rate: float = 0.1,
    per_group: bool = False,
    progress: bool = False,
) -> MargLikResult:
    """Marginal-likelihood training: MAP steps, and every ``frequency`` epochs after ``burn_in`` a
    Laplace refit followed by ``hyper_steps`` Adam steps on the hyperparameters through the
    evidence; returns the model with the best evidence seen (Immer et al. 2021, Algorithm 1)."""
    for name, v in (("epochs", epochs), ("frequency", frequency), ("hyper_steps", hyper_steps)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {v!r}")
    if not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"`burn_in` must be a non-negative integer, got {burn_in!r}")
    x, y, _ = _check_data(model, data, likelihood)
    n = int(x.shape[0])
    delta, sigma = 1.0, 1.0
    best = (-np.inf, model, np.asarray(delta), sigma)
    history, losses, done = [], [], 0
    while done < epochs:
        span = min(burn_in - done if done < burn_in else frequency, epochs - done)
        result = fit(
            model, map_loss(likelihood, jnp.asarray(delta), sigma, n), (x, y), key=jax.random.fold_in(key, done),
            epochs=span, learning_rate=learning_rate, batch_size=batch_size, progress=progress,
        )
        model, done = result.model, done + span
        losses.append(result.losses)
        if result.diverged:
            break
        if done >= burn_in:
            lap = laplace(model, (x, y), likelihood=likelihood, curvature=curvature)
            hyper = optimize_hyperparameters(
                lap, steps=hyper_steps, learning_rate=hyper_learning_rate,
                prior_precision=delta if np.ndim(delta) == 0 or per_group else float(np.mean(delta)),
                noise_std=sigma, per_group=per_group,
            )
            delta, sigma = hyper.prior_precision, hyper.noise_std
            history.append((done, hyper.log_evidence))
            if hyper.log_evidence > best[0]:
                best = (hyper.log_evidence, model, np.asarray(delta), sigma)
    return MargLikResult(best[1], best[2], best[3], float(best[0]), history, np.concatenate(losses))
