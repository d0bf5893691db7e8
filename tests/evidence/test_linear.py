"""Exact evidence of Bayesian linear regression: the two forms, the reference formula, gradients,
and type-II maximum likelihood of the symmetry strength (seed 003, research M18 (e))."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats

from physbias import fit
from physbias.bias import Parity, Permutation
from physbias.evidence import (
    BayesianLinearRegression,
    InterpolatedFeatures,
    RandomFourierFeatures,
    RBFFeatures,
    SymmetrizedFeatures,
    evidence_loss,
    linear_log_evidence,
)
from physbias.train import only


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _data(target, key, n=30, noise=0.1):
    kx, ke = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 1), jnp.float64, -3.0, 3.0)
    return x, target(x[:, 0]) + noise * jax.random.normal(ke, (n,), jnp.float64)


EVEN = lambda x: jnp.cos(2.0 * x) * jnp.exp(-(x**2) / 8.0) + 0.1 * x**2  # noqa: E731
NON_EVEN = lambda x: jnp.sin(1.5 * x) + EVEN(x)  # noqa: E731


@pytest.mark.parametrize("n, m", [(30, 100), (40, 12)])
def test_function_and_weight_forms_agree_and_match_the_gaussian_density(n, m):
    key = jax.random.key(0)
    phi = jax.random.normal(key, (n, m), jnp.float64)
    y = jax.random.normal(jax.random.key(1), (n,), jnp.float64)
    alpha, sigma = 2.5, 0.3
    a = linear_log_evidence(phi, y, alpha, sigma, form="function")
    b = linear_log_evidence(phi, y, alpha, sigma, form="weights")
    assert abs(float(a) - float(b)) < 1e-8
    # Reference: y ~ N(0, Phi Phi^T / alpha + sigma^2 I), by SciPy.
    cov = np.asarray(phi) @ np.asarray(phi).T / alpha + sigma**2 * np.eye(n)
    ref = scipy.stats.multivariate_normal(np.zeros(n), cov).logpdf(np.asarray(y))
    assert abs(float(a) - ref) < 1e-8


def test_evidence_gradient_in_lambda_matches_central_differences():
    x, y = _data(EVEN, jax.random.key(2))
    rff = RandomFourierFeatures(1, 100, 1.0, key=jax.random.key(3), dtype=jnp.float64)
    model = BayesianLinearRegression(InterpolatedFeatures(rff, Parity(odd=False), 0.7), 0.5, 0.1)

    def evidence_at(logit):
        m = jax.tree_util.tree_map(lambda v: v, model)
        m = __import__("equinox").tree_at(lambda m: m.features.logit, m, logit)
        return m.log_evidence(x, y)

    logit = model.features.logit
    grad = jax.grad(evidence_at)(logit)
    h = 1e-5
    fd = (evidence_at(logit + h) - evidence_at(logit - h)) / (2 * h)
    assert abs(float(grad) - float(fd)) < 1e-5 * max(1.0, abs(float(fd)))
    assert abs(float(grad)) > 1e-3  # the check is not trivially 0 = 0


def test_symmetrised_features_are_invariant_and_interpolation_hits_its_ends():
    rff = RandomFourierFeatures(3, 20, 2.0, key=jax.random.key(0), dtype=jnp.float64)
    x = jax.random.normal(jax.random.key(1), (3,), jnp.float64)
    sym = SymmetrizedFeatures(rff, Permutation(3))
    np.testing.assert_allclose(sym(x[::-1]), sym(x), atol=1e-14)
    np.testing.assert_allclose(sym(x[jnp.array([1, 2, 0])]), sym(x), atol=1e-14)
    parity = Parity(odd=False)
    for lam, expected in ((1e-9, rff(x)), (1.0, 0.5 * (rff(x) + rff(-x))), (2 - 1e-9, rff(-x))):
        np.testing.assert_allclose(InterpolatedFeatures(rff, parity, lam)(x), expected, atol=1e-8)


def test_rff_features_approximate_the_rbf_kernel():
    rff = RandomFourierFeatures(2, 20000, 4.0, key=jax.random.key(0), dtype=jnp.float64)
    a, b = jnp.array([0.1, -0.2]), jnp.array([0.4, 0.1])
    kernel = float(rff(a) @ rff(b))
    assert kernel == pytest.approx(float(jnp.exp(-0.5 * 4.0 * jnp.sum((a - b) ** 2))), abs=0.02)


def test_predictive_mean_is_the_posterior_mean_of_a_known_case():
    # One feature phi(x) = x: the posterior mean slope is sum(xy) / (sum(x^2) + alpha sigma^2).
    x = jnp.array([[1.0], [2.0], [3.0]])
    y = jnp.array([1.1, 1.9, 3.2])
    centres = jnp.zeros((1, 1))
    model = BayesianLinearRegression(RBFFeatures(centres, 1e-12), 2.0, 0.5)  # phi ~ 1 (constant)
    mean, var = model.predict(x, y, jnp.array([[0.0]]))
    slope = jnp.sum(y) / (3 + 2.0 * 0.25)
    assert float(mean[0]) == pytest.approx(float(slope), rel=1e-6)
    assert float(var[0]) == pytest.approx(1 / (2.0 + 3 / 0.25), rel=1e-6)


@pytest.mark.parametrize("target, even", [(EVEN, True), (NON_EVEN, False)])
def test_learned_lambda_finds_the_symmetry_of_the_data(target, even):
    x, y = _data(target, jax.random.key(4))
    rff = RandomFourierFeatures(1, 100, 1.0, key=jax.random.key(5), dtype=jnp.float64)
    model = BayesianLinearRegression(InterpolatedFeatures(rff, Parity(odd=False), 0.5), 1.0, 0.1)
    result = fit(
        model, evidence_loss(), (x, y), key=jax.random.key(6), epochs=400, learning_rate=0.05, progress=False
    )
    lam = float(result.model.features.strength)
    if even:
        assert 0.9 <= lam <= 1.1
    else:
        assert abs(lam - 1) >= 0.8


def test_training_error_does_not_pick_the_symmetry_but_test_error_and_evidence_do():
    x, y = _data(EVEN, jax.random.key(7))
    xt = jnp.linspace(-3, 3, 200)[:, None]
    rff = RandomFourierFeatures(1, 100, 3.0, key=jax.random.key(8), dtype=jnp.float64)
    base = BayesianLinearRegression(InterpolatedFeatures(rff, Parity(odd=False), 0.5), 1.0, 0.1)
    opt = only(optax.adam(0.05), base, lambda m: (m.log_prior_precision, m.log_noise_std))
    rows = []
    import equinox as eqx

    for lam in (0.01, 0.5, 1.0, 1.5, 1.99):
        p = lam / 2
        m = eqx.tree_at(lambda m: m.features.logit, base, jnp.asarray(np.log(p / (1 - p))))
        m = fit(
            m, evidence_loss(), (x, y), key=jax.random.key(0), epochs=200, optimizer=opt, progress=False
        ).model
        train = float(jnp.sqrt(jnp.mean((m.predict(x, y, x)[0] - y) ** 2)))
        test = float(jnp.sqrt(jnp.mean((m.predict(x, y, xt)[0] - EVEN(xt[:, 0])) ** 2)))
        rows.append((lam, train, test, float(m.log_evidence(x, y))))
    by_train = min(rows, key=lambda r: r[1])[0]
    by_test = min(rows, key=lambda r: r[2])[0]
    by_evidence = max(rows, key=lambda r: r[3])[0]
    assert by_train != 1.0 and by_test == 1.0 and by_evidence == 1.0


def test_only_moves_the_selected_leaves():
    x, y = _data(EVEN, jax.random.key(9))
    rff = RandomFourierFeatures(1, 50, 1.0, key=jax.random.key(10), dtype=jnp.float64)
    model = BayesianLinearRegression(rff, 1.0, 0.5)
    opt = only(optax.adam(0.05), model, lambda m: m.log_noise_std)
    trained = fit(
        model, evidence_loss(), (x, y), key=jax.random.key(0), epochs=50, optimizer=opt, progress=False
    ).model
    assert float(trained.log_noise_std) != float(model.log_noise_std)
    assert float(trained.log_prior_precision) == float(model.log_prior_precision)
    assert float(trained.features.log_omega2) == float(model.features.log_omega2)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.ones(4), 1.0, 1.0),
            ValueError,
            "`y` must have shape",
        ),
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.ones((3, 1)), 1.0, 1.0),
            ValueError,
            "`y` must have shape",
        ),
        (lambda: linear_log_evidence(jnp.ones((0, 2)), jnp.ones(0), 1.0, 1.0), ValueError, "empty"),
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.array([1.0, jnp.nan, 0.0]), 1.0, 1.0),
            ValueError,
            "`y` contains NaN",
        ),
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.ones(3), 0.0, 1.0),
            ValueError,
            "`prior_precision` must be positive",
        ),
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.ones(3), 1.0, -1.0),
            ValueError,
            "`noise_std` must be positive",
        ),
        (
            lambda: linear_log_evidence(jnp.ones((3, 2)), jnp.ones(3), 1.0, 1.0, form="x"),
            ValueError,
            "`form`",
        ),
        (lambda: RandomFourierFeatures(1, 0, key=jax.random.key(0)), ValueError, "`n_features`"),
        (lambda: RandomFourierFeatures(1, 5, -1.0, key=jax.random.key(0)), ValueError, "`omega2`"),
        (lambda: RBFFeatures(jnp.array([[jnp.inf]])), ValueError, "`centres` contains NaN"),
        (lambda: InterpolatedFeatures(lambda x: x, Parity(), 2.5), ValueError, "`strength` must lie in"),
        (
            lambda: RandomFourierFeatures(2, 5, key=jax.random.key(0))(jnp.ones(3)),
            ValueError,
            "shape \\(2,\\)",
        ),
        (lambda: BayesianLinearRegression(lambda x: x, 1.0, 0.0), ValueError, "`noise_std`"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_continuous_symmetry_cannot_be_averaged():
    from physbias.bias import Scaling

    with pytest.raises(ValueError, match="finite symmetry"):
        SymmetrizedFeatures(lambda x: x, Scaling())


def test_a_finite_matrix_group_symmetrises_a_basis_and_a_mismatched_symmetry_is_refused():
    from physbias.bias import MatrixSymmetry
    from physbias.groups import S, V

    rff = RandomFourierFeatures(3, 10, 1.0, key=jax.random.key(0), dtype=jnp.float64)
    sym = SymmetrizedFeatures(rff, MatrixSymmetry(S(3), V, V))
    x = jax.random.normal(jax.random.key(1), (3,), jnp.float64)
    np.testing.assert_allclose(sym(x[jnp.array([2, 0, 1])]), sym(x), atol=1e-12)
    with pytest.raises(ValueError, match="maps an input of shape"):
        SymmetrizedFeatures(RandomFourierFeatures(2, 5, key=jax.random.key(0)), Permutation(3))(jnp.ones(2))
