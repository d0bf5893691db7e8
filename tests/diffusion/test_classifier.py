import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.stats import norm

from physbias.diffusion import (
    ClassifierGuidedScore,
    EventClassifier,
    GaussianDenoiser,
    balanced_event_data,
    event_classifier_loss,
    event_log_probability_smc,
    event_satisfied,
    sample,
)
from physbias.train import fit

COV = jnp.array([[1.0, 0.6], [0.6, 0.8]])
A = jnp.array([1.0, -0.4])
PROBABILITY = 0.01
B = float(jnp.sqrt(A @ COV @ A)) * norm.isf(PROBABILITY)


def _exact_log_probability(x, sigma):
    """log P(a·x_0 > b | x_sigma = x) for x_0 ~ N(0, COV): the Gaussian posterior's tail."""
    gain = COV @ jnp.linalg.inv(COV + sigma**2 * jnp.eye(2))
    mean, cov = gain @ x, COV - gain @ COV
    return norm.logsf(B, loc=float(A @ mean), scale=float(jnp.sqrt(A @ cov @ A)))


@pytest.fixture(scope="module")
def trained():
    """A classifier of the linear event fitted to 20 000 Gaussian samples (about 5 s)."""
    key = jax.random.key(0)
    samples = jax.random.multivariate_normal(key, jnp.zeros(2), COV, (20_000,))
    x, y, prior = balanced_event_data(samples, np.asarray(samples @ A > B))
    classifier = EventClassifier((2,), jax.random.key(1), prior=prior, width=64, depth=2)
    steps = 12 * (len(y) // 512)
    result = fit(
        classifier,
        lambda m, b, k: event_classifier_loss(m, b[0], b[1], k, sigma_range=(1e-3, 20.0)),
        (jnp.asarray(x), jnp.asarray(y, jnp.float32)),
        key=jax.random.key(2),
        epochs=12,
        batch_size=512,
        optimizer=optax.adam(optax.cosine_decay_schedule(2e-3, steps, 0.05)),
        progress=False,
    )
    return result.model, prior


def test_balanced_data_repeat_the_rare_class_and_keep_its_prior():
    samples = np.arange(10.0)[:, None]
    labels = np.array([True, False, False, True] + [False] * 6)
    x, y, prior = balanced_event_data(samples, labels)
    assert prior == pytest.approx(0.2)
    assert y.sum() == (~y).sum() == 8
    assert set(x[y, 0]) == {0.0, 3.0} and set(x[~y, 0]) == set(samples[~labels, 0])


def test_classifier_refuses_bad_input():
    with pytest.raises(ValueError, match="labels"):
        balanced_event_data(np.zeros((4, 2)), np.array([1, 0, 1, 0]))
    with pytest.raises(ValueError, match="labels"):
        balanced_event_data(np.zeros((4, 2)), np.array([True, False, True]))
    with pytest.raises(ValueError, match="both in and out"):
        balanced_event_data(np.zeros((4, 2)), np.zeros(4, bool))
    with pytest.raises(ValueError, match="samples"):
        balanced_event_data(np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([True, False]))
    with pytest.raises(ValueError, match="prior"):
        EventClassifier((2,), jax.random.key(0), prior=0.0)
    with pytest.raises(ValueError, match="shape"):
        EventClassifier((0,), jax.random.key(0), prior=0.1)
    with pytest.raises(TypeError, match="EventClassifier"):
        ClassifierGuidedScore(GaussianDenoiser(jnp.zeros(2), COV), lambda x, s: 0.0, lambda x: x[0])


def test_an_untrained_classifier_answers_the_prior():
    classifier = EventClassifier((2,), jax.random.key(0), prior=0.03)
    assert float(classifier(jnp.array([0.3, -1.0]), 0.5)) == pytest.approx(math.log(0.03), abs=1e-6)


def test_classifier_learns_the_posterior_probability_of_the_event(trained):
    # Against the exact Gaussian posterior tail, from P ~ 1e-3 up to P ~ 1, at small and large noise.
    classifier, prior = trained
    assert prior == pytest.approx(PROBABILITY, rel=0.15)
    errors = []
    for sigma in (0.05, 0.5, 3.0):
        for x in ([0.0, 0.0], [1.5, -0.5], [2.5, 0.5], [3.5, -1.0]):
            x = jnp.asarray(x) * math.sqrt(1 + sigma**2)
            exact = _exact_log_probability(x, sigma)
            if exact > math.log(1e-3):
                errors.append(float(classifier(x, jnp.asarray(sigma))) - exact)
    assert len(errors) >= 7
    assert np.max(np.abs(errors)) < 0.5, np.round(errors, 2)


def test_classifier_guidance_samples_the_event_and_twisted_smc_measures_it(trained):
    # What the learned guidance allows: conditional samples in E, and P(E) by twisted SMC.
    classifier, _ = trained
    den = GaussianDenoiser(jnp.zeros(2), COV)
    event = lambda x: A @ x - B
    guided = ClassifierGuidedScore(den, classifier, event)
    draw = eqx.filter_jit(lambda c, k: sample(c, k, 256, (2,), sigma_max=20.0, steps=200))
    xs = draw(guided, jax.random.key(3))
    assert float(np.mean(event_satisfied(event, xs))) > 0.85
    estimate = eqx.filter_jit(
        lambda c, k: event_log_probability_smc(c, k, 256, (2,), sigma_max=20.0, steps=200, twist_scale=None)
    )(guided, jax.random.key(4))
    assert float(estimate.log_probability) == pytest.approx(math.log(PROBABILITY), abs=0.15)
    assert float(estimate.fraction_in_event) > 0.85
