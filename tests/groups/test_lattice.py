"""The lattice point groups p4 and p4m (physbias.groups.lattice) as data: the multiplication table
is a group, and it is the table of the actions on images and on group feature maps.

References, independent of the library's own formula for the table:
  * the group axioms, checked entry by entry on the table (exhaustively: 4^3 and 8^3 triples);
  * the action on an image written out here with jnp.flip / jnp.rot90 ("mirror m times, then
    rotate r quarter turns" for element 4 m + r), and composition of those actions;
  * the known structure: p4 is the cyclic group C4 (abelian, one element of order 2, two of
    order 4); p4m is the dihedral group D4 (non-abelian, five elements of order 2).
Actions only permute pixels, so every comparison of images is exact (no tolerance).
"""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias.groups import LatticeGroup, group_order, lattice_group, transform_group_maps, transform_image

GROUPS = ("p4", "p4m")


def by_hand(x, element):
    """Element 4 m + r on the last two axes, written out: mirror (flip last axis) m times, then
    rot90 r times."""
    m, r = divmod(element, 4)
    if m:
        x = jnp.flip(x, axis=-1)
    return jnp.rot90(x, r, axes=(-2, -1))


def image(seed, shape=(2, 5, 5)):
    """Distinct integer pixel values: every non-identity transformation changes the image."""
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.permutation(np.prod(shape)).reshape(shape), dtype=jnp.float32)


def element_order(mul, a):
    power, k = a, 1
    while power != 0:
        power, k = mul[power, a], k + 1
    return k


@pytest.mark.parametrize("name", GROUPS)
def test_multiplication_table_satisfies_the_group_axioms(name):
    G = LatticeGroup(name)
    mul, inv, n = G.multiplication_table, G.inverses, G.order
    assert n == group_order(name) == len(G.elements) == {"p4": 4, "p4m": 8}[name]
    assert mul.shape == (n, n) and inv.shape == (n,)
    # closure: every product is an element; each row and column is a permutation (Latin square)
    for row in (*mul, *mul.T):
        assert sorted(row.tolist()) == list(range(n))
    # identity at index 0
    assert G.elements[0] == (0, 0)
    assert np.array_equal(mul[0], np.arange(n)) and np.array_equal(mul[:, 0], np.arange(n))
    # inverses on both sides
    for a in range(n):
        assert mul[a, inv[a]] == 0 and mul[inv[a], a] == 0
    # associativity, every triple
    for a, b, c in itertools.product(range(n), repeat=3):
        assert mul[mul[a, b], c] == mul[a, mul[b, c]], (a, b, c)


def test_p4_is_cyclic_and_abelian_p4m_is_dihedral_and_not():
    p4 = LatticeGroup("p4").multiplication_table
    p4m = LatticeGroup("p4m").multiplication_table
    assert np.array_equal(p4, p4.T)
    assert not np.array_equal(p4m, p4m.T)
    assert sorted(element_order(p4, a) for a in range(4)) == [1, 2, 4, 4]  # C4
    assert sorted(element_order(p4m, a) for a in range(8)) == [1, 2, 2, 2, 2, 2, 4, 4]  # D4
    # p4 is the rotation subgroup of p4m: the same table on the first four indices
    assert np.array_equal(p4m[:4, :4], p4)
    # the mirror and a quarter turn do not commute, on an image as in the table
    x = image(0)
    assert not jnp.array_equal(
        transform_image(transform_image(x, 1, "p4m"), 4, "p4m"),
        transform_image(transform_image(x, 4, "p4m"), 1, "p4m"),
    )


@pytest.mark.parametrize("name", GROUPS)
@pytest.mark.parametrize("shape", [(2, 5, 5), (1, 4, 4)])
def test_actions_are_the_written_out_flips_and_rotations_and_faithful(name, shape):
    x = image(1, shape)
    G = LatticeGroup(name)
    seen = []
    for e in range(G.order):
        gx = transform_image(x, e, name)
        assert jnp.array_equal(gx, by_hand(x, e))
        assert jnp.array_equal(G.act_on_image(x, e), gx)
        seen.append(np.asarray(gx).tobytes())
    assert jnp.array_equal(transform_image(x, 0, name), x)
    assert len(set(seen)) == G.order  # distinct elements act differently (faithful)


@pytest.mark.parametrize("name", GROUPS)
def test_table_is_the_composition_of_actions_on_images_and_group_maps(name):
    """act(a) after act(b) == act(mul[a, b]), for every pair: on an image, and on group feature
    maps (C, |H|, H, W) with (u F)[g] = u(F[u^{-1} g]); act(inv[a]) undoes act(a)."""
    G = LatticeGroup(name)
    mul, inv, n = G.multiplication_table, G.inverses, G.order
    x = image(2)
    f = image(3, (2, n, 5, 5))
    for a, b in itertools.product(range(n), repeat=2):
        ab = int(mul[a, b])
        assert jnp.array_equal(by_hand(by_hand(x, b), a), transform_image(x, ab, name)), (a, b)
        twice = transform_group_maps(transform_group_maps(f, b, name), a, name)
        assert jnp.array_equal(twice, transform_group_maps(f, ab, name)), (a, b)
    for a in range(n):
        assert jnp.array_equal(transform_image(transform_image(x, a, name), int(inv[a]), name), x)
        assert jnp.array_equal(transform_group_maps(f, 0, name), f)


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(GROUPS),
    a=st.integers(0, 7),
    b=st.integers(0, 7),
    c=st.integers(0, 7),
    seed=st.integers(0, 2**31 - 1),
    size=st.integers(1, 6),
)
def test_random_images_compose_by_the_table(name, a, b, c, seed, size):
    n = group_order(name)
    a, b, c = a % n, b % n, c % n
    mul = LatticeGroup(name).multiplication_table
    x = jnp.asarray(np.random.default_rng(seed).standard_normal((size, size)), jnp.float32)
    act = lambda e, y: transform_image(y, int(e), name)
    assert jnp.array_equal(act(a, act(b, act(c, x))), act(mul[mul[a, b], c], x))


def test_names_and_group_objects_are_interchangeable():
    for name in GROUPS:
        G = lattice_group(name)
        assert isinstance(G, LatticeGroup) and G.name == name and repr(G) == name
        assert lattice_group(G) is G
        assert group_order(G) == G.order
        x = image(4)
        assert jnp.array_equal(transform_image(x, 3, G), transform_image(x, 3, name))
    assert LatticeGroup("p4m").elements[5] == (1, 1)


@pytest.mark.parametrize("bad", ["p6", "P4", "", "p4 "])
def test_unknown_names_raise_value_error_naming_group(bad):
    with pytest.raises(ValueError, match="`group`"):
        LatticeGroup(bad)
    with pytest.raises(ValueError, match="`group`"):
        lattice_group(bad)
    with pytest.raises(ValueError, match="`group`"):
        group_order(bad)
    with pytest.raises(ValueError, match="`group`"):
        transform_image(jnp.zeros((3, 3)), 0, bad)


@pytest.mark.parametrize("bad", [4, None, 4.0, ("p4",)])
def test_other_types_raise_type_error_naming_group(bad):
    with pytest.raises(TypeError, match="`group`"):
        lattice_group(bad)


def test_bad_elements_and_shapes_raise():
    x = jnp.zeros((1, 3, 3))
    for element in (4, -1, 1.0, "1"):
        with pytest.raises(ValueError, match="`element`"):
            transform_image(x, element, "p4")
    assert transform_image(x, 7, "p4m").shape == x.shape  # 7 is valid in p4m only
    with pytest.raises(ValueError, match="shape"):
        transform_group_maps(jnp.zeros((1, 4, 3, 3)), 1, "p4m")  # group axis 4, not 8
    with pytest.raises(ValueError, match="shape"):
        transform_group_maps(jnp.zeros((4, 3, 3)), 1, "p4")
