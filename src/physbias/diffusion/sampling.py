"""Reverse-time sampling of a VE diffusion by Euler-Maruyama on a geometric noise ladder.

The reverse VE SDE in the noise level reads ``dx = -d(sigma^2) score(x, sigma) + sqrt(-d(sigma^2)) dW``
run from ``sigma_max`` down to ``sigma_min``; one Euler-Maruyama step from ``sigma_i`` to
``sigma_{i+1} < sigma_i`` is

    x <- x + (sigma_i^2 - sigma_{i+1}^2) score(x, sigma_i) + sqrt(sigma_i^2 - sigma_{i+1}^2) z

(the reverse-diffusion predictor of Song et al. 2021). Any ``score(x, sigma)`` works: a learned
denoiser's, an analytic one, or an event-conditioned one (:mod:`.events`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

ScoreFn = Callable[[Array, Array], Array]


def check_noise_range(sigma_min, sigma_max) -> None:
    for name, value in (("sigma_min", sigma_min), ("sigma_max", sigma_max)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"`{name}` must be a positive number, got {value!r}")
    if not sigma_min < sigma_max:
        raise ValueError(f"`sigma_min` must be below `sigma_max`, got {sigma_min} and {sigma_max}")


def check_sampler_arguments(n, corrector_steps, snr) -> None:
    """Raise ``ValueError`` unless ``n >= 1`` and ``corrector_steps >= 0`` are integers and ``snr > 0``."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    if not isinstance(corrector_steps, int) or corrector_steps < 0:
        raise ValueError(f"`corrector_steps` must be a non-negative integer, got {corrector_steps!r}")
    if not (math.isfinite(snr) and snr > 0):
        raise ValueError(f"`snr` must be a positive number, got {snr!r}")


def noise_levels(sigma_min: float, sigma_max: float, steps: int) -> Float[Array, " steps+1"]:
    """``steps + 1`` geometrically spaced levels from ``sigma_max`` down to ``sigma_min``."""
    check_noise_range(sigma_min, sigma_max)
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    u = jnp.linspace(math.log(sigma_max), math.log(sigma_min), steps + 1)
    return jnp.exp(u)


def sample(
    score: ScoreFn,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 500,
    corrector_steps: int = 0,
    snr: float = 0.16,
    denoise: bool = False,
) -> Float[Array, " n *shape"]:
    """``n`` samples of ``shape`` from ``x ~ N(0, sigma_max^2 I)`` down the reverse VE SDE.

    ``corrector_steps`` Langevin steps after each predictor step make it the predictor-corrector
    sampler of Song et al. (2021, Algorithm 2): step ``eps = 2 (snr |z| / |score|)^2`` (norms averaged
    over the batch), then
    ``x <- x + eps score + sqrt(2 eps) z``. They relax the samples towards the current level's
    distribution, which helps where the score is only approximate (event conditioning).

    Returns the state at ``sigma_min``, with noise of that scale left on it, or with ``denoise`` its
    Tweedie estimate ``x + sigma_min^2 score(x, sigma_min)`` (the noise-removal step of Song et
    al.'s code): for a statistic that noise moves, such as a spectral amplitude, which a guided
    sampler's score has aimed at the denoised sample.
    """
    check_sampler_arguments(n, corrector_steps, snr)
    sigmas = noise_levels(sigma_min, sigma_max, steps)
    k0, k_steps = jax.random.split(key)
    x = sigma_max * jax.random.normal(k0, (n, *shape))
    batched = jax.vmap(score, in_axes=(0, None))

    def langevin(x, k, sigma):
        z = jax.random.normal(k, x.shape, x.dtype)
        g = batched(x, sigma)
        # Norms averaged over the batch (as Song et al.'s code): a per-sample ratio explodes for a
        # sample that sits where the score nearly vanishes.
        ratio = jnp.mean(jnp.linalg.norm(z.reshape(n, -1), axis=1)) / jnp.mean(
            jnp.linalg.norm(g.reshape(n, -1), axis=1)
        )
        eps = 2.0 * (snr * ratio) ** 2
        return x + eps * g + jnp.sqrt(2.0 * eps) * z

    def step(x, inputs):
        s_now, s_next, k = inputs
        k_pred, k_corr = jax.random.split(k)
        var = s_now**2 - s_next**2
        x = x + var * batched(x, s_now) + jnp.sqrt(var) * jax.random.normal(k_pred, x.shape, x.dtype)
        for i in range(corrector_steps):
            x = langevin(x, jax.random.fold_in(k_corr, i), s_next)
        return x, None

    keys = jax.random.split(k_steps, steps)
    x, _ = jax.lax.scan(step, x, (sigmas[:-1], sigmas[1:], keys))
    if denoise:
        x = x + sigmas[-1] ** 2 * batched(x, sigmas[-1])
    return x
