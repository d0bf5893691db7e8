"""Laplace evidence of a neural network, and marginal-likelihood training (M19).

At a mode ``theta*`` of ``log p(D | theta) + log p(theta)`` with prior ``theta ~ N(0, delta^-1 I)``
(one ``delta`` for all parameters, or one per layer), the Laplace approximation gives

.. math::
    \\log p(D | \\eta) \\approx \\log p(D | \\theta_*) - \\frac{\\delta}{2} \\|\\theta_*\\|^2
    + \\frac{P}{2} \\log\\delta - \\frac12 \\log\\det(c\\,G + \\delta I)

with ``G`` the generalised Gauss-Newton matrix (:mod:`physbias.evidence.curvature`) and ``c =
1/sigma^2`` for a Gaussian likelihood (``1`` for a categorical one) (MacKay 1992; Immer et al. 2021,
"Scalable marginal likelihood estimation for model selection in deep learning"). The regression
log-likelihood is ``-SSE / (2 sigma^2) - N K log(sigma sqrt(2 pi))``.

:func:`laplace` computes everything that depends on ``theta*`` once (fit term, squared norms per
group, curvature); :meth:`Laplace.log_evidence` is then a cheap, differentiable function of the
hyperparameters ``(delta, sigma)``, which :func:`optimize_hyperparameters` maximises.
:func:`physbias.marglik.marglik_fit` alternates MAP training (:func:`map_loss`) with such refits.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array

from ..bias.invariance import LearnedInvariance
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

Likelihood = Literal["regression", "classification"]
Curvature = Literal["full", "diagonal", "kfac"]
LIKELIHOODS = ("regression", "classification")
CURVATURES = ("full", "diagonal", "kfac")


def gaussian_output_hessian(f: Array) -> Array:
    """``Lambda = I`` (the ``1/sigma^2`` is the scale ``c`` of :meth:`Laplace.log_evidence`)."""
    return jnp.eye(f.shape[0], dtype=f.dtype)


def categorical_output_hessian(f: Array) -> Array:
    """``Lambda = diag(p) - p p^T`` with ``p = softmax(f)``."""
    p = jax.nn.softmax(f)
    return jnp.diag(p) - jnp.outer(p, p)


def _outputs(model, x: Array) -> Array:
    return jax.vmap(lambda xn: jnp.reshape(model(xn), (-1,)))(x)


def _check_data(model, data, likelihood: str):
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"`likelihood` must be one of {LIKELIHOODS}, got {likelihood!r}")
    if not (isinstance(data, tuple) and len(data) == 2):
        raise TypeError("`data` must be a tuple (x, y)")
    x, y = (jnp.asarray(a) for a in data)
    if x.shape[0] == 0:
        raise ValueError("empty data: `x` has no examples")
    if y.shape[0] != x.shape[0]:
        raise ValueError(f"`x` has {x.shape[0]} examples but `y` has {y.shape[0]}")
    for name, a in (("x", x), ("y", y)):
        if jnp.issubdtype(a.dtype, jnp.inexact) and not np.all(np.isfinite(np.asarray(a))):
            raise ValueError(f"`{name}` contains NaN or inf")
    out = eqx.filter_eval_shape(lambda m, xn: jnp.reshape(m(xn), (-1,)), model, x[0])
    k = out.shape[0]
    if likelihood == "regression":
        expected = (x.shape[0],) if k == 1 and y.ndim == 1 else (x.shape[0], k)
        if y.shape != expected:
            raise ValueError(f"`y` must have shape {expected} for a model with {k} output(s), got {y.shape}")
    else:
        if y.shape != (x.shape[0],) or not jnp.issubdtype(y.dtype, jnp.integer):
            raise ValueError(
                f"classification `y` must be integer labels of shape ({x.shape[0]},), got {y.dtype} {y.shape}"
            )
        if int(y.min()) < 0 or int(y.max()) >= k:
            raise ValueError(
                f"labels must lie in [0, {k}) for a model with {k} outputs, "
                f"got [{int(y.min())}, {int(y.max())}]"
            )
    return x, y, k


class Laplace(eqx.Module):
    """Everything the Laplace evidence needs from a trained network (see :func:`laplace`)."""

    fit_term: Array  # SSE (regression) or log p(D | theta*) (classification)
    squared_norms: Array  # |theta_g|^2 per parameter group
    curvature: Array | KroneckerFactors
    likelihood: str = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    n_data: int = eqx.field(static=True)
    n_outputs: int = eqx.field(static=True)
    group_sizes: tuple[int, ...] = eqx.field(static=True)

    def _prior(self, prior_precision) -> Array:
        delta = jnp.asarray(prior_precision, self.squared_norms.dtype)
        if delta.ndim == 0:
            return jnp.broadcast_to(delta, self.squared_norms.shape)
        if self.kind == "spectrum" and len(self.group_sizes) > 1:
            raise ValueError(
                "a Laplace.spectrum() approximation needs one prior precision for all parameters (a "
                "scalar `prior_precision`); use the full curvature for one per group"
            )
        if delta.shape != self.squared_norms.shape:
            raise ValueError(
                f"`prior_precision` must be a scalar or one value per parameter group "
                f"({len(self.group_sizes)}), got shape {delta.shape}"
            )
        return delta

    def spectrum(self) -> Laplace:
        """The same approximation with a full curvature ``G`` replaced by its eigenvalues (one
        ``eigvalsh``): ``log det(c G + delta I) = sum_i log(c lambda_i + delta)`` then costs ``O(P)``
        per evaluation instead of a ``P x P`` Cholesky, for a prior precision shared by every
        parameter group (a per-group prior is refused by :meth:`log_evidence`)."""
        if self.kind != "full":
            raise ValueError(f"spectrum() needs curvature='full', this approximation is {self.kind!r}")
        eigenvalues = jnp.clip(jnp.linalg.eigvalsh(self.curvature), 0.0)  # PSD: clip round-off
        return dataclasses.replace(self, curvature=eigenvalues, kind="spectrum")

    def log_likelihood(self, noise_std=1.0) -> Array:
        """``log p(D | theta*)`` (regression: at noise ``sigma = noise_std``)."""
        if self.likelihood == "classification":
            return self.fit_term
        sigma = jnp.asarray(noise_std, self.fit_term.dtype)
        nk = self.n_data * self.n_outputs
        return -0.5 * self.fit_term / sigma**2 - nk * (jnp.log(sigma) + 0.5 * math.log(2 * math.pi))

    def log_evidence(self, prior_precision, noise_std=1.0) -> Array:
        """The Laplace approximation of ``log p(D | delta, sigma)``; differentiable in both."""
        delta = self._prior(prior_precision)
        scale = 1.0 if self.likelihood == "classification" else 1.0 / jnp.asarray(noise_std, delta.dtype) ** 2
        sizes = jnp.asarray(self.group_sizes, delta.dtype)
        if self.kind == "kfac":
            logdet = kfac_logdet(self.curvature, scale, delta)
        elif self.kind == "spectrum":
            # One prior precision for every parameter: log det(c G + delta I) = sum log(c lambda + delta).
            logdet = diagonal_logdet(self.curvature, scale, delta[0])
        else:
            per_param = jnp.repeat(
                delta, np.asarray(self.group_sizes), total_repeat_length=sum(self.group_sizes)
            )
            logdet = (dense_logdet if self.kind == "full" else diagonal_logdet)(
                self.curvature, scale, per_param
            )
        prior = -0.5 * jnp.sum(delta * self.squared_norms) + 0.5 * jnp.sum(sizes * jnp.log(delta))
        return self.log_likelihood(noise_std) + prior - 0.5 * logdet


def laplace(
    model,
    data: tuple[Array, Array],
    *,
    likelihood: Likelihood = "regression",
    curvature: Curvature = "kfac",
    chunk: int = 64,
    hyperparameters: Callable[[Any], Any] | None = None,
) -> Laplace:
    """The Laplace approximation at ``model``'s parameters (meant to be a MAP estimate).

    Args:
        model: an ``equinox.Module`` mapping one input to ``K`` outputs (or a scalar); for
            ``curvature="kfac"`` all its parameters must sit in ``equinox.nn.Linear`` layers.
        data: ``(x, y)``; regression targets ``(N,)`` or ``(N, K)``, classification labels ``(N,)``.
        likelihood: ``"regression"`` (Gaussian) or ``"classification"`` (categorical on logits).
        curvature: ``"full"`` (dense ``P x P``, small networks), ``"diagonal"`` or ``"kfac"``.
        chunk: examples per vectorised chunk when accumulating the curvature.
        hyperparameters: ``where(model)`` selecting arrays that are *not* parameters (no prior,
            no curvature), e.g. ``lambda m: m.extent`` of a
            :class:`~physbias.bias.LearnedInvariance`; the evidence is differentiable in them.
    """
    if curvature not in CURVATURES:
        raise ValueError(f"`curvature` must be one of {CURVATURES}, got {curvature!r}")
    x, y, k = _check_data(model, data, likelihood)
    params = parameters_filter(model, hyperparameters)
    if curvature == "kfac" and any(
        isinstance(n, LearnedInvariance)
        for n in jax.tree_util.tree_leaves(model, is_leaf=lambda n: isinstance(n, LearnedInvariance))
    ):
        raise ValueError(
            "curvature='kfac' does not support a LearnedInvariance (its layers run once per sampled "
            "transformation): use curvature='full' or 'diagonal'"
        )
    groups = parameter_groups(model, params)
    fit_term, squared, curv = _laplace_arrays(
        model, x, y, likelihood, curvature, chunk, tuple(s for _, s in groups), params
    )
    return Laplace(
        fit_term, squared, curv, likelihood, curvature, int(x.shape[0]), k, tuple(s for _, s in groups)
    )


@eqx.filter_jit  # compiled once per model structure, data shape and setting
def _laplace_arrays(model, x, y, likelihood: str, curvature: str, chunk: int, sizes: tuple[int, ...], params):
    f = _outputs(model, x)
    if likelihood == "regression":
        fit_term = jnp.sum((f - jnp.reshape(y, f.shape)) ** 2)
        hessian = gaussian_output_hessian
    else:
        fit_term = jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(f), y[:, None], axis=1))
        hessian = categorical_output_hessian
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, params))
    flat = jnp.concatenate([jnp.ravel(a) for a in leaves])
    bounds = np.cumsum((0,) + sizes)
    squared = jnp.stack([jnp.sum(flat[a:b] ** 2) for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
    build = {"full": ggn_full, "diagonal": ggn_diagonal, "kfac": ggn_kfac}[curvature]
    return fit_term, squared, build(model, x, hessian, chunk=chunk, params=params)


def parameters_filter(model, hyperparameters: Callable[[Any], Any] | None = None):
    """The filter (a pytree of bools) of the parameters: every floating-point array except those
    ``hyperparameters(model)`` selects."""
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    if hyperparameters is None:
        return spec
    return eqx.tree_at(hyperparameters, spec, replace_fn=lambda _: False)


def predictive(model, lap: Laplace, x: Array, prior_precision, noise_std=1.0) -> tuple[Array, Array]:
    """Linearised (GLM) predictive mean ``f(x; theta*)`` ``(M, K)`` and variance of ``f``
    ``diag(J Sigma J^T)`` ``(M, K)`` with ``Sigma = (c G + delta I)^-1``, for a full or diagonal
    curvature (add ``noise_std**2`` for the variance of ``y``)."""
    if lap.kind not in ("full", "diagonal"):
        raise ValueError(
            f"predictive needs curvature='full' or 'diagonal', got {lap.kind!r} "
            "(which keeps only eigenvalues)"
        )
    delta = lap._prior(prior_precision)
    per_param = jnp.repeat(delta, np.asarray(lap.group_sizes), total_repeat_length=sum(lap.group_sizes))
    scale = 1.0 if lap.likelihood == "classification" else 1.0 / jnp.asarray(noise_std, delta.dtype) ** 2
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)

    def jac(xn):
        return jax.jacrev(lambda p: jnp.reshape(eqx.combine(unravel(p), static)(xn), (-1,)))(flat)

    jacobians = jax.vmap(jac)(x)  # (M, K, P): for plotting-sized M only
    if lap.kind == "full":
        chol = jnp.linalg.cholesky(scale * lap.curvature + jnp.diag(per_param))
        half = jax.vmap(lambda j: jax.scipy.linalg.solve_triangular(chol, j.T, lower=True))(jacobians)
        variance = jnp.sum(half**2, axis=1)
    else:
        variance = jnp.einsum("mkp,p->mk", jacobians**2, 1.0 / (scale * lap.curvature + per_param))
    return _outputs(model, x), variance


def laplace_log_evidence(
    model,
    data,
    *,
    likelihood: Likelihood = "regression",
    curvature: Curvature = "kfac",
    prior_precision=1.0,
    noise_std=1.0,
) -> Array:
    """:func:`laplace` then :meth:`Laplace.log_evidence` at the given hyperparameters."""
    _check_positive(prior_precision, "prior_precision")
    _check_positive(noise_std, "noise_std")
    return laplace(model, data, likelihood=likelihood, curvature=curvature).log_evidence(
        prior_precision, noise_std
    )


def _check_positive(value, name: str) -> None:
    v = np.asarray(value, dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)) or not np.all(v > 0):
        raise ValueError(f"`{name}` must be positive and finite, got {value!r}")


@dataclasses.dataclass
class Hyperparameters:
    """Prior precision (scalar or per group), noise std and the evidence they give."""

    prior_precision: np.ndarray
    noise_std: float
    log_evidence: float
    history: np.ndarray  # log evidence after each step


def optimize_hyperparameters(
    lap: Laplace,
    *,
    steps: int = 1000,
    learning_rate: float = 0.1,
    prior_precision=1.0,
    noise_std: float = 1.0,
    per_group: bool = False,
) -> Hyperparameters:
    """Maximise :meth:`Laplace.log_evidence` over ``log delta`` (and ``log sigma`` for regression)
    by Adam, from the given starting values (laplace-torch's recipe: Adam 0.1, 1000 steps)."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    _check_positive(prior_precision, "prior_precision")
    _check_positive(noise_std, "noise_std")
    dtype = lap.squared_norms.dtype
    if lap.kind == "full" and not per_group:
        lap = lap.spectrum()  # one eigendecomposition instead of a Cholesky per step
    n_groups = len(lap.group_sizes) if per_group else 1
    log_delta = jnp.log(jnp.broadcast_to(jnp.asarray(prior_precision, dtype), (n_groups,)))
    params = (log_delta, jnp.log(jnp.asarray(noise_std, dtype)))
    learn_noise = lap.likelihood == "regression"

    def objective(p):
        delta = jnp.exp(p[0]) if per_group else jnp.exp(p[0][0])
        return -lap.log_evidence(delta, jnp.exp(p[1]))

    optimizer = optax.adam(learning_rate)

    def step(carry, _):
        p, state = carry
        value, grad = jax.value_and_grad(objective)(p)
        if not learn_noise:
            grad = (grad[0], jnp.zeros_like(grad[1]))
        with jax.numpy_dtype_promotion("standard"):
            updates, state = optimizer.update(grad, state, p)
        return (optax.apply_updates(p, updates), state), -value

    (params, _), history = jax.lax.scan(step, (params, optimizer.init(params)), None, length=steps)
    delta = np.asarray(jnp.exp(params[0])) if per_group else float(jnp.exp(params[0][0]))
    final = float(lap.log_evidence(delta, jnp.exp(params[1])))
    return Hyperparameters(np.asarray(delta), float(jnp.exp(params[1])), final, np.asarray(history))


def map_loss(
    likelihood: Likelihood,
    prior_precision,
    noise_std,
    n_data: int,
    hyperparameters: Callable[[Any], Any] | None = None,
):
    """A :func:`physbias.fit` loss: ``-(log p(D | theta) + log p(theta)) / N`` on a batch (the
    likelihood term is the batch mean, scaled to the data set). ``prior_precision`` is a scalar or
    one value per parameter group; ``hyperparameters`` selects arrays outside the prior."""

    def loss(model, batch, key=None):
        x, y = batch
        f = _outputs(model, x)
        if likelihood == "regression":
            nll = 0.5 * jnp.mean(jnp.sum((f - jnp.reshape(y, f.shape)) ** 2, axis=-1)) / noise_std**2
        else:
            labels = y.astype(jnp.int32)  # a Dataset may have stored the labels as floats
            nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f), labels[:, None], axis=1))
        return nll + 0.5 * prior_sum(model, prior_precision, hyperparameters) / n_data

    return loss


def prior_sum(model, prior_precision, hyperparameters: Callable[[Any], Any] | None = None) -> Array:
    """``sum_g delta_g |theta_g|^2`` over the parameter groups of ``model``."""
    params = parameters_filter(model, hyperparameters)
    groups = parameter_groups(model, params)
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, params))
    flat = jnp.concatenate([jnp.ravel(a) for a in leaves])
    delta = jnp.broadcast_to(jnp.asarray(prior_precision, flat.dtype), (len(groups),))
    sizes = np.asarray([s for _, s in groups])
    per_param = jnp.repeat(delta, sizes, total_repeat_length=int(sizes.sum()))
    return jnp.sum(per_param * flat**2)
