"""physbias.nn.Standardized: x -> y_mean + y_scale * net(x / x_scale), with constant scales.

References: the formula evaluated in NumPy float64 for a linear net with known weights; the
gradient of the squared error with respect to that net's weights written out,
dL/dW = 2 y_scale sum_i r_i (x_i / x_scale)^T with r_i the residual; the equivariance of an EMLP
(physbias.groups.equivariance_error, worst of 8 sampled elements of O(3), float32: ~1e-7).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import physbias as pb
from physbias.groups import O, Scalar, V, equivariance_error
from physbias.metrics import parameter_count
from physbias.nn import EMLP, Standardized


def linear_net(seed=0):
    rng = np.random.default_rng(seed)
    net = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    W, b = rng.standard_normal((2, 3)), rng.standard_normal(2)
    net = eqx.tree_at(
        lambda n: (n.weight, n.bias), net, (jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32))
    )
    return net, W, b


X_SCALE, Y_MEAN, Y_SCALE = np.array([0.5, 2.0, 4.0]), np.array([1.0, -2.0]), 3.0


def test_output_is_the_formula_by_hand():
    net, W, b = linear_net()
    model = Standardized(net, X_SCALE, Y_MEAN, Y_SCALE)
    x = np.random.default_rng(1).standard_normal((5, 3)) * [1.0, 3.0, 10.0]
    expected = Y_MEAN + Y_SCALE * ((x / X_SCALE) @ W.T + b)
    got = np.asarray(jax.jit(jax.vmap(model))(jnp.asarray(x, jnp.float32)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # scalar scale and mean broadcast over the entries
    mlp = eqx.nn.MLP(3, "scalar", 8, 1, key=jax.random.key(2))
    scalar = Standardized(mlp, 2.0, 0.5, 4.0)
    xs = jnp.asarray(x, jnp.float32)
    got, plain = jax.jit(lambda x: (jax.vmap(scalar)(x), jax.vmap(mlp)(x / 2.0)))(xs)
    np.testing.assert_allclose(got, 0.5 + 4.0 * plain, rtol=1e-6, atol=1e-6)


def test_no_gradient_reaches_the_scales():
    net, W, b = linear_net()
    model = Standardized(net, X_SCALE, Y_MEAN, Y_SCALE)
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 2))

    def loss(m):
        return jnp.sum((jax.vmap(m)(jnp.asarray(x, jnp.float32)) - jnp.asarray(y, jnp.float32)) ** 2)

    grads = eqx.filter_grad(loss)(model)
    # The scales are not parameters at all: the only trainable leaves are the net's.
    assert parameter_count(model) == parameter_count(net) == 3 * 2 + 2
    # the net's gradient is the one of the formula, written out
    u = x / X_SCALE
    residual = Y_MEAN + Y_SCALE * (u @ W.T + b) - y
    np.testing.assert_allclose(grads.net.weight, 2 * Y_SCALE * residual.T @ u, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads.net.bias, 2 * Y_SCALE * residual.sum(0), rtol=1e-4, atol=1e-4)
    # were y_mean a parameter, d loss / d y_mean = 2 sum_i r_i would not be zero
    assert np.max(np.abs(2 * residual.sum(0))) > 1e-2


def test_fit_with_adam_leaves_the_scales_unchanged():
    net, _, _ = linear_net()
    model = Standardized(net, X_SCALE, Y_MEAN, Y_SCALE)
    x = jax.random.normal(jax.random.key(4), (16, 3))
    result = pb.fit(
        model, pb.supervised_loss(), (x, x[:, :2]), key=jax.random.key(5), epochs=5, progress=False
    )
    assert np.array_equal(np.asarray(result.model.x_scale), np.asarray(model.x_scale))
    assert np.array_equal(np.asarray(result.model.y_mean), np.asarray(model.y_mean))
    assert not np.array_equal(np.asarray(result.model.net.weight), np.asarray(model.net.weight))


def test_fit_with_weight_decay_leaves_the_scales_unchanged():
    net, _, _ = linear_net()
    model = Standardized(net, X_SCALE, Y_MEAN, Y_SCALE)
    x = jax.random.normal(jax.random.key(4), (16, 3))
    result = pb.fit(
        model,
        pb.supervised_loss(),
        (x, x[:, :2]),
        key=jax.random.key(5),
        epochs=5,
        optimizer=optax.adamw(1e-2, weight_decay=0.5),
        progress=False,
    )
    np.testing.assert_array_equal(np.asarray(result.model.x_scale), np.asarray(model.x_scale))
    np.testing.assert_array_equal(np.asarray(result.model.y_mean), np.asarray(model.y_mean))


def test_emlp_with_a_per_copy_scale_stays_equivariant():
    """O(3), 2 V -> Scalar + V: one scale per copy of V and a mean on the invariant output only.

    A per-entry scale, or a mean on the vector output, breaks the equivariance: both are checked
    so that the measurement can fail."""
    G, rep_in, rep_out = O(3), 2 * V, Scalar + V
    net = EMLP(rep_in, rep_out, G, width=12, depth=1, key=jax.random.key(6))
    x = jax.random.normal(jax.random.key(7), (8, 6))
    per_copy = jnp.array([2.0, 2.0, 2.0, 0.5, 0.5, 0.5])
    invariant_mean = jnp.array([3.0, 0.0, 0.0, 0.0])
    model = Standardized(net, per_copy, invariant_mean, 1.7)
    assert equivariance_error(model, rep_in, rep_out, G, x) < 1e-5
    np.testing.assert_allclose(
        jax.jit(jax.vmap(model))(x),
        invariant_mean[None] + 1.7 * jax.jit(jax.vmap(net))(x / per_copy[None]),
        rtol=1e-5,
        atol=1e-5,
    )
    per_entry = Standardized(net, jnp.array([2.0, 1.0, 2.0, 0.5, 0.5, 0.5]), invariant_mean, 1.7)
    assert equivariance_error(per_entry, rep_in, rep_out, G, x) > 1e-3
    vector_mean = Standardized(net, per_copy, jnp.array([3.0, 1.0, 0.0, 0.0]), 1.7)
    assert equivariance_error(vector_mean, rep_in, rep_out, G, x) > 1e-3


@pytest.mark.parametrize(
    "x_scale, y_scale",
    [
        ([1.0, 0.0, 1.0], 1.0),
        ([1.0, -2.0, 1.0], 1.0),
        (0.0, 1.0),
        ([1.0, float("nan"), 1.0], 1.0),
        ([1.0, 1.0, 1.0], 0.0),
        ([1.0, 1.0, 1.0], -1.0),
        ([1.0, 1.0, 1.0], float("nan")),
    ],
)
def test_non_positive_scales_raise(x_scale, y_scale):
    net, _, _ = linear_net()
    with pytest.raises(ValueError, match="positive"):
        Standardized(net, x_scale, Y_MEAN, y_scale)


def test_bad_x_scale_message_shows_the_value_received():
    net, _, _ = linear_net()
    with pytest.raises(ValueError, match=r"-2\.0"):
        Standardized(net, [1.0, -2.0, 1.0], Y_MEAN, 1.0)
