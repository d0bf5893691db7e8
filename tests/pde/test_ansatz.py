"""Hard conditions hold for every network; the ansatz still fits its class."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from physbias import fit
from physbias.pde import burgers_hard_field, chebyshev_t, laplace_disk_hard_field, laplace_square_hard_field


def test_burgers_hard_field_meets_its_conditions_for_random_networks():
    x = jnp.linspace(-1, 1, 41)
    t = jnp.linspace(0, 1, 41)
    for seed in range(5):
        net = eqx.nn.MLP(2, "scalar", 20, 3, activation=jnp.tanh, key=jax.random.key(seed))
        u = burgers_hard_field(net)
        initial = jax.vmap(lambda xi, u=u: u(jnp.stack([xi, 0.0])))(x)
        np.testing.assert_allclose(initial, -jnp.sin(jnp.pi * x), atol=1e-7)
        for wall in (-1.0, 1.0):
            assert np.max(np.abs(jax.vmap(lambda ti, w=wall, u=u: u(jnp.stack([w, ti])))(t))) < 1e-7
        inside = jax.vmap(u)(jnp.array([[0.3, 0.5], [-0.5, 0.9]]))
        assert not np.allclose(inside, -jnp.sin(jnp.pi * jnp.array([0.3, -0.5])))  # N acts inside


def test_burgers_hard_field_fits_a_function_of_its_class():
    # What the constraint allows: any u with these conditions, e.g. -sin(pi x) e^{-t}.
    target = lambda z: -jnp.sin(jnp.pi * z[0]) * jnp.exp(-z[1])  # noqa: E731
    z = jax.random.uniform(jax.random.key(0), (256, 2), minval=jnp.array([-1.0, 0.0]), maxval=1.0)
    y = jax.vmap(target)(z)
    u = burgers_hard_field(eqx.nn.MLP(2, "scalar", 20, 2, activation=jnp.tanh, key=jax.random.key(1)))
    loss = lambda m, batch, key: jnp.mean((jax.vmap(m)(batch[0]) - batch[1]) ** 2)  # noqa: E731
    result = fit(
        u, loss, (z, y), key=jax.random.key(2), epochs=1500, optimizer=optax.adam(1e-2), progress=False
    )
    assert result.final_loss < 1e-4 * float(jnp.mean(y**2))


def test_chebyshev_t_is_cos_k_theta_on_the_circle():
    theta = jnp.linspace(0, 2 * jnp.pi, 50)
    for k in range(6):
        np.testing.assert_allclose(chebyshev_t(k, jnp.cos(theta)), jnp.cos(k * theta), atol=2e-6)


def test_laplace_hard_fields_meet_their_boundary_values_for_random_networks():
    theta = jnp.linspace(0, 2 * jnp.pi, 64)
    circle = jnp.stack([jnp.cos(theta), jnp.sin(theta)], 1)
    s = jnp.linspace(0, 1, 33)
    zeros, ones = jnp.zeros_like(s), jnp.ones_like(s)
    for seed in range(3):
        net = eqx.nn.MLP(2, "scalar", 16, 2, activation=jnp.tanh, key=jax.random.key(seed))
        disk = laplace_disk_hard_field(net, 3)
        np.testing.assert_allclose(jax.vmap(disk)(circle), jnp.cos(3 * theta), atol=1e-6)
        square = laplace_square_hard_field(net)
        top = jax.vmap(square)(jnp.stack([s, ones], 1))
        np.testing.assert_allclose(top, jnp.sin(jnp.pi * s), atol=1e-7)
        for side in (jnp.stack([s, zeros], 1), jnp.stack([zeros, s], 1), jnp.stack([ones, s], 1)):
            assert np.max(np.abs(jax.vmap(square)(side))) < 1e-7
        inside = jax.vmap(square)(jnp.array([[0.5, 0.5]]))
        assert abs(float(inside[0]) - 0.5) > 1e-4  # N acts inside
