"""Denoisers and the scores they define for the variance-exploding (VE) diffusion.

The VE SDE adds Gaussian noise of growing scale: ``x_sigma = x_0 + sigma eps`` with ``sigma`` from
``sigma_min`` to ``sigma_max`` (Song et al. 2021, "Score-based generative modeling through SDEs").
A denoiser ``D(x, sigma) ~ E[x_0 | x_sigma = x]`` gives the score by Tweedie's formula,

    grad_x log p_sigma(x) = (D(x, sigma) - x) / sigma^2,

and ``sigma^2 dD/dx = Cov[x_0 | x_sigma = x]`` (its second-order form), which the event conditioning
uses. ``Denoiser`` wraps a network ``F`` with the preconditioning of Karras et al. (NeurIPS 2022,
"EDM"), which keeps the network's inputs and targets of unit scale at every noise level:

    D(x, sigma) = c_skip x + c_out F(c_in x, log(sigma) / 4),
    c_skip = s^2 / (sigma^2 + s^2),  c_out = sigma s / sqrt(sigma^2 + s^2),  c_in = 1 / sqrt(sigma^2 + s^2)

with ``s = sigma_data`` the data's scale (1 for standardised data).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class WindowMLP(eqx.Module):
    """A noise-conditioned residual MLP on a whole window ``(length, channels)``.

    The noise level enters as random Fourier features of ``c_noise`` (Tancik et al. 2020), added to
    every hidden layer, so each layer knows how much noise it is removing.
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    frequencies: Array
    inp: eqx.nn.Linear
    hidden: list
    embed: list
    out: eqx.nn.Linear

    def __init__(
        self,
        shape: tuple[int, ...],
        key: PRNGKeyArray,
        *,
        width: int = 256,
        depth: int = 3,
        features: int = 32,
    ):
        for name, value in (("width", width), ("depth", depth), ("features", features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape):
            raise ValueError(f"`shape` must be a tuple of positive sizes, got {shape!r}")
        self.shape = tuple(shape)
        size = math.prod(shape)
        keys = jax.random.split(key, 3 + 2 * depth)
        self.frequencies = 2.0 * jax.random.normal(keys[0], (features,))
        self.inp = eqx.nn.Linear(size + 2 * features, width, key=keys[1])
        self.hidden = [eqx.nn.Linear(width, width, key=k) for k in keys[3 : 3 + depth]]
        self.embed = [eqx.nn.Linear(2 * features, width, key=k) for k in keys[3 + depth :]]
        out = eqx.nn.Linear(width, size, key=keys[2])
        # A zero last layer starts D at c_skip x: the best denoiser that ignores the data.
        self.out = eqx.tree_at(lambda m: (m.weight, m.bias), out, (out.weight * 0.0, out.bias * 0.0))

    def __call__(self, x: Float[Array, " *shape"], c_noise: Float[Array, ""]) -> Float[Array, " *shape"]:
        phase = c_noise * self.frequencies
        emb = jnp.concatenate([jnp.sin(phase), jnp.cos(phase)])
        h = jax.nn.silu(self.inp(jnp.concatenate([x.reshape(-1), emb])))
        for layer, e in zip(self.hidden, self.embed, strict=True):
            h = h + jax.nn.silu(layer(h) + e(emb))
        return self.out(h).reshape(self.shape)


class Denoiser(eqx.Module):
    """``D(x, sigma)``: a network with EDM preconditioning (module docstring). ``x`` is one sample of
    the network's ``shape``; ``sigma`` a scalar > 0."""

    net: eqx.Module
    sigma_data: float = eqx.field(static=True, default=1.0)

    def __call__(self, x: Float[Array, " *shape"], sigma) -> Float[Array, " *shape"]:
        s2 = self.sigma_data**2
        total = sigma**2 + s2
        c_skip = s2 / total
        c_out = sigma * self.sigma_data / jnp.sqrt(total)
        c_in = 1.0 / jnp.sqrt(total)
        return c_skip * x + c_out * self.net(c_in * x, jnp.log(sigma) / 4.0)

    def score(self, x: Float[Array, " *shape"], sigma) -> Float[Array, " *shape"]:
        """``(D(x, sigma) - x) / sigma^2`` (Tweedie)."""
        return (self(x, sigma) - x) / sigma**2


class GaussianDenoiser(eqx.Module):
    """The exact denoiser of Gaussian data ``x_0 ~ N(mean, cov)`` (flattened samples of size d):

        D(x, sigma) = mean + cov (cov + sigma^2 I)^{-1} (x - mean).

    The analytic reference for the learned denoisers, the conditional sampler and the likelihoods.
    """

    mean: Float[Array, " d"]
    cov: Float[Array, "d d"]

    def __init__(self, mean, cov):
        mean, cov = jnp.asarray(mean), jnp.asarray(cov)
        if mean.ndim != 1 or cov.shape != (mean.size, mean.size):
            raise ValueError(
                f"`cov` must be ({mean.size}, {mean.size}) for a mean of shape {mean.shape}, got {cov.shape}"
            )
        self.mean, self.cov = mean, cov

    def __call__(self, x, sigma):
        d = self.mean.size
        system = self.cov + sigma**2 * jnp.eye(d, dtype=self.cov.dtype)
        return self.mean + self.cov @ jnp.linalg.solve(system, x - self.mean)

    def score(self, x, sigma):
        return (self(x, sigma) - x) / sigma**2

    def log_prob(self, x, sigma=0.0):
        """``log N(x; mean, cov + sigma^2 I)``, the exact marginal at noise level ``sigma``."""
        d = self.mean.size
        c = self.cov + sigma**2 * jnp.eye(d, dtype=self.cov.dtype)
        r = x - self.mean
        _, logdet = jnp.linalg.slogdet(c)
        return -0.5 * (r @ jnp.linalg.solve(c, r) + logdet + d * math.log(2 * math.pi))
