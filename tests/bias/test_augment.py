"""physbias.bias.AugmentedLoss: the wrapped loss evaluated on a batch moved by random group
elements, g_i drawn per example as symmetry.sample_batch(key, n).

References: the loss computed here on the batch transformed by hand with the same draws; for an
odd model and Parity(odd=True) the transformed residuals are the negated plain ones, so the two
losses agree to float32 rounding (they are in fact bit-equal); the oddness error
max |f(x) + f(-x)| of a network trained on one-sided data, with and without the augmentation.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physbias as pb
from physbias.bias import AugmentedLoss, OddFunction, Parity, Permutation, Scaling, describe
from physbias.groups import SO
from physbias.metrics import oddness_error


def mse(model, batch, key):
    x, y = batch
    return jnp.mean(jnp.sum((jax.vmap(model)(x) - y) ** 2, axis=-1))


def mse_by_hand(model, x, y, weights=None):
    pred = np.asarray(jax.jit(jax.vmap(model))(jnp.asarray(x, jnp.float32)), np.float64)
    per = np.sum((pred - y) ** 2, axis=-1)
    return float(np.mean(per if weights is None else weights * per))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.standard_normal((16, 2)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)


def test_odd_model_with_parity_gives_the_plain_loss(batch):
    x, y = map(jnp.asarray, batch)
    odd_models = [
        eqx.nn.Linear(2, 2, use_bias=False, key=jax.random.key(1)),
        OddFunction(eqx.nn.MLP(2, 2, 8, 1, activation=jnp.tanh, key=jax.random.key(2))),
    ]
    aug = eqx.filter_jit(AugmentedLoss(mse, Parity(odd=True)))
    keys = jax.random.split(jax.random.key(0), 3)
    for model in odd_models:
        plain = float(eqx.filter_jit(mse)(model, (x, y), None))
        for key in keys:
            assert -1.0 in np.asarray(Parity().sample_batch(key, 16))  # some signs really flip
            np.testing.assert_allclose(float(aug(model, (x, y), key)), plain, rtol=1e-6)


@pytest.mark.parametrize("odd", [True, False])
def test_non_odd_model_gets_the_loss_of_the_transformed_batch(odd, batch):
    x, y = batch
    model = eqx.nn.MLP(2, 2, 8, 1, activation=jax.nn.softplus, key=jax.random.key(3))  # neither odd nor even
    symmetry = Parity(odd=odd)
    aug = eqx.filter_jit(AugmentedLoss(mse, symmetry))
    key = jax.random.key(4)
    g = np.asarray(symmetry.sample_batch(key, 16))[:, None]
    assert set(g.ravel().tolist()) == {-1.0, 1.0}
    expected = mse_by_hand(model, g * x, g * y if odd else y)
    got = float(aug(model, (jnp.asarray(x), jnp.asarray(y)), key))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert abs(got - mse_by_hand(model, x, y)) > 1e-2 * expected  # the augmentation changed the loss


def test_continuous_symmetry_draws_one_element_per_example(batch):
    """Scaling of degree 2: x_i -> s_i x_i, y_i -> s_i^2 y_i with a fresh s_i for each example."""
    x, y = batch
    model = eqx.nn.MLP(2, 2, 8, 1, activation=jax.nn.softplus, key=jax.random.key(5))
    symmetry = Scaling(0.5, 2.0, degree=2.0)
    key = jax.random.key(6)
    s = np.asarray(symmetry.sample_batch(key, 16), np.float64)[:, None]
    assert len(np.unique(s)) == 16
    expected = mse_by_hand(model, s * x, s**2 * y)
    got = float(eqx.filter_jit(AugmentedLoss(mse, symmetry))(model, (jnp.asarray(x), jnp.asarray(y)), key))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_permutation_and_extra_batch_entries():
    """Permutation(3) on (n, 3) inputs with invariant targets; a third batch entry (weights)
    reaches the wrapped loss unchanged."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((12, 3)).astype(np.float32)
    y = rng.standard_normal((12, 1)).astype(np.float32)
    w = rng.uniform(0.5, 2.0, 12).astype(np.float32)
    model = eqx.nn.Linear(3, 1, key=jax.random.key(8))  # not permutation invariant

    def weighted(model, batch, key):
        x, y, w = batch
        return jnp.mean(w * jnp.sum((jax.vmap(model)(x) - y) ** 2, axis=-1))

    symmetry = Permutation(3)
    key = jax.random.key(9)
    perms = np.asarray(symmetry.sample_batch(key, 12))
    x_moved = np.take_along_axis(x, perms, axis=1)
    expected = mse_by_hand(model, x_moved, y, weights=w)
    loss = eqx.filter_jit(AugmentedLoss(weighted, symmetry))
    got = float(loss(model, tuple(map(jnp.asarray, (x, y, w))), key))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_bad_arguments_and_kind():
    with pytest.raises(TypeError, match="`loss`"):
        AugmentedLoss("mse", Parity())
    with pytest.raises(TypeError, match="MatrixSymmetry"):
        AugmentedLoss(mse, SO(3))
    with pytest.raises(TypeError, match="expected a symmetry"):
        AugmentedLoss(mse, 3)
    assert describe(AugmentedLoss(mse, Parity())) == "observation (soft)"


def test_training_with_augmented_loss_makes_the_model_nearly_odd():
    """F = x + 2 x^3 seen only on (0, 1): plain training extrapolates to x < 0 with no reason to be
    odd (measured oddness error ~2); the augmented loss shows it both sides (measured ~0.04)."""
    key = jax.random.key(0)
    x = jax.random.uniform(key, (64, 1), minval=0.0, maxval=1.0)
    data = pb.Dataset(x, x[:, 0] + 2.0 * x[:, 0] ** 3)
    net = eqx.nn.MLP(1, "scalar", 16, 2, activation=jnp.tanh, key=jax.random.key(1))
    grid = jnp.linspace(-1.0, 1.0, 41)[:, None]
    settings = dict(key=key, epochs=200, learning_rate=1e-2, progress=False)
    plain = pb.fit(net, pb.supervised_loss(), data, **settings)
    augmented = pb.fit(net, AugmentedLoss(pb.supervised_loss(), Parity(odd=True)), data, **settings)
    assert plain.losses[-1] < 1e-2 and augmented.losses[-1] < 1e-2  # both fit the data
    err_plain, err_aug = oddness_error(plain.model, grid), oddness_error(augmented.model, grid)
    assert err_aug < 0.2 and err_aug < err_plain / 5


def test_a_symmetry_that_does_not_fit_the_data_is_refused():
    import jax
    import jax.numpy as jnp
    import pytest

    from physbias.bias import AugmentedLoss, Permutation

    loss = AugmentedLoss(lambda m, b, k: jnp.mean(b[1]), Permutation(3))
    with pytest.raises(ValueError, match="cannot act|shape"):
        loss(lambda x: x, (jnp.ones((4, 2)), jnp.ones(4)), jax.random.key(0))
