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
    NestedEventClassifier,
    balanced_band_data,
    balanced_event_data,
    event_classifier_loss,
    event_log_probability_smc,
    event_satisfied,
    nested_event_classifier_loss,
    sample,
)
from physbias.train import fit

COV = jnp.array([[1.0, 0.6], [0.6, 0.8]])
A = jnp.array([1.0, -0.4])
PROBABILITY = 0.01
B = float(jnp.sqrt(A @ COV @ A)) * norm.isf(PROBABILITY)


LEVELS = (0.1, 0.01, 0.001)
THRESHOLDS = [float(jnp.sqrt(A @ COV @ A)) * norm.isf(p) for p in LEVELS]


def _exact_log_probability(x, sigma, threshold=B):
    """log P(a·x_0 > b | x_sigma = x) for x_0 ~ N(0, COV): the Gaussian posterior's tail."""
    gain = COV @ jnp.linalg.inv(COV + sigma**2 * jnp.eye(2))
    mean, cov = gain @ x, COV - gain @ COV
    return norm.logsf(threshold, loc=float(A @ mean), scale=float(jnp.sqrt(A @ cov @ A)))


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


@pytest.fixture(scope="module")
def nested():
    """One classifier of the linear event at P = 0.1, 0.01 and 0.001, fitted to 40 000 samples."""
    samples = jax.random.multivariate_normal(jax.random.key(5), jnp.zeros(2), COV, (40_000,))
    projection = np.asarray(samples @ A)
    labels = np.stack([projection > t for t in THRESHOLDS], axis=1)
    x, bands, priors = balanced_band_data(samples, labels)
    classifier = NestedEventClassifier((2,), jax.random.key(6), priors=priors, width=64, depth=2)
    epochs = 12
    steps = epochs * (len(bands) // 512)
    result = fit(
        classifier,
        lambda m, b, k: nested_event_classifier_loss(m, b[0], b[1], k, sigma_range=(1e-3, 20.0)),
        (jnp.asarray(x), jnp.asarray(bands)),
        key=jax.random.key(7),
        epochs=epochs,
        batch_size=512,
        optimizer=optax.adam(optax.cosine_decay_schedule(2e-3, steps, 0.05)),
        progress=False,
    )
    return result.model, priors


def test_band_data_balance_every_band_and_keep_their_priors():
    samples = np.arange(10.0)[:, None]
    labels = np.zeros((10, 2), bool)
    labels[[1, 4, 7], 0] = True
    labels[[4], 1] = True
    x, bands, priors = balanced_band_data(samples, labels)
    assert priors == pytest.approx([0.7, 0.2, 0.1])
    assert np.bincount(bands).tolist() == [7, 7, 7]
    assert set(x[bands == 2, 0]) == {4.0} and set(x[bands == 1, 0]) == {1.0, 7.0}


def test_nested_classifier_refuses_bad_input():
    with pytest.raises(ValueError, match="nested"):
        balanced_band_data(np.zeros((3, 1)), np.array([[True, False], [False, True], [False, False]]))
    with pytest.raises(ValueError, match="every band"):
        balanced_band_data(np.zeros((3, 1)), np.array([[True, False], [False, False], [False, False]]))
    with pytest.raises(ValueError, match="labels"):
        balanced_band_data(np.zeros((3, 1)), np.array([True, False, False]))
    with pytest.raises(ValueError, match="priors"):
        NestedEventClassifier((2,), jax.random.key(0), priors=(0.5, 0.6))
    with pytest.raises(ValueError, match="level"):
        NestedEventClassifier((2,), jax.random.key(0), priors=(0.5, 0.5)).level(2)


def test_an_untrained_nested_classifier_answers_the_priors():
    classifier = NestedEventClassifier((2,), jax.random.key(0), priors=(0.89, 0.1, 0.01))
    expected = np.log([0.11, 0.01])
    assert classifier.event_priors() == pytest.approx([0.11, 0.01])
    assert np.asarray(classifier(jnp.array([0.3, -1.0]), 0.5)) == pytest.approx(expected, abs=1e-5)
    assert float(classifier.level(2)(jnp.zeros(2), 3.0)) == pytest.approx(expected[1], abs=1e-5)


def test_nested_classifier_learns_every_level(nested):
    # Each level against the exact Gaussian posterior tail, down to P ~ 1e-3, at small and large noise,
    # where the noised data are (within 3 standard deviations: beyond, every classifier extrapolates).
    classifier, priors = nested
    assert priors[1:].sum() == pytest.approx(0.1, rel=0.1) and priors[-1] == pytest.approx(1e-3, rel=0.4)
    errors = []
    for sigma in (0.05, 0.5, 3.0):
        marginal = np.linalg.inv(np.asarray(COV) + sigma**2 * np.eye(2))
        for x in ([0.0, 0.0], [1.5, -0.5], [2.5, 0.5], [3.5, -1.0], [2.0, 2.0]):
            x = jnp.asarray(x) * math.sqrt(1 + sigma**2)
            if float(x @ marginal @ x) > 9:
                continue
            learned = np.asarray(classifier(x, jnp.asarray(sigma)))
            for k, threshold in enumerate(THRESHOLDS):
                exact = _exact_log_probability(x, sigma, threshold)
                if exact > math.log(1e-3):
                    errors.append(float(learned[k]) - exact)
    assert len(errors) >= 15
    assert np.max(np.abs(errors)) < 0.5, np.round(errors, 2)


def test_nested_classifier_guides_its_rarest_level(nested):
    # What one level allows: conditional samples in the 1e-3 event, and by twisted SMC the sampler's
    # own P(E), which 200 Euler-Maruyama steps leave above 1e-3 (its spread is 2% wide: -6.64
    # measured by 400 000 plain samples), counted here by plain sampling.
    classifier, _ = nested
    event = lambda x: A @ x - THRESHOLDS[-1]
    den = GaussianDenoiser(jnp.zeros(2), COV)
    plain = eqx.filter_jit(lambda k: sample(den.score, k, 200_000, (2,), sigma_max=20.0, steps=200))
    own = math.log(float(np.mean(event_satisfied(event, plain(jax.random.key(9))))))
    assert own == pytest.approx(math.log(LEVELS[-1]), abs=0.35)
    guided = ClassifierGuidedScore(den, classifier.level(3), event)
    estimate = eqx.filter_jit(
        lambda c, k: event_log_probability_smc(c, k, 256, (2,), sigma_max=20.0, steps=200, twist_scale=None)
    )(guided, jax.random.key(8))
    assert float(estimate.fraction_in_event) > 0.85
    assert float(estimate.log_probability) == pytest.approx(own, abs=0.2)
