"""Exact log-likelihoods of a VE diffusion through its probability-flow ODE.

In the log noise level ``u = log sigma`` the probability flow (Song et al. 2021) is

    dx/du = -sigma^2 score(x, sigma)     (= x - D(x, sigma) for a denoiser's score)

and the instantaneous change of variables gives

    log p_{sigma_min}(x) = log N(x(u_max); 0, sigma_max^2 I) + ∫_{u_min}^{u_max} div_x(dx/du) du.

The divergence is the exact trace of the Jacobian (forward-mode, one pass per dimension), not
Hutchinson's estimate, so the likelihood has no sampling noise; the integral is Heun's method
(second order) on a uniform grid in ``u``. For event sampling (Finzi et al. 2023),

    log P(E) = log p(x) - log p(x | E)     for any x in E,

with the second term the likelihood under the event-conditioned score.

:func:`flow_sample` runs the same flow the other way, from ``N(0, sigma_max^2 I)`` down to
``sigma_min``, and carries the log-density of each sample along its path with the same identity:
samples with their exact density under the sampler that drew them, which is what an importance
weight needs (:func:`.event_log_probability_importance`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .sampling import ScoreFn, check_noise_range


def _drift_and_divergence(score: ScoreFn, x, sigma):
    flat_shape = x.shape

    def drift(flat):
        return (-(sigma**2) * score(flat.reshape(flat_shape), sigma)).reshape(-1)

    flat = x.reshape(-1)
    f, jac = jax.vmap(lambda v: jax.jvp(drift, (flat,), (v,)), out_axes=(None, 0))(
        jnp.eye(flat.size, dtype=flat.dtype)
    )
    return f.reshape(flat_shape), jnp.trace(jac)


def _heun_with_divergence(score: ScoreFn, x, u0: float, u1: float, steps: int):
    """Heun's method for ``dx/du = -sigma^2 score`` from ``u0`` to ``u1`` (either direction), with
    ``∫ div_x(dx/du) du`` along the path: ``(x(u1), integral)``."""
    h = (u1 - u0) / steps

    def step(carry, u):
        x, total = carry
        f0, div0 = _drift_and_divergence(score, x, jnp.exp(u))
        x_pred = x + h * f0
        f1, div1 = _drift_and_divergence(score, x_pred, jnp.exp(u + h))
        return (x + 0.5 * h * (f0 + f1), total + 0.5 * h * (div0 + div1)), None

    us = u0 + h * jnp.arange(steps, dtype=x.dtype)
    (x_end, integral), _ = jax.lax.scan(step, (x, jnp.zeros((), x.dtype)), us)
    return x_end, integral


def _log_prior(x, sigma_max: float):
    return -0.5 * jnp.sum(x**2) / sigma_max**2 - x.size * (math.log(sigma_max) + 0.5 * math.log(2 * math.pi))


def _check_steps(steps) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")


def log_likelihood(
    score: ScoreFn,
    x: Float[Array, " *shape"],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 200,
) -> Float[Array, ""]:
    """``log p_{sigma_min}(x)`` of one sample under the diffusion whose score is ``score(x, sigma)``
    (Heun, ``steps`` steps in ``log sigma``, exact divergence).

    The flow ends on ``N(0, sigma_max^2 I)``: centre (standardise) the data, since a mean ``m`` left in
    them biases the result by about ``m · x(u_max) / sigma_max^2``.
    """
    check_noise_range(sigma_min, sigma_max)
    _check_steps(steps)
    x_end, integral = _heun_with_divergence(score, x, math.log(sigma_min), math.log(sigma_max), steps)
    return _log_prior(x_end, sigma_max) + integral


def flow_sample(
    score: ScoreFn,
    key: PRNGKeyArray,
    n: int,
    shape: tuple[int, ...],
    *,
    sigma_min: float = 1e-3,
    sigma_max: float = 80.0,
    steps: int = 200,
) -> tuple[Float[Array, " n *shape"], Float[Array, " n"]]:
    """``n`` samples of the probability-flow ODE of ``score`` with their log-densities.

    Each sample starts at ``x(u_max) ~ N(0, sigma_max^2 I)`` and is carried down to ``sigma_min`` by
    Heun's method (``steps`` steps in ``log sigma``). Its log-density there is

        log q(x(u_min)) = log N(x(u_max); 0, sigma_max^2 I) + ∫_{u_min}^{u_max} div_x(dx/du) du,

    the integral taken along the same path with the exact divergence: :func:`log_likelihood` of the
    sample under the same ``score`` (a forward and a backward solve of one ODE are inverse maps, up
    to the solver's error), computed in the pass that draws it. For an approximate score, such as an
    event-conditioned one, this is the density of this ODE sampler's samples, which the reverse
    SDE with the same score need not share.

    Returns ``(samples, log_densities)`` of shapes ``(n, *shape)`` and ``(n,)``.
    """
    check_noise_range(sigma_min, sigma_max)
    _check_steps(steps)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    start = sigma_max * jax.random.normal(key, (n, *shape))

    def one(x):
        x_end, integral = _heun_with_divergence(score, x, math.log(sigma_max), math.log(sigma_min), steps)
        # The integral ran from u_max down to u_min: the identity's integral is its negative.
        return x_end, _log_prior(x, sigma_max) - integral

    return jax.vmap(one)(start)
