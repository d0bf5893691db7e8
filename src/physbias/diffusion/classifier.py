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

Every level of an event family (one statistic past thresholds of probability 1e-1, 1e-2, 1e-3)
can share one network: :class:`NestedEventClassifier` has a logit per level on one trunk, trained
on batches with the bands between the thresholds balanced and weighted back to each level's own
balanced regression.

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

from .denoiser import _check_shape, _sample_trunk, _trunk, _zero_linear
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
        width, depth, features, fourier_inputs, fourier_scale: the trunk's sizes and the
            sample's random Fourier features (as :class:`.WindowMLP`).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    log_prior_odds: float = eqx.field(static=True)
    frequencies: Array
    input_frequencies: Array | None
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
        fourier_inputs: int = 0,
        fourier_scale: float = 2.0,
    ):
        self.shape = _check_shape(shape)
        if not (isinstance(prior, (int, float)) and 0.0 < prior < 1.0):
            raise ValueError(f"`prior` must be a probability strictly between 0 and 1, got {prior!r}")
        self.log_prior_odds = math.log(prior) - math.log1p(-prior)
        trunk = _sample_trunk(key, shape, width, depth, features, fourier_inputs, fourier_scale)
        keys, self.frequencies, self.input_frequencies, self.inp, self.hidden, self.embed = trunk
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
    noisy, sigma = _noised(x0, key, sigma_range)
    logits = jax.vmap(classifier.balanced_logit)(noisy, sigma)
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels.astype(logits.dtype)))


def _noised(x0, key, sigma_range):
    """``(x0 + sigma z, sigma)`` with one ``sigma`` per sample, log-uniform over ``sigma_range``."""
    check_noise_range(*sigma_range)
    k_sigma, k_eps = jax.random.split(key)
    lo, hi = math.log(sigma_range[0]), math.log(sigma_range[1])
    sigma = jnp.exp(jax.random.uniform(k_sigma, (x0.shape[0],), x0.dtype, lo, hi))
    expand = (slice(None),) + (None,) * (x0.ndim - 1)
    return x0 + sigma[expand] * jax.random.normal(k_eps, x0.shape, x0.dtype), sigma


class NestedEventClassifier(eqx.Module):
    """``log P(E_k | x_sigma = x)`` for ``K`` nested events ``E_1 ⊇ E_2 ⊇ ... ⊇ E_K`` (one statistic
    past ``K`` ever stricter thresholds), from one network with a logit per level.

    The thresholds cut the data into ``K + 1`` bands, band ``b`` holding the samples in ``E_b`` but
    not in ``E_{b+1}`` (band 0: in no event), and training batches draw every band equally often
    (:func:`balanced_band_data`). Head ``k`` is :class:`EventClassifier`'s balanced logistic
    regression for ``E_k`` on a shared trunk: :func:`nested_event_classifier_loss` weights a sample of
    band ``b`` by

        w_kb = pi_b / (2 P(E_k) pi~_b)  (b >= k),    w_kb = pi_b / (2 (1 - P(E_k)) pi~_b)  (b < k),

    with ``pi_b`` the data's band frequencies and ``pi~_b = 1 / (K + 1)`` the batches', so that each
    head sees ``E_k`` and its complement half and half, each distributed as in the data. The head's
    optimum is then the log-odds of ``E_k`` on balanced data, and adding the prior's log-odds
    ``log[P(E_k) / (1 - P(E_k))]`` back gives ``log P(E_k | x_sigma)``.

    One network serves every level of an event family, where :class:`EventClassifier` needs one
    per level. (A softmax over the bands, the other exact choice, extrapolated worse far from the
    data in a probe: 1.0 off at ``P = 0.01`` where the heads are 0.5 off.) :meth:`level` gives
    level ``k`` as a module for :class:`ClassifierGuidedScore`.

    Args:
        shape: the shape of one sample.
        key: initialisation key.
        priors: ``(pi_0, ..., pi_K)``, each band's frequency in the data (positive, summing to 1);
            the network starts at them (zero last layer).
        width, depth, features, fourier_inputs, fourier_scale: the trunk's sizes and the
            sample's random Fourier features (as :class:`.WindowMLP`).
    """

    shape: tuple[int, ...] = eqx.field(static=True)
    log_priors: tuple[float, ...] = eqx.field(static=True)
    frequencies: Array
    input_frequencies: Array | None
    inp: eqx.nn.Linear
    hidden: list
    embed: list
    out: eqx.nn.Linear

    def __init__(
        self,
        shape: tuple[int, ...],
        key: PRNGKeyArray,
        *,
        priors,
        width: int = 256,
        depth: int = 3,
        features: int = 32,
        fourier_inputs: int = 0,
        fourier_scale: float = 2.0,
    ):
        self.shape = _check_shape(shape)
        priors = np.asarray(priors, float)
        if priors.ndim != 1 or len(priors) < 2 or not np.all(priors > 0) or abs(priors.sum() - 1) > 1e-6:
            raise ValueError(
                f"`priors` must hold each band's positive frequency (at least 2 bands, summing to 1), got "
                f"{priors.tolist()}"
            )
        self.log_priors = tuple(float(v) for v in np.log(priors))
        trunk = _sample_trunk(key, shape, width, depth, features, fourier_inputs, fourier_scale)
        keys, self.frequencies, self.input_frequencies, self.inp, self.hidden, self.embed = trunk
        self.out = _zero_linear(eqx.nn.Linear(width, len(priors) - 1, key=keys[2]))

    @property
    def levels(self) -> int:
        """``K``, the number of nested events."""
        return len(self.log_priors) - 1

    def event_priors(self) -> np.ndarray:
        """``(P(E_1), ..., P(E_K))`` in the data: the sums of the band frequencies above each level."""
        bands = np.exp(self.log_priors)
        return np.cumsum(bands[::-1])[::-1][1:]

    def balanced_logits(self, x: Float[Array, " *shape"], sigma) -> Float[Array, " levels"]:
        """The heads' own logits, the log-odds of each ``E_k`` on balanced data (what training fits)."""
        return self.out(_trunk(self, x / jnp.sqrt(1.0 + sigma**2), jnp.log(sigma) / 4.0))

    def __call__(self, x: Float[Array, " *shape"], sigma) -> Float[Array, " levels"]:
        """``(log P(E_1 | x_sigma = x), ..., log P(E_K | x_sigma = x))``."""
        events = self.event_priors()
        log_odds = jnp.asarray(np.log(events) - np.log1p(-events), jnp.result_type(x))
        return jax.nn.log_sigmoid(self.balanced_logits(x, sigma) + log_odds)

    def level(self, k: int) -> EventLevel:
        """``E_k`` alone (``k`` in ``1 ... K``): a module ``(x, sigma) -> log P(E_k | x_sigma = x)``."""
        if not isinstance(k, int) or not 1 <= k <= self.levels:
            raise ValueError(f"`k` must be a level in 1 ... {self.levels}, got {k!r}")
        return EventLevel(self, k)


class EventLevel(eqx.Module):
    """One level ``E_k`` of a :class:`NestedEventClassifier`: ``log P(E_k | x_sigma = x)``."""

    classifier: NestedEventClassifier
    k: int = eqx.field(static=True)

    def __call__(self, x, sigma) -> Float[Array, ""]:
        return self.classifier(x, sigma)[self.k - 1]


def balanced_band_data(
    samples: Float[Array, " n *shape"], labels: Bool[Array, " n levels"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(samples, bands, priors)`` for a :class:`NestedEventClassifier`: each sample's band (the
    number of nested events it lies in), every band repeated (cyclically) to as many samples as the
    largest, and ``priors`` the bands' frequencies before balancing.

    ``labels[i, k]`` says whether sample ``i`` lies in ``E_{k+1}``. Raises ``ValueError`` unless the
    samples are finite, ``labels`` is boolean ``(n, K)``, the events are nested (a sample in
    ``E_{k+1}`` is in ``E_k``) and every band holds a sample.
    """
    samples, labels = np.asarray(samples), np.asarray(labels)
    if labels.dtype != bool or labels.ndim != 2 or labels.shape[0] != samples.shape[0]:
        raise ValueError(
            f"`labels` must be booleans of shape ({samples.shape[0]}, levels) for samples of shape "
            f"{samples.shape}, got {labels.dtype} of shape {labels.shape}"
        )
    if not np.all(np.isfinite(samples)):
        raise ValueError("`samples` must be finite (no NaN or inf)")
    if np.any(labels[:, 1:] & ~labels[:, :-1]):
        raise ValueError("`labels` must be nested events: a sample in level k + 1 must be in level k")
    bands = labels.sum(axis=1)
    counts = np.bincount(bands, minlength=labels.shape[1] + 1)
    if np.any(counts == 0):
        raise ValueError(f"every band of `labels` must hold a sample, got counts {counts.tolist()}")
    largest = int(counts.max())
    index = np.concatenate(
        [np.flatnonzero(bands == b)[np.arange(largest) % counts[b]] for b in range(len(counts))]
    )
    return samples[index], bands[index].astype(np.int32), counts / counts.sum()


def nested_event_classifier_loss(
    classifier: NestedEventClassifier,
    x0: Float[Array, " batch *shape"],
    bands: Array,
    key: PRNGKeyArray,
    *,
    sigma_range: tuple[float, float],
) -> Float[Array, ""]:
    """Mean over a band-balanced batch of each head's weighted logistic loss (weights ``w_kb`` in
    :class:`NestedEventClassifier`) on ``x0 + sigma z``, summed over the heads; ``bands`` are whole
    numbers ``0 ... K`` of any dtype (:func:`physbias.train.fit` hands its data over as floats) and
    ``sigma`` is log-uniform over ``sigma_range`` as in :func:`event_classifier_loss`."""
    noisy, sigma = _noised(x0, key, sigma_range)
    logits = jax.vmap(classifier.balanced_logits)(noisy, sigma)
    levels = classifier.levels
    band_priors, events = np.exp(classifier.log_priors), classifier.event_priors()
    inside = np.arange(levels + 1)[None, :] >= np.arange(1, levels + 1)[:, None]  # (K, K + 1)
    class_prior = np.where(inside, events[:, None], 1.0 - events[:, None])
    weights = 0.5 * band_priors[None, :] * (levels + 1) / class_prior
    band = jnp.round(bands).astype(jnp.int32)
    labels = jnp.asarray(inside, logits.dtype)[:, band].T  # (batch, K)
    batch_weights = jnp.asarray(weights, logits.dtype)[:, band].T
    return jnp.mean(jnp.sum(batch_weights * optax.sigmoid_binary_cross_entropy(logits, labels), axis=1))


class ClassifierGuidedScore(eqx.Module):
    """``score(x, sigma) + grad_x log P(E | x_sigma = x)`` with a learned :class:`EventClassifier`
    (or one level of a :class:`NestedEventClassifier`).

    The same interface as :class:`.EventConditionedScore`: ``__call__`` (the conditional score),
    ``guidance``, ``score_and_guidance``, ``twisted_drift`` and ``log_event_probability``, with
    ``denoiser`` and ``event`` (``C``, used only for the estimators' final indicator ``1_E``).
    """

    denoiser: eqx.Module
    classifier: EventClassifier | EventLevel
    event: EventFn = eqx.field(static=True)

    def __post_init__(self):
        if not isinstance(self.classifier, (EventClassifier, EventLevel)):
            raise TypeError(
                "`classifier` must be an EventClassifier or a NestedEventClassifier's level, got "
                f"{type(self.classifier).__name__}"
            )
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
