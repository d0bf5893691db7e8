"""Matrix-normal VI: the closed-form KL against Monte Carlo, the closed-form prior variance, and
the ELBO of Bayesian linear regression against its exact evidence (research M19 (e))."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from physbias import fit
from physbias.evidence import MatrixNormalLinear, MatrixNormalPosterior, elbo_loss, linear_log_evidence


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _layer(key=0, out=3, inp=2):
    layer = MatrixNormalLinear(
        eqx.nn.Linear(inp, out, key=jax.random.key(key), dtype=jnp.float64), init_std=0.3
    )
    k1, k2 = jax.random.split(jax.random.key(key + 1))
    return eqx.tree_at(
        lambda m: (m.row_factor, m.column_factor),
        layer,
        (
            layer.row_factor + 0.3 * jax.random.normal(k1, (out, out), jnp.float64),
            layer.column_factor + 0.3 * jax.random.normal(k2, (inp, inp), jnp.float64),
        ),
    )


def test_closed_form_kl_matches_monte_carlo():
    layer = _layer()
    v = 0.7
    lu, lv = layer.covariance_factors()
    cov = jnp.kron(lu @ lu.T, lv @ lv.T)  # row-major vec(W)
    samples = jax.vmap(layer.sample_weight)(jax.random.split(jax.random.key(5), 40000)).reshape(40000, -1)
    q = scipy.stats.multivariate_normal(np.asarray(layer.mean).ravel(), np.asarray(cov))
    p = scipy.stats.multivariate_normal(np.zeros(6), v * np.eye(6))
    mc = np.mean(q.logpdf(np.asarray(samples)) - p.logpdf(np.asarray(samples)))
    assert float(layer.kl(v)) == pytest.approx(mc, rel=0.01)
    # The sampled weights have the stated covariance.
    np.testing.assert_allclose(np.cov(np.asarray(samples).T), cov, atol=0.03 * float(jnp.max(cov)))


def test_optimal_prior_variance_minimises_the_kl():
    layer = _layer(key=3)
    v = float(layer.optimal_prior_variance())
    assert abs(float(jax.grad(layer.kl)(v))) < 1e-10
    assert float(layer.kl(v)) < min(float(layer.kl(0.8 * v)), float(layer.kl(1.25 * v)))


def _exact_elbo(posterior, x, y, sigma, v):
    """Closed-form ELBO of a linear-Gaussian model: E_q|y - Xw|^2 = |y - Xm|^2 + tr(X S X^T)."""
    layer = posterior.layers()[0]
    lu, lv = layer.covariance_factors()
    cov = (lu @ lu.T)[0, 0] * (lv @ lv.T)
    m = layer.mean[0]
    sse = jnp.sum((y - x @ m) ** 2) + jnp.trace(x @ cov @ x.T)
    n = y.shape[0]
    return -0.5 * sse / sigma**2 - n * (jnp.log(sigma) + 0.5 * jnp.log(2 * jnp.pi)) - layer.kl(v)


def test_optimised_elbo_of_linear_regression_reaches_the_exact_evidence_from_below():
    kx, kw, ke = jax.random.split(jax.random.key(7), 3)
    x = jax.random.normal(kx, (40, 3), jnp.float64)
    y = x @ jnp.array([0.8, -0.5, 0.3]) + 0.2 * jax.random.normal(ke, (40,), jnp.float64)
    sigma, v = 0.2, 1.0
    linear = eqx.nn.Linear(3, "scalar", use_bias=False, key=kw, dtype=jnp.float64)
    posterior = MatrixNormalPosterior(linear, init_std=0.1)
    result = fit(
        posterior,
        elbo_loss(noise_std=sigma, n_samples=16, prior_variance=v),
        (x, y),
        key=jax.random.key(8),
        epochs=3000,
        learning_rate=1e-2,
        progress=False,
    )
    exact = float(linear_log_evidence(x, y, 1.0 / v, sigma))
    start = float(_exact_elbo(posterior, x, y, sigma, v))
    final = float(_exact_elbo(result.model, x, y, sigma, v))
    assert final <= exact + 1e-9  # a lower bound, always
    assert abs(final - exact) <= 0.01 * abs(exact)
    assert exact - start > 10 * (exact - final)  # training closed most of the gap


def test_the_posterior_runs_the_model_with_sampled_or_mean_weights():
    mlp = eqx.nn.MLP(2, 1, 4, 1, key=jax.random.key(0), dtype=jnp.float64)
    posterior = MatrixNormalPosterior(mlp, init_std=1e-3)
    x = jnp.array([0.3, -0.2])
    np.testing.assert_allclose(posterior(x), mlp(x), atol=1e-12)
    a, b = posterior(x, key=jax.random.key(1)), posterior(x, key=jax.random.key(2))
    assert 0 < float(jnp.max(jnp.abs(a - b))) < 0.1
    assert len(posterior.layers()) == 2


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no equinox.nn.Linear"):
        MatrixNormalPosterior(lambda x: x)
    with pytest.raises(TypeError, match="wraps an equinox.nn.Linear"):
        MatrixNormalLinear(eqx.nn.Conv1d(1, 1, 3, key=jax.random.key(0)))
    with pytest.raises(ValueError, match="`noise_std`"):
        elbo_loss(noise_std=0.0)
    with pytest.raises(ValueError, match="`prior_variance`"):
        elbo_loss(prior_variance=-1.0)


def test_bayesian_model_average_is_the_mean_of_the_sampled_networks():
    from physbias.evidence import bayesian_model_average

    posterior = MatrixNormalPosterior(eqx.nn.MLP(2, 1, 8, 1, key=jax.random.key(0)), init_std=0.3)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    key = jax.random.key(2)
    keys = jax.random.split(key, 3)
    by_hand = sum(jax.vmap(posterior.sample_model(k))(x) for k in keys) / 3
    np.testing.assert_allclose(bayesian_model_average(posterior, x, key, 3), by_hand, rtol=1e-5, atol=1e-6)
    # a wide posterior: the average is not the network at the mean weights
    assert not np.allclose(bayesian_model_average(posterior, x, key, 3), jax.vmap(posterior.mean_model())(x))
    with pytest.raises(ValueError, match="n_samples"):
        bayesian_model_average(posterior, x, key, 0)
