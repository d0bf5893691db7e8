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
    event_satisfied,
    log_likelihood,
    sample,
)

COV = jnp.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])


def test_probability_flow_likelihood_of_a_gaussian_is_exact():
    # Centred data: the flow ends on N(0, sigma_max^2 I), which ignores the data's mean.
    den = GaussianDenoiser(jnp.zeros(3), COV)
    xs = jnp.array([[0.0, 0.0, 0.0], [1.5, -2.0, 0.3]])
    exact = jax.vmap(lambda x: den.log_prob(x, 1e-2))(xs)
    errors = [
        np.abs(jax.vmap(lambda x, n=n: log_likelihood(den.score, x, sigma_min=1e-2, steps=n))(xs) - exact)
        for n in (100, 200, 400)
    ]
    assert np.all(errors[-1] < 0.01)
    # Heun is second order: halving the step quarters the error (of the far point, where it shows).
    assert 3.0 < errors[0][1] / errors[1][1] < 5.0 and 3.0 < errors[1][1] / errors[2][1] < 5.0


def test_event_probability_from_two_likelihoods_matches_the_analytic_value():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    a = jnp.array([1.0, -0.5, 0.8])
    probability = 3e-3
    b = float(jnp.sqrt(a @ COV @ a)) * norm.isf(probability)
    event = lambda x: a @ x - b
    cond = EventConditionedScore(den, event)
    xs = jax.jit(lambda k: sample(cond, k, 64, (3,), steps=200))(jax.random.key(0))
    xs = xs[np.asarray(event_satisfied(event, xs))][:8]
    lik = eqx.filter_jit(jax.vmap(lambda score, x: log_likelihood(score, x, steps=100), in_axes=(None, 0)))
    estimate = np.asarray(lik(den.score, xs) - lik(cond, xs))
    assert abs(np.mean(estimate) - math.log(probability)) < 0.15


def test_log_likelihood_refuses_a_bad_noise_range():
    den = GaussianDenoiser(jnp.zeros(3), COV)
    with pytest.raises(ValueError, match="sigma_min"):
        log_likelihood(den.score, jnp.zeros(3), sigma_min=2.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="steps"):
        log_likelihood(den.score, jnp.zeros(3), steps=0)
