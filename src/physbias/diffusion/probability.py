"""The probability of an event from two probability-flow likelihoods (Finzi et al., ICML 2023).

Bayes' rule at a noise level ``sigma`` for a noised sample ``x = x_sigma``:

    p_sigma(x | E) = p_sigma(x) P(E | x_sigma = x) / P(E)
    =>  log P(E) = log p_sigma(x) - log p_sigma(x | E) + log P(E | x_sigma = x).

The reference evaluates the likelihoods at ``sigma -> 0``, where the last term vanishes for any
``x`` inside ``E``. Solving the flow down to ``sigma -> 0`` is stiff for the conditional score (the
guidance's Jacobian grows like ``1 / sigma_C``), so here the likelihoods stop at a moderate
``sigma`` and the last term is kept, with the same Tweedie-Gaussian approximation that defines
the conditional score: ``log Phi(C(x̂) / sigma_C)``. For a linear event on Gaussian data every term
is exact at any ``sigma``. Dropping the term biases ``log P(E)`` upwards (``log P(E | x) <= 0``),
most for samples just past the event's boundary, which is where rare-event samples lie.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from .events import EventConditionedScore
from .likelihood import log_likelihood


def event_log_probability(
    conditional: EventConditionedScore,
    x: Float[Array, " *shape"],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 200,
    posterior: bool = True,
) -> Float[Array, ""]:
    """``log P(E)`` from one sample ``x`` (ideally in ``E``, e.g. a conditional sample), with the
    likelihoods of :func:`.log_likelihood` at ``sigma_min`` under ``conditional.denoiser`` and under
    ``conditional`` itself.

    ``posterior=False`` leaves out ``log P(E | x_sigma = x)`` (the reference's estimate, right only
    as ``sigma_min -> 0``).
    """
    kwargs = dict(sigma_min=sigma_min, sigma_max=sigma_max, steps=steps)
    ratio = log_likelihood(conditional.denoiser.score, x, **kwargs) - log_likelihood(conditional, x, **kwargs)
    if not posterior:
        return ratio
    return ratio + conditional.log_event_probability(x, jnp.asarray(sigma_min, x.dtype))
