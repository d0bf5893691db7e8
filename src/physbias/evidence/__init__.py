"""Learning the bias from data: evidence (marginal likelihood) of models with and without a bias.

Training loss cannot pick a symmetry (a flexible model fits equally well with or without it); the
evidence ``p(D | hyperparameters)`` can, because it pays for prior volume (seed 003).

- Basis-function models, exact evidence (M18): :class:`RandomFourierFeatures`,
  :class:`RBFFeatures`, :class:`SymmetrizedFeatures`, :class:`InterpolatedFeatures`,
  :func:`linear_log_evidence`, :class:`BayesianLinearRegression`, :func:`evidence_loss`.
"""

from .features import InterpolatedFeatures, RandomFourierFeatures, RBFFeatures, SymmetrizedFeatures
from .linear import BayesianLinearRegression, evidence_loss, linear_log_evidence

__all__ = [
    "BayesianLinearRegression",
    "InterpolatedFeatures",
    "RBFFeatures",
    "RandomFourierFeatures",
    "SymmetrizedFeatures",
    "evidence_loss",
    "linear_log_evidence",
]
