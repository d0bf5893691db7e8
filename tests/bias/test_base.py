"""The four bias mechanisms: hard ones are exact, soft ones reduce the violation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias import (
    Augmentation,
    Canonicalized,
    Dataset,
    EvenFunction,
    OddFunction,
    Parity,
    Permutation,
    PhysicsResidual,
    Scaling,
    Symmetrized,
    SymmetryPenalty,
    Transformations,
    fit,
    supervised_loss,
)
from physbias.bias import describe
from physbias.metrics import equivariance_error, oddness_error
from physbias.systems import heron_area, sample_triangles

cyclic3 = Transformations(inputs=[lambda x: x, lambda x: jnp.roll(x, 1), lambda x: jnp.roll(x, 2)])


def _mlp(d_in, d_out, key):
    return eqx.nn.MLP(d_in, d_out, 16, 2, activation=jnp.tanh, key=key)


# (wrapper, symmetry it guarantees, input size, output size, input sampler)
HARD = {
    "symmetrized-permutation": (lambda m: Symmetrized(m, Permutation(3)), Permutation(3), 3, "scalar"),
    "symmetrized-permutation-equivariant": (
        lambda m: Symmetrized(m, Permutation(4, equivariant=True)),
        Permutation(4, equivariant=True),
        4,
        4,
    ),
    "symmetrized-parity-odd": (lambda m: Symmetrized(m, Parity()), Parity(), 2, 2),
    "symmetrized-parity-even": (lambda m: Symmetrized(m, Parity(odd=False)), Parity(odd=False), 2, 2),
    "symmetrized-cyclic": (lambda m: Symmetrized(m, cyclic3), cyclic3, 3, "scalar"),
    "symmetrized-product": (
        lambda m: Symmetrized(m, Permutation(3) * Parity()),
        Permutation(3) * Parity(),
        3,
        "scalar",
    ),
    "canonicalized-sort-normalise": (
        lambda m: Canonicalized(m, Permutation(3) * Scaling(0.6, 1.7, degree=2)),
        Permutation(3) * Scaling(0.6, 1.7, degree=2),
        3,
        "scalar",
    ),
    "canonicalized-parity": (lambda m: Canonicalized(m, Parity()), Parity(), 2, 2),
    "odd-function": (OddFunction, Parity(), 1, "scalar"),
    "even-function": (EvenFunction, Parity(odd=False), 1, "scalar"),
}


class DyadicScaling(Scaling):
    """Scalings by multiples of 1/16: with inputs on a 1/64 grid, s * x and the normalisation are
    exact in float32, so a measured violation is the model's, not the test's own rounding."""

    def sample(self, key):
        return jnp.round(super().sample(key) * 16) / 16


def _violation(name, seed, dtype):
    wrap, sym, d_in, d_out = HARD[name]
    k_model, k_x, k_g = jax.random.split(jax.random.key(seed), 3)
    model = wrap(_mlp(d_in, d_out, k_model))
    model = jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
    x = jax.random.uniform(k_x, (64, d_in), dtype, minval=0.2, maxval=1.0)
    if dtype == jnp.float32 and not sym.is_finite:
        x = jnp.round(x * 64) / 64
        sym = Permutation(3) * DyadicScaling(0.6, 1.7, degree=2)
    assert model.hard and model.kind == "inductive"
    return equivariance_error(model, sym, x, key=k_g)


@pytest.mark.parametrize("name", HARD)
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_hard_bias_is_exact_float32(name, seed):
    # Float32 rounding of the group average: median 5e-8, but a rare seed reaches 1.5e-6 (seed 2787
    # of the symmetrised product group, found by CI); an unsymmetrised MLP is off by 0.33.
    assert _violation(name, seed, jnp.float32) <= 1e-5


@pytest.mark.parametrize("name", HARD)
def test_hard_bias_is_exact_float64(name):
    with jax.enable_x64(True):
        assert _violation(name, 1, jnp.float64) <= 1e-13


def test_plain_mlp_is_not_symmetric(getkey):
    # The reference point for the tests above: an untrained MLP breaks each symmetry clearly.
    x = jax.random.uniform(getkey(), (64, 3), minval=0.2, maxval=1.0)
    assert equivariance_error(_mlp(3, "scalar", getkey()), Permutation(3), x) > 1e-3


def test_symmetrized_rejects_continuous_symmetry(getkey):
    with pytest.raises(ValueError, match="Canonicalized"):
        Symmetrized(_mlp(3, "scalar", getkey()), Scaling(0.5, 2.0))


def test_odd_function_matches_seed_formula(getkey):
    net = _mlp(1, "scalar", getkey())
    x = jnp.array([0.3])
    assert float(OddFunction(net)(x)) == pytest.approx(float(net(x) - net(-x)), abs=1e-7)


def test_physics_residual_adds_known_part(getkey):
    net = _mlp(1, "scalar", getkey())
    model = PhysicsResidual(lambda x: 2.0 * x[0], net)
    x = jnp.array([0.7])
    assert float(model(x)) == pytest.approx(1.4 + float(net(x)), abs=1e-6)
    assert float(PhysicsResidual(lambda x: 2.0 * x[0])(x)) == pytest.approx(1.4)
    assert describe(model) == "physics (hard)"
    with pytest.raises(TypeError, match="known"):
        PhysicsResidual(3.0)


def test_augmentation_labels_follow_the_symmetry(getkey):
    x = sample_triangles(getkey(), 50, 0.2, 1.0)
    data = Dataset(x, heron_area(x))
    aug = Augmentation(Permutation(3), Scaling(0.6, 1.7, degree=2))
    out = aug(data, key=getkey())
    assert len(out) == 50 * (1 + 5 + 1)  # seed 001: 5 permuted copies and 1 scaled copy
    # Every augmented label is the true area of its augmented input.
    np.testing.assert_allclose(out.targets, heron_area(out.inputs), rtol=2e-5, atol=1e-7)
    assert describe(aug) == "observation (soft)"


def test_augmentation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="at least one"):
        Augmentation()
    with pytest.raises(ValueError, match="copies"):
        Augmentation(Parity(), copies=0)


def test_penalty_values_against_hand_computation(getkey):
    x = jax.random.normal(getkey(), (32, 1))
    y = jnp.zeros(32)
    identity = lambda v: v[0]
    # f(x) = x is odd: zero penalty; as an even function it costs |f(x) - f(-x)|^2 = 4 x^2.
    assert float(SymmetryPenalty(Parity())(identity, x, y, getkey())) == pytest.approx(0.0, abs=1e-12)
    even = SymmetryPenalty(Parity(odd=False), weight=0.5)
    assert float(even(identity, x, y, getkey())) == pytest.approx(0.5 * 4 * float(jnp.mean(x**2)), rel=1e-5)
    # Label form (seed 001 level 2): |A_i - f(a, c, b)|^2 averaged over the 5 other orders.
    first = lambda v: v[0]
    xs = jax.random.uniform(getkey(), (8, 3))
    ys = jnp.zeros(8)
    expected = np.mean(
        [
            np.mean(np.asarray(xs)[:, p[0]] ** 2)
            for p in [(0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]
        ]
    )
    got = SymmetryPenalty(Permutation(3), use_targets=True)(first, xs, ys, getkey())
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_penalty_rejects_bad_arguments():
    with pytest.raises(ValueError, match="weight"):
        SymmetryPenalty(Parity(), weight=-1.0)
    with pytest.raises(TypeError, match="symmetry"):
        SymmetryPenalty("parity")


@pytest.mark.parametrize("mechanism", ["augmentation", "penalty"])
def test_soft_biases_reduce_the_violation(mechanism, getkey):
    # Spring data on the positive side only: without a bias nothing ties f(-x) to f(x).
    x = jax.random.uniform(getkey(), (128, 1), minval=0.1, maxval=1.0)
    data = Dataset(x, x[:, 0] + 2.0 * x[:, 0] ** 3)
    model = _mlp(1, "scalar", getkey())
    key = getkey()
    plain = fit(model, supervised_loss(), data, key=key, epochs=400, learning_rate=1e-2, progress=False)
    if mechanism == "augmentation":
        biased = fit(
            model,
            supervised_loss(),
            Augmentation(Parity())(data, key=key),
            key=key,
            epochs=400,
            learning_rate=1e-2,
            progress=False,
        )
    else:
        biased = fit(
            model,
            supervised_loss(SymmetryPenalty(Parity(), 1.0)),
            data,
            key=key,
            epochs=400,
            learning_rate=1e-2,
            progress=False,
        )
    grid = jnp.linspace(-1, 1, 101)[:, None]
    e_plain, e_biased = oddness_error(plain.model, grid), oddness_error(biased.model, grid)
    assert e_biased < 0.2 * e_plain


def test_a_transformations_penalty_works_inside_fit(getkey):
    # Once raised TracerBoolConversionError: the identity check ran on traced data.
    x = jax.random.uniform(getkey(), (64, 3))
    data = (x, x.sum(-1) + x[:, 0])
    penalty = SymmetryPenalty(cyclic3, weight=10.0)
    loss = supervised_loss(penalty)
    eager = float(loss(_mlp(3, "scalar", getkey()), data, getkey()))
    assert np.isfinite(eager)
    model = _mlp(3, "scalar", getkey())
    result = fit(model, loss, data, key=getkey(), epochs=200, learning_rate=3e-3)
    assert not result.diverged
    before = equivariance_error(model, cyclic3, x)
    after = equivariance_error(result.model, cyclic3, x)
    assert after < 0.3 * before
    with pytest.raises(ValueError, match="identity"):
        SymmetryPenalty(Transformations(inputs=[lambda v: jnp.roll(v, 1)]))(model, x, data[1], getkey())
