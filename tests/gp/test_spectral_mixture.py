"""The spectral-mixture kernel (physbias.gp.spectral_mixture).

References: the formula evaluated directly in NumPy, Bochner's theorem (the kernel is the Fourier
transform of its spectral density, integrated numerically), eigenvalues of Gram matrices, the
periodogram of known sinusoids, and recovery of a known kernel from GP samples (Wilson & Adams
2013; the synthetic set-up of tinygp's kernel tutorial: weights [1, 1], frequencies [1, 0.5],
spectral standard deviations 1/10 and 1/20).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.gp import ExactGP, SpectralMixture, fit_marginal_likelihood, periodogram
from physbias.gp import spectral_mixture_from_periodogram as from_periodogram


def _direct(w, mu, v, x1, x2):
    """sum_q w_q exp(-2 pi^2 sum_p tau_p^2 v_qp) cos(2 pi sum_p mu_qp tau_p), loop by loop."""
    out = np.zeros((len(x1), len(x2)))
    for a in range(len(x1)):
        for b in range(len(x2)):
            tau = np.atleast_1d(x1[a] - x2[b])
            for q in range(len(w)):
                mq, vq = np.atleast_1d(mu[q]), np.atleast_1d(v[q])
                out[a, b] += w[q] * np.exp(-2 * np.pi**2 * np.sum(tau**2 * vq)) * np.cos(2 * np.pi * mq @ tau)
    return out


@pytest.mark.parametrize("dim", [1, 2])
def test_gram_matrix_matches_the_formula_evaluated_directly(dim):
    rng = np.random.default_rng(0)
    w, mu, v = rng.uniform(0.5, 2, 3), rng.uniform(0.1, 1.5, (3, dim)), rng.uniform(0.01, 0.3, (3, dim))
    x = rng.uniform(-2, 2, (12, dim))
    if dim == 1:
        mu, v, x = mu[:, 0], v[:, 0], x[:, 0]
    with jax.enable_x64(True):
        k = SpectralMixture(w, mu, v)
        gram = np.asarray(k(jnp.asarray(x), jnp.asarray(x[:7])))
    np.testing.assert_allclose(gram, _direct(w, mu, v, x, x[:7]), rtol=1e-12, atol=1e-12)


def test_kernel_is_the_fourier_transform_of_its_spectral_density():
    # Bochner: k(tau) = int S(s) cos(2 pi s tau) ds, with S the symmetrised Gaussian mixture.
    with jax.enable_x64(True):
        k = SpectralMixture([1.0, 0.5], [0.8, 0.3], [0.02, 0.05])
        s = jnp.linspace(-4.0, 4.0, 8001)
        density = jax.vmap(k.spectral_density)(s)
        for tau in (0.0, 0.7, 2.5):
            integral = jnp.trapezoid(density * jnp.cos(2 * jnp.pi * s * tau), s)
            assert float(integral) == pytest.approx(
                float(k.evaluate(jnp.array(tau), jnp.array(0.0))), abs=1e-9
            )


@pytest.mark.parametrize("dim", [1, 3])
def test_gram_matrices_are_positive_semidefinite(dim, getkey):
    with jax.enable_x64(True):
        shape = (4,) if dim == 1 else (4, dim)
        mu = jax.random.uniform(getkey(), shape, jnp.float64, 0.05, 2.0)
        v = jax.random.uniform(getkey(), shape, jnp.float64, 0.001, 0.5)
        k = SpectralMixture(jax.random.uniform(getkey(), (4,), jnp.float64, 0.1, 2.0), mu, v)
        x = jax.random.uniform(getkey(), (150,) if dim == 1 else (150, dim), jnp.float64, -5.0, 5.0)
        eigenvalues = np.linalg.eigvalsh(np.asarray(jax.jit(lambda k, x: k(x, x))(k, x)))
    assert eigenvalues.min() >= -1e-6 * eigenvalues.max()
    assert eigenvalues.max() > 0


def test_periodogram_peaks_at_a_sinusoid_with_height_n_a2_over_4():
    x = np.arange(400) * 0.1
    y = 2.0 * np.sin(2 * np.pi * 0.75 * x)
    f = np.linspace(0.05, 4.0, 3000)
    power = periodogram(x, y, f)
    assert f[np.argmax(power)] == pytest.approx(0.75, abs=0.01)
    assert power.max() == pytest.approx(400 * 2.0**2 / 4, rel=0.02)
    noise = np.random.default_rng(0).normal(0, 0.5, 4000)
    assert np.mean(periodogram(np.arange(4000.0), noise, np.linspace(0.01, 0.49, 200))) == pytest.approx(
        0.25, rel=0.15
    )


def test_periodogram_initialisation_finds_the_frequencies_and_the_variance():
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(0, 40, 300))
    y = np.sin(2 * np.pi * 0.3 * x) + 0.6 * np.cos(2 * np.pi * 1.1 * x) + rng.normal(0, 0.1, 300)
    k = from_periodogram(x, y, 2)
    assert sorted(np.asarray(k.frequencies)[:, 0]) == pytest.approx([0.3, 1.1], abs=1 / 40)
    assert float(jnp.sum(k.weights)) == pytest.approx(np.var(y), rel=1e-5)
    assert k.scalar_input and k.num_components == 2


def test_fit_recovers_a_known_spectral_mixture_kernel(getkey):
    # 400 independent series of 100 points on [0, 20] sampled from the known kernel: the sampling
    # error of k(0) ~ 2 sqrt(2 int rho^2 / T) is ~0.03 for a total span T = 8000 (one series of the
    # tutorial's length could not pin k(0) to 0.1).
    true = SpectralMixture([1.0, 1.0], [1.0, 0.5], [1 / 10**2, 1 / 20**2])
    x = jnp.sort(jax.random.uniform(getkey(), (100,), minval=0.0, maxval=20.0))
    chol = np.linalg.cholesky(np.asarray(true(x, x), np.float64) + 0.1**2 * np.eye(100))
    y = jnp.asarray((chol @ np.random.default_rng(0).normal(size=(100, 400))).T, jnp.float32)
    init = from_periodogram(x, y, 2)
    fit = fit_marginal_likelihood(ExactGP(init, noise=0.3), x, y, steps=300, learning_rate=0.05)
    tau = jnp.linspace(0.0, 5.0, 201)
    k_fit = jax.vmap(lambda t: fit.model.kernel.evaluate(t, jnp.zeros(())))(tau)
    k_true = jax.vmap(lambda t: true.evaluate(t, jnp.zeros(())))(tau)
    k_init = jax.vmap(lambda t: init.evaluate(t, jnp.zeros(())))(tau)
    assert float(jnp.max(jnp.abs(k_fit - k_true))) < 0.1
    assert float(jnp.max(jnp.abs(k_init - k_true))) > 0.1  # the fit, not the initialisation, did it
    assert float(jnp.exp(fit.model.log_noise)) == pytest.approx(0.1, rel=0.05)


def test_bad_parameters_and_data_are_rejected_before_any_work():
    with pytest.raises(ValueError, match="weights"):
        SpectralMixture([1.0, -1.0], [1.0, 2.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="frequencies"):
        SpectralMixture([1.0], [1.0, 2.0], [0.1, 0.1])
    with pytest.raises(ValueError, match="variances"):
        SpectralMixture([1.0], [1.0], [[0.1, 0.1]])
    with pytest.raises(ValueError, match="empty"):
        SpectralMixture([], [], [])
    with pytest.raises(ValueError, match="vectors, X of shape"):
        SpectralMixture([1.0], [[1.0, 2.0]], [[0.1, 0.1]])(jnp.zeros(3), jnp.zeros(3))
    x = np.linspace(0, 1, 20)
    with pytest.raises(ValueError, match="num_components"):
        from_periodogram(x, np.sin(x), 0)
    with pytest.raises(ValueError, match="NaN or inf"):
        from_periodogram(x, np.where(x > 0.5, np.nan, x), 2)
    with pytest.raises(ValueError, match="same n"):
        from_periodogram(x, np.sin(x)[:-1], 2)
