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
    event_log_probability,
    event_log_probability_importance,
    event_satisfied,
    flow_sample,
    log_likelihood,
    sample,
)

COV = jnp.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])


@pytest.fixture(scope="module")
def rare_event():
    """A linear event of probability 3e-3 on Gaussian data, and 8 conditional samples inside it."""
    den = GaussianDenoiser(jnp.zeros(3), COV)
    a = jnp.array([1.0, -0.5, 0.8])
    b = float(jnp.sqrt(a @ COV @ a)) * norm.isf(3e-3)
    event = lambda x: a @ x - b
    cond = EventConditionedScore(den, event)
    xs = jax.jit(lambda k: sample(cond, k, 64, (3,), steps=200))(jax.random.key(0))
    return cond, xs[np.asarray(event_satisfied(event, xs))][:8]


def _estimates(cond, xs, sigma_min, posterior):
    f = eqx.filter_jit(
        jax.vmap(
            lambda c, x: event_log_probability(c, x, sigma_min=sigma_min, steps=100, posterior=posterior),
            in_axes=(None, 0),
        )
    )
    return np.asarray(f(cond, xs))


def test_event_probability_is_exact_at_any_noise_level_with_the_posterior_term(rare_event):
    cond, xs = rare_event
    for sigma_min in (1e-3, 0.3):
        error = np.mean(_estimates(cond, xs, sigma_min, True)) - math.log(3e-3)
        assert abs(error) < 0.1, (sigma_min, error)


def test_without_the_posterior_term_the_estimate_is_biased_upwards_at_high_noise(rare_event):
    # log p(x) - log p(x|E) = log P(E) - log P(E | x_sigma = x) >= log P(E): right only as sigma -> 0.
    cond, xs = rare_event
    assert abs(np.mean(_estimates(cond, xs, 1e-3, False)) - math.log(3e-3)) < 0.15
    assert np.mean(_estimates(cond, xs, 0.3, False)) - math.log(3e-3) > 0.5


def test_log_event_probability_is_the_gaussian_posterior_probability():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    a, b, sigma = jnp.array([1.0, -0.5, 0.8]), 1.0, 0.5
    cond = EventConditionedScore(den, lambda x: a @ x - b, floor=0.0)
    x = jnp.array([0.7, -0.2, 0.4])
    # x0 | x_sigma ~ N(Sigma (Sigma + s^2 I)^-1 x, Sigma - Sigma (Sigma + s^2 I)^-1 Sigma)
    gain = COV @ jnp.linalg.inv(COV + sigma**2 * jnp.eye(3))
    mean, cov = gain @ x, COV - gain @ COV
    exact = norm.logsf(b, loc=float(a @ mean), scale=float(jnp.sqrt(a @ cov @ a)))
    assert float(cond.log_event_probability(x, jnp.asarray(sigma))) == pytest.approx(exact, abs=1e-5)


def test_flow_samples_carry_the_exact_density_of_a_gaussian():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    xs, log_q = flow_sample(den.score, jax.random.key(0), 8, (3,), sigma_min=1e-2, sigma_max=20.0, steps=200)
    exact = jax.vmap(lambda x: den.log_prob(x, 1e-2))(xs)
    assert np.max(np.abs(np.asarray(log_q - exact))) < 0.02
    # The same density as the likelihood solved backwards from each sample.
    back = jax.vmap(lambda x: log_likelihood(den.score, x, sigma_min=1e-2, sigma_max=20.0, steps=200))(xs)
    assert np.max(np.abs(np.asarray(log_q - back))) < 0.02


@pytest.mark.parametrize("guide_above", [None, 0.3])
def test_importance_sampling_from_the_guided_flow_gives_the_analytic_probability(guide_above):
    # guide_above = 0.3 is a poor proposal (the plain flow below 0.3 leaves ~40% of the samples in E):
    # the estimate stays unbiased, with a larger error bar.
    den = GaussianDenoiser(jnp.zeros(3), COV)
    a = jnp.array([1.0, -0.5, 0.8])
    b = float(jnp.sqrt(a @ COV @ a)) * norm.isf(1e-3)
    cond = EventConditionedScore(den, lambda x: a @ x - b)
    estimate = eqx.filter_jit(
        lambda c, k: event_log_probability_importance(
            c, k, 512, (3,), sigma_min=1e-3, sigma_max=20.0, steps=100, guide_above=guide_above
        )
    )(cond, jax.random.key(1))
    error = float(estimate.log_probability) - math.log(1e-3)
    assert abs(error) < 3 * float(estimate.standard_error) + 0.05, error
    inside = float(np.mean(estimate.in_event))
    assert inside > 0.85 if guide_above is None else 0.2 < inside < 0.7


def test_importance_sampling_refuses_bad_arguments():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    cond = EventConditionedScore(den, lambda x: x[0] - 1.0)
    with pytest.raises(ValueError, match="guide_above"):
        event_log_probability_importance(cond, jax.random.key(0), 8, (3,), guide_above=0.0)
    with pytest.raises(ValueError, match="`n`"):
        event_log_probability_importance(cond, jax.random.key(0), 0, (3,))
    with pytest.raises(ValueError, match="`steps`"):
        flow_sample(den.score, jax.random.key(0), 4, (3,), steps=0)
