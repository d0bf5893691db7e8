import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.diffusion import Denoiser, GaussianDenoiser, WindowMLP


def _gaussian(d=3, seed=0):
    a = jax.random.normal(jax.random.key(seed), (d, d))
    return GaussianDenoiser(jnp.linspace(-1.0, 1.0, d), a @ a.T / d + 0.2 * jnp.eye(d))


def test_gaussian_score_is_the_gradient_of_the_noised_log_density():
    den = _gaussian()
    x = jnp.array([0.3, -1.0, 2.0])
    for sigma in (0.05, 0.7, 5.0):
        expected = jax.grad(den.log_prob)(x, sigma)
        np.testing.assert_allclose(den.score(x, sigma), expected, rtol=2e-4, atol=1e-5)


def test_gaussian_denoiser_is_the_posterior_mean_by_monte_carlo():
    den = _gaussian()
    key0, key1 = jax.random.split(jax.random.key(1))
    x0 = den.mean[None] + jax.random.normal(key0, (200_000, 3)) @ jnp.linalg.cholesky(den.cov).T
    sigma = 0.8
    noisy = x0 + sigma * jax.random.normal(key1, x0.shape)
    # E[x0 | x] is linear in x: the least-squares regression of x0 on x recovers D's matrix.
    design = jnp.concatenate([noisy, jnp.ones((len(noisy), 1))], axis=1)
    coef, *_ = jnp.linalg.lstsq(design, x0)
    expected = den.cov @ jnp.linalg.inv(den.cov + sigma**2 * jnp.eye(3))
    np.testing.assert_allclose(coef[:3].T, expected, atol=0.01)


def test_preconditioned_denoiser_starts_at_the_skip_connection():
    net = WindowMLP((5, 2), jax.random.key(0), width=16, depth=2)
    den = Denoiser(net)
    x = jax.random.normal(jax.random.key(1), (5, 2))
    for sigma in (0.01, 1.0, 50.0):
        np.testing.assert_allclose(den(x, sigma), x / (1.0 + sigma**2), rtol=1e-6)
        # (D - x) / sigma^2 cancels in float32 at small sigma: a looser tolerance there.
        np.testing.assert_allclose(den.score(x, sigma), -x / (1.0 + sigma**2), rtol=3e-3)


def test_window_mlp_refuses_bad_sizes():
    with pytest.raises(ValueError, match="width"):
        WindowMLP((5, 2), jax.random.key(0), width=0)
    with pytest.raises(ValueError, match="shape"):
        WindowMLP((0, 2), jax.random.key(0))
    with pytest.raises(ValueError, match="cov"):
        GaussianDenoiser(jnp.zeros(3), jnp.eye(2))
