"""Structured kernel interpolation (physbias.gp.ski).

References: exact polynomial reproduction of Keys' cubic convolution (degree <= 2; Keys 1981),
dense Toeplitz products, the dense exact kernel matrix (the issue's acceptance: SKI MVM relative
error < 1e-3 at n = 2000), dense solves and slogdet, Hutchinson's estimator being exact for a
diagonal matrix with Rademacher probes, and the exact GP's predictive mean.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import tinygp

from physbias.gp import (
    SKI,
    ExactGP,
    SquaredExponential,
    cubic_interpolation_weights,
    regular_grid,
    stochastic_log_determinant,
    toeplitz_matvec,
)


def test_interpolation_weights_sum_to_one_and_reproduce_quadratics_but_not_cubics():
    with jax.enable_x64(True):
        start, step = regular_grid(0.0, 3.0, 40)
        grid = start + step * np.arange(40)
        x = np.random.default_rng(0).uniform(0.0, 3.0, 200)
        w = cubic_interpolation_weights(jnp.asarray(x), start, step, 40)
        assert w.indices.shape == (200, 4)
        np.testing.assert_array_equal(np.diff(np.asarray(w.indices), axis=1), 1)  # 4 neighbours
        np.testing.assert_allclose(np.asarray(jnp.sum(w.weights, axis=1)), 1.0, atol=1e-14)
        for degree in (1, 2):
            values = w.matvec(jnp.asarray(grid**degree))
            np.testing.assert_allclose(np.asarray(values), x**degree, atol=1e-12)
        cubic_error = np.max(np.abs(np.asarray(w.matvec(jnp.asarray(grid**3))) - x**3))
        dense = np.asarray(w.dense())
        v = np.random.default_rng(1).normal(size=200)
        np.testing.assert_allclose(np.asarray(w.rmatvec(jnp.asarray(v))), dense.T @ v, atol=1e-12)
    # Keys' a = -1/2 kernel is third-order: cubics are off by O(h^3), not reproduced.
    assert 1e-8 < cubic_error < 10 * step**3


def test_toeplitz_matvec_matches_the_dense_toeplitz_matrix():
    with jax.enable_x64(True):
        column = np.exp(-0.1 * np.arange(37.0))
        v = np.random.default_rng(0).normal(size=37)
        np.testing.assert_allclose(
            np.asarray(toeplitz_matvec(jnp.asarray(column), jnp.asarray(v))),
            scipy.linalg.toeplitz(column) @ v,
            rtol=1e-12,
        )


def test_ski_matvec_error_is_below_1e_3_at_n_2000(getkey):
    kernel = SquaredExponential(1.0, 1.0)
    x = jnp.sort(jax.random.uniform(getkey(), (2000,), minval=0.0, maxval=100.0))
    v = jax.random.normal(getkey(), (2000,))
    ski = SKI(kernel, x, noise_variance=0.1, num_grid=500)  # grid step 0.2 = length scale / 5
    xs, vs = np.asarray(x, np.float64), np.asarray(v, np.float64)  # the exact reference in float64
    exact = np.exp(-0.5 * (xs[:, None] - xs[None, :]) ** 2) @ vs + 0.1 * vs
    error = np.linalg.norm(np.asarray(ski.matvec(v), np.float64) - exact) / np.linalg.norm(exact)
    assert error < 1e-3


def _small_problem(n=300):
    kernel = SquaredExponential(1.0, 0.8)
    x = jnp.sort(jax.random.uniform(jax.random.key(3), (n,), jnp.float64, 0.0, 30.0))
    y = jnp.sin(x) + 0.3 * jax.random.normal(jax.random.key(4), (n,), jnp.float64)
    return kernel, x, y, SKI(kernel, x, noise_variance=0.09, num_grid=400)


def test_cg_solve_and_predictive_mean_match_dense_and_exact_gp():
    with jax.enable_x64(True):
        kernel, x, y, ski = _small_problem()
        alpha, steps = ski.solve(y, tolerance=1e-10)
        dense = np.asarray(ski.dense())
        np.testing.assert_allclose(
            np.asarray(alpha), np.linalg.solve(dense, np.asarray(y)), rtol=1e-6, atol=1e-8
        )
        assert 0 < int(steps) < 300
        xs = jnp.linspace(1.0, 29.0, 50)
        exact = ExactGP(kernel, noise=0.3).predict(x, y, xs)
        mean = ski.predict_mean(y, xs, tolerance=1e-10)
        assert float(jnp.max(jnp.abs(mean - exact))) < 1e-3


def test_stochastic_log_determinant_is_exact_for_a_diagonal_and_close_for_ski(getkey):
    with jax.enable_x64(True):
        diagonal = jnp.tile(jnp.array([0.5, 1.0, 2.0, 3.0, 7.0]), 40)  # 5 distinct eigenvalues
        estimate, _ = stochastic_log_determinant(
            lambda v: diagonal * v, 200, jnp.float64, getkey(), num_steps=5
        )
        assert float(estimate) == pytest.approx(float(jnp.sum(jnp.log(diagonal))), rel=1e-10)
        _, x, y, ski = _small_problem()
        estimate, error = ski.log_determinant(getkey(), num_probes=32, num_steps=30)
        reference = np.linalg.slogdet(np.asarray(ski.dense()))[1]
        # tolerance: 4 standard errors of the probe average, and 2% in any case
        assert abs(float(estimate) - reference) < min(4 * float(error), 0.02 * abs(reference))
        value = ski.log_marginal_likelihood(y, getkey(), num_probes=32, tolerance=1e-10)  # compiled above
        exact = float(ExactGP(ski.kernel, noise=0.3).log_marginal_likelihood(x, y))
        assert float(value) == pytest.approx(exact, rel=0.02)


def test_bad_inputs_are_rejected_before_any_work():
    kernel = tinygp.kernels.ExpSquared()
    x = jnp.linspace(0.0, 1.0, 10)
    with pytest.raises(ValueError, match="num_grid"):
        SKI(kernel, x, noise_variance=0.1, num_grid=5)
    with pytest.raises(ValueError, match="num_grid"):
        SKI(kernel, x, noise_variance=0.1, num_grid=0)
    with pytest.raises(ValueError, match="noise_variance"):
        SKI(kernel, x, noise_variance=0.0, num_grid=20)
    with pytest.raises(ValueError, match="NaN or inf"):
        SKI(kernel, x.at[3].set(jnp.nan), noise_variance=0.1, num_grid=20)
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        SKI(kernel, jnp.zeros((10, 2)), noise_variance=0.1, num_grid=20)
    with pytest.raises(ValueError, match="bounds"):
        SKI(kernel, x, noise_variance=0.1, num_grid=20, bounds=(0.5, 2.0))
    ski = SKI(kernel, x, noise_variance=0.1, num_grid=20)
    with pytest.raises(ValueError, match="inputs must lie in"):
        ski.predict_mean(jnp.zeros(10), jnp.array([2.0]))
    with pytest.raises(ValueError, match=r"shape \(10,\)"):
        ski.solve(jnp.zeros(11))
    with pytest.raises(ValueError, match="num_steps"):
        ski.log_determinant(jax.random.key(0), num_steps=11)
    with pytest.raises(TypeError, match="kernel"):
        SKI(None, x, noise_variance=0.1, num_grid=20)
