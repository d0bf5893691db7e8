"""Gaussian processes on ``tinygp``: the spectral-mixture kernel and its periodogram
initialisation, kernel learning by the marginal likelihood, a linear model of coregionalisation
over the nodes of a graph, and structured kernel interpolation (SKI / KISS-GP) for large 1-D data.

``tinygp`` (which depends only on JAX and Equinox) provides the kernels' algebra, the exact
Cholesky solver and conditioning; every kernel here is a ``tinygp.kernels.Kernel``, so
``tinygp.GaussianProcess(kernel, X, diag=...)`` works with it directly.
"""

from .coregionalization import GraphLMC, coregionalization_matrices, lmc_covariance, neighbourhood_mask
from .fitting import ExactGP, GPFit, check_gp_data, fit_marginal_likelihood, jitter_log_parameters
from .kernels import SquaredExponential
from .ski import (
    SKI,
    InterpolationWeights,
    cubic_interpolation_weights,
    keys_kernel,
    regular_grid,
    stochastic_log_determinant,
    toeplitz_matvec,
)
from .spectral_mixture import SpectralMixture, periodogram, spectral_mixture_from_periodogram

__all__ = [
    "GraphLMC",
    "coregionalization_matrices",
    "lmc_covariance",
    "neighbourhood_mask",
    "ExactGP",
    "GPFit",
    "check_gp_data",
    "fit_marginal_likelihood",
    "jitter_log_parameters",
    "SquaredExponential",
    "SKI",
    "InterpolationWeights",
    "cubic_interpolation_weights",
    "keys_kernel",
    "regular_grid",
    "stochastic_log_determinant",
    "toeplitz_matvec",
    "SpectralMixture",
    "periodogram",
    "spectral_mixture_from_periodogram",
]
