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

For a strongly nonlinear ``C`` the linearisation fails where it matters most: at high noise the
Tweedie estimate is the blurred mean of many windows, and ``C`` of a blurred window is not the mean
of ``C`` over the windows it blurs (a blurred window is quiet, say, while almost none of the windows
behind it are). With a :class:`GaussianPosterior` the moments of ``C(x_0)`` are instead taken over
posterior samples ``x̂ + δ_k`` (``δ_k`` antithetic pairs drawn from ``Cov[x_0 | x_sigma]`` of the data's
Gaussian approximation),

    P(E | x) ≈ Phi(m / s),   m = mean_k C(x̂ + δ_k),   s^2 = var_k C(x̂ + δ_k) + floor,

with the gradient through ``x̂`` as before (``s`` held fixed).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

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


class GaussianPosterior(eqx.Module):
    """``Cov[x_0 | x_sigma]`` for Gaussian data of covariance ``Sigma = U diag(lambda) Uᵀ`` observed as
    ``x_sigma = x_0 + sigma z``:

        Cov[x_0 | x_sigma] = Sigma - Sigma (Sigma + sigma^2 I)^-1 Sigma
                           = U diag(lambda sigma^2 / (lambda + sigma^2)) Uᵀ,

    the data's covariance far above its scale and ``sigma^2 I`` below it. Built from data with
    :meth:`from_samples`; :meth:`deviations` draws posterior deviations for
    :class:`EventConditionedScore`.

    Args:
        eigenvalues: ``lambda``, shape ``(d,)``, non-negative.
        eigenvectors: ``U``, shape ``(d, d)``, orthonormal columns.
        shape: the shape of one sample (``prod(shape) == d``).
    """

    eigenvalues: Float[Array, " d"]
    eigenvectors: Float[Array, "d d"]
    shape: tuple[int, ...] = eqx.field(static=True)

    def __init__(self, eigenvalues, eigenvectors, shape):
        eigenvalues, eigenvectors = jnp.asarray(eigenvalues), jnp.asarray(eigenvectors)
        d = math.prod(shape)
        if eigenvalues.shape != (d,) or eigenvectors.shape != (d, d):
            raise ValueError(
                f"`eigenvalues` and `eigenvectors` must have shapes ({d},) and ({d}, {d}) for samples of "
                f"shape {tuple(shape)}, got {eigenvalues.shape} and {eigenvectors.shape}"
            )
        if not bool(jnp.all(jnp.isfinite(eigenvalues)) & jnp.all(eigenvalues >= 0)):
            raise ValueError("`eigenvalues` must be finite and non-negative")
        self.eigenvalues, self.eigenvectors, self.shape = eigenvalues, eigenvectors, tuple(shape)

    @classmethod
    def from_samples(cls, samples: Float[Array, " n *shape"]) -> GaussianPosterior:
        """From the sample covariance of ``samples`` (``n >= 2`` samples, the data the model learned)."""
        samples = np.asarray(samples, dtype=np.float64)
        if samples.ndim < 2 or samples.shape[0] < 2:
            raise ValueError(f"`samples` must hold at least 2 samples, got shape {samples.shape}")
        if not np.all(np.isfinite(samples)):
            raise ValueError("`samples` must be finite")
        flat = samples.reshape(samples.shape[0], -1)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(flat, rowvar=False).reshape(flat.shape[1], -1))
        dtype = jnp.asarray(0.0).dtype
        return cls(
            jnp.asarray(np.clip(eigenvalues, 0.0, None), dtype),
            jnp.asarray(eigenvectors, dtype),
            samples.shape[1:],
        )

    def deviations(self, key: PRNGKeyArray, sigma, n: int) -> Float[Array, " n *shape"]:
        """``n`` (even) deviations from ``N(0, Cov[x_0 | x_sigma])`` in antithetic pairs ``±δ``, so that
        their mean is exactly zero."""
        variance = self.eigenvalues * sigma**2 / (self.eigenvalues + sigma**2)
        z = jax.random.normal(key, (n // 2, self.eigenvalues.shape[0]), self.eigenvalues.dtype)
        half = (z * jnp.sqrt(variance)[None]) @ self.eigenvectors.T
        return jnp.concatenate([half, -half]).reshape(n, *self.shape)

    def deviations_at(self, key: PRNGKeyArray, denoiser, x, sigma, n: int) -> Array:
        """:meth:`deviations`, with the signature :class:`LocalPosterior` needs (the data's
        posterior does not depend on the point or the model)."""
        del denoiser, x
        return self.deviations(key, sigma, n)


class LocalPosterior(eqx.Module):
    """The model's own local Gaussian posterior, for samples of a few numbers:

        Cov[x_0 | x_sigma = x] = sigma^2 dD(x, sigma)/dx   (symmetrised, negative eigenvalues dropped),

    Tweedie's second-order formula at the point itself, instead of one Gaussian fitted to all the
    data (:class:`GaussianPosterior`). The Jacobian costs one forward-mode pass per coordinate of a
    sample, so it suits small samples such as the 3 numbers of a diffused start state, where ``C``
    composed with a chaotic flow map is too rough for the linearisation and the data's single
    Gaussian is a poor posterior over a two-lobed attractor. Measured there (BENCHMARKS): every
    conditional sample of the Lorenz peak event lands in ``E`` (25% with the linearisation), but
    with 4 draws the twist jumps between noise levels and twisted SMC fails with it.
    """

    def deviations_at(self, key: PRNGKeyArray, denoiser, x, sigma, n: int) -> Array:
        """``n`` (even) deviations from ``N(0, sigma^2 dD/dx)`` at ``x``, in antithetic pairs."""
        d = x.size
        jac = jax.jacfwd(lambda y: denoiser(y, sigma))(x).reshape(d, d)
        cov = 0.5 * sigma**2 * (jac + jac.T)
        eigenvalues, eigenvectors = jnp.linalg.eigh(cov)
        z = jax.random.normal(key, (n // 2, d), x.dtype)
        half = (z * jnp.sqrt(jnp.clip(eigenvalues, 0.0, None))[None]) @ eigenvectors.T
        return jax.lax.stop_gradient(jnp.concatenate([half, -half]).reshape(n, *x.shape))


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
        posterior: ``None`` (the reference's linearisation), a :class:`GaussianPosterior` (the
            data's) or a :class:`LocalPosterior` (the model's own at each point), whose samples give
            the moments of ``C`` (module docstring): needed for a strongly nonlinear event, such as
            a spectral one or an event through a chaotic flow map.
        posterior_samples: how many posterior samples (an even number), drawn afresh at each noise
            level but the same for every ``x`` at that level (so that the score, and the twist of
            :func:`.twisted_smc`, stays a function of ``(x, sigma)``). Fresh draws make the guided
            field rough in ``sigma``: its probability-flow likelihood is not usable (measured).
        seed: the seed of those samples.
    """

    denoiser: eqx.Module
    event: EventFn = eqx.field(static=True)
    strength: float = eqx.field(static=True, default=PROBIT_TO_LOGISTIC)
    floor: float = eqx.field(static=True, default=1e-3)
    link: str = eqx.field(static=True, default="probit")
    posterior: GaussianPosterior | LocalPosterior | None = None
    posterior_samples: int = eqx.field(static=True, default=16)
    seed: int = eqx.field(static=True, default=0)

    def __post_init__(self):
        if self.link not in LINKS:
            raise ValueError(f"`link` must be one of {LINKS}, got {self.link!r}")
        if not callable(self.event):
            raise TypeError(f"`event` must be a function of one sample, got {type(self.event).__name__}")
        if self.posterior is not None and not isinstance(self.posterior, (GaussianPosterior, LocalPosterior)):
            raise TypeError(
                "`posterior` must be a GaussianPosterior, a LocalPosterior or None, got "
                f"{type(self.posterior).__name__}"
            )
        if (
            not isinstance(self.posterior_samples, int)
            or self.posterior_samples < 2
            or self.posterior_samples % 2
        ):
            raise ValueError(
                f"`posterior_samples` must be a positive even integer, got {self.posterior_samples!r}"
            )

    def _posterior(self, x, sigma):
        """``(m, s, dm/dx, x̂)`` at ``(x, sigma)``: the posterior mean ``m`` and spread ``s`` of ``C(x_0)``
        (``s`` carries no gradient)."""
        xhat, pullback = jax.vjp(lambda x: self.denoiser(x, sigma), x)
        if self.posterior is None:
            c, grad_c = jax.value_and_grad(self.event)(xhat)
            (grad_x,) = pullback(grad_c)  # d(C o x̂)/dx
            var = sigma**2 * jnp.abs(jnp.sum(grad_c * grad_x)) + self.floor
        else:
            # The same deviations for every x at this level: a deterministic function of sigma's bits.
            level = jax.lax.bitcast_convert_type(jnp.asarray(sigma, jnp.float32), jnp.int32)
            key = jax.random.fold_in(jax.random.key(self.seed), level)
            delta = self.posterior.deviations_at(key, self.denoiser, x, sigma, self.posterior_samples)
            delta = delta.astype(xhat.dtype)
            cs, grads = jax.vmap(jax.value_and_grad(self.event))(xhat[None] + delta)
            c, grad_c = jnp.mean(cs), jnp.mean(grads, axis=0)
            (grad_x,) = pullback(grad_c)
            var = jnp.var(cs, ddof=1) + self.floor
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
