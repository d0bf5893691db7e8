"""Learning the bias from data: evidence (marginal likelihood) of models with and without a bias.

Training loss cannot pick a symmetry (a flexible model fits equally well with or without it); the
evidence ``p(D | hyperparameters)`` can, because it pays for prior volume (seed 003).

- Basis-function models, exact evidence (M18): :class:`RandomFourierFeatures`,
  :class:`RBFFeatures`, :class:`SymmetrizedFeatures`, :class:`InterpolatedFeatures`,
  :func:`linear_log_evidence`, :class:`BayesianLinearRegression`, :func:`evidence_loss`.
- Networks, Laplace evidence (M19): :func:`laplace` (full, diagonal or KFAC generalised
  Gauss-Newton), :class:`Laplace`, :func:`laplace_log_evidence`, :func:`optimize_hyperparameters`,
  :func:`map_loss`; marginal-likelihood training is :func:`physbias.marglik.marglik_fit`.
- Networks, variational lower bound: :class:`MatrixNormalPosterior` (matrix-normal ``q`` per
  Linear layer, closed-form KL and prior variance), :func:`elbo`, :func:`elbo_loss`.
"""

from .curvature import (
    KroneckerFactors,
    dense_logdet,
    diagonal_logdet,
    ggn_diagonal,
    ggn_full,
    ggn_kfac,
    kfac_logdet,
    parameter_groups,
)
from .features import InterpolatedFeatures, RandomFourierFeatures, RBFFeatures, SymmetrizedFeatures
from .laplace import (
    Hyperparameters,
    Laplace,
    categorical_output_hessian,
    gaussian_output_hessian,
    laplace,
    laplace_log_evidence,
    map_loss,
    optimize_hyperparameters,
    predictive,
)
from .linear import BayesianLinearRegression, evidence_loss, linear_log_evidence
from .vi import (
    MatrixNormalLinear,
    MatrixNormalPosterior,
    bayesian_model_average,
    elbo,
    elbo_loss,
    expected_log_likelihood,
)

__all__ = [
    "BayesianLinearRegression",
    "Hyperparameters",
    "InterpolatedFeatures",
    "KroneckerFactors",
    "Laplace",
    "MatrixNormalLinear",
    "MatrixNormalPosterior",
    "RBFFeatures",
    "RandomFourierFeatures",
    "SymmetrizedFeatures",
    "categorical_output_hessian",
    "dense_logdet",
    "diagonal_logdet",
    "bayesian_model_average",
    "elbo",
    "elbo_loss",
    "expected_log_likelihood",
    "evidence_loss",
    "gaussian_output_hessian",
    "ggn_diagonal",
    "ggn_full",
    "ggn_kfac",
    "kfac_logdet",
    "laplace",
    "laplace_log_evidence",
    "linear_log_evidence",
    "map_loss",
    "optimize_hyperparameters",
    "parameter_groups",
    "predictive",
]
