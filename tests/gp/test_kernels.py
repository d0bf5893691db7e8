"""The squared-exponential baseline kernel (physbias.gp.kernels): tinygp's ExpSquared scaled by
an amplitude, against the formula a^2 exp(-r^2 / (2 l^2))."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.gp import SquaredExponential


def test_squared_exponential_matches_its_formula_for_scalar_and_vector_inputs():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        k = SquaredExponential(amplitude=1.7, length_scale=0.6)
        x = rng.normal(size=(9,))
        gram = np.asarray(k(jnp.asarray(x), jnp.asarray(x)))
        np.testing.assert_allclose(
            gram, 1.7**2 * np.exp(-0.5 * (x[:, None] - x[None, :]) ** 2 / 0.36), rtol=1e-12
        )
        v = rng.normal(size=(5, 3))
        d2 = np.sum((v[:, None, :] - v[None, :, :]) ** 2, axis=-1)
        np.testing.assert_allclose(
            np.asarray(k(jnp.asarray(v), jnp.asarray(v))), 2.89 * np.exp(-0.5 * d2 / 0.36)
        )


def test_from_data_uses_the_spread_of_y_and_the_span_of_x():
    x = np.linspace(2.0, 12.0, 50)
    y = 3.0 * np.sin(x)
    k = SquaredExponential.from_data(x, y, length_fraction=0.2)
    assert float(jnp.exp(k.log_amplitude)) == pytest.approx(np.std(y), rel=1e-5)
    assert float(jnp.exp(k.log_length_scale)) == pytest.approx(2.0, rel=1e-5)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="amplitude"):
        SquaredExponential(amplitude=-1.0)
    with pytest.raises(ValueError, match="length_scale"):
        SquaredExponential(length_scale=float("nan"))
    with pytest.raises(ValueError, match="distinct"):
        SquaredExponential.from_data(np.ones(5), np.arange(5.0))
