"""Guided reverse-SDE samples with their exact importance weights against the unguided sampler.

A guided sampler adds a term ``b(x, sigma)`` (e.g. ``grad log P(E | x_sigma = x)``) to the score
``s(x, sigma)`` of the reverse VE SDE. Every step of the chain is Gaussian, with the same variance
with or without ``b``, so the ratio of the two chains' path densities is known in closed form
(Girsanov's theorem in discrete time). One Euler-Maruyama step of variance
``v = sigma_i^2 - sigma_{i+1}^2``,

    x' = x + v (s + b) + sqrt(v) z,
    log [p_plain(x' | x) / p_guided(x' | x)] = -sqrt(v) z·b - v |b|^2 / 2,

and one Langevin corrector step of size ``eps``, ``x' = x + eps (s + b) + sqrt(2 eps) z``, contributes
``-sqrt(eps / 2) z·b - eps |b|^2 / 4``. Both chains start from ``N(0, sigma_max^2 I)``, so summing the
terms gives ``log w = log dP_plain / dP_guided`` of the whole path, and for any event ``E``

    P_plain(E) = E_guided[ 1_E(x_0) w ],

unbiased whatever the guidance is: its quality only sets the variance. With the exact guidance (the
Doob h-transform ``b = grad log P(E | x_sigma)``) every path that ends in ``E`` has the same weight,
``P(E | x_{sigma_max}) ≈ P(E)``, so the estimate has no variance at all. This needs no likelihood
solve, unlike the probability-flow estimate of :func:`.event_log_probability`.

The corrector's step is a fixed schedule ``eps_i = 2 (snr sigma_{i+1})^2`` (Song et al.'s
``2 (snr |z| / |s|)^2`` for ``|s| = |z| / sigma``), not one that depends on the guided state: the
weights are exact only if both chains take the same steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .sampling import check_sampler_arguments, noise_levels

# (x, sigma) -> (score, guidance): the plain score and the term the guided sampler adds to it.
DriftFn = Callable[[Array, Array], tuple[Array, Array]]


def _guided_step(x, s, b, z, step, noise, axes):
    """``x' = x + step (s + b) + noise z`` and ``log p_plain(x' | x) - log p_guided(x' | x)``: the two
    Gaussian transitions share the variance ``noise^2`` and their means differ by ``step b``."""
    ratio = step / noise
    log_ratio = -ratio * jnp.sum(z * b, axis=axes) - 0.5 * ratio**2 * jnp.sum(b * b, axis=axes)
    return x + step * (s + b) + noise * z, log_ratio


def weighted_sample(
    score_and_guidance: DriftFn,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 500,
    corrector_steps: int = 0,
    snr: float = 0.16,
) -> tuple[Float[Array, " n *shape"], Float[Array, " n"]]:
    """``n`` guided samples and ``log w``, the log importance weight of each path against the
    unguided sampler with the same steps (module docstring).

    ``score_and_guidance(x, sigma)`` returns ``(s, b)`` for one sample, e.g.
    :meth:`.EventConditionedScore.score_and_guidance`; the samples follow ``s + b``.

    Returns ``(x, log_w)``: shapes ``(n, *shape)`` and ``(n,)``.
    """
    check_sampler_arguments(n, corrector_steps, snr)
    sigmas = noise_levels(sigma_min, sigma_max, steps)
    k0, k_steps = jax.random.split(key)
    x = sigma_max * jax.random.normal(k0, (n, *shape))
    batched = jax.vmap(score_and_guidance, in_axes=(0, None))
    axes = tuple(range(1, 1 + len(shape)))

    def gaussian_step(x, log_w, k, sigma, step, noise):
        s, b = batched(x, sigma)
        z = jax.random.normal(k, x.shape, x.dtype)
        x, log_ratio = _guided_step(x, s, b, z, step, noise, axes)
        return x, log_w + log_ratio

    def level(carry, inputs):
        x, log_w = carry
        s_now, s_next, k = inputs
        k_pred, k_corr = jax.random.split(k)
        var = s_now**2 - s_next**2
        x, log_w = gaussian_step(x, log_w, k_pred, s_now, var, jnp.sqrt(var))
        eps = 2.0 * (snr * s_next) ** 2
        for i in range(corrector_steps):
            x, log_w = gaussian_step(
                x, log_w, jax.random.fold_in(k_corr, i), s_next, eps, jnp.sqrt(2.0 * eps)
            )
        return (x, log_w), None

    keys = jax.random.split(k_steps, steps)
    log_w = jnp.zeros((n,), x.dtype)
    (x, log_w), _ = jax.lax.scan(level, (x, log_w), (sigmas[:-1], sigmas[1:], keys))
    return x, log_w


# (x, sigma) -> (score, guidance, log h): h(x) ≈ P(E | x_sigma = x), the twist the guidance follows.
TwistedDriftFn = Callable[[Array, Array], tuple[Array, Array, Array]]


class SMCResult(NamedTuple):
    """The output of :func:`twisted_smc` for ``replicates`` independent particle systems.

    ``log_normaliser`` is ``log Ẑ`` of each system (``(replicates,)``), ``Ẑ`` an unbiased estimate of
    ``E_plain[target(x_0)]``; ``samples`` the final particles ``(replicates, n, *shape)`` with their
    normalised ``log_weights``; ``resamples`` how often each system resampled and
    ``min_effective_sample_size`` its smallest ESS along the way, and ``effective_sample_sizes``
    the ESS after each level's step (``(replicates, steps)``; where it drops, the twist or the
    guidance is poor).
    """

    log_normaliser: Float[Array, " replicates"]
    samples: Float[Array, " replicates n *shape"]
    log_weights: Float[Array, " replicates n"]
    resamples: Float[Array, " replicates"]
    min_effective_sample_size: Float[Array, " replicates"]
    effective_sample_sizes: Float[Array, " replicates steps"]


def _normalise(log_w):
    """``(log_w - logsumexp(log_w), logsumexp(log_w))``, with all-``-inf`` weights left at ``-inf``."""
    total = jax.nn.logsumexp(log_w)
    return jnp.where(jnp.isfinite(total), log_w - total, -jnp.inf), total


def _systematic_resample(key, log_w, n):
    """Indices of ``n`` particles drawn by systematic resampling from normalised ``log_w``."""
    cumulative = jnp.cumsum(jnp.exp(log_w))
    u = (jax.random.uniform(key, (), cumulative.dtype) + jnp.arange(n, dtype=cumulative.dtype)) / n
    return jnp.clip(jnp.searchsorted(cumulative, u * cumulative[-1]), 0, n - 1)


def twisted_smc(
    drift: TwistedDriftFn,
    log_target: Callable[[Array], Array],
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    replicates: int = 1,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 500,
    resample_below: float = 0.5,
) -> SMCResult:
    """Twisted sequential Monte Carlo down the reverse VE SDE (Wu et al., NeurIPS 2023, "twisted
    diffusion sampler"), which estimates ``Z = E_plain[exp(log_target(x_0))]`` (``P_plain(E)`` for
    ``log_target = log 1_E``) and samples the plain sampler's paths reweighted by the target.

    ``drift(x, sigma)`` returns ``(s, b, log h)`` for one sample: the plain score, the guidance the
    particles follow (``grad log h``, approximately) and the twist ``log h(x) ≈ log P(E | x_sigma = x)``.
    The particles start from ``N(0, sigma_max^2 I)`` with weights ``h``; each Euler-Maruyama step
    multiplies a particle's weight by

        p_plain(x' | x) h_{i+1}(x') / (p_guided(x' | x) h_i(x)),

    the path ratio of :func:`weighted_sample` times the change of twist, and the last step by
    ``exp(log_target(x_0)) / h(x_0)``. The product of the steps' mean weights is ``Ẑ``, unbiased
    whatever ``h`` is; since the twist anticipates the target, each step's weights stay close to
    equal even where the weights of whole paths (:func:`weighted_sample`) are dominated by a few.
    Systematic resampling whenever Kish's effective sample size falls below ``resample_below * n``
    keeps the particles where the target has mass.

    ``replicates`` independent systems of ``n`` particles (vmapped) give an error bar for ``log Ẑ``.
    """
    for name, value in (("n", n), ("replicates", replicates)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if not (0.0 <= resample_below <= 1.0):
        raise ValueError(f"`resample_below` must be in [0, 1], got {resample_below!r}")
    sigmas = noise_levels(sigma_min, sigma_max, steps)
    batched = jax.vmap(drift, in_axes=(0, None))
    axes = tuple(range(1, 1 + len(shape)))

    def one_system(key):
        k0, k_steps = jax.random.split(key)
        x = sigma_max * jax.random.normal(k0, (n, *shape))
        s, b, log_h = batched(x, sigmas[0])
        log_w, log_z = _normalise(log_h)
        log_z = log_z - math.log(n)

        def level(carry, inputs):
            x, s, b, log_h, log_w, log_z, resamples, min_ess = carry
            s_now, s_next, k = inputs
            k_resample, k_noise = jax.random.split(k)
            ess = 1.0 / jnp.sum(jnp.exp(2.0 * log_w))
            min_ess = jnp.minimum(min_ess, ess)
            low = ess < resample_below * n
            index = jnp.where(low, _systematic_resample(k_resample, log_w, n), jnp.arange(n))
            x, s, b, log_h = x[index], s[index], b[index], log_h[index]
            log_w = jnp.where(low, jnp.full((n,), -math.log(n), log_w.dtype), log_w)
            var = s_now**2 - s_next**2
            z = jax.random.normal(k_noise, x.shape, x.dtype)
            x, log_ratio = _guided_step(x, s, b, z, var, jnp.sqrt(var), axes)
            s_new, b_new, log_h_new = batched(x, s_next)
            log_w, increment = _normalise(log_w + log_ratio + log_h_new - log_h)
            carry = (
                x,
                s_new,
                b_new,
                log_h_new,
                log_w,
                log_z + increment,
                resamples + low.astype(x.dtype),
                min_ess,
            )
            return carry, 1.0 / jnp.sum(jnp.exp(2.0 * log_w))

        keys = jax.random.split(k_steps, steps)
        init = (x, s, b, log_h, log_w, log_z, jnp.zeros((), x.dtype), jnp.asarray(float(n), x.dtype))
        (x, _, _, log_h, log_w, log_z, resamples, min_ess), ess_path = jax.lax.scan(
            level, init, (sigmas[:-1], sigmas[1:], keys)
        )
        # The last twist h(x_0) is only an approximation of the target: swap it for the target.
        log_w, increment = _normalise(log_w + jax.vmap(log_target)(x) - log_h)
        return SMCResult(log_z + increment, x, log_w, resamples, min_ess, ess_path)

    return jax.vmap(one_system)(jax.random.split(key, replicates))
