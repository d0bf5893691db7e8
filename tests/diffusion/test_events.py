import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from physbias.diffusion import (
    EventConditionedScore,
    GaussianDenoiser,
    GaussianPosterior,
    LocalPosterior,
    check_event,
    event_satisfied,
    sample,
)

COV = jnp.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
A = jnp.array([1.0, -0.5, 0.8])


def _linear_event(probability):
    b = float(jnp.sqrt(A @ COV @ A)) * norm.isf(probability)
    return lambda x: A @ x - b


def test_guidance_is_the_exact_gradient_for_a_linear_event_on_gaussian_data():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    event = _linear_event(0.01)
    cond = EventConditionedScore(den, event, link="probit", floor=0.0)
    x, sigma = jnp.array([0.4, -0.3, 1.2]), 0.7

    def log_p_event(x):  # P(A x0 > b | x_sigma = x) for Gaussian data, exactly
        post_cov = COV - COV @ jnp.linalg.solve(COV + sigma**2 * jnp.eye(3), COV)
        return jax.scipy.special.log_ndtr(event(den(x, sigma)) / jnp.sqrt(A @ post_cov @ A))

    np.testing.assert_allclose(cond(x, sigma) - den.score(x, sigma), jax.grad(log_p_event)(x), rtol=1e-4)


@pytest.mark.parametrize("probability", [1e-1, 1e-3])
def test_conditional_samples_land_in_the_event(probability):
    den = GaussianDenoiser(jnp.zeros(3), COV)
    event = _linear_event(probability)
    draw = eqx.filter_jit(lambda score, k: sample(score, k, 1000, (3,), steps=200))
    probit = float(
        jnp.mean(event_satisfied(event, draw(EventConditionedScore(den, event), jax.random.key(0))))
    )
    logistic = float(
        jnp.mean(
            event_satisfied(
                event, draw(EventConditionedScore(den, event, link="logistic"), jax.random.key(0))
            )
        )
    )
    plain = float(jnp.mean(event_satisfied(event, draw(den.score, jax.random.key(0)))))
    assert probit >= 0.9  # the acceptance bar; 98% with 500 steps
    assert plain < probability + 4 * math.sqrt(probability / 1000) + 1e-3
    if probability < 0.01:
        # In the tails log sigmoid is linear where log Phi is quadratic: the logistic link of the
        # reference under-guides rare events.
        assert logistic < probit - 0.2


def test_check_event_refuses_non_scalar_nan_and_non_callable():
    x = jnp.zeros((4, 3))
    check_event(lambda w: jnp.mean(w[:, 0]) - 1.0, x)
    with pytest.raises(ValueError, match="scalar"):
        check_event(lambda w: w[:, 0], x)
    with pytest.raises(ValueError, match="non-finite"):
        check_event(lambda w: jnp.log(w[0, 0] - 1.0), x)
    with pytest.raises(ValueError, match="failed"):
        check_event(lambda w: w @ jnp.ones(7), x)
    with pytest.raises(TypeError, match="function"):
        check_event(3.0, x)
    with pytest.raises(ValueError, match="link"):
        EventConditionedScore(GaussianDenoiser(jnp.zeros(3), COV), lambda x: x[0], link="tanh")


def test_gaussian_posterior_deviations_have_the_posterior_covariance():
    cov = np.asarray(COV)
    samples = np.random.default_rng(0).multivariate_normal(np.zeros(3), cov, size=200_000)
    posterior = GaussianPosterior.from_samples(samples)
    sigma = 0.7
    exact = cov - cov @ np.linalg.solve(cov + sigma**2 * np.eye(3), cov)
    delta = np.asarray(posterior.deviations(jax.random.key(1), sigma, 100_000))
    assert delta.shape == (100_000, 3)
    np.testing.assert_allclose(delta.mean(axis=0), 0.0, atol=1e-6)  # antithetic pairs
    np.testing.assert_allclose(np.cov(delta, rowvar=False), exact, atol=0.01)
    # Far above the data's scale the posterior is the data; far below, sigma^2 I.
    np.testing.assert_allclose(
        np.cov(np.asarray(posterior.deviations(jax.random.key(2), 1e3, 100_000)), rowvar=False),
        cov,
        atol=0.02,
    )
    small = np.cov(np.asarray(posterior.deviations(jax.random.key(3), 1e-3, 100_000)), rowvar=False)
    np.testing.assert_allclose(small / 1e-6, np.eye(3), atol=0.02)


def test_sampled_posterior_is_exact_for_a_linear_event_on_gaussian_data():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    event = _linear_event(0.01)
    posterior = GaussianPosterior(*jnp.linalg.eigh(COV), (3,))
    cond = EventConditionedScore(den, event, floor=0.0, posterior=posterior, posterior_samples=20_000)
    x, sigma = jnp.array([0.4, -0.3, 1.2]), 0.7
    post_cov = COV - COV @ jnp.linalg.solve(COV + sigma**2 * jnp.eye(3), COV)
    exact = jax.scipy.special.log_ndtr(event(den(x, sigma)) / jnp.sqrt(A @ post_cov @ A))
    # The mean of C is exact (antithetic pairs); its spread is a sample variance.
    np.testing.assert_allclose(cond.log_event_probability(x, sigma), exact, rtol=0.03)


def test_local_posterior_is_tweedie_covariance_of_the_model_at_the_point():
    # For Gaussian data the model's own sigma^2 dD/dx is the exact posterior covariance everywhere,
    # and the local posterior gives the same P(E | x) as the data's Gaussian one.
    den = GaussianDenoiser(jnp.zeros(3), COV)
    sigma = 0.7
    exact = np.asarray(COV - COV @ jnp.linalg.solve(COV + sigma**2 * jnp.eye(3), COV))
    for x in (jnp.zeros(3), jnp.array([2.0, -1.0, 0.5])):
        delta = np.asarray(LocalPosterior().deviations_at(jax.random.key(0), den, x, sigma, 100_000))
        assert delta.shape == (100_000, 3)
        np.testing.assert_allclose(delta.mean(axis=0), 0.0, atol=1e-6)
        np.testing.assert_allclose(np.cov(delta, rowvar=False), exact, atol=0.01)
    event, x = _linear_event(0.01), jnp.array([0.4, -0.3, 1.2])
    local = EventConditionedScore(den, event, floor=0.0, posterior=LocalPosterior(), posterior_samples=20_000)
    exact_log_p = jax.scipy.special.log_ndtr(event(den(x, sigma)) / jnp.sqrt(A @ exact @ A))
    np.testing.assert_allclose(local.log_event_probability(x, sigma), exact_log_p, rtol=0.03)
    # On a curved denoiser the covariance follows the point: D(x) = tanh(x) has dD/dx = 1 - tanh^2.
    curved = lambda y, s: jnp.tanh(y)  # noqa: E731
    for x in (jnp.zeros(3), jnp.array([1.5, 0.0, -2.0])):
        delta = np.asarray(LocalPosterior().deviations_at(jax.random.key(1), curved, x, 0.5, 100_000))
        expected = 0.25 * np.diag(1.0 - np.tanh(np.asarray(x)) ** 2)
        np.testing.assert_allclose(np.cov(delta, rowvar=False), expected, atol=0.005)


def test_gaussian_posterior_refuses_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        GaussianPosterior(jnp.ones(3), jnp.eye(3), (4,))
    with pytest.raises(ValueError, match="non-negative"):
        GaussianPosterior(-jnp.ones(3), jnp.eye(3), (3,))
    with pytest.raises(ValueError, match="at least 2"):
        GaussianPosterior.from_samples(np.ones((1, 3)))
    with pytest.raises(ValueError, match="finite"):
        GaussianPosterior.from_samples(np.full((5, 3), np.nan))
    den = GaussianDenoiser(jnp.zeros(3), COV)
    with pytest.raises(ValueError, match="posterior_samples"):
        EventConditionedScore(
            den, lambda x: x[0], posterior=GaussianPosterior.from_samples(np.eye(3)), posterior_samples=3
        )
    with pytest.raises(TypeError, match="LocalPosterior"):
        EventConditionedScore(den, lambda x: x[0], posterior="local")
    with pytest.raises(TypeError, match="GaussianPosterior"):
        EventConditionedScore(den, lambda x: x[0], posterior=COV)
