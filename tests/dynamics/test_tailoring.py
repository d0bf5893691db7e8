"""Noether Networks' tailoring (Algorithm 1 of seed 002): meta-gradients, the plain limit, the loss."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias.dynamics import (
    NeuralEmbedding,
    OneStepPredictor,
    iterate_map,
    meta_train,
    noether_loss,
    predict_sequence,
)
from physbias.dynamics.tailoring import meta_tailoring_loss
from physbias.systems import Pendulum, canonical_trajectories


def _random_direction(tree, key, mask):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    keys = jax.random.split(key, len(leaves))
    masks = jax.tree_util.tree_leaves(mask)
    return jax.tree_util.tree_unflatten(
        treedef,
        [jax.random.normal(k, x.shape, x.dtype) * m for k, x, m in zip(keys, leaves, masks, strict=True)],
    )


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_meta_gradient_matches_finite_difference(inner_steps):
    """d L_task(theta'(theta, phi)) / d(theta, phi) through the inner step(s), second order, equals a
    central finite difference (float64, eps 1e-6) along random directions in theta and in phi."""
    with jax.enable_x64(True):
        k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
        to64 = lambda m: jax.tree_util.tree_map(  # noqa: E731
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, m
        )
        predictor = to64(OneStepPredictor(2, 0.1, width=8, key=k1, orthogonal_init=False))
        embedding = to64(NeuralEmbedding(2, 4, 16, key=k2))
        trajs = jax.random.normal(k3, (2, 5, 2), jnp.float64)
        params, static = eqx.partition((predictor, embedding), eqx.is_inexact_array)
        loss = jax.jit(lambda p, lr: meta_tailoring_loss(p, static, trajs, lr, inner_steps))
        grad = jax.jit(jax.grad(loss))
        g = grad(params, 0.05)
        eps = 1e-6
        for i, part in enumerate(("theta", "phi")):
            mask = (
                jax.tree_util.tree_map(lambda _, i=i: float(i == 0), params[0]),
                jax.tree_util.tree_map(lambda _, i=i: float(i == 1), params[1]),
            )
            v = _random_direction(params, jax.random.fold_in(k4, i), mask)
            analytic = sum(
                jnp.vdot(a, b)
                for a, b in zip(jax.tree_util.tree_leaves(g), jax.tree_util.tree_leaves(v), strict=True)
            )
            shift = lambda s, v=v: jax.tree_util.tree_map(lambda x, d: x + s * eps * d, params, v)  # noqa: E731
            numeric = (loss(shift(1.0), 0.05) - loss(shift(-1.0), 0.05)) / (2 * eps)
            assert abs(float(analytic)) > 1e-8, part
            np.testing.assert_allclose(float(analytic), float(numeric), rtol=1e-6, atol=1e-10, err_msg=part)
        # phi acts only through the inner step: its gradient vanishes at inner lr 0
        g0 = grad(params, 0.0)
        assert all(float(jnp.abs(x).max()) == 0.0 for x in jax.tree_util.tree_leaves(g0[1]))


def test_predict_sequence_with_zero_inner_lr_is_the_plain_rollout():
    k1, k2 = jax.random.split(jax.random.key(2))
    predictor = OneStepPredictor(2, 0.1, width=32, key=k1)
    embedding = NeuralEmbedding(2, 4, 16, key=k2)
    x0 = jnp.array([0.7, -0.3])
    plain = eqx.filter_jit(iterate_map)(predictor, x0, 20)
    tailored = eqx.filter_jit(predict_sequence)
    np.testing.assert_array_equal(plain, tailored(predictor, embedding, x0, 20, 0.0))
    assert not np.allclose(plain, tailored(predictor, embedding, x0, 20, 1e-1))


def test_noether_loss_vanishes_for_the_conserved_energy():
    states, _ = canonical_trajectories(
        Pendulum(mass=0.5, length=1.0, gravity=6.0), np.array([[1.0, 0.8]]), 0.1, 30
    )
    xs = jnp.asarray(states[0])
    energy = lambda x: x[1] ** 2 - 3 * jnp.cos(x[0])  # noqa: E731
    assert float(noether_loss(energy, xs[0], xs[1:])) < 1e-8
    assert float(noether_loss(lambda x: x[0], xs[0], xs[1:])) > 1.0  # q is not conserved


def test_meta_tailoring_with_the_true_energy_beats_the_pretrained_rollout():
    """What tailoring allows: a small predictor meta-tailored with the true H predicts the
    pendulum's trajectories better than before (the loss falls), and stays finite."""
    system = Pendulum(mass=0.5, length=1.0, gravity=6.0)
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(8, 2))
    states, _ = canonical_trajectories(system, x0, 0.1, 15)
    trajs = jnp.asarray(states, jnp.float32)
    predictor = OneStepPredictor(2, 0.1, width=32, key=jax.random.key(0))
    energy = lambda x: x[1] ** 2 - 3 * jnp.cos(x[0])  # noqa: E731
    result = meta_train(predictor, energy, trajs, num_steps=150, inner_lr=1e-4, optimizer=optax.adam(3e-3))
    losses = np.asarray(result.losses)
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.3 * losses[0]


def test_meta_train_refuses_bad_input():
    p = OneStepPredictor(2, 0.1, width=8, key=jax.random.key(0))
    with pytest.raises(ValueError, match="num_steps"):
        meta_train(p, None, jnp.ones((2, 5, 2)), num_steps=0, inner_lr=0.0)
    with pytest.raises(ValueError, match="inner_lr"):
        meta_train(p, None, jnp.ones((2, 5, 2)), num_steps=1, inner_lr=-1.0)
    with pytest.raises(ValueError, match="trajectories"):
        meta_train(p, None, jnp.ones((5, 2)), num_steps=1, inner_lr=0.0)
    with pytest.raises(ValueError, match="dt"):
        OneStepPredictor(2, 0.0, key=jax.random.key(0))


def test_meta_train_stops_at_a_blow_up_and_keeps_finite_parameters():
    predictor = OneStepPredictor(2, 0.5, width=16, key=jax.random.key(0))
    trajs = jax.random.normal(jax.random.key(1), (4, 30, 2)) * 3
    with pytest.warns(RuntimeWarning, match="non-finite"):
        result = meta_train(predictor, lambda x: x**4, trajs, num_steps=5, inner_lr=1e30)
    assert result.diverged
    assert all(
        np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(eqx.filter(result.predictor, eqx.is_array))
    )
