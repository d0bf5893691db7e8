"""Exact evidence of Bayesian linear regression on basis functions (M18, seed 003).

Model: ``y = Phi w + eps`` with ``w ~ N(0, alpha^-1 I_M)`` and ``eps ~ N(0, sigma^2 I_N)``, where
``Phi`` is the ``(N, M)`` design matrix of a basis (:mod:`physbias.evidence.features`). The log
marginal likelihood (evidence) has two equal forms (Bishop, PRML §3.5):

- function space, ``C = Phi Phi^T / alpha + sigma^2 I_N``:
  ``log p(y) = -1/2 y^T C^-1 y - 1/2 log|C| - N/2 log 2 pi``;
- weight space, ``A = alpha I_M + Phi^T Phi / sigma^2``, ``m = A^-1 Phi^T y / sigma^2``:
  ``log p(y) = M/2 log alpha - N log sigma - |y - Phi m|^2 / (2 sigma^2) - alpha/2 |m|^2
  - 1/2 log|A| - N/2 log 2 pi``.

Each needs one Cholesky factorisation, of the smaller matrix (``form="auto"``). The training error
cannot choose a basis (a flexible enough basis interpolates any data); the evidence pays for
prior volume through ``-1/2 log|A| + M/2 log alpha`` (the Occam factor) and can. Pass float64
arrays (``with jax.enable_x64(True)``) when evidences are compared to 1e-8.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, Float

Form = Literal["auto", "weights", "function"]


def _require_finite(name: str, value) -> None:
    if isinstance(value, jax.core.Tracer):
        return  # checked by the caller before tracing (e.g. physbias.fit checks its data)
    if not np.all(np.isfinite(np.asarray(value))):  # NumPy: nothing is traced
        raise ValueError(f"`{name}` contains NaN or inf")


def _check_design(phi, y) -> None:
    if phi.ndim != 2:
        raise ValueError(f"`phi` must be a design matrix of shape (N, M), got shape {phi.shape}")
    if y.shape != (phi.shape[0],):
        raise ValueError(f"`y` must have shape ({phi.shape[0]},) to match `phi` {phi.shape}, got {y.shape}")
    if phi.shape[0] == 0 or phi.shape[1] == 0:
        raise ValueError(f"empty data: `phi` has shape {phi.shape}")
    _require_finite("phi", phi)
    _require_finite("y", y)


def _check_hyper(prior_precision, noise_std) -> None:
    for name, v in (("prior_precision", prior_precision), ("noise_std", noise_std)):
        if isinstance(v, jax.core.Tracer):
            continue
        v = np.asarray(v)
        if v.shape != ():
            raise ValueError(f"`{name}` must be a scalar, got shape {v.shape}")
        if not (np.isfinite(v) and v > 0):
            raise ValueError(f"`{name}` must be positive and finite, got {float(v)}")


def linear_log_evidence(
    phi: Float[Array, "N M"],
    y: Float[Array, " N"],
    prior_precision,
    noise_std,
    *,
    form: Form = "auto",
) -> Float[Array, ""]:
    """``log p(y | Phi, alpha, sigma)`` of Bayesian linear regression (see the module docstring).

    Args:
        phi: design matrix ``(N, M)``.
        y: targets ``(N,)``.
        prior_precision: ``alpha > 0``.
        noise_std: ``sigma > 0``.
        form: ``"function"`` (Cholesky of ``N x N``), ``"weights"`` (``M x M``) or ``"auto"`` (the
            smaller).
    """
    _check_design(phi, y)
    _check_hyper(prior_precision, noise_std)
    n, m = phi.shape
    if form == "auto":
        form = "weights" if m <= n else "function"
    alpha = jnp.asarray(prior_precision, phi.dtype)
    sigma2 = jnp.asarray(noise_std, phi.dtype) ** 2
    log2pi = jnp.asarray(math.log(2 * math.pi), phi.dtype)
    if form == "function":
        cov = phi @ phi.T / alpha + sigma2 * jnp.eye(n, dtype=phi.dtype)
        chol = jnp.linalg.cholesky(cov)
        z = jsl.solve_triangular(chol, y, lower=True)
        return -0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * log2pi
    if form == "weights":
        mean, chol = _weight_posterior(phi, y, alpha, sigma2)
        resid = y - phi @ mean
        return (
            0.5 * m * jnp.log(alpha)
            - 0.5 * n * jnp.log(sigma2)
            - 0.5 * resid @ resid / sigma2
            - 0.5 * alpha * mean @ mean
            - jnp.sum(jnp.log(jnp.diag(chol)))
            - 0.5 * n * log2pi
        )
    raise ValueError(f"`form` must be 'auto', 'weights' or 'function', got {form!r}")


def _weight_posterior(phi, y, alpha, sigma2):
    """Posterior mean ``m`` and Cholesky factor of the precision ``A`` (weight space)."""
    precision = alpha * jnp.eye(phi.shape[1], dtype=phi.dtype) + phi.T @ phi / sigma2
    chol = jnp.linalg.cholesky(precision)
    mean = jsl.cho_solve((chol, True), phi.T @ y) / sigma2
    return mean, chol


class BayesianLinearRegression(eqx.Module):
    """``f(x) = w . phi(x)`` with ``w ~ N(0, alpha^-1 I)``, noise ``sigma``; hyperparameters learnable.

    Attributes:
        features: a basis ``x (d,) -> (M,)`` (its own hyperparameters, e.g. ``log_omega2`` or a
            symmetry ``strength``, are learned with the others).
        log_prior_precision: ``log alpha``.
        log_noise_std: ``log sigma``.

    Example:
        >>> import jax
        >>> from physbias.evidence import BayesianLinearRegression, RandomFourierFeatures
        >>> rff = RandomFourierFeatures(1, 50, key=jax.random.key(0))
        >>> x = jax.numpy.linspace(-2, 2, 20)[:, None]
        >>> y = jax.numpy.sin(x[:, 0])  # noise-free: a small noise_std explains it better
        >>> quiet = BayesianLinearRegression(rff, noise_std=0.1)
        >>> noisy = BayesianLinearRegression(rff, noise_std=1.0)
        >>> bool(quiet.log_evidence(x, y) > noisy.log_evidence(x, y))
        True
    """

    features: Any
    log_prior_precision: Float[Array, ""]
    log_noise_std: Float[Array, ""]

    def __init__(self, features, prior_precision: float = 1.0, noise_std: float = 0.1):
        _check_hyper(prior_precision, noise_std)
        leaves = jax.tree_util.tree_leaves(eqx.filter(features, eqx.is_inexact_array))
        dtype = leaves[0].dtype if leaves else jnp.result_type(float)
        self.features = features
        self.log_prior_precision = jnp.asarray(math.log(prior_precision), dtype)
        self.log_noise_std = jnp.asarray(math.log(noise_std), dtype)

    @property
    def prior_precision(self) -> Array:
        return jnp.exp(self.log_prior_precision)

    @property
    def noise_std(self) -> Array:
        return jnp.exp(self.log_noise_std)

    def design(self, x: Float[Array, "N d"]) -> Float[Array, "N M"]:
        if x.ndim != 2:
            raise ValueError(f"`x` must have shape (N, d), got {x.shape}")
        return jax.vmap(self.features)(x)

    def log_evidence(self, x: Float[Array, "N d"], y: Float[Array, " N"], *, form: Form = "auto") -> Array:
        """``log p(y | x, hyperparameters)``, exactly."""
        return linear_log_evidence(self.design(x), y, self.prior_precision, self.noise_std, form=form)

    def predict(
        self, x_train: Float[Array, "N d"], y_train: Float[Array, " N"], x: Float[Array, "K d"]
    ) -> tuple[Float[Array, " K"], Float[Array, " K"]]:
        """Posterior predictive mean and variance of ``f(x)`` (add ``noise_std**2`` for ``y``)."""
        phi = self.design(x_train)
        _check_design(phi, y_train)
        mean, chol = _weight_posterior(phi, y_train, self.prior_precision, self.noise_std**2)
        phi_new = self.design(x)
        half = jsl.solve_triangular(chol, phi_new.T, lower=True)
        return phi_new @ mean, jnp.sum(half**2, axis=0)


def evidence_loss(form: Form = "auto"):
    """A :func:`physbias.fit` loss: ``-log p(y | x) / N`` of a :class:`BayesianLinearRegression`
    on the batch ``(x, y)`` (train on the full batch: the evidence is not a sum over examples)."""

    def loss(model: BayesianLinearRegression, batch, key=None) -> Array:
        x, y = batch
        return -model.log_evidence(x, y, form=form) / y.shape[0]

    return loss
