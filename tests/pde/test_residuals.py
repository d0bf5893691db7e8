"""PDE residuals of networks against finite differences and exact solutions."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.pde import (
    RAISSI_VISCOSITY,
    burgers_residual,
    heat_residual,
    laplace_disk_solution,
    laplace_residual,
)


def test_burgers_residual_of_a_network_equals_finite_differences():
    with jax.enable_x64(True):
        net = eqx.nn.MLP(2, "scalar", 16, 2, activation=jnp.tanh, key=jax.random.key(0))
        net = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, net)
        nu = 0.05
        z = jax.random.uniform(jax.random.key(1), (20, 2), jnp.float64, -0.9, 0.9)
        auto = jax.vmap(lambda p: burgers_residual(net, p, nu))(z)
        h = 1e-4
        f = lambda dx, dt: jax.vmap(net)(z + jnp.array([dx, dt], jnp.float64)[None])  # noqa: E731
        u_x = (f(h, 0) - f(-h, 0)) / (2 * h)
        u_t = (f(0, h) - f(0, -h)) / (2 * h)
        u_xx = (f(h, 0) - 2 * f(0, 0) + f(-h, 0)) / h**2
        np.testing.assert_allclose(auto, u_t + f(0, 0) * u_x - nu * u_xx, rtol=1e-5, atol=1e-7)


def test_residuals_vanish_on_exact_solutions():
    z = jax.random.uniform(jax.random.key(2), (20, 2), minval=-0.8, maxval=0.8)
    harmonic = lambda p: p[0] ** 3 - 3 * p[0] * p[1] ** 2  # noqa: E731 (Re (x + iy)^3)
    assert np.max(np.abs(jax.vmap(lambda p: laplace_residual(harmonic, p))(z))) < 1e-4
    np.testing.assert_allclose(
        jax.vmap(harmonic)(z), laplace_disk_solution(np.asarray(z[:, 0]), np.asarray(z[:, 1]), 3), atol=1e-5
    )
    heat = lambda p: jnp.sin(2.0 * p[0]) * jnp.exp(-4.0 * 0.3 * p[1])  # noqa: E731 (u_t = 0.3 u_xx)
    assert np.max(np.abs(jax.vmap(lambda p: heat_residual(heat, p, 0.3))(z))) < 1e-5
    assert np.max(np.abs(jax.vmap(lambda p: heat_residual(heat, p, 0.6))(z))) > 1e-2
    # a travelling front of viscous Burgers: u = -tanh(x / (2 nu)) is steady
    nu = 0.2
    front = lambda p: -jnp.tanh(p[0] / (2 * nu))  # noqa: E731
    assert np.max(np.abs(jax.vmap(lambda p: burgers_residual(front, p, nu))(z))) < 1e-5


def test_bad_coefficients_are_refused():
    u = lambda p: p[0]  # noqa: E731
    with pytest.raises(ValueError, match="viscosity"):
        burgers_residual(u, jnp.zeros(2), 0.0)
    with pytest.raises(ValueError, match="diffusivity"):
        heat_residual(u, jnp.zeros(2), -1.0)
    assert RAISSI_VISCOSITY == pytest.approx(0.01 / np.pi)
