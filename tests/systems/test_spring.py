"""Nonlinear spring: the force law, noise-free samples, the known forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.systems import LinearSpring, SpringForm, sample_spring, spring_force


def test_force_is_odd_and_noise_free_samples_are_exact():
    x = jnp.linspace(-2.0, 2.0, 9)
    np.testing.assert_allclose(spring_force(x, 1.0, 2.0), x + 2.0 * x**3, rtol=1e-6)
    np.testing.assert_allclose(spring_force(-x, 1.0, 2.0), -spring_force(x, 1.0, 2.0))
    xs, f = sample_spring(jax.random.key(0), 100, -0.25, 1.0, k1=1.0, k2=2.0)
    assert xs.shape == (100, 1) and f.shape == (100,)
    assert float(xs.min()) >= -0.25 and float(xs.max()) <= 1.0
    np.testing.assert_allclose(f, xs[:, 0] + 2.0 * xs[:, 0] ** 3, rtol=1e-6)
    # The same key draws the same x; the noise has the requested standard deviation.
    xs, clean = sample_spring(jax.random.key(1), 2000, -0.25, 1.0, k1=1.0, k2=2.0)
    _, noisy = sample_spring(jax.random.key(1), 2000, -0.25, 1.0, k1=1.0, k2=2.0, noise=0.1)
    assert 0.09 < float(jnp.std(noisy - clean)) < 0.11


def test_known_forms():
    x = jnp.array([0.7])
    assert float(LinearSpring(1.5)(x)) == pytest.approx(1.05)
    assert float(SpringForm(1.0, 2.0)(x)) == pytest.approx(0.7 + 2.0 * 0.343, rel=1e-6)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="`n`"):
        sample_spring(jax.random.key(0), 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="low < high"):
        sample_spring(jax.random.key(0), 5, 1.0, 0.0)
