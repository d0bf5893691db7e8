"""Denoising score matching for a VE diffusion, with the EDM noise distribution and weighting.

For data ``x_0``, noise ``sigma`` with ``log sigma ~ N(p_mean, p_std^2)`` and ``eps ~ N(0, I)``,

    L = E[ lambda(sigma) |D(x_0 + sigma eps, sigma) - x_0|^2 ],
    lambda(sigma) = (sigma^2 + s^2) / (sigma s)^2,

the weighting that makes the loss of the preconditioned network unit-scale at every ``sigma``
(Karras et al. 2022, eq. 8; Vincent 2011 for the score-matching identity). Its minimiser is
``E[x_0 | x_sigma]``, so ``(D - x) / sigma^2`` is the score of the noised data.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .sampling import check_noise_range


def denoising_loss(
    denoiser,
    x0: Float[Array, " batch *shape"],
    key: PRNGKeyArray,
    *,
    p_mean: float = -1.2,
    p_std: float = 1.2,
    sigma_range: tuple[float, float] | None = None,
) -> Float[Array, ""]:
    """Mean EDM-weighted denoising error over a batch ``x0`` (one noise level per sample).

    ``log sigma ~ N(p_mean, p_std^2)`` (EDM's choice for images), or, with ``sigma_range =
    (sigma_min, sigma_max)``, log-uniform over that range (Song et al. 2021): every noise level the
    sampler visits is trained alike, which event guidance needs, since it relies on the Tweedie
    estimate at the large noise levels where the coarse shape of a sample is decided.
    """
    k_sigma, k_eps = jax.random.split(key)
    n = x0.shape[0]
    if sigma_range is None:
        log_sigma = p_mean + p_std * jax.random.normal(k_sigma, (n,), x0.dtype)
    else:
        check_noise_range(*sigma_range)
        lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
        log_sigma = jax.random.uniform(k_sigma, (n,), x0.dtype, lo, hi)
    sigma = jnp.exp(log_sigma)
    eps = jax.random.normal(k_eps, x0.shape, x0.dtype)
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    noisy = x0 + sigma[expand] * eps
    denoised = jax.vmap(denoiser)(noisy, sigma)
    s2 = getattr(denoiser, "sigma_data", 1.0) ** 2  # 1 for a denoiser without preconditioning
    weight = (sigma**2 + s2) / (sigma**2 * s2)
    err = jnp.sum((denoised - x0).reshape(n, -1) ** 2, axis=1) / x0[0].size
    return jnp.mean(weight * err)
