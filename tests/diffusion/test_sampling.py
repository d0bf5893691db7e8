import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.diffusion import GaussianDenoiser, noise_levels, sample


def test_noise_levels_are_geometric_from_max_to_min():
    s = np.asarray(noise_levels(1e-3, 10.0, 4))
    np.testing.assert_allclose(s, [10.0, 1.0, 0.1, 0.01, 0.001], rtol=1e-5)


@pytest.mark.parametrize("corrector_steps", [0, 1])
def test_reverse_sde_samples_a_gaussian_with_its_covariance(corrector_steps):
    cov = jnp.array([[1.0, 0.7], [0.7, 0.6]])
    den = GaussianDenoiser(jnp.array([2.0, -1.0]), cov)
    draw = jax.jit(lambda k: sample(den.score, k, 4000, (2,), steps=300, corrector_steps=corrector_steps))
    xs = draw(jax.random.key(0))
    np.testing.assert_allclose(jnp.mean(xs, axis=0), den.mean, atol=0.06)
    # 3 standard errors of a variance from 4000 samples (0.07) plus Euler-Maruyama's bias
    np.testing.assert_allclose(jnp.cov(xs.T), cov, atol=0.08)


def test_denoised_samples_are_the_tweedie_estimates_of_the_noised_marginal():
    # Stopped at sigma_min = 0.5, the chain's samples are x_sigma ~ N(m, cov + sigma^2 I); their
    # Tweedie estimates E[x_0 | x_sigma] have covariance cov (cov + sigma^2 I)^-1 cov.
    cov = jnp.array([[1.0, 0.7], [0.7, 0.6]])
    den = GaussianDenoiser(jnp.array([2.0, -1.0]), cov)
    sigma = 0.5
    draw = jax.jit(
        lambda k, d: sample(den.score, k, 8000, (2,), sigma_min=sigma, steps=300, denoise=d), static_argnums=1
    )
    noisy, clean = draw(jax.random.key(0), False), draw(jax.random.key(0), True)
    np.testing.assert_allclose(jnp.cov(noisy.T), cov + sigma**2 * jnp.eye(2), atol=0.08)
    np.testing.assert_allclose(
        jnp.cov(clean.T), cov @ jnp.linalg.solve(cov + sigma**2 * jnp.eye(2), cov), atol=0.05
    )
    np.testing.assert_allclose(clean, jax.vmap(den, in_axes=(0, None))(noisy, sigma), rtol=1e-5, atol=1e-5)


def test_sample_refuses_bad_sizes():
    den = GaussianDenoiser(jnp.zeros(2), jnp.eye(2))
    with pytest.raises(ValueError, match="`n`"):
        sample(den.score, jax.random.key(0), 0, (2,))
    with pytest.raises(ValueError, match="steps"):
        noise_levels(1e-3, 1.0, 0)
    with pytest.raises(ValueError, match="corrector_steps"):
        sample(den.score, jax.random.key(0), 10, (2,), corrector_steps=-1)
    with pytest.raises(ValueError, match="sigma_max"):
        noise_levels(1e-3, float("inf"), 10)
