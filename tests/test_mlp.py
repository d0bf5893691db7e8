"""The MLP's closed-form curvature against autodiff Hessians, and the LNN path that uses it."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import LagrangianNN
from physbias.dynamics.models import mlp_euler_lagrange_terms
from physbias.nn import mlp_curvature, softplus, supports_mlp_curvature
from physbias.systems.mechanics import euler_lagrange_acceleration, euler_lagrange_terms


@pytest.mark.parametrize(
    ("activation", "depth", "final"),
    [(softplus, 2, None), (jnp.tanh, 3, None), (jax.nn.gelu, 1, None), (softplus, 2, jnp.sin)],
)
def test_mlp_curvature_is_the_autodiff_hessian(activation, depth, final):
    kwargs = {} if final is None else {"final_activation": final}
    with jax.enable_x64(True):
        net = eqx.nn.MLP(5, "scalar", 16, depth, activation=activation, key=jax.random.key(0), **kwargs)
        net = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_array(a) else a, net)
        z = jax.random.normal(jax.random.key(1), (5,), jnp.float64)
        v = jax.random.normal(jax.random.key(2), (3, 5), jnp.float64)
        value, grad, quadratic = mlp_curvature(net, z, v)
        np.testing.assert_allclose(value, net(z), rtol=1e-13)
        np.testing.assert_allclose(grad, jax.grad(net)(z), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(quadratic, v @ jax.hessian(net)(z) @ v.T, rtol=1e-11, atol=1e-15)


def test_mlp_curvature_refuses_what_it_cannot_differentiate():
    key = jax.random.key(0)
    assert not supports_mlp_curvature(eqx.nn.MLP(3, 2, 8, 2, key=key))  # vector output
    assert not supports_mlp_curvature(eqx.nn.MLP(3, "scalar", 8, 0, key=key))  # no hidden layer
    assert not supports_mlp_curvature(eqx.nn.PReLU())
    net = eqx.nn.MLP(3, "scalar", 8, 2, key=key)
    with pytest.raises(ValueError, match="directions"):
        mlp_curvature(net, jnp.zeros(3), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="equinox.nn.MLP"):
        mlp_curvature(eqx.nn.MLP(3, 2, 8, 2, key=key), jnp.zeros(3), jnp.zeros((2, 3)))


def test_lnn_fast_path_gives_the_forward_over_reverse_numbers_and_gradients():
    model = LagrangianNN(6, 32, 2, key=jax.random.key(0))
    assert supports_mlp_curvature(model.net)
    z = jax.random.normal(jax.random.key(1), (64, 6))
    q, qdot = z[0, :3], z[0, 3:]
    mass, force = mlp_euler_lagrange_terms(model.net, q, qdot)
    mass_ref, force_ref = euler_lagrange_terms(model.lagrangian, q, qdot)
    np.testing.assert_allclose(mass, mass_ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(force, force_ref, rtol=1e-5, atol=1e-7)

    def reference(m, z):
        q, qdot = z[:3], z[3:]
        return jnp.concatenate([qdot, euler_lagrange_acceleration(m.lagrangian, q, qdot)])

    def loss(m, field):
        return jnp.mean(jax.vmap(lambda x: field(m, x))(z) ** 2)

    fast, grads = eqx.filter_value_and_grad(lambda m: loss(m, lambda m, x: m(x)))(model)
    slow, grads_ref = eqx.filter_value_and_grad(lambda m: loss(m, reference))(model)
    np.testing.assert_allclose(fast, slow, rtol=1e-5)
    for g, r in zip(jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(grads_ref), strict=True):
        np.testing.assert_allclose(g, r, rtol=2e-3, atol=1e-5 * float(jnp.max(jnp.abs(r))))
