import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias.diffusion import Denoiser, GaussianDenoiser, WindowMLP, WindowMLPConv


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


@pytest.mark.parametrize("network", [WindowMLP, WindowMLPConv])
def test_preconditioned_denoiser_starts_at_the_skip_connection(network):
    net = network((5, 2), jax.random.key(0), width=16, depth=2)
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


def test_fourier_inputs_leave_the_plain_network_unchanged_and_refuse_bad_sizes():
    plain = WindowMLP((3,), jax.random.key(0), width=16, depth=2)
    with_features = WindowMLP((3,), jax.random.key(0), width=16, depth=2, fourier_inputs=8)
    assert plain.input_frequencies is None and with_features.input_frequencies.shape == (8, 3)
    assert with_features.inp.in_features == plain.inp.in_features + 16
    # The same key draws the same hidden layers: the features come from a key of their own.
    np.testing.assert_array_equal(plain.hidden[0].weight, with_features.hidden[0].weight)
    with pytest.raises(ValueError, match="fourier_inputs"):
        WindowMLP((3,), jax.random.key(0), fourier_inputs=-1)
    with pytest.raises(ValueError, match="fourier_scale"):
        WindowMLP((3,), jax.random.key(0), fourier_inputs=4, fourier_scale=0.0)


def test_fourier_inputs_let_the_mlp_fit_fine_detail():
    # What the features allow: a bump 0.05 wide on a 1-D input, fitted in 600 full-batch Adam steps.
    # Without them the MLP's spectral bias leaves most of the bump unfitted.
    x = jnp.linspace(-2.0, 2.0, 512)[:, None]
    target = jnp.exp(-0.5 * ((x - 0.3) / 0.05) ** 2) + 0.3 * jnp.sin(3.0 * x)

    def error(net):
        params, static = eqx.partition(net, eqx.is_inexact_array)
        optimizer = optax.adam(3e-3)

        def loss(p):
            predict = jax.vmap(lambda xi: eqx.combine(p, static)(xi, jnp.zeros(())))
            return jnp.mean((predict(x) - target) ** 2)

        def step(carry, _):
            p, state = carry
            grads = jax.grad(loss)(p)
            with jax.numpy_dtype_promotion("standard"):  # Optax mixes Python floats and int32 counts
                updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), None, length=600)
        return float(loss(params))

    key = jax.random.key(3)
    plain = error(WindowMLP((1,), key, width=64, depth=2))
    features = error(WindowMLP((1,), key, width=64, depth=2, fourier_inputs=32, fourier_scale=3.0))
    assert features < 1e-4 and features < 0.01 * plain, (features, plain)  # measured 2e-7 and 2e-3


def test_window_mlp_conv_head_is_a_local_convolution_over_time():
    net = WindowMLPConv((12, 2), jax.random.key(0), width=16, depth=1, features=3, conv_layers=2)
    out = net.out
    net = eqx.tree_at(lambda m: m.out, net, eqx.nn.Linear(out.in_features, 2, key=jax.random.key(1)))
    x = jax.random.normal(jax.random.key(2), (12, 2))
    bump = x.at[0].add(1.0)
    # With the trunk's per-step features switched off, what reaches step t comes from steps t-2..t+2
    # (two kernel-3 layers): a change at step 0 reaches steps 0-2 only.
    local = eqx.tree_at(
        lambda m: (m.to_features.weight, m.to_features.bias),
        net,
        (net.to_features.weight * 0.0, net.to_features.bias * 0.0),
    )
    change = jnp.abs(local(bump, 0.1) - local(x, 0.1)).max(axis=1)
    assert bool(jnp.all(change[:3] > 1e-6)) and bool(jnp.all(change[3:] == 0.0)), change
    # The trunk sees the whole window: through it, the same change reaches the far end.
    change = jnp.abs(net(bump, 0.1) - net(x, 0.1)).max(axis=1)
    assert float(change[-1]) > 1e-6


def test_window_mlp_conv_refuses_bad_sizes():
    with pytest.raises(ValueError, match="shape"):
        WindowMLPConv((10,), jax.random.key(0))
    with pytest.raises(ValueError, match="conv_layers"):
        WindowMLPConv((10, 3), jax.random.key(0), conv_layers=0)
