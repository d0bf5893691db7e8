"""Supervised losses against hand-computed values (float32: values ~ 10, tolerance 1e-6 relative)."""

import jax
import jax.numpy as jnp
import pytest

from physbias.losses import mean_squared_error, supervised_loss


def test_mean_squared_error_sums_entries_and_averages_samples():
    pred = jnp.array([[1.0, 2.0], [4.0, 6.0], [0.0, 0.0]])
    target = jnp.array([[1.0, 2.0], [1.0, 2.0], [1.0, 0.0]])
    # per-sample squared norms 0, 25, 1 -> 26 / 3
    assert float(mean_squared_error(pred, target)) == pytest.approx(26.0 / 3.0, rel=1e-6)
    # per-sample entries of any rank are summed: one sample, 2x2 errors of 1 -> 4
    assert float(mean_squared_error(jnp.ones((1, 2, 2)), jnp.zeros((1, 2, 2)))) == pytest.approx(4.0)


def test_supervised_loss_of_a_known_model_by_hand():
    x = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    y = jnp.array([4.0, 2.0])

    def model(v):  # f(x) = x0 + x1: predictions 3 and 2
        return v[0] + v[1]

    loss = supervised_loss()
    assert float(loss(model, (x, y), jax.random.key(0))) == pytest.approx((1.0 + 0.0) / 2, rel=1e-6)
    assert float(loss(model, (x, jax.vmap(model)(x)), jax.random.key(0))) == 0.0


def test_supervised_loss_adds_each_penalty_with_its_own_key():
    x, y = jnp.zeros((3, 1)), jnp.ones(3)
    seen = []

    def penalty(weight):
        def p(model, xs, ys, key):
            seen.append(key)
            assert xs.shape == (3, 1) and ys.shape == (3,)  # the batch is passed through
            return jnp.asarray(weight)

        return p

    loss = supervised_loss(penalty(0.25), penalty(2.0))
    value = loss(lambda v: v[0], (x, y), jax.random.key(1))
    assert float(value) == pytest.approx(1.0 + 0.25 + 2.0, rel=1e-6)  # MSE of 0 against 1 is 1
    assert len(seen) == 2
    assert not bool(jnp.all(jax.random.key_data(seen[0]) == jax.random.key_data(seen[1])))


def test_supervised_loss_rejects_a_penalty_that_is_not_callable():
    with pytest.raises(TypeError, match="callable"):
        supervised_loss(0.5)


def test_shape_mismatch_is_refused_not_broadcast():
    import numpy as np

    from physbias.dynamics import derivative_loss, rollout_loss
    from physbias.metrics import relative_error, rmse

    x, y = jnp.ones((5, 2)), jnp.ones((5,))
    # A model with output shape (1,) against targets (N,) once gave an (N, N) difference.
    with pytest.raises(ValueError, match=r"\(5, 1\).*\(5,\)"):
        supervised_loss()(lambda v: v[:1], (x, y), jax.random.key(0))
    with pytest.raises(ValueError, match="derivative_loss"):
        derivative_loss()(lambda z: z[:1], (x, x), jax.random.key(0))
    with pytest.raises(ValueError, match="rollout_loss"):
        rollout_loss(0.1)(lambda z: -z, (x, jnp.ones((5, 3, 3))), jax.random.key(0))
    with pytest.raises(ValueError, match="rmse"):
        rmse(np.ones((5, 1)), np.ones(5))
    with pytest.raises(ValueError, match="relative_error"):
        relative_error(np.ones((2, 3, 1)), np.ones((2, 3, 2)))
