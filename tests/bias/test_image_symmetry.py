"""ImageSymmetry (lattice groups as a symmetry), as_symmetry, the equivariance metric and the
outputs under a symmetry; Symmetrized over p4 / p4m.

References: jnp.rot90 / jnp.flip written out here; the group average of a linear functional
<W, x> computed by hand as <W_bar, x> with W_bar = mean_g g^{-1} W (a permutation's adjoint is its
inverse); the metric's formula ||F(gX) - rho(g)F(X)||_F / (||F(gX)||_F + ||rho(g)F(X)||_F)
evaluated in NumPy float64 for a linear map.
Tolerances: models run in float32 with |outputs| ~ 1; a group average sums the same |G| terms in
a different order, so invariance holds to ~1e-7 relative; checked at 1e-6 (1e-5 for the CNNs,
sums of a few hundred terms).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.bias import (
    ImageSymmetry,
    MatrixSymmetry,
    Parity,
    Permutation,
    Scaling,
    Symmetrized,
    as_symmetry,
)
from physbias.groups import SO, C, LatticeGroup, V
from physbias.metrics import equivariance_error, outputs_under_symmetry
from physbias.nn import CNN, P4CNN


def by_hand(x, element):
    """Element 4 m + r: mirror (flip the last axis) m times, then rot90 r times."""
    m, r = divmod(element, 4)
    return jnp.rot90(jnp.flip(x, axis=-1) if m else x, r, axes=(-2, -1))


def inverse_by_hand(x, element):
    """(rot^r flip^m)^{-1} = flip^m rot^{-r}."""
    m, r = divmod(element, 4)
    x = jnp.rot90(x, -r, axes=(-2, -1))
    return jnp.flip(x, axis=-1) if m else x


@pytest.fixture(scope="module")
def images():
    return jax.random.normal(jax.random.key(11), (4, 1, 7, 7))


@pytest.fixture(scope="module")
def models():
    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    return {
        "p4": P4CNN(1, 3, width=2, depth=1, group="p4", key=k1),
        "p4m": P4CNN(1, 3, width=2, depth=1, group="p4m", key=k2),
        "cnn": CNN(1, 3, width=4, depth=1, key=k3),
    }


def test_gcnn_is_invariant_and_plain_cnn_is_not(models, images):
    assert equivariance_error(models["p4"], "p4", images) < 1e-5
    assert equivariance_error(models["p4m"], LatticeGroup("p4m"), images) < 1e-5
    assert equivariance_error(models["cnn"], "p4", images) > 1e-2
    # a p4 network has no reason to be mirror invariant: the metric sees the mirrors of p4m
    assert equivariance_error(models["p4"], "p4m", images) > 1e-3


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_outputs_under_symmetry_rows_are_the_outputs_on_transformed_images(group, models, images):
    n = {"p4": 4, "p4m": 8}[group]
    model = models["cnn"]  # not invariant: every row differs
    out = np.asarray(outputs_under_symmetry(model, group, images))
    assert out.shape == (n, 4, 3)
    moved = jnp.stack([by_hand(images, e) for e in range(n)])  # (|G|, N, 1, H, W); moved[0] = images
    expected = np.asarray(jax.jit(jax.vmap(jax.vmap(model)))(moved))  # expected[0]: the plain outputs
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    for e in range(1, n):
        assert np.max(np.abs(out[e] - out[0])) > 1e-3


def test_outputs_under_symmetry_needs_a_finite_symmetry(models, images):
    with pytest.raises(ValueError, match="finite"):
        outputs_under_symmetry(models["cnn"], Scaling(0.5, 2.0), images)


def test_image_symmetry_acts_like_rot90_and_flip():
    x = jax.random.normal(jax.random.key(2), (2, 5, 5))
    for group in ("p4", "p4m"):
        s = ImageSymmetry(group)
        assert s.is_finite and s.order == {"p4": 4, "p4m": 8}[group]
        assert np.array_equal(np.asarray(s.elements()), np.arange(s.order))
        act = jax.jit(s.act_input)
        for e in range(s.order):
            assert jnp.array_equal(act(e, x), by_hand(x, e))
        y = jnp.arange(3.0)
        assert jnp.array_equal(s.act_output(1, y), y) and jnp.array_equal(s.act_output_inverse(1, y), y)
        draws = np.asarray(s.sample_batch(jax.random.key(0), 400))
        assert set(draws.tolist()) == set(range(s.order))


def test_as_symmetry_converts_lattice_groups_and_refuses_the_rest():
    s = as_symmetry("p4")
    assert isinstance(s, ImageSymmetry) and s.group.name == "p4" and s.order == 4
    s = as_symmetry(LatticeGroup("p4m"))
    assert isinstance(s, ImageSymmetry) and s.group.name == "p4m" and s.order == 8
    parity = Parity()
    assert as_symmetry(parity) is parity
    with pytest.raises(TypeError, match="MatrixSymmetry"):
        as_symmetry(SO(3))
    with pytest.raises(TypeError, match="MatrixSymmetry") as info:
        as_symmetry(SO(3), owner="my_metric")
    assert "my_metric" in str(info.value)
    for other in (3, None, "p6", jnp.eye(2), [Parity()]):
        with pytest.raises(TypeError, match="expected a symmetry"):
            as_symmetry(other)
    # the metric and the mechanisms go through the same conversion
    with pytest.raises(TypeError, match="MatrixSymmetry"):
        equivariance_error(lambda x: x, SO(3), jnp.ones((2, 3)))
    with pytest.raises(TypeError, match="MatrixSymmetry"):
        Symmetrized(lambda x: x, SO(3))


def arbitrary(x):
    """An image function with no symmetry at all."""
    w = jnp.arange(x.size, dtype=x.dtype).reshape(x.shape) / x.size
    return jnp.stack([jnp.sum(w * x), jnp.sum(jnp.tanh(x[0, :3, 1:]) ** 2), x[0, 0, 1] * x[0, 2, 3]])


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_symmetrized_arbitrary_function_is_exactly_invariant(group, images):
    assert equivariance_error(arbitrary, group, images) > 1e-2
    sym = Symmetrized(arbitrary, group)
    assert isinstance(sym.symmetry, ImageSymmetry)
    moved = jnp.stack([by_hand(images, e) for e in range(sym.symmetry.order)])
    out = np.asarray(jax.jit(jax.vmap(jax.vmap(sym)))(moved))  # (|G|, N, 3): sym(g x) for every g
    np.testing.assert_allclose(out, np.broadcast_to(out[0], out.shape), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("group", ["p4", "p4m"])
def test_symmetrized_linear_map_is_the_hand_computed_group_average(group, images):
    """mean_g <W, g x> = <W_bar, x> with W_bar = mean_g g^{-1} W; an invariant map is kept as is."""
    n = {"p4": 4, "p4m": 8}[group]
    W = jax.random.normal(jax.random.key(7), (2, 1, 7, 7))
    linear = lambda w: lambda x: jnp.einsum("kchw,chw->k", w, x)
    W_bar = np.mean([np.asarray(inverse_by_hand(W, e), np.float64) for e in range(n)], axis=0)
    expected = np.einsum("kchw,nchw->nk", W_bar, np.asarray(images, np.float64))
    sym = Symmetrized(linear(W), group)
    invariant = linear(jnp.asarray(W_bar, jnp.float32))

    @jax.jit
    def outputs(x):
        return [
            jax.vmap(f)(x)
            for f in (sym, linear(W), invariant, Symmetrized(invariant, group), Symmetrized(sym, group))
        ]

    averaged, raw, inv, inv_averaged, twice = map(np.asarray, outputs(images))
    np.testing.assert_allclose(averaged, expected, rtol=1e-5, atol=1e-5)
    # the average of a non-invariant W is a different function ...
    assert np.max(np.abs(raw - expected)) > 1e-1
    # ... while an invariant target of the class is represented exactly (the hard constraint loses
    # nothing it should keep), and averaging twice changes nothing
    np.testing.assert_allclose(inv_averaged, inv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(twice, averaged, rtol=1e-5, atol=1e-5)


def relative(left, right):
    left, right = np.ravel(left), np.ravel(right)
    return np.linalg.norm(left - right) / (np.linalg.norm(left) + np.linalg.norm(right))


def test_equivariance_error_normalisation_for_a_permutation_by_hand():
    """f(x) = A x, S(3) permuting x and (equivariant=True) the output: worst element of
    ||A X_g - (A X)_g||_F / (||A X_g||_F + ||(A X)_g||_F) over the 6 permutations."""
    rng = np.random.default_rng(0)
    A, X = rng.standard_normal((3, 3)), rng.standard_normal((10, 3))
    model = lambda x: jnp.asarray(A, jnp.float32) @ x
    expected = max(
        relative(X[:, list(p)] @ A.T, (X @ A.T)[:, list(p)]) for p in itertools.permutations(range(3))
    )
    got = equivariance_error(model, Permutation(3, equivariant=True), jnp.asarray(X, jnp.float32))
    assert expected > 0.1
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # a permutation-equivariant A = a I + b 11^T scores zero
    B = 0.7 * np.eye(3) + 0.2
    equi = lambda x: jnp.asarray(B, jnp.float32) @ x
    assert equivariance_error(equi, Permutation(3, equivariant=True), jnp.asarray(X, jnp.float32)) < 1e-6


def test_equivariance_error_normalisation_for_a_matrix_symmetry_by_hand():
    """C(4) acting on R^4 by cyclic shifts, on the input (V) and the output (V)."""
    rng = np.random.default_rng(1)
    A, X = rng.standard_normal((4, 4)), rng.standard_normal((6, 4))
    shifts = [np.roll(np.eye(4), k, axis=0) for k in range(4)]
    expected = max(relative((X @ P.T) @ A.T, (X @ A.T) @ P.T) for P in shifts)
    model = lambda x: jnp.asarray(A, jnp.float32) @ x
    got = equivariance_error(model, MatrixSymmetry(C(4), V, V), jnp.asarray(X, jnp.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_equivariance_error_of_a_continuous_symmetry_uses_per_example_draws():
    """Scaling of degree 2 and f(x) = A x: element draws reproduced with sample_batch."""
    rng = np.random.default_rng(2)
    A, X = rng.standard_normal((2, 3)), rng.standard_normal((8, 3))
    model = lambda x: jnp.asarray(A, jnp.float32) @ x
    key = jax.random.key(3)
    symmetry = Scaling(0.5, 2.0, degree=2.0)
    worst = 0.0
    for k in jax.random.split(key, 5):
        s = np.asarray(symmetry.sample_batch(k, 8), np.float64)[:, None]
        worst = max(worst, relative((s * X) @ A.T, s**2 * (X @ A.T)))
    got = equivariance_error(model, symmetry, jnp.asarray(X, jnp.float32), key=key, n_elements=5)
    np.testing.assert_allclose(got, worst, rtol=1e-5)
    degree_one = equivariance_error(model, Scaling(0.5, 2.0), jnp.asarray(X, jnp.float32), key=key)
    assert degree_one < 1e-6
    with pytest.raises(ValueError, match="key"):
        equivariance_error(model, symmetry, jnp.asarray(X, jnp.float32))
