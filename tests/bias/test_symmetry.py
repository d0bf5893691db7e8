"""Group axioms and contracts of the symmetry descriptions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias.bias import Parity, Permutation, Scaling, Transformations

cyclic3 = Transformations(
    inputs=[lambda x: x, lambda x: jnp.roll(x, 1), lambda x: jnp.roll(x, 2)],
)
FINITE = {
    "permutation": (Permutation(3), (3,), ()),
    "permutation-equivariant": (Permutation(4, equivariant=True), (4,), (4,)),
    "parity-odd": (Parity(), (2,), (2,)),
    "parity-even": (Parity(odd=False), (2,), ()),
    "cyclic3": (cyclic3, (3,), ()),
    "permutation*parity": (Permutation(3) * Parity(), (3,), (3,)),
}


def _elements(sym):
    els = sym.elements()
    return [jax.tree_util.tree_map(lambda a, i=i: a[i], els) for i in range(sym.order)]


@pytest.mark.parametrize("name", FINITE)
def test_finite_group_axioms(name, getkey):
    sym, in_shape, out_shape = FINITE[name]
    x = jax.random.normal(getkey(), in_shape)
    y = jax.random.normal(getkey(), out_shape)
    elements = _elements(sym)
    # identity first
    np.testing.assert_array_equal(sym.act_input(elements[0], x), x)
    np.testing.assert_array_equal(sym.act_output(elements[0], y), y)
    images = [np.asarray(sym.act_input(g, x)) for g in elements]
    outputs = [np.asarray(sym.act_output(g, y)) for g in elements]
    # closure: g.(h.x) is k.x for some element k, with the output action matching the same k
    for g in elements:
        for h in elements:
            gx = np.asarray(sym.act_input(g, sym.act_input(h, x)))
            gy = np.asarray(sym.act_output(g, sym.act_output(h, y)))
            matches = [
                k
                for k, (im, out) in enumerate(zip(images, outputs, strict=True))
                if np.allclose(im, gx) and np.allclose(out, gy)
            ]
            assert matches, f"{name}: composition leaves the group"
    # inverses on the output side
    for g in elements:
        np.testing.assert_allclose(sym.act_output_inverse(g, sym.act_output(g, y)), y, rtol=1e-6)


def test_orders():
    assert Permutation(3).order == 6
    assert Permutation(4).order == 24
    assert Parity().order == 2
    assert cyclic3.order == 3
    assert (Permutation(3) * Parity()).order == 12


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), s=st.floats(0.6, 1.7))
def test_canonical_form_is_orbit_invariant_and_reconstructs(seed, s):
    sym = Permutation(3) * Scaling(0.6, 1.7, degree=2)
    k1, k2 = jax.random.split(jax.random.key(seed))
    x = jax.random.uniform(k1, (3,), minval=0.2, maxval=1.0)
    x_c, g = sym.canonicalize(x)
    np.testing.assert_allclose(sym.act_input(g, x_c), x, rtol=1e-6)
    perm = jax.random.permutation(k2, 3)
    x_c2, _ = sym.canonicalize(s * x[perm])
    np.testing.assert_allclose(x_c2, x_c, rtol=1e-6)
    assert float(jnp.sum(x_c)) == pytest.approx(1.0, rel=1e-6)
    assert bool(jnp.all(jnp.diff(x_c) <= 0))


def test_parity_canonical_form():
    x = jnp.array([0.0, -2.0, 1.0])
    x_c, g = Parity().canonicalize(x)
    np.testing.assert_array_equal(x_c, -x)
    assert float(g) == -1.0


def test_shape_changing_transformation_is_rejected():
    bad = Transformations(inputs=[lambda x: x, lambda x: jnp.concatenate([x, x])])
    with pytest.raises(ValueError, match="keep the input's shape"):
        bad.check(jnp.zeros(3), jnp.zeros(()))
    bad_out = Transformations(
        inputs=[lambda x: x, lambda x: -x], outputs=[lambda y: y, lambda y: jnp.stack([y, y])]
    )
    with pytest.raises(ValueError, match="output's shape"):
        bad_out.check(jnp.zeros(3), jnp.zeros(()))


def test_first_transformation_must_be_identity():
    with pytest.raises(ValueError, match="identity"):
        Transformations(inputs=[lambda x: -x, lambda x: x]).check(jnp.ones(2), jnp.zeros(()))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Permutation(0), "positive integer"),
        (lambda: Scaling(0.0, 1.0), "0 < low <= high"),
        (lambda: Scaling(2.0, 1.0), "0 < low <= high"),
        (lambda: Scaling(1.0, 2.0, norm="l3"), "norm"),
        (lambda: Transformations(inputs=[]), "non-empty"),
        (lambda: Transformations(inputs=[lambda x: x], outputs=[]), "one per transformation"),
    ],
)
def test_bad_symmetry_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_continuous_symmetry_has_no_elements():
    with pytest.raises(TypeError, match="continuous"):
        Scaling(0.5, 2.0).elements()
    with pytest.raises(ValueError, match="too many"):
        Permutation(9).elements()
