"""User-defined events and the approximate conditional score that samples them.

An event is ``E = {x : C(x) > 0}`` for a differentiable scalar function ``C`` of one whole sample
(a trajectory window), written by the user in JAX. Conditioning a diffusion on ``E`` needs the
score of ``p_sigma(x | E) ∝ p_sigma(x) P(E | x_sigma = x)``. Finzi et al. (ICML 2023) approximate the
posterior of ``C(x_0)`` given ``x_sigma`` as Gaussian around the Tweedie estimate ``x̂ = D(x, sigma)``:

    P(E | x) ≈ Phi(C(x̂) / sigma_C) ≈ sigmoid(1.6 C(x̂) / sigma_C),
    sigma_C^2 = sigma^2 |∇C(x̂)ᵀ (dx̂/dx)ᵀ ∇C(x̂)| + floor,

since ``sigma^2 dx̂/dx = Cov[x_0 | x]``; the conditional score is

    score_E(x, sigma) = score(x, sigma) + ∇_x log sigmoid(1.6 C(x̂) / sigma_C),

or, with the probit link, ``+ ∇_x log Phi(C(x̂) / sigma_C)``: exact for a linear event on Gaussian
data, and much better for rare events, where the logistic tail under-guides (see ``link``).

The gradient needs one vector-Jacobian product of the denoiser; ``sigma_C`` is held fixed in it (its
own derivative is second order in the denoiser and is dropped). For a linear ``C`` and Gaussian data
the Gaussian posterior is exact and only the probit-to-logistic step approximates.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

EventFn = Callable[[Array], Array]

PROBIT_TO_LOGISTIC = 1.6  # sigmoid(1.6 z) is within 0.02 of Phi(z) everywhere
LINKS = ("logistic", "probit")


def check_event(event: EventFn, example) -> None:
    """Raise ``ValueError`` unless ``event`` maps one sample like ``example`` to a finite scalar
    (checked on ``example`` itself before any sampling)."""
    if not callable(event):
        raise TypeError(f"`event` must be a function of one sample, got {type(event).__name__}")
    example = jnp.asarray(example)
    try:
        value = jax.eval_shape(event, example)
    except Exception as error:
        raise ValueError(f"`event` failed on a sample of shape {example.shape}: {error}") from error
    if not hasattr(value, "shape") or value.shape != ():
        shape = getattr(value, "shape", type(value).__name__)
        raise ValueError(f"`event` must return a scalar for one sample of shape {example.shape}, got {shape}")
    if not np.isfinite(np.asarray(event(example))):
        raise ValueError(f"`event` returned a non-finite value on a sample of shape {example.shape}")


def event_satisfied(event: EventFn, samples: Float[Array, " n *shape"]) -> Array:
    """Boolean ``(n,)``: ``C(x) > 0`` for each sample."""
    return jax.vmap(event)(samples) > 0


class EventConditionedScore(eqx.Module):
    """``score_E(x, sigma)`` of the module docstring, a drop-in score for :func:`.sample` and
    :func:`.log_likelihood`.

    Args:
        denoiser: any ``D(x, sigma)`` (a :class:`.Denoiser` or :class:`.GaussianDenoiser`).
        event: ``C``, a scalar function of one sample; ``E = {C > 0}``.
        strength: the probit-to-logistic factor (1.6).
        floor: added to ``sigma_C^2`` so that the guidance stays finite as ``sigma -> 0``.
        link: ``"probit"`` (``Phi(z)`` itself, the default) or ``"logistic"`` (the reference's
            ``sigmoid(1.6 z)``).
            They agree near the boundary, but in the tails ``log sigmoid`` grows linearly and
            ``log Phi`` quadratically, so for rare events (``P(E) < 1e-2``) the logistic guidance is
            too weak early in the reverse process and fewer samples land in ``E``.
    """

    denoiser: eqx.Module
    event: EventFn = eqx.field(static=True)
    strength: float = eqx.field(static=True, default=PROBIT_TO_LOGISTIC)
    floor: float = eqx.field(static=True, default=1e-3)
    link: str = eqx.field(static=True, default="probit")

    def __post_init__(self):
        if self.link not in LINKS:
            raise ValueError(f"`link` must be one of {LINKS}, got {self.link!r}")
        if not callable(self.event):
            raise TypeError(f"`event` must be a function of one sample, got {type(self.event).__name__}")

    def _posterior(self, x, sigma):
        """``(C(x̂), sigma_C, d(C o x̂)/dx, x̂)`` at ``(x, sigma)``; ``sigma_C`` carries no gradient."""
        xhat, pullback = jax.vjp(lambda x: self.denoiser(x, sigma), x)
        c, grad_c = jax.value_and_grad(self.event)(xhat)
        (grad_x,) = pullback(grad_c)  # d(C o x̂)/dx
        var = sigma**2 * jnp.abs(jnp.sum(grad_c * grad_x)) + self.floor
        return c, jax.lax.stop_gradient(jnp.sqrt(var)), grad_x, xhat

    def log_event_probability(self, x, sigma) -> Float[Array, ""]:
        """``log P(E | x_sigma = x)`` under the approximation: ``log Phi(C(x̂) / sigma_C)`` (probit) or
        ``log sigmoid(strength C(x̂) / sigma_C)`` (logistic)."""
        c, sigma_c, _, _ = self._posterior(x, sigma)
        return self._log_link(c, sigma_c)

    def _log_link(self, c, sigma_c):
        if self.link == "logistic":
            return jax.nn.log_sigmoid(self.strength * c / sigma_c)
        return jax.scipy.special.log_ndtr(c / sigma_c)

    def guidance(self, x, sigma):
        """``(grad_x log P(E | x_sigma = x), C(x̂), sigma_C)``: the term added to the score."""
        return self._guidance(x, sigma)[:3]

    def score_and_guidance(self, x, sigma):
        """``(score, guidance)`` from one pass of the denoiser, the score by Tweedie,
        ``(D(x, sigma) - x) / sigma^2``: the two drifts :func:`.weighted_sample` compares."""
        b, _, _, xhat = self._guidance(x, sigma)
        return (xhat - x) / sigma**2, b

    def twisted_drift(self, x, sigma):
        """``(score, guidance, log P(E | x_sigma = x))`` from one pass of the denoiser: the drifts
        and the twist of :func:`.twisted_smc`."""
        b, c, sigma_c, xhat = self._guidance(x, sigma)
        return (xhat - x) / sigma**2, b, self._log_link(c, sigma_c)

    def _guidance(self, x, sigma):
        c, sigma_c, grad_x, xhat = self._posterior(x, sigma)
        if self.link == "logistic":
            # d/dz log sigmoid(z) = sigmoid(-z)
            z = self.strength * c / sigma_c
            slope = jax.nn.sigmoid(-z) * self.strength
        else:
            # d/dz log Phi(z) = phi(z) / Phi(z), the inverse Mills ratio, evaluated in logs
            z = c / sigma_c
            slope = jnp.exp(jax.scipy.stats.norm.logpdf(z) - jax.scipy.special.log_ndtr(z))
        return slope / sigma_c * grad_x, c, sigma_c, xhat

    def __call__(self, x, sigma):
        score, guidance = self.score_and_guidance(x, sigma)
        return score + guidance
