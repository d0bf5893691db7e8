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

:func:`event_log_probability_from_paths` is a second estimate that needs no likelihood: the guided
sampler's paths weighted against the plain sampler's (:func:`.weighted_sample`), unbiased for
``P(E)`` however approximate the guidance. The likelihood estimate is right only if the probability
flow of the guided score has the density of the guided SDE's samples, which for an approximate
conditional score (not the score of any family of noised densities) it need not. The weights of
whole paths are heavy-tailed when the guidance is far from the exact one (a few paths carry the
mean, which then comes out too low); :func:`event_log_probability_smc` resamples the paths as they
go, with ``P(E | x_sigma)`` as the twist (twisted SMC), and stays unbiased.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .events import EventConditionedScore, event_satisfied
from .likelihood import flow_sample, log_likelihood
from .paths import SMCResult, twisted_smc, weighted_sample


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


class PathEstimate(NamedTuple):
    """``log P(E)`` from weighted guided paths, with what it was made of.

    ``log_probability = log mean_i 1_E(x_i) w_i``; ``standard_error`` is its delta-method standard
    error, ``std(1_E w) / (sqrt(n) mean(1_E w))``; ``effective_sample_size`` is Kish's
    ``(sum 1_E w)^2 / sum (1_E w)^2`` (``n`` for exact guidance, 1 when one path dominates).
    """

    log_probability: Float[Array, ""]
    standard_error: Float[Array, ""]
    effective_sample_size: Float[Array, ""]
    samples: Float[Array, " n *shape"]
    log_weights: Float[Array, " n"]
    in_event: Bool[Array, " n"]


def event_log_probability_from_paths(
    conditional: EventConditionedScore,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 500,
    corrector_steps: int = 0,
    snr: float = 0.16,
) -> PathEstimate:
    """``log P(E)`` under the plain sampler of ``conditional.denoiser`` from ``n`` guided paths:
    ``log mean 1_E(x_0) w`` with ``w`` the paths' weights of :func:`.weighted_sample` (same
    arguments). The samples are the conditional samples themselves, so the fraction in ``E`` comes
    with the estimate at no extra cost.
    """
    xs, log_w = weighted_sample(
        conditional.score_and_guidance,
        key,
        n,
        shape,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        steps=steps,
        corrector_steps=corrector_steps,
        snr=snr,
    )
    return _importance_estimate(xs, log_w, event_satisfied(conditional.event, xs))


def _importance_estimate(xs, log_w, inside) -> PathEstimate:
    """``log mean 1_E w`` with its delta-method error and Kish's size, from samples, their log-weights
    and whether each lies in ``E``."""
    n = log_w.shape[0]
    masked = jnp.where(inside, log_w, -jnp.inf)
    log_sum = jax.nn.logsumexp(masked)
    log_p = log_sum - jnp.log(n)
    # Normalised weights 1_E w / sum(1_E w): Kish's size and the relative spread of 1_E w from them.
    # No sample in E: log P = -inf, no effective samples, an infinite standard error.
    hit = jnp.any(inside)
    normalised = jnp.where(inside, jnp.exp(masked - jnp.where(hit, log_sum, 0.0)), 0.0)
    concentration = jnp.sum(normalised**2)
    ess = jnp.where(hit, 1.0 / jnp.where(hit, concentration, 1.0), 0.0)
    relative_std = jnp.where(hit, jnp.sqrt(jnp.maximum(n * concentration - 1.0, 0.0)), jnp.inf)
    return PathEstimate(log_p, relative_std / jnp.sqrt(n), ess, xs, log_w, inside)


def event_log_probability_importance(
    conditional: EventConditionedScore,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 200,
    guide_above: float | None = None,
) -> PathEstimate:
    """``log P(E)`` under the probability flow of ``conditional.denoiser`` by importance sampling from
    the probability flow of ``conditional`` itself:

        P(E) = E_q[ 1_E(x) p(x) / q(x) ],   x ~ q,

    ``q`` the density of the guided flow's samples, carried along each path (:func:`.flow_sample`),
    ``p`` the plain model's likelihood of the sample (:func:`.log_likelihood`). If ``q`` were the
    exact conditional ``p(x | E) = p(x) 1_E(x) / P(E)``, every sample would be in ``E`` and every
    log-weight ``log p(x) - log q(x)`` would equal ``log P(E)``: the reference's single-sample
    estimate ``log p(x) - log p(x | E)`` (Finzi et al. 2023). For the approximate guidance the mean of
    the weights keeps the estimate unbiased, and the samples outside ``E`` count as zeros. The
    weights are of marginal densities, not of whole noisy paths (:func:`.weighted_sample`), so their
    spread is only how far ``q`` is from ``p(x | E)``.

    Both densities come from exact divergences, one forward-mode pass per coordinate of a sample,
    which suits samples of a few numbers (a diffused start state) rather than whole windows.

    ``guide_above`` guides only above that noise level and follows the plain flow below it, where a
    guidance from a rough event can make the flow stiff; the estimate stays unbiased (``q`` is the
    density of whatever the sampler does).
    """
    if guide_above is not None and not (math.isfinite(guide_above) and guide_above > 0):
        raise ValueError(f"`guide_above` must be a positive number or None, got {guide_above!r}")
    plain = conditional.denoiser.score
    if guide_above is None:
        proposal = conditional
    else:

        def proposal(x, sigma):
            return jax.lax.cond(
                sigma > guide_above, lambda x: conditional(x, sigma), lambda x: plain(x, sigma), x
            )

    kwargs = dict(sigma_min=sigma_min, sigma_max=sigma_max, steps=steps)
    xs, log_q = flow_sample(proposal, key, n, shape, **kwargs)
    log_p = jax.vmap(lambda x: log_likelihood(plain, x, **kwargs))(xs)
    return _importance_estimate(xs, log_p - log_q, event_satisfied(conditional.event, xs))


class SMCEstimate(NamedTuple):
    """``log P(E)`` from :func:`event_log_probability_smc`.

    ``log_probability = log mean_j Ẑ_j`` over the independent particle systems, ``standard_error`` its
    delta-method error from their spread, ``std(Ẑ_j) / (sqrt(m) mean Ẑ_j)``; ``fraction_in_event`` is
    the share of final particles (before the last reweighting) that lie in ``E``; ``smc`` holds
    the systems themselves.
    """

    log_probability: Float[Array, ""]
    standard_error: Float[Array, ""]
    fraction_in_event: Float[Array, ""]
    smc: SMCResult


def event_log_probability_smc(
    conditional: EventConditionedScore,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    replicates: int = 4,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 500,
    resample_below: float = 0.5,
    twist_scale: float | None = 1.0,
    denoise: bool = False,
) -> SMCEstimate:
    """``log P(E)`` under the plain sampler of ``conditional.denoiser`` by twisted SMC
    (:func:`.twisted_smc`) with ``replicates`` systems of ``n`` particles: guidance and twist from
    ``conditional`` (:meth:`.EventConditionedScore.twisted_drift`), target ``1_E``.

    ``twist_scale`` tempers the twist to ``h^lambda`` (and the guidance to ``lambda grad log h``) with
    ``lambda(sigma) = 1 / (1 + (sigma / twist_scale)^2)``: far above the data's scale, ``P(E | x_sigma)``
    is nearly the constant ``P(E)``, while its Tweedie-Gaussian approximation still varies from
    particle to particle (``C`` of a blurred window is not the blurred ``C``), which makes the weights
    collapse there. Any twist leaves the estimate unbiased; this one keeps its variance small. The
    default suits standardised data (``sigma_data = 1``); ``None`` uses the twist untempered.

    ``denoise`` estimates ``P(E)`` for the plain sampler's denoised samples, ``D(x_0, sigma_min)``
    (:func:`.sample` with ``denoise=True``): the target is ``1_E(D(x_0, sigma_min))``.
    """
    if twist_scale is not None and not (math.isfinite(twist_scale) and twist_scale > 0):
        raise ValueError(f"`twist_scale` must be a positive number or None, got {twist_scale!r}")
    event = conditional.event

    def drift(x, sigma):
        score, guidance, log_h = conditional.twisted_drift(x, sigma)
        if twist_scale is None:
            return score, guidance, log_h
        weight = 1.0 / (1.0 + (sigma / twist_scale) ** 2)
        return score, weight * guidance, weight * log_h

    def final(x):
        return conditional.denoiser(x, jnp.asarray(sigma_min, x.dtype)) if denoise else x

    smc = twisted_smc(
        drift,
        lambda x: jnp.where(event(final(x)) > 0, 0.0, -jnp.inf),
        key,
        n,
        shape,
        replicates=replicates,
        sigma_min=sigma_min,
        sigma_max=sigma_max,
        steps=steps,
        resample_below=resample_below,
    )
    log_z = smc.log_normaliser
    log_p = jax.nn.logsumexp(log_z) - jnp.log(replicates)
    relative = jnp.exp(log_z - log_p)  # Ẑ_j / mean Ẑ
    hit = jnp.isfinite(log_p)
    se = jnp.where(hit, jnp.std(jnp.where(hit, relative, 0.0)) / jnp.sqrt(replicates), jnp.inf)
    inside = jnp.mean(jax.vmap(jax.vmap(lambda x: event(final(x))))(smc.samples) > 0)
    return SMCEstimate(log_p, se, inside, smc)
