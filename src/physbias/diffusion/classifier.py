"""Guidance by a learned noisy-event classifier: ``P(E | x_sigma = x)`` as a network.

The exact conditional score of a diffusion given an event ``E`` is

    grad log p_sigma(x | E) = grad log p_sigma(x) + grad log P(E | x_sigma = x),

and ``P(E | x_sigma = x)`` is the probability that a sample whose noised version is ``x`` lies in
``E``. Finzi et al. (2023) approximate it by a Gaussian around the Tweedie estimate
(:class:`.EventConditionedScore`), which needs ``C`` to be smooth on the scale of the posterior.
When it is not (an event on a window decoded from its first state by a chaotic flow map, where
``C`` varies on scales far below any noise level the guidance works at, BENCHMARKS), the Tweedie
guidance is rough and its flow has divergences of 10^3. A classifier of noised samples learns the
same function directly (classifier guidance: Song et al. 2021, "controllable generation";
Dhariwal & Nichol 2021): trained by logistic regression on ``(x_0 + sigma z, 1_E(x_0))`` with
``log sigma`` uniform over the sampler's range, its optimum is exactly ``P(E | x_sigma)``, smooth
on the scale ``sigma`` because it averages over the noise.

Rare events are learned from balanced data (every positive repeated to match the negatives, see
:func:`balanced_event_data`); the network then learns the log-odds ``log[P(E|x) / P(not E|x)] -
log[pi / (1 - pi)]`` for the data's prior ``pi = P(E)``, and :class:`EventClassifier` adds the prior's
log-odds back, so that its output is calibrated for the data's own frequency.

:class:`ClassifierGuidedScore` is a drop-in for :class:`.EventConditionedScore` in the samplers and
estimators (:func:`.sample`, :func:`.event_log_probability_smc`, :func:`.event_log_probability_importance`):
its twist and guidance are smooth functions of ``(x, sigma)``, and the estimators stay unbiased for
the model's own ``P(E)`` however well the classifier learned.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from .denoiser import _check_shape, _check_sizes, _trunk, _trunk_layers, _zero_linear
from .events import EventFn
from .sampling import check_noise_range


class EventClassifier(eqx.Module):
    """``log P(E | x_sigma = x)`` for one sample ``x`` of ``shape``: a noise-conditioned residual MLP
    (the trunk of :class:`.WindowMLP`) on ``x / sqrt(1 + sigma^2)`` (unit scale at every noise level
    for standardised data) and ``log(sigma) / 4``, whose logit is shifted by the prior's log-odds.

    Args:
        shape: the shape of one sample.
        key: initialisation key.
        prior: ``P(E)`` in the data, in ``(0, 1)``; the network starts at it (zero last layer).
        width, depth, features: the trunk's sizes (as :class:`.WindowMLP`).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    log_prior_odds: float = eqx.field(static=True)
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
        prior: float,
        width: int = 256,
        depth: int = 3,
        features: int = 32,
    ):
        _check_sizes(width=width, depth=depth, features=features)
        self.shape = _check_shape(shape)
        if not (isinstance(prior, (int, float)) and 0.0 < prior < 1.0):
            raise ValueError(f"`prior` must be a probability strictly between 0 and 1, got {prior!r}")
        self.log_prior_odds = math.log(prior) - math.log1p(-prior)
        keys = jax.random.split(key, 3 + 2 * depth)
        size = math.prod(shape)
        trunk = _trunk_layers(keys, size, width, depth, features)
        self.frequencies, self.inp, self.hidden, self.embed = trunk
        self.out = _zero_linear(eqx.nn.Linear(width, "scalar", key=keys[2]))

    def balanced_logit(self, x: Float[Array, " *shape"], sigma) -> Float[Array, ""]:
        """The network's own logit, the log-odds of ``E`` on balanced data (what training fits)."""
        return self.out(_trunk(self, x / jnp.sqrt(1.0 + sigma**2), jnp.log(sigma) / 4.0))

    def __call__(self, x: Float[Array, " *shape"], sigma) -> Float[Array, ""]:
        """``log P(E | x_sigma = x)`` at the data's prior."""
        return jax.nn.log_sigmoid(self.balanced_logit(x, sigma) + self.log_prior_odds)


def balanced_event_data(
    samples: Float[Array, " n *shape"], labels: Bool[Array, " n"]
) -> tuple[np.ndarray, np.ndarray, float]:
    """``(samples, labels, prior)`` with every sample in ``E`` repeated (cyclically) until there are as
    many as outside it, and ``prior`` the fraction in ``E`` before balancing.

    Raises ``ValueError`` unless ``samples`` are finite and ``labels`` is a boolean ``(n,)`` matching
    them with both classes present.
    """
    samples, labels = np.asarray(samples), np.asarray(labels)
    if labels.dtype != bool or labels.shape != samples.shape[:1]:
        raise ValueError(
            f"`labels` must be booleans of shape ({samples.shape[0]},) for samples of shape "
            f"{samples.shape}, got {labels.dtype} of shape {labels.shape}"
        )
    if not np.all(np.isfinite(samples)):
        raise ValueError("`samples` must be finite (no NaN or inf)")
    positive, negative = np.flatnonzero(labels), np.flatnonzero(~labels)
    if not len(positive) or not len(negative):
        raise ValueError(
            f"`labels` must hold samples both in and out of the event, got {len(positive)} in and "
            f"{len(negative)} out"
        )
    repeated = positive[np.arange(len(negative)) % len(positive)]
    index = np.concatenate([negative, repeated])
    balanced = np.concatenate([np.zeros(len(negative), bool), np.ones(len(negative), bool)])
    return samples[index], balanced, len(positive) / len(labels)


def event_classifier_loss(
    classifier: EventClassifier,
    x0: Float[Array, " batch *shape"],
    labels: Float[Array, " batch"],
    key: PRNGKeyArray,
    *,
    sigma_range: tuple[float, float],
) -> Float[Array, ""]:
    """Mean logistic loss of ``classifier.balanced_logit`` on ``x0 + sigma z`` against ``labels``
    (1 in ``E``, 0 outside), one ``sigma`` per sample, log-uniform over ``sigma_range`` (the
    sampler's range: the classifier must know ``P(E | x_sigma)`` at every level the guidance
    visits)."""
    check_noise_range(*sigma_range)
    k_sigma, k_eps = jax.random.split(key)
    n = x0.shape[0]
    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    sigma = jnp.exp(jax.random.uniform(k_sigma, (n,), x0.dtype, lo, hi))
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    noisy = x0 + sigma[expand] * jax.random.normal(k_eps, x0.shape, x0.dtype)
    logits = jax.vmap(classifier.balanced_logit)(noisy, sigma)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))


class ClassifierGuidedScore(eqx.Module):
    """``score(x, sigma) + grad_x log P(E | x_sigma = x)`` with a learned :class:`EventClassifier`.

    The same interface as :class:`.EventConditionedScore`: ``__call__`` (the conditional score),
    ``guidance``, ``score_and_guidance``, ``twisted_drift`` and ``log_event_probability``, with
    ``denoiser`` and ``event`` (``C``, used only for the estimators' final indicator ``1_E``).
    """

    denoiser: eqx.Module
    classifier: EventClassifier
    event: EventFn = eqx.field(static=True)

    def __post_init__(self):
        if not isinstance(self.classifier, EventClassifier):
            raise TypeError(f"`classifier` must be an EventClassifier, got {type(self.classifier).__name__}")
        if not callable(self.event):
            raise TypeError(f"`event` must be a function of one sample, got {type(self.event).__name__}")

    def log_event_probability(self, x, sigma) -> Float[Array, ""]:
        return self.classifier(x, sigma)

    def guidance(self, x, sigma):
        """``grad_x log P(E | x_sigma = x)``: the term added to the score."""
        return jax.grad(self.classifier)(x, sigma)

    def score_and_guidance(self, x, sigma):
        return self.denoiser.score(x, sigma), self.guidance(x, sigma)

    def twisted_drift(self, x, sigma):
        log_h, guidance = jax.value_and_grad(self.classifier)(x, sigma)
        return self.denoiser.score(x, sigma), guidance, log_h

    def __call__(self, x, sigma):
        score, guidance = self.score_and_guidance(x, sigma)
        return score + guidance
