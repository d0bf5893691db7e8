"""Energy-based models (physbias.statphys.ebm): the samplers against a Gaussian energy with known
moments, and PCD training fitting a Gaussian of the model's class."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias import fit
from physbias.statphys import ReplayBuffer, grid_samples, langevin, mala, pcd_loss

MEAN, STD = jnp.array([1.0, -0.5]), jnp.array([0.5, 1.0])


def gaussian_energy(x):
    return 0.5 * jnp.sum(((x - MEAN) / STD) ** 2)


def test_mala_is_exact_and_langevin_close_for_a_gaussian_energy():
    x0 = jax.random.normal(jax.random.key(0), (4000, 2))
    x, rate = mala(gaussian_energy, x0, jax.random.key(1), 300, 0.3)
    assert 0.5 < float(rate) < 1.0
    np.testing.assert_allclose(np.mean(x, 0), MEAN, atol=0.05)
    np.testing.assert_allclose(np.std(x, 0), STD, rtol=0.05)
    # ULA at eps = 0.01 has an O(eps) bias in the variance: within 2%.
    x = langevin(gaussian_energy, x0, jax.random.key(2), 600, 0.01)
    np.testing.assert_allclose(np.mean(x, 0), MEAN, atol=0.05)
    np.testing.assert_allclose(np.std(x, 0), STD, rtol=0.05)


def test_grid_samples_follow_the_energy():
    x = grid_samples(gaussian_energy, jax.random.key(3), 20_000, box=5.0, resolution=200)
    np.testing.assert_allclose(np.mean(x, 0), MEAN, atol=0.03)
    np.testing.assert_allclose(np.std(x, 0), STD, rtol=0.03)


def test_pcd_learns_a_gaussian_with_an_energy_of_its_class():
    # A quadratic energy E(x) = |A x + b|^2 / 2 + c can represent the data's Gaussian exactly.
    class Quadratic(eqx.Module):
        a: jax.Array
        b: jax.Array
        c: jax.Array

        def __call__(self, x):
            return 0.5 * jnp.sum((self.a @ x + self.b) ** 2) + self.c

    data = MEAN[None] + STD[None] * jax.random.normal(jax.random.key(4), (4096, 2))
    model = Quadratic(jnp.eye(2), jnp.zeros(2), jnp.zeros(()))
    buffer = ReplayBuffer.uniform(jax.random.key(5), 2048, 2, box=4.0)
    loss = pcd_loss(box=4.0, langevin_steps=10, step_size=0.05, data_weight=0.01, sample_weight=0.01)
    result = fit(
        model,
        loss,
        (data,),
        key=jax.random.key(6),
        epochs=40,
        batch_size=256,
        optimizer=optax.adam(3e-2),
        progress=False,
        state=buffer,
    )
    x = grid_samples(result.model, jax.random.key(7), 20_000, box=4.0, resolution=200)
    np.testing.assert_allclose(np.mean(x, 0), MEAN, atol=0.1)
    np.testing.assert_allclose(np.std(x, 0), STD, rtol=0.1)
    assert result.state.samples.shape == (2048, 2)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="steps"):
        langevin(gaussian_energy, jnp.zeros((3, 2)), jax.random.key(0), 0, 0.1)
    with pytest.raises(ValueError, match="step_size"):
        mala(gaussian_energy, jnp.zeros((3, 2)), jax.random.key(0), 5, -0.1)
    with pytest.raises(ValueError, match="restart"):
        pcd_loss(box=1.0, restart=2.0)
    with pytest.raises(ValueError, match="box"):
        ReplayBuffer.uniform(jax.random.key(0), 10, 2, box=0.0)
