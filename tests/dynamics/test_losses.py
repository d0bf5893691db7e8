"""Dynamics losses on linear fields, where every rollout is known in closed form.

For ``dz/dt = lam z`` one step of size ``h`` multiplies the state by ``1 + x`` (Euler) or
``R(x) = 1 + x + x^2/2 + x^3/6 + x^4/24`` (RK4), ``x = lam h``. Float32 values ~ 1 are compared at
1e-6 relative; the gradient check is float64.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import Euler, derivative_loss, rollout_loss


class LinearDecay(eqx.Module):
    """``dz/dt = rate * z``, one learnable scalar."""

    rate: jax.Array

    def __call__(self, z):
        return self.rate * z


def _rk4_factor(x):
    return 1 + x + x**2 / 2 + x**3 / 6 + x**4 / 24


# --- derivative_loss ----------------------------------------------------------------------------


def test_derivative_loss_of_a_linear_field_by_hand():
    a = jnp.array([[0.0, 1.0], [-1.0, 0.0]])

    def model(z):
        return a @ z

    z = jnp.array([[1.0, 0.0], [0.0, 2.0]])  # model gives (0, -1) and (2, 0)
    offsets = jnp.array([[3.0, 4.0], [0.0, 1.0]])  # squared norms 25 and 1
    loss = derivative_loss()
    key = jax.random.key(0)
    assert float(loss(model, (z, jax.vmap(model)(z) + offsets), key)) == pytest.approx(13.0, rel=1e-6)
    assert float(loss(model, (z, jax.vmap(model)(z)), key)) == 0.0


# --- rollout_loss -------------------------------------------------------------------------------


def test_rollout_loss_euler_by_hand():
    # lam = -1, dt = 0.5: Euler halves the state each step. z0 = (1, 2) -> (0.5, 1), (0.25, 0.5)
    model = LinearDecay(jnp.array(-1.0))
    batch = (jnp.array([[1.0, 2.0]]), jnp.zeros((1, 2, 2)))
    key = jax.random.key(0)
    l1 = rollout_loss(0.5, Euler())(model, batch, key)
    l2 = rollout_loss(0.5, Euler(), norm="l2")(model, batch, key)
    assert float(l1) == pytest.approx((0.5 + 1.0 + 0.25 + 0.5) / 4, rel=1e-6)
    assert float(l2) == pytest.approx((0.25 + 1.0 + 0.0625 + 0.25) / 4, rel=1e-6)


def test_rollout_loss_defaults_to_rk4_and_is_zero_for_the_exact_model():
    lam, dt, steps = -0.8, 0.3, 4
    z0 = np.array([[1.0, -2.0, 0.5], [0.25, 1.0, -1.0]])
    powers = _rk4_factor(lam * dt) ** np.arange(1, steps + 1)  # (L,)
    exact = np.exp(lam * dt * np.arange(1, steps + 1))
    key = jax.random.key(0)
    # float32: the loss against RK4's own discrete flow R^t z0 vanishes (to rounding)
    rk4_future = jnp.asarray(powers[None, :, None] * z0[:, None, :], dtype=jnp.float32)
    model = LinearDecay(jnp.array(lam, dtype=jnp.float32))
    batch = (jnp.asarray(z0, dtype=jnp.float32), rk4_future)
    assert float(rollout_loss(dt)(model, batch, key)) == pytest.approx(0.0, abs=1e-7)
    # float64: against the exact flow exp(lam t) z0 the loss is RK4's own error |R^t - e^{lam t}| |z0_j|
    with jax.enable_x64(True):
        future = jnp.asarray(exact[None, :, None] * z0[:, None, :])
        got = float(rollout_loss(dt)(LinearDecay(jnp.array(lam)), (jnp.asarray(z0), future), key))
    expected = np.mean(np.abs(powers - exact)[None, :, None] * np.abs(z0)[:, None, :])
    assert expected > 1e-6  # the case can tell RK4 from the exact flow
    assert got == pytest.approx(expected, rel=1e-6)


def test_rollout_loss_gradient_matches_a_finite_difference():
    # l2 loss L(lam) = mean_t (R(lam h)^t - 0.5^t)^2 z0^2; d/dlam by autodiff vs central difference
    with jax.enable_x64(True):
        z0 = jnp.array([[1.0], [-3.0]])
        future = 0.5 ** jnp.arange(1.0, 4.0)[None, :, None] * z0[:, None, :]
        loss = rollout_loss(0.2, norm="l2")
        key = jax.random.key(0)

        def value(lam):
            return loss(LinearDecay(lam), (z0, future), key)

        lam = jnp.array(-1.3)
        grad = jax.grad(value)(lam)
        h = 1e-6
        fd = (value(lam + h) - value(lam - h)) / (2 * h)
        assert float(grad) == pytest.approx(float(fd), rel=1e-6)
        assert abs(float(grad)) > 1e-3  # not a trivially flat loss


def test_rollout_loss_rejects_an_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        rollout_loss(0.1, norm="l3")
