"""Laplace evidence against references: the exact evidence of a linear-Gaussian model, dense
log-determinants of Kronecker products, the full GGN by explicit Jacobians, and the toy regression
of laplace-torch (research M19 (e))."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias import fit
from physbias.evidence import (
    KroneckerFactors,
    categorical_output_hessian,
    gaussian_output_hessian,
    ggn_diagonal,
    ggn_full,
    ggn_kfac,
    kfac_logdet,
    laplace,
    laplace_log_evidence,
    linear_log_evidence,
    map_loss,
    optimize_hyperparameters,
    parameter_groups,
    predictive,
)
from physbias.marglik import marglik_fit
from physbias.train import adam_cosine


@pytest.fixture(autouse=True)
def _float64():
    with jax.enable_x64(True):
        yield


def _linear_data(n=25, d=3, key=0):
    k1, k2 = jax.random.split(jax.random.key(key))
    x = jax.random.normal(k1, (n, d), jnp.float64)
    y = x @ jnp.array([0.5, -1.0, 2.0][:d]) + 0.3 + 0.2 * jax.random.normal(k2, (n,), jnp.float64)
    return x, y


@pytest.mark.parametrize("curvature", ["full", "kfac"])
def test_laplace_evidence_of_a_linear_gaussian_model_is_exact(curvature):
    # For a linear model with Gaussian noise the posterior is Gaussian: Laplace at the posterior
    # mean is exact (research M19 (e): to 1e-8).
    x, y = _linear_data()
    alpha, sigma = 0.7, 0.25
    phi = jnp.concatenate([x, jnp.ones((x.shape[0], 1))], axis=1)
    precision = alpha * jnp.eye(4) + phi.T @ phi / sigma**2
    mean = jnp.linalg.solve(precision, phi.T @ y) / sigma**2
    layer = eqx.nn.Linear(3, "scalar", key=jax.random.key(0), dtype=jnp.float64)
    layer = eqx.tree_at(lambda m: (m.weight, m.bias), layer, (mean[:3][None, :], mean[3:]))
    exact = linear_log_evidence(phi, y, alpha, sigma)
    approx = laplace_log_evidence(layer, (x, y), curvature=curvature, prior_precision=alpha, noise_std=sigma)
    assert abs(float(approx) - float(exact)) < 1e-8


def test_kfac_logdet_equals_the_dense_slogdet_of_the_kronecker_product():
    kb, ka = jax.random.split(jax.random.key(1))
    b = jax.random.normal(kb, (4, 4), jnp.float64)
    a = jax.random.normal(ka, (3, 3), jnp.float64)
    b, a = b @ b.T, a @ a.T
    c, delta = 2.5, 0.3
    factors = KroneckerFactors([jnp.linalg.eigvalsh(b)], [jnp.linalg.eigvalsh(a)])
    dense = jnp.linalg.slogdet(c * jnp.kron(b, a) + delta * jnp.eye(12))[1]
    assert abs(float(kfac_logdet(factors, c, jnp.asarray(delta))) - float(dense)) < 1e-10


def test_kfac_equals_the_full_ggn_for_one_linear_layer_with_scalar_output():
    x, _ = _linear_data(n=30, key=2)
    layer = eqx.nn.Linear(3, "scalar", key=jax.random.key(3), dtype=jnp.float64)
    full = ggn_full(layer, x, gaussian_output_hessian)
    factors = ggn_kfac(layer, x, gaussian_output_hessian)
    for c, delta in ((1.0, 1e-3), (4.0, 0.5)):
        dense = jnp.linalg.slogdet(c * full + delta * jnp.eye(4))[1]
        assert abs(float(kfac_logdet(factors, c, jnp.asarray(delta))) - float(dense)) < 1e-9


def _mlp(key=0, out=2):
    return eqx.nn.MLP(3, out, 5, 2, activation=jnp.tanh, key=jax.random.key(key), dtype=jnp.float64)


@pytest.mark.parametrize("hessian", [gaussian_output_hessian, categorical_output_hessian])
def test_full_and_diagonal_ggn_match_explicit_jacobians(hessian):
    from jax.flatten_util import ravel_pytree

    model = _mlp()
    x, _ = _linear_data(n=7, key=4)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)
    f = lambda p, xn: eqx.combine(unravel(p), static)(xn)  # noqa: E731
    reference = sum(jax.jacfwd(f)(flat, xn).T @ hessian(f(flat, xn)) @ jax.jacfwd(f)(flat, xn) for xn in x)
    full = ggn_full(model, x, hessian, chunk=3)  # chunks of 3 and a remainder of 1
    np.testing.assert_allclose(full, reference, atol=1e-10)
    np.testing.assert_allclose(ggn_diagonal(model, x, hessian, chunk=3), jnp.diag(reference), atol=1e-10)


def test_kfac_factors_match_their_definition_on_a_two_layer_network():
    # B_l = sum_n g^T g (output Jacobians in the pre-activation), A_l = mean_n [a; 1][a; 1]^T.
    model = eqx.nn.MLP(2, 1, 3, 1, activation=jnp.tanh, key=jax.random.key(5), dtype=jnp.float64)
    x, _ = _linear_data(n=6, d=2, key=6)
    factors = ggn_kfac(model, x, gaussian_output_hessian, chunk=4)
    first, second = model.layers
    a1 = jnp.concatenate([x, jnp.ones((6, 1))], axis=1)
    h = jnp.tanh(x @ first.weight.T + first.bias[None, :])
    a2 = jnp.concatenate([h, jnp.ones((6, 1))], axis=1)
    g1 = (1 - h**2) * second.weight  # d f / d s_1, (6, 3)
    np.testing.assert_allclose(factors.eig_a[0], jnp.linalg.eigvalsh(a1.T @ a1 / 6), atol=1e-10)
    np.testing.assert_allclose(factors.eig_a[1], jnp.linalg.eigvalsh(a2.T @ a2 / 6), atol=1e-10)
    np.testing.assert_allclose(factors.eig_b[0], jnp.linalg.eigvalsh(g1.T @ g1), atol=1e-10)
    np.testing.assert_allclose(factors.eig_b[1], jnp.array([6.0]), atol=1e-10)


def test_parameter_groups_merge_each_linear_layer():
    groups = parameter_groups(_mlp())
    assert [size for _, size in groups] == [3 * 5 + 5, 5 * 5 + 5, 5 * 2 + 2]
    assert groups[0][0] == ".layers[0]"


def test_evidence_is_differentiable_in_the_hyperparameters_and_matches_finite_differences():
    model = _mlp(out=1)
    x, y = _linear_data(n=20, key=7)
    lap = laplace(model, (x, y[:, None]), curvature="kfac")
    for fn in (lambda d: lap.log_evidence(d, 0.4), lambda s: lap.log_evidence(0.8, s)):
        g = jax.grad(fn)(0.6)
        fd = (fn(0.6 + 1e-6) - fn(0.6 - 1e-6)) / 2e-6
        assert abs(float(g) - float(fd)) < 1e-5 * max(1.0, abs(float(fd)))


def test_per_layer_prior_precision_reduces_to_the_scalar_one():
    model = _mlp(out=1)
    x, y = _linear_data(n=20, key=8)
    for curvature in ("full", "diagonal", "kfac"):
        lap = laplace(model, (x, y[:, None]), curvature=curvature)
        assert float(lap.log_evidence(jnp.full(3, 0.7), 0.3)) == pytest.approx(
            float(lap.log_evidence(0.7, 0.3)), abs=1e-10
        )
    with pytest.raises(ValueError, match="one value per parameter group"):
        lap.log_evidence(jnp.ones(2), 0.3)


def test_toy_regression_learns_the_noise_and_the_prior_precision():
    # laplace-torch's example: 150 points, y = sin x + 0.3 eps, MLP 1-50-1 tanh; reference sigma
    # ~ 0.28 and delta ~ 0.10 with the full GGN (research M19 (b)).
    kx, ke = jax.random.split(jax.random.key(3))
    x = jax.random.uniform(kx, (150, 1), jnp.float64, 0.0, 8.0)
    y = jnp.sin(x) + 0.3 * jax.random.normal(ke, (150, 1), jnp.float64)
    model = eqx.nn.MLP(1, 1, 50, 1, activation=jnp.tanh, key=jax.random.key(0), dtype=jnp.float64)
    model = fit(
        model,
        map_loss("regression", 1e-4, 1.0, 150),
        (x, y),
        key=jax.random.key(1),
        epochs=1000,
        optimizer=adam_cosine(1e-2, 1000),
        progress=False,
    ).model
    hyper = optimize_hyperparameters(
        laplace(model, (x, y), curvature="full"), prior_precision=np.e, noise_std=np.e
    )
    assert 0.25 <= hyper.noise_std <= 0.33
    assert 0.1 / 3 <= float(hyper.prior_precision) <= 0.3
    assert hyper.history[-1] > hyper.history[0] + 100  # the evidence rose from a poor start
    mean, var = predictive(
        model,
        laplace(model, (x, y), curvature="full"),
        jnp.array([[4.0], [20.0]]),
        hyper.prior_precision,
        hyper.noise_std,
    )
    assert abs(float(mean[0, 0]) - np.sin(4.0)) < 0.3
    assert float(var[1, 0]) > 10 * float(var[0, 0])  # far from the data the model is unsure


def test_classification_evidence_prefers_the_model_that_fits_and_marglik_fit_improves_it():
    kx = jax.random.key(9)
    x = jax.random.normal(kx, (60, 3), jnp.float64)
    labels = (x[:, 0] + x[:, 1] > 0).astype(jnp.int32)
    model = eqx.nn.MLP(3, 2, 8, 1, activation=jnp.tanh, key=jax.random.key(10), dtype=jnp.float64)
    before = float(laplace_log_evidence(model, (x, labels), likelihood="classification", prior_precision=1.0))
    result = marglik_fit(
        model,
        (x, labels),
        key=jax.random.key(11),
        likelihood="classification",
        epochs=200,
        frequency=50,
        burn_in=50,
        hyper_steps=50,
    )
    assert result.log_evidence > before + 5
    assert len(result.evidence_history) == 4
    accuracy = float(jnp.mean(jnp.argmax(jax.vmap(result.model)(x), axis=1).astype(jnp.int32) == labels))
    assert accuracy > 0.9


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x, y: laplace(m, (x, y), curvature="exact"), "`curvature` must be one of"),
        (lambda m, x, y: laplace(m, (x, y), likelihood="poisson"), "`likelihood` must be one of"),
        (lambda m, x, y: laplace(m, (x[:0], y[:0])), "empty data"),
        (lambda m, x, y: laplace(m, (x, y[:-1])), "examples"),
        (lambda m, x, y: laplace(m, (x.at[0, 0].set(jnp.nan), y)), "`x` contains NaN"),
        (lambda m, x, y: laplace(m, (x, y[:, None, None])), "`y` must have shape"),
        (lambda m, x, y: laplace(m, (x, y), likelihood="classification"), "integer labels"),
        (
            lambda m, x, y: laplace_log_evidence(m, (x, y), prior_precision=0.0),
            "`prior_precision` must be positive",
        ),
        (lambda m, x, y: laplace_log_evidence(m, (x, y), noise_std=jnp.inf), "`noise_std` must be positive"),
        (lambda m, x, y: optimize_hyperparameters(laplace(m, (x, y)), steps=0), "`steps`"),
    ],
)
def test_bad_input_is_refused_naming_the_argument(call, match):
    model = _mlp(out=1)
    x, y = _linear_data(n=10, key=12)
    with pytest.raises(ValueError, match=match):
        call(model, x, y)


def test_kfac_refuses_a_parameter_outside_a_linear_layer_and_names_it():
    class Scaled(eqx.Module):
        net: eqx.nn.MLP
        scale: jax.Array

        def __call__(self, x):
            return self.scale * self.net(x)

    model = Scaled(_mlp(out=1), jnp.ones(1))
    x, y = _linear_data(n=10, key=13)
    with pytest.raises(ValueError, match=r"`model\.scale`.*in a Scaled.*use curvature='full' or 'diagonal'"):
        laplace(model, (x, y), curvature="kfac")
    conv = eqx.nn.Sequential(
        [eqx.nn.Lambda(lambda v: v[None]), eqx.nn.Conv1d(1, 1, 3, key=jax.random.key(0))]
    )
    with pytest.raises(ValueError, match=r"in a Conv1d"):
        laplace(conv, (x, jnp.zeros((10, 1))), curvature="kfac")
    assert np.isfinite(float(laplace(model, (x, y), curvature="full").log_evidence(1.0, 0.5)))


def test_spectrum_gives_the_cholesky_evidence_and_refuses_per_group_priors():
    from physbias.evidence import laplace as laplace_fn

    x = jax.random.normal(jax.random.key(20), (30, 3), jnp.float64)
    y = jnp.sin(x[:, :2])
    lap = laplace_fn(_mlp(3), (x, y), curvature="full")
    spec = lap.spectrum()
    assert spec.kind == "spectrum" and spec.curvature.shape == (lap.curvature.shape[0],)
    for delta, sigma in ((0.1, 0.3), (3.0, 1.7), (1e-3, 0.05)):
        np.testing.assert_allclose(
            spec.log_evidence(delta, sigma), lap.log_evidence(delta, sigma), rtol=1e-10
        )
    with pytest.raises(ValueError, match="one prior precision"):
        spec.log_evidence(np.ones(len(lap.group_sizes)), 1.0)
    with pytest.raises(ValueError, match="full"):
        laplace_fn(_mlp(3), (x, y), curvature="diagonal").spectrum()


def test_marglik_scan_returns_the_evidence_of_its_model_and_raises_it():
    from physbias.evidence import laplace as laplace_fn
    from physbias.marglik import marglik_scan

    x = jax.random.uniform(jax.random.key(21), (80, 1), jnp.float64, -3, 3)
    y = jnp.sin(2 * x[:, 0]) + 0.1 * jax.random.normal(jax.random.key(22), (80,), jnp.float64)
    model = eqx.nn.MLP(1, "scalar", 16, 2, activation=jnp.tanh, key=jax.random.key(23), dtype=jnp.float64)
    r = marglik_scan(model, (x, y), rounds=3, epochs_per_round=300, hyper_steps=200)
    assert not r.diverged and r.evidence_history.shape == (3,)
    assert r.log_evidence == pytest.approx(float(np.max(r.evidence_history)))
    # The returned model's own Laplace evidence, at the returned hyperparameters, is the one reported.
    direct = laplace_fn(r.model, (x, y), curvature="full").log_evidence(r.prior_precision, r.noise_std)
    assert float(direct) == pytest.approx(r.log_evidence, rel=1e-8)
    assert 0.05 < r.noise_std < 0.2  # the data's noise is 0.1
    assert r.evidence_history[-1] > r.evidence_history[0]
    for bad in ({"rounds": 0}, {"learning_rate": -1.0}, {"noise_std": float("nan")}):
        with pytest.raises(ValueError):
            marglik_scan(model, (x, y), **bad)


class _ScaledOutput(eqx.Module):
    net: eqx.nn.MLP
    scale: jax.Array

    def __call__(self, x):
        return self.scale * self.net(x)


def test_marglik_scan_holds_hyperparameters_fixed_and_outside_the_evidence():
    from physbias.evidence import laplace as laplace_fn
    from physbias.marglik import marglik_scan

    x = jax.random.uniform(jax.random.key(31), (60, 1), jnp.float64, -3, 3)
    y = 2.0 * jnp.sin(x[:, 0]) + 0.1 * jax.random.normal(jax.random.key(32), (60,), jnp.float64)
    net = eqx.nn.MLP(1, "scalar", 8, 1, activation=jnp.tanh, key=jax.random.key(33), dtype=jnp.float64)
    model = _ScaledOutput(net, jnp.asarray(2.0, jnp.float64))
    r = marglik_scan(
        model, (x, y), rounds=2, epochs_per_round=300, hyper_steps=100, hyperparameters=lambda m: m.scale
    )
    assert float(r.model.scale) == 2.0  # held fixed
    assert not r.diverged and r.noise_std < 0.3
    # The evidence is that of the network's parameters alone (P excludes the scale).
    direct = laplace_fn(r.model, (x, y), curvature="full", hyperparameters=lambda m: m.scale)
    assert float(direct.log_evidence(r.prior_precision, r.noise_std)) == pytest.approx(
        r.log_evidence, rel=1e-8
    )
    counted = laplace_fn(r.model, (x, y), curvature="full")
    assert float(counted.log_evidence(r.prior_precision, r.noise_std)) != pytest.approx(
        r.log_evidence, rel=1e-6
    )
