"""Score-based diffusion models of trajectories, conditioned on user-defined events (M22).

A VE diffusion over whole trajectory windows (:class:`Denoiser`, :func:`denoising_loss`), sampled by
the reverse SDE (:func:`sample`), conditioned on an event ``{C(x) > 0}`` by the Tweedie-Gaussian
approximation (:class:`EventConditionedScore`), with exact probability-flow likelihoods
(:func:`log_likelihood`) that give the event's probability
``log P(E) = log p(x) - log p(x | E) + log P(E | x)`` (:func:`event_log_probability`; Finzi et al.,
ICML 2023), or from the guided sampler's paths weighted against the plain sampler's
(:func:`weighted_sample`, :func:`event_log_probability_from_paths`), by twisted SMC
(:func:`event_log_probability_smc`), or by importance sampling from the guided probability flow
(:func:`flow_sample`, :func:`event_log_probability_importance`). Where the event is too rough for
the Tweedie approximation, a learned classifier of noised samples guides instead
(:class:`EventClassifier`, :class:`ClassifierGuidedScore`), or one for every level of an event
family (:class:`NestedEventClassifier`).
"""

from .classifier import (
    ClassifierGuidedScore,
    EventClassifier,
    EventLevel,
    NestedEventClassifier,
    balanced_band_data,
    balanced_event_data,
    event_classifier_loss,
    nested_event_classifier_loss,
)
from .denoiser import Denoiser, GaussianDenoiser, WindowMLP, WindowMLPConv
from .events import (
    PROBIT_TO_LOGISTIC,
    EventConditionedScore,
    GaussianPosterior,
    LocalPosterior,
    check_event,
    event_satisfied,
)
from .likelihood import flow_sample, log_likelihood
from .losses import denoising_loss
from .paths import SMCResult, twisted_smc, weighted_sample
from .probability import (
    PathEstimate,
    SMCEstimate,
    event_log_probability,
    event_log_probability_from_paths,
    event_log_probability_importance,
    event_log_probability_smc,
)
from .sampling import noise_levels, sample

__all__ = [
    "PROBIT_TO_LOGISTIC",
    "ClassifierGuidedScore",
    "EventClassifier",
    "EventLevel",
    "NestedEventClassifier",
    "balanced_band_data",
    "balanced_event_data",
    "event_classifier_loss",
    "nested_event_classifier_loss",
    "Denoiser",
    "EventConditionedScore",
    "GaussianDenoiser",
    "GaussianPosterior",
    "LocalPosterior",
    "PathEstimate",
    "SMCEstimate",
    "SMCResult",
    "WindowMLP",
    "WindowMLPConv",
    "check_event",
    "denoising_loss",
    "event_log_probability",
    "event_log_probability_from_paths",
    "event_log_probability_importance",
    "event_log_probability_smc",
    "event_satisfied",
    "flow_sample",
    "log_likelihood",
    "noise_levels",
    "sample",
    "twisted_smc",
    "weighted_sample",
]
