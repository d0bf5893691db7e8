import jax
import jax.numpy as jnp
import optax

from physbias.diffusion import Denoiser, GaussianDenoiser, WindowMLP, WindowMLPConv, denoising_loss
from physbias.train import fit


def _assert_learns_the_gaussian_score(den, cov, shape):
    """Train ``den`` on 4096 draws of ``N(0, cov)`` (reshaped to ``shape``) for 1500 steps and compare
    it with the exact denoiser at three noise levels, relative to the posterior's own spread."""
    d = cov.shape[0]
    exact = GaussianDenoiser(jnp.zeros(d), cov)
    root = jnp.linalg.cholesky(cov)
    x0 = (jax.random.normal(jax.random.key(0), (4096, d)) @ root.T).reshape(4096, *shape)
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
    probe = jax.random.normal(jax.random.key(3), (200, d)) @ root.T
    for sigma in (0.1, 0.5, 2.0):
        learned = jax.vmap(result.model, in_axes=(0, None))(probe.reshape(200, *shape), sigma)
        truth = jax.vmap(exact, in_axes=(0, None))(probe, sigma)
        err = float(jnp.sqrt(jnp.mean((learned.reshape(200, d) - truth) ** 2)))
        posterior = cov @ jnp.linalg.inv(cov / sigma**2 + jnp.eye(d))
        spread = float(jnp.sqrt(jnp.trace(posterior) / d))
        assert err < 0.15 * spread + 0.01, (sigma, err, spread)


def test_a_learned_denoiser_recovers_the_score_of_a_known_gaussian():
    cov = jnp.array([[1.0, 0.6], [0.6, 0.8]])
    den = Denoiser(WindowMLP((2,), jax.random.key(1), width=64, depth=2))
    _assert_learns_the_gaussian_score(den, cov, (2,))


def test_a_window_mlp_conv_learns_the_score_of_a_gaussian_time_series():
    # An AR(1) series of 6 steps, cov_ij = 0.8^|i-j|: what the convolution over time fits.
    time = jnp.arange(6, dtype=jnp.float32)
    cov = 0.8 ** jnp.abs(time[:, None] - time[None])
    den = Denoiser(WindowMLPConv((6, 1), jax.random.key(1), width=64, depth=2))
    _assert_learns_the_gaussian_score(den, cov, (6, 1))
