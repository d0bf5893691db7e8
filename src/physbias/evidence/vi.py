"""Matrix-normal variational inference: a lower bound on the evidence (Louizos & Welling 2016; the
objective of Noether's razor, van der Ouderaa et al. 2024).

Every ``equinox.nn.Linear`` weight ``W`` (``d_out x d_in``) gets the posterior
``q(W) = MN(M, U, V)``, i.e. ``vec(W) ~ N(vec(M), U (x) V)`` in row-major order, sampled as
``W = M + L_U Z L_V^T`` with ``Z ~ N(0, I)``; biases stay point estimates. Against the prior
``N(0, v I)`` the KL divergence is closed form,

.. math:: KL = \\tfrac12\\big[(\\mathrm{tr}\\,U\\,\\mathrm{tr}\\,V + \\|M\\|^2)/v - d + d\\log v
          - d_{in}\\log|U| - d_{out}\\log|V|\\big], \\quad d = d_{out} d_{in},

minimised over ``v`` by ``v* = (tr U tr V + |M|^2) / d``. The ELBO ``E_q[log p(D | W)] - KL`` is
estimated with reparameterised samples (:func:`elbo_loss`, a loss for :func:`physbias.fit`); it is
a lower bound on ``log p(D)``, tight when ``q`` is the exact posterior.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def _cholesky_factor(raw: Array) -> Array:
    """A lower-triangular factor with a positive diagonal from an unconstrained square matrix."""
    return jnp.tril(raw, -1) + jnp.diag(jax.nn.softplus(jnp.diag(raw)) + 1e-8)


def _raw_for(std: float, n: int, dtype) -> Array:
    # softplus^-1(std) on the diagonal
    return jnp.eye(n, dtype=dtype) * math.log(math.expm1(std))


class MatrixNormalLinear(eqx.Module):
    """``q(W) = MN(mean, U, V)`` for one ``equinox.nn.Linear``; its bias is a point estimate.

    ``row_factor`` and ``column_factor`` are unconstrained; ``L_U``/``L_V`` are their lower
    triangles with a softplus diagonal.
    """

    mean: Float[Array, "out in"]
    bias: Array | None
    row_factor: Float[Array, "out out"]
    column_factor: Float[Array, "in in"]
    scalar_out: bool = eqx.field(static=True)
    scalar_in: bool = eqx.field(static=True)

    def __init__(self, linear: eqx.nn.Linear, init_std: float = 1e-2):
        if not isinstance(linear, eqx.nn.Linear):
            raise TypeError(f"MatrixNormalLinear wraps an equinox.nn.Linear, got {type(linear).__name__}")
        self.mean = linear.weight
        self.bias = linear.bias
        self.scalar_out = linear.out_features == "scalar"
        self.scalar_in = linear.in_features == "scalar"
        out, inp = linear.weight.shape
        # U and V share the scale: std(W_ij) = sqrt(U_ii V_jj) = init_std.
        self.row_factor = _raw_for(math.sqrt(init_std), out, linear.weight.dtype)
        self.column_factor = _raw_for(math.sqrt(init_std), inp, linear.weight.dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return self.mean.shape

    def covariance_factors(self) -> tuple[Array, Array]:
        return _cholesky_factor(self.row_factor), _cholesky_factor(self.column_factor)

    def sample_weight(self, key: PRNGKeyArray) -> Array:
        lu, lv = self.covariance_factors()
        return self.mean + lu @ jax.random.normal(key, self.mean.shape, self.mean.dtype) @ lv.T

    def kl(self, prior_variance) -> Array:
        """``KL(q(W) || N(0, v I))`` (closed form)."""
        lu, lv = self.covariance_factors()
        out, inp = self.mean.shape
        d = out * inp
        v = jnp.asarray(prior_variance, self.mean.dtype)
        trace = jnp.sum(lu**2) * jnp.sum(lv**2)
        logdet_u = 2 * jnp.sum(jnp.log(jnp.diag(lu)))
        logdet_v = 2 * jnp.sum(jnp.log(jnp.diag(lv)))
        return 0.5 * (
            (trace + jnp.sum(self.mean**2)) / v - d + d * jnp.log(v) - inp * logdet_u - out * logdet_v
        )

    def optimal_prior_variance(self) -> Array:
        """``v* = (tr U tr V + |M|^2) / d``, the prior variance that minimises :meth:`kl`."""
        lu, lv = self.covariance_factors()
        return (jnp.sum(lu**2) * jnp.sum(lv**2) + jnp.sum(self.mean**2)) / self.mean.size

    def linear(self, weight: Array) -> eqx.nn.Linear:
        """An ``equinox.nn.Linear`` with ``weight`` and this layer's bias."""
        out, inp = self.mean.shape
        layer = eqx.nn.Linear(
            "scalar" if self.scalar_in else inp,
            "scalar" if self.scalar_out else out,
            use_bias=self.bias is not None,
            key=jax.random.key(0),
            dtype=self.mean.dtype,
        )
        return (
            eqx.tree_at(lambda m: m.weight, layer, weight)
            if self.bias is None
            else eqx.tree_at(lambda m: (m.weight, m.bias), layer, (weight, self.bias))
        )


def _is_layer(node) -> bool:
    return isinstance(node, (eqx.nn.Linear, MatrixNormalLinear))


class MatrixNormalPosterior(eqx.Module):
    """A model whose every ``equinox.nn.Linear`` has a matrix-normal posterior.

    ``posterior(x, key=key)`` runs the model with one sampled set of weights; ``posterior.mean_model()``
    is the model at the posterior means.
    """

    model: Any

    def __init__(self, model, init_std: float = 1e-2, where: Callable[[Any], Any] | None = None):
        """``where(model)`` selects the part whose layers get a posterior (default: all of it);
        the rest of the model (e.g. the conserved quantities of Noether's razor) stays a point
        estimate, learned by type-II maximum likelihood."""
        wrap = lambda part: jax.tree_util.tree_map(
            lambda n: MatrixNormalLinear(n, init_std) if isinstance(n, eqx.nn.Linear) else n,
            part,
            is_leaf=_is_layer,
        )
        part = model if where is None else where(model)
        if not any(isinstance(n, eqx.nn.Linear) for n in jax.tree_util.tree_leaves(part, is_leaf=_is_layer)):
            raise ValueError("MatrixNormalPosterior found no equinox.nn.Linear layer in the model")
        self.model = wrap(model) if where is None else eqx.tree_at(where, model, replace_fn=wrap)

    def layers(self) -> list[MatrixNormalLinear]:
        return [
            n
            for n in jax.tree_util.tree_leaves(self.model, is_leaf=_is_layer)
            if isinstance(n, MatrixNormalLinear)
        ]

    def sample_model(self, key: PRNGKeyArray):
        keys = iter(jax.random.split(key, len(self.layers())))
        return jax.tree_util.tree_map(
            lambda n: n.linear(n.sample_weight(next(keys))) if isinstance(n, MatrixNormalLinear) else n,
            self.model,
            is_leaf=_is_layer,
        )

    def mean_model(self):
        return jax.tree_util.tree_map(
            lambda n: n.linear(n.mean) if isinstance(n, MatrixNormalLinear) else n,
            self.model,
            is_leaf=_is_layer,
        )

    def __call__(self, x, *, key: PRNGKeyArray | None = None):
        return (self.mean_model() if key is None else self.sample_model(key))(x)

    def kl(self, prior_variance: float | Literal["optimal"] = 1.0) -> Array:
        """Sum of the layers' KL terms; ``"optimal"`` uses each layer's closed-form ``v*``."""
        total = jnp.zeros((), self.layers()[0].mean.dtype)
        for layer in self.layers():
            v = (
                jax.lax.stop_gradient(layer.optimal_prior_variance())
                if prior_variance == "optimal"
                else prior_variance
            )
            total = total + layer.kl(v)
        return total


def elbo(
    posterior: MatrixNormalPosterior,
    data,
    key: PRNGKeyArray,
    *,
    likelihood: Literal["regression", "classification"] = "regression",
    noise_std: float = 1.0,
    n_samples: int = 1,
    prior_variance: float | str = 1.0,
) -> Array:
    """The reparameterised ELBO ``E_q[log p(D | W)] - KL`` on the whole data set ``(x, y)``."""
    expected = expected_log_likelihood(
        posterior, data, key, likelihood=likelihood, noise_std=noise_std, n_samples=n_samples
    )
    return expected - posterior.kl(prior_variance)


def expected_log_likelihood(
    posterior: MatrixNormalPosterior,
    data,
    key: PRNGKeyArray,
    *,
    likelihood: Literal["regression", "classification"] = "regression",
    noise_std: float = 1.0,
    n_samples: int = 1,
) -> Array:
    """``E_q[log p(D | W)]`` summed over the data ``(x, y)``, by ``n_samples`` reparameterised samples."""
    x, y = data
    if likelihood not in ("regression", "classification"):
        raise ValueError(f"`likelihood` must be 'regression' or 'classification', got {likelihood!r}")
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive integer, got {n_samples!r}")

    def log_lik(key):
        model = posterior.sample_model(key)
        f = jax.vmap(lambda xn: jnp.reshape(model(xn), (-1,)))(x)
        if likelihood == "regression":
            resid = f - jnp.reshape(y, f.shape)
            return -0.5 * jnp.sum(resid**2) / noise_std**2 - resid.size * (
                math.log(noise_std) + 0.5 * math.log(2 * math.pi)
            )
        labels = y.astype(jnp.int32)
        return jnp.sum(jnp.take_along_axis(jax.nn.log_softmax(f), labels[:, None], axis=1))

    return jnp.mean(jax.vmap(log_lik)(jax.random.split(key, n_samples)))


def elbo_loss(
    likelihood: Literal["regression", "classification"] = "regression",
    *,
    noise_std: float = 1.0,
    n_samples: int = 1,
    prior_variance: float | str = 1.0,
):
    """A :func:`physbias.fit` loss: ``-ELBO / N`` of a :class:`MatrixNormalPosterior` on the batch
    (train on the full batch, or scale: the KL is for the whole data set)."""
    if not (np.isfinite(noise_std) and noise_std > 0):
        raise ValueError(f"`noise_std` must be positive and finite, got {noise_std!r}")
    if not (prior_variance == "optimal" or (np.isfinite(prior_variance) and prior_variance > 0)):
        raise ValueError(f"`prior_variance` must be positive or 'optimal', got {prior_variance!r}")

    def loss(posterior, batch, key):
        n = batch[0].shape[0]
        return (
            -elbo(
                posterior,
                batch,
                key,
                likelihood=likelihood,
                noise_std=noise_std,
                n_samples=n_samples,
                prior_variance=prior_variance,
            )
            / n
        )

    return loss


def bayesian_model_average(
    posterior: MatrixNormalPosterior, x: Array, key: PRNGKeyArray, n_samples: int = 8
) -> Array:
    """``E_q[f_W(x)]`` by ``n_samples`` posterior samples, for a batch ``x`` of shape ``(N, ...)``.

    With a wide posterior the network at the mean weights can predict much worse than the
    average of its samples (the samples fit the data; the mean of the weights need not)."""
    if not isinstance(n_samples, int) or n_samples < 1:
        raise ValueError(f"`n_samples` must be a positive integer, got {n_samples!r}")
    keys = jax.random.split(key, n_samples)
    return jnp.mean(jax.vmap(lambda k: jax.vmap(posterior.sample_model(k))(x))(keys), axis=0)
