import jax
import jax.numpy as jnp
import optax

from physbias.diffusion import Denoiser, GaussianDenoiser, WindowMLP, WindowMLPConv, denoising_loss
from physbias.train import fit


def test_a_learned_denoiser_recovers_the_score_of_a_known_gaussian():
    cov = jnp.array([[1.0, 0.6], [0.6, 0.8]])
    exact = GaussianDenoiser(jnp.zeros(2), cov)
    x0 = jax.random.normal(jax.random.key(0), (4096, 2)) @ jnp.linalg.cholesky(cov).T
    den = Denoiser(WindowMLP((2,), jax.random.key(1), width=64, depth=2))
    steps = 1500
    result = fit(
        den,
        lambda m, batch, key: denoising_loss(m, batch[0], key),
        (x0,),
        key=jax.random.key(2),
        epochs=steps * 256 // 4096,
        batch_size=256,
        optimizer=optax.adam(optax.cosine_decay_schedule(3e-3, steps, 0.05)),
        progress=False,
    )
    probe = jax.random.normal(jax.random.key(3), (200, 2)) @ jnp.linalg.cholesky(cov).T
    for sigma in (0.1, 0.5, 2.0):
        learned = jax.vmap(result.model, in_axes=(0, None))(probe + 0.0, sigma)
        truth = jax.vmap(exact, in_axes=(0, None))(probe, sigma)
        # Error of the denoised estimate relative to the posterior's own spread.
        err = float(jnp.sqrt(jnp.mean((learned - truth) ** 2)))
        spread = float(jnp.sqrt(jnp.trace(cov @ jnp.linalg.inv(cov / sigma**2 + jnp.eye(2))) / 2))
        assert err < 0.15 * spread + 0.01, (sigma, err, spread)


def test_a_window_mlp_conv_learns_the_score_of_a_gaussian_time_series():
    # An AR(1) series of 6 steps, cov_ij = 0.8^|i-j|: what the convolution over time fits.
    steps, rho = 6, 0.8
    time = jnp.arange(steps, dtype=jnp.float32)
    lags = jnp.abs(time[:, None] - time[None])
    cov = rho**lags
    exact = GaussianDenoiser(jnp.zeros(steps), cov)
    x0 = (jax.random.normal(jax.random.key(0), (4096, steps)) @ jnp.linalg.cholesky(cov).T)[..., None]
    den = Denoiser(WindowMLPConv((steps, 1), jax.random.key(1), width=64, depth=2))
    n_steps = 1500
    result = fit(
        den,
        lambda m, batch, key: denoising_loss(m, batch[0], key),
        (x0,),
        key=jax.random.key(2),
        epochs=n_steps * 256 // 4096,
        batch_size=256,
        optimizer=optax.adam(optax.cosine_decay_schedule(3e-3, n_steps, 0.05)),
        progress=False,
    )
    probe = jax.random.normal(jax.random.key(3), (200, steps)) @ jnp.linalg.cholesky(cov).T
    for sigma in (0.1, 0.5, 2.0):
        learned = jax.vmap(result.model, in_axes=(0, None))(probe[..., None], sigma)[..., 0]
        truth = jax.vmap(exact, in_axes=(0, None))(probe, sigma)
        err = float(jnp.sqrt(jnp.mean((learned - truth) ** 2)))
        posterior = cov @ jnp.linalg.inv(cov / sigma**2 + jnp.eye(steps))
        spread = float(jnp.sqrt(jnp.trace(posterior) / steps))
        assert err < 0.15 * spread + 0.01, (sigma, err, spread)
