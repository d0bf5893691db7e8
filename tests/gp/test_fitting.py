"""Exact GPs and marginal-likelihood fitting (physbias.gp.fitting).

References: the Gaussian log density and the posterior mean/variance written out with dense
NumPy linear algebra (Rasmussen & Williams 2006, eqs. 2.25-2.26, 2.30), and the optimum found by
SciPy's L-BFGS-B on that independent objective.
"""

import equinox as eqx
import jax
import numpy as np
import pytest
import scipy.optimize

from physbias.gp import (
    ExactGP,
    SquaredExponential,
    check_gp_data,
    fit_marginal_likelihood,
    jitter_log_parameters,
)


def _se(x1, x2, amplitude, scale):
    return amplitude**2 * np.exp(-0.5 * (x1[:, None] - x2[None, :]) ** 2 / scale**2)


def _log_density(y, cov, mean):
    sign, logdet = np.linalg.slogdet(cov)
    r = y - mean
    return -0.5 * r @ np.linalg.solve(cov, r) - 0.5 * logdet - 0.5 * len(y) * np.log(2 * np.pi)


def test_log_marginal_likelihood_and_prediction_match_dense_formulas():
    rng = np.random.default_rng(0)
    x, xs = np.sort(rng.uniform(0, 5, 30)), np.linspace(0, 5, 7)
    y = np.sin(x) + 0.1 * rng.normal(size=30)
    with jax.enable_x64(True):
        gp = ExactGP(SquaredExponential(1.3, 0.7), noise=0.2, mean=0.4)
        value = float(gp.log_marginal_likelihood(x, y))
        mean, var = gp.predict(x, y, xs, return_var=True)
        batched = float(gp.log_marginal_likelihood(x, np.stack([y, 2 * y])))
    cov = _se(x, x, 1.3, 0.7) + 0.04 * np.eye(30)
    assert value == pytest.approx(_log_density(y, cov, 0.4), rel=1e-10)
    assert batched == pytest.approx(_log_density(y, cov, 0.4) + _log_density(2 * y, cov, 0.4), rel=1e-10)
    k_s = _se(xs, x, 1.3, 0.7)
    np.testing.assert_allclose(mean, 0.4 + k_s @ np.linalg.solve(cov, y - 0.4), rtol=1e-9)
    np.testing.assert_allclose(var, 1.3**2 - np.sum(k_s * np.linalg.solve(cov, k_s.T).T, axis=1), atol=1e-9)


class _OnFirst(SquaredExponential):
    """An SE kernel on the first element of an ``(x, group)`` input."""

    def evaluate(self, X1, X2):
        return super().evaluate(X1[0], X2[0])


def test_per_group_noise_uses_the_group_index_of_each_point():
    x, group = np.linspace(0, 1, 6), np.array([0, 1, 0, 1, 1, 0])
    y = np.cos(x)
    with jax.enable_x64(True):
        gp = ExactGP(_OnFirst(1.0, 0.5), noise=np.array([0.1, 0.3]))
        value = float(gp.log_marginal_likelihood((x, group), y))
    cov = _se(x, x, 1.0, 0.5) + np.diag(np.array([0.1, 0.3])[group] ** 2)
    assert value == pytest.approx(_log_density(y, cov, 0.0), rel=1e-10)


def _data():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 6, 40))
    return x, np.sin(1.5 * x) + 0.2 * rng.normal(size=40)


def test_fit_reaches_the_optimum_of_an_independent_optimiser():
    x, y = _data()

    def nll(theta):  # log amplitude, log scale, log noise, mean
        a, s, n, m = np.exp(theta[0]), np.exp(theta[1]), np.exp(theta[2]), theta[3]
        return -_log_density(y, _se(x, x, a, s) + n**2 * np.eye(40), m) / 40

    reference = scipy.optimize.minimize(nll, np.zeros(4), method="L-BFGS-B")
    with jax.enable_x64(True):
        start = ExactGP(SquaredExponential(1.0, 1.0), noise=1.0)
        fit = fit_marginal_likelihood(start, x, y, steps=400, learning_rate=0.05)
        assert fit.losses.shape == (400,)
        assert fit.final_loss == pytest.approx(reference.fun, abs=1e-4)
        assert fit.final_loss < fit.losses[0]
        model = fit.model
        got = [model.kernel.log_amplitude, model.kernel.log_length_scale, model.log_noise, model.mean]
    np.testing.assert_allclose(np.asarray(got, np.float64), reference.x, atol=0.02)


def test_restarts_jitter_only_log_parameters_and_keep_the_best(getkey):
    model = ExactGP(SquaredExponential(1.0, 1.0), noise=0.5, mean=0.3)
    params = eqx.filter(model, eqx.is_inexact_array)
    moved = jitter_log_parameters(params, getkey(), 0.5)
    assert float(moved.mean) == pytest.approx(0.3)  # not a log-parameter
    assert float(moved.kernel.log_amplitude) != float(params.kernel.log_amplitude)
    x, y = _data()
    with jax.enable_x64(True):  # the set-up of the test above: its compiled loop is reused
        model = ExactGP(SquaredExponential(1.0, 1.0), noise=1.0)
        fit = fit_marginal_likelihood(model, x, y, steps=400, learning_rate=0.05, restarts=3, key=getkey())
        assert fit.restart_losses.shape == (3,)
        assert fit.final_loss == pytest.approx(float(np.min(fit.restart_losses)))
        assert fit.final_loss == pytest.approx(float(-fit.model.log_marginal_likelihood(x, y)) / 40, rel=1e-9)


def test_bad_data_and_settings_are_rejected_before_any_work():
    model = ExactGP(SquaredExponential(), noise=0.1)
    x, y = np.linspace(0, 1, 10), np.zeros(10)
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_marginal_likelihood(model, np.where(x > 0.5, np.inf, x), y)
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_marginal_likelihood(model, x, np.full(10, np.nan))
    with pytest.raises(ValueError, match=r"shape \(10,\) or \(R, 10\)"):
        fit_marginal_likelihood(model, x, np.zeros(11))
    with pytest.raises(ValueError, match="same number of points"):
        check_gp_data((x, np.arange(9)), y)
    with pytest.raises(ValueError, match="steps"):
        fit_marginal_likelihood(model, x, y, steps=0)
    with pytest.raises(ValueError, match="restarts"):
        fit_marginal_likelihood(model, x, y, restarts=0)
    with pytest.raises(ValueError, match="key"):
        fit_marginal_likelihood(model, x, y, restarts=2)
    with pytest.raises(ValueError, match="noise"):
        ExactGP(SquaredExponential(), noise=0.0)
    with pytest.raises(TypeError, match="kernel"):
        ExactGP(lambda a, b: a * b)
    with pytest.raises(ValueError, match="group"):
        ExactGP(SquaredExponential(), noise=np.array([0.1, 0.2])).log_marginal_likelihood(x, y)
    with pytest.raises(ValueError, match="empty"):
        check_gp_data(np.zeros(0), np.zeros(0))
