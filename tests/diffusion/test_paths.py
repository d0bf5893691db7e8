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
    event_log_probability_from_paths,
    event_log_probability_smc,
    noise_levels,
    sample,
    twisted_smc,
    weighted_sample,
)

COV = np.array([[1.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]])
A = np.array([1.0, -0.5, 0.8])
SIGMA_MAX, STEPS = 20.0, 200


def _euler_maruyama_covariance(steps, sigma_min=1e-3):
    """The exact covariance of the plain Euler-Maruyama chain's output for N(0, COV) data: each step
    x' = (I - v (COV + sigma^2 I)^-1) x + sqrt(v) z is linear, so the chain stays Gaussian."""
    sigmas = np.asarray(noise_levels(sigma_min, SIGMA_MAX, steps), np.float64)
    cov = SIGMA_MAX**2 * np.eye(3)
    for s_now, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        var = s_now**2 - s_next**2
        m = np.eye(3) - var * np.linalg.inv(COV + s_now**2 * np.eye(3))
        cov = m @ cov @ m.T + var * np.eye(3)
    return cov


def _event(probability):
    b = math.sqrt(A @ COV @ A) * norm.isf(probability)
    return (lambda x: jnp.asarray(A, x.dtype) @ x - b), b


def _chain_log_probability(b):
    """log P(A x > b) under the plain chain: what the weighted paths estimate without bias."""
    return norm.logsf(b / math.sqrt(A @ _euler_maruyama_covariance(STEPS) @ A))


def _estimate(conditional, n=512, seed=0):
    f = eqx.filter_jit(
        lambda c, k: event_log_probability_from_paths(c, k, n, (3,), sigma_max=SIGMA_MAX, steps=STEPS)
    )
    return f(conditional, jax.random.key(seed))


def test_without_guidance_the_weights_vanish_and_the_samples_are_the_plain_samplers():
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    key = jax.random.key(3)
    xs, log_w = weighted_sample(
        lambda x, s: (den.score(x, s), jnp.zeros_like(x)), key, 16, (3,), sigma_max=SIGMA_MAX, steps=50
    )
    np.testing.assert_array_equal(log_w, np.zeros(16))
    np.testing.assert_allclose(xs, sample(den.score, key, 16, (3,), sigma_max=SIGMA_MAX, steps=50), rtol=1e-6)


@pytest.mark.parametrize("probability", [1e-3])
def test_weighted_paths_give_the_plain_chains_event_probability(probability):
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(probability)
    estimate = _estimate(EventConditionedScore(den, event))
    exact = _chain_log_probability(b)
    se = float(estimate.standard_error)
    # The probit guidance is the exact h-transform here, up to discretisation: nearly equal weights.
    assert se < 0.05
    assert abs(float(estimate.log_probability) - exact) < 3 * se + 0.01, (
        float(estimate.log_probability),
        exact,
    )
    assert float(estimate.effective_sample_size) > 300
    # The chain itself over-disperses: with 200 steps its P(E) is above the data's, more for rarer E.
    assert exact - math.log(probability) == pytest.approx(
        {1e-1: 0.055, 1e-3: 0.253, 1e-5: 0.464}[probability], abs=0.01
    )


def test_weighted_paths_are_unbiased_for_a_poor_guidance_too():
    # The logistic link under-guides rare events (fewer paths reach E), and a floor 1e4 times too
    # large blurs the guidance: the weights make up for both, at the cost of a larger error bar.
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(1e-3)
    exact = _chain_log_probability(b)
    for cond in (
        EventConditionedScore(den, event, link="logistic"),
        EventConditionedScore(den, event, floor=10.0),
    ):
        estimate = _estimate(cond, n=1024, seed=1)
        se = float(estimate.standard_error)
        assert float(jnp.mean(estimate.in_event)) < 0.9
        assert abs(float(estimate.log_probability) - exact) < 3 * se + 0.02, (
            float(estimate.log_probability),
            exact,
            se,
        )


def _smc(conditional, seed=0, twist_scale=None):
    # The probit twist is exact for Gaussian data at every noise level: untempered by default here.
    f = eqx.filter_jit(
        lambda c, k: event_log_probability_smc(
            c, k, 256, (3,), replicates=4, sigma_max=SIGMA_MAX, steps=STEPS, twist_scale=twist_scale
        )
    )
    return f(conditional, jax.random.key(seed))


@pytest.mark.parametrize("probability", [1e-1, 1e-5])
def test_twisted_smc_gives_the_plain_chains_event_probability(probability):
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(probability)
    estimate = _smc(EventConditionedScore(den, event))
    se = float(estimate.standard_error)
    assert se < 0.05
    assert abs(float(estimate.log_probability) - _chain_log_probability(b)) < 3 * se + 0.02
    # The chain over-disperses (log P(E) too high by 0.055 and 0.46 with 200 steps): the estimate
    # sees it, i.e. it does not just return the data's probability.
    assert float(estimate.log_probability) - math.log(probability) > {1e-1: 0.0, 1e-5: 0.3}[probability]


def test_twisted_smc_of_denoised_samples_gives_the_denoised_chains_event_probability():
    # Stopped at sigma_min = 0.5, the chain's output x is Gaussian; its Tweedie estimate is the linear
    # D(x) = COV (COV + sigma^2 I)^-1 x, so P(A D(x) > b) is exact. The noisy output's probability
    # is far from it: the estimate must target the denoised samples. (The twist, P(A x_0 > b | x),
    # is a poor one for the denoised event at so high a sigma_min: hence a common event here.)
    sigma = 0.5
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(3e-2)
    f = eqx.filter_jit(
        lambda c, k, d: event_log_probability_smc(
            c, k, 256, (3,), replicates=4, sigma_min=sigma, sigma_max=SIGMA_MAX, steps=STEPS, denoise=d
        )
    )
    cond = EventConditionedScore(den, event)
    clean, noisy = f(cond, jax.random.key(0), True), f(cond, jax.random.key(0), False)
    chain = _euler_maruyama_covariance(STEPS, sigma)
    tweedie = COV @ np.linalg.inv(COV + sigma**2 * np.eye(3))
    exact_clean = norm.logsf(b / math.sqrt(A @ tweedie @ chain @ tweedie.T @ A))
    exact_noisy = norm.logsf(b / math.sqrt(A @ chain @ A))
    assert exact_noisy - exact_clean > 1.5
    for estimate, exact in ((clean, exact_clean), (noisy, exact_noisy)):
        se = float(estimate.standard_error)
        assert abs(float(estimate.log_probability) - exact) < 3 * se + 0.05


def test_twisted_smc_is_unbiased_for_a_guidance_that_misses_most_of_the_event():
    # The logistic link under-guides a 1e-5 event: a quarter of the particles end outside E before
    # the last reweighting even with resampling (8% with the probit link), and the weights keep the
    # estimate on the chain's value.
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(1e-5)
    estimate = _smc(EventConditionedScore(den, event, link="logistic"), seed=1)
    se = float(estimate.standard_error)
    assert float(estimate.fraction_in_event) < 0.8
    assert float(jnp.sum(estimate.smc.resamples)) > 0
    assert abs(float(estimate.log_probability) - _chain_log_probability(b)) < 3 * se + 0.02, se


def test_a_tempered_twist_keeps_the_estimate_unbiased_at_a_larger_error_bar():
    # Tempering an exact twist (the library's default for learned denoisers) throws information
    # away: larger weights' spread, same expectation.
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, b = _event(1e-3)
    cond = EventConditionedScore(den, event)
    exact, tempered = _smc(cond, seed=3), _smc(cond, seed=3, twist_scale=1.0)
    assert float(tempered.standard_error) > float(exact.standard_error)
    error = float(tempered.log_probability) - _chain_log_probability(b)
    assert abs(error) < 3 * float(tempered.standard_error) + 0.02, error
    with pytest.raises(ValueError, match="twist_scale"):
        event_log_probability_smc(cond, jax.random.key(0), 4, (3,), twist_scale=0.0)


def test_twisted_smc_without_twist_or_guidance_counts_the_plain_samples_in_the_event():
    # h = 1 and b = 0: equal weights throughout, no resampling, Z = the fraction of plain samples in E.
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    event, _ = _event(0.2)
    flat = lambda x, s: (den.score(x, s), jnp.zeros_like(x), jnp.zeros((), x.dtype))
    result = twisted_smc(
        flat,
        lambda x: jnp.where(event(x) > 0, 0.0, -jnp.inf),
        jax.random.key(2),
        400,
        (3,),
        replicates=2,
        sigma_max=SIGMA_MAX,
        steps=50,
    )
    fractions = np.mean(np.asarray(jax.vmap(jax.vmap(event))(result.samples)) > 0, axis=1)
    np.testing.assert_allclose(np.exp(np.asarray(result.log_normaliser)), fractions, rtol=1e-5)
    np.testing.assert_array_equal(result.resamples, [0.0, 0.0])
    np.testing.assert_allclose(result.min_effective_sample_size, [400.0, 400.0], rtol=1e-5)


def test_twisted_smc_refuses_bad_sizes():
    drift = lambda x, s: (x, x, jnp.zeros(()))
    target = lambda x: jnp.zeros(())
    with pytest.raises(ValueError, match="`n`"):
        twisted_smc(drift, target, jax.random.key(0), 0, (2,))
    with pytest.raises(ValueError, match="replicates"):
        twisted_smc(drift, target, jax.random.key(0), 4, (2,), replicates=0)
    with pytest.raises(ValueError, match="resample_below"):
        twisted_smc(drift, target, jax.random.key(0), 4, (2,), resample_below=1.5)


def test_no_path_in_the_event_gives_minus_infinity_and_no_effective_samples():
    den = GaussianDenoiser(jnp.zeros(3), jnp.asarray(COV))
    never = EventConditionedScore(den, lambda x: -1.0 - jnp.sum(x**2), floor=1.0)
    estimate = event_log_probability_from_paths(
        never, jax.random.key(0), 8, (3,), sigma_max=SIGMA_MAX, steps=20
    )
    assert float(estimate.log_probability) == -math.inf
    assert float(estimate.effective_sample_size) == 0.0
    assert float(estimate.standard_error) == math.inf


def test_weighted_sample_refuses_bad_sizes():
    drift = lambda x, s: (x, x)
    with pytest.raises(ValueError, match="`n`"):
        weighted_sample(drift, jax.random.key(0), 0, (2,))
    with pytest.raises(ValueError, match="corrector_steps"):
        weighted_sample(drift, jax.random.key(0), 4, (2,), corrector_steps=-1)
    with pytest.raises(ValueError, match="steps"):
        weighted_sample(drift, jax.random.key(0), 4, (2,), steps=0)
    with pytest.raises(ValueError, match="snr"):
        weighted_sample(drift, jax.random.key(0), 4, (2,), snr=float("nan"))
