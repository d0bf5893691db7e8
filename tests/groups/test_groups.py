"""Groups as data, representations and the equivariant-basis solver (M11, M12)."""

import numpy as np
import pytest
import scipy.linalg

from physbias.groups import (
    SE,
    SO,
    SU,
    Z2,
    C,
    D,
    E,
    Group,
    Lorentz,
    O,
    S,
    Scalar,
    SO13p,
    Sp,
    T,
    U,
    V,
    constraint_matrix,
    equivariant_basis,
    get_group,
)
from physbias.groups.basis import _solve_dense, expand

GROUPS = [
    SO(2),
    SO(3),
    O(3),
    O(5),
    S(4),
    C(4),
    D(4),
    Z2(3),
    Lorentz(),
    SO13p(),
    Sp(2),
    U(2),
    SU(2),
    SO(3) * S(2),
    SE(3),
    E(2),
]


@pytest.mark.parametrize("G", GROUPS, ids=repr)
def test_sampled_elements_preserve_the_group_structure(G):
    rng = np.random.default_rng(0)
    g = G.sample(rng, 3)
    # Each sample must keep the group's defining invariant (orthogonality, metric, symplectic form).
    name = G.name
    for m in g:
        assert np.all(np.isfinite(m)) and abs(np.linalg.det(m)) > 1e-9
        if G.compact:
            np.testing.assert_allclose(m.T @ m, np.eye(G.d), atol=1e-10)  # orthogonal real forms
        if name in ("O(1,3)", "SO+(1,3)"):
            eta = np.diag([-1.0, 1, 1, 1])
            np.testing.assert_allclose(m.T @ eta @ m, eta, atol=1e-9)
        if name.startswith("Sp("):
            n = G.d // 2
            j = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
            np.testing.assert_allclose(m.T @ j @ m, j, atol=1e-9)
    if name.startswith(("SO(", "SU(")) and "x" not in name:
        assert np.linalg.det(g[0]) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("G", [SO(3), Lorentz(), Sp(1), SU(2), O(3) * S(3)], ids=repr)
def test_rho_is_a_homomorphism_and_drho_its_derivative(G):
    rng = np.random.default_rng(1)
    rep = V * V.T + T(2) + 2 * V
    g1, g2 = G.sample(rng, 2)
    np.testing.assert_allclose(rep.rho(G, g1 @ g2), rep.rho(G, g1) @ rep.rho(G, g2), atol=1e-9)
    np.testing.assert_allclose(rep.rho(G, np.linalg.inv(g1)), np.linalg.inv(rep.rho(G, g1)), atol=1e-9)
    for A in G.lie_algebra[:3]:
        t = 0.3
        np.testing.assert_allclose(
            rep.rho(G, scipy.linalg.expm(t * A)), scipy.linalg.expm(t * rep.drho(G, A)), atol=1e-9
        )


@pytest.mark.parametrize(
    "G, rep, dim",
    [
        (SO(3), V >> V, 1),  # scalar multiples of the identity
        (O(3), T(2) >> T(0), 1),  # the trace
        (S(5), V >> V, 2),  # a I + b 11^T
        (SO(3), T(3), 1),  # Levi-Civita
        (O(3), T(3), 0),  # epsilon is a pseudo-tensor
        (SO(2), V >> V, 2),  # complex multiplication
        (Lorentz(), T(2), 1),  # the metric
        (U(1), V >> V, 2),
        (SU(2), V >> V, 4),  # quaternions commute with SU(2) = unit quaternions
        (C(4), V >> V, 4),  # circulant matrices
        (D(4), V >> V, 3),  # orbits of D4 on vertex pairs
        (SO(3) * S(2), V >> V, 3),  # product group: blocks act separately
        (SE(3), V >> V, 1),  # affine action: only multiples of the identity commute
        (SE(3), V, 0),  # no point is fixed by every rigid motion
        (SE(3), V.T, 1),  # the covector (0, 0, 0, 1) reading the homogeneous coordinate
    ],
    ids=str,
)
def test_basis_has_the_known_dimension_and_is_equivariant(G, rep, dim):
    Q = equivariant_basis(rep, G)
    assert Q.shape == (rep.size(G), dim)
    if dim:
        np.testing.assert_allclose(Q.T @ Q, np.eye(dim), atol=1e-10)
        for g in G.sample(np.random.default_rng(2), 3):
            np.testing.assert_allclose(rep.rho(G, g) @ Q, Q, atol=1e-9)


def _same_span(Q1, Q2, atol):
    assert Q1.shape == Q2.shape
    np.testing.assert_allclose(Q1 @ Q1.T, Q2 @ Q2.T, atol=atol)


@pytest.mark.parametrize(
    "G, rep",
    [
        (S(4), (3 * V + 2 * T(2)) >> (2 * Scalar + T(2))),
        (Lorentz(), (V + Scalar) >> T(1, 1)),
        (SO(3) * S(2), (V + T(2)) >> V),
    ],
    ids=str,
)
def test_structured_solver_matches_the_dense_solver(G, rep):
    # Splitting by direct sums and solving each distinct atom once spans the same space as the
    # SVD of the whole constraint matrix, and satisfies the constraints to 1e-10 (float64).
    Q = equivariant_basis(rep, G, cache=False)
    _same_span(Q, _solve_dense(rep, G, 1e-7), 1e-10)
    C = constraint_matrix(rep, G)
    assert np.abs(C @ Q).max() < 1e-10
    # ...and, rounded to float32 as a model would hold it, to 1e-6.
    C32, Q32 = C.astype(np.float32), Q.astype(np.float32)
    assert np.abs(C32 @ Q32).max() < 1e-6 * max(1.0, np.abs(C32).max())
    np.testing.assert_allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-12)


def test_expand_places_atoms_at_their_coordinates():
    G = S(3)
    rep = (V + Scalar) >> (Scalar + V)  # = (Scalar + V) x (V* + Scalar), sizes 4 x 4
    terms = expand(rep, G)
    assert [repr(a) for a, _ in terms] == ["V*", "Scalar", "V⊗V*", "V"]
    positions = np.concatenate([p for _, p in terms])
    assert sorted(positions.tolist()) == list(range(16))
    g = G.sample(np.random.default_rng(0), 1)[0]
    full = rep.rho(G, g)
    for atom, pos in terms:  # each atom's rho is the full rho restricted to its coordinates
        np.testing.assert_allclose(full[np.ix_(pos, pos)], atom.rho(G, g), atol=1e-12)


@pytest.mark.parametrize(
    "G, rep, dim", [(SO(3), T(3), 1), (SO(3), T(4), 3), (Lorentz(), T(2), 1), (S(4), T(3), 5)]
)
def test_matrix_free_solver_matches_the_dense_solver(G, rep, dim):
    # dense_max=0 forces the Kronecker-structured LOBPCG path for every atom.
    Q = equivariant_basis(rep, G, cache=False, dense_max=0)
    assert Q.shape == (rep.size(G), dim)
    _same_span(Q, _solve_dense(rep, G, 1e-7), 1e-8)


def test_product_group_sizes_add_up():
    G = SO(3) * O(2) * S(4)
    assert G.d == 3 + 2 + 4 and len(G.factors) == 3
    assert T(2).size(G) == 81 and (V >> V).size(G) == 81
    assert len(G.lie_algebra) == 3 + 1 and len(G.discrete_generators) == 1 + 2


def test_bad_groups_and_names_are_refused():
    with pytest.raises(ValueError, match="valid names"):
        get_group("Spin", 3)
    with pytest.raises(ValueError, match="not invertible"):
        Group("bad", 2, np.zeros((1, 2, 2)), np.zeros((0, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        Group("bad", 2, np.eye(3)[None], np.zeros((0, 2, 2)))
    with pytest.raises(ValueError, match="n"):
        SO(1)
    assert get_group("SO", 3) == SO(3) and get_group("Lorentz") == Lorentz()


def test_cache_returns_the_same_basis_from_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSBIAS_CACHE_DIR", str(tmp_path))
    rep, G = T(2) >> T(1), SO(3)
    first = equivariant_basis(rep, G)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1
    second = equivariant_basis(rep, G)
    np.testing.assert_array_equal(first, second)
    assert second.shape == (27, 1)  # the Levi-Civita contraction is the only SO(3) map T2 -> T1
    assert equivariant_basis(rep, O(3)).shape == (27, 0)  # a different group is a different entry
    assert len(list(tmp_path.glob("*.npz"))) == 2


def test_lie_derivative_vanishes_for_equivariant_and_matches_finite_difference_otherwise():
    import jax
    import jax.numpy as jnp

    from physbias.groups import equivariance_error, lie_derivative

    with jax.enable_x64(True):
        G = SO(3)
        x = np.random.default_rng(3).normal(size=(5, 3))

        def equivariant(v):
            return jnp.dot(v, v) * v + jnp.sin(jnp.dot(v, v)) * v

        def broken(v):
            return v * jnp.array([1.0, 2.0, 3.0]) + v[0] ** 2

        for A in G.lie_algebra:
            assert float(jnp.max(jnp.abs(lie_derivative(equivariant, V, V, G, A, x)))) < 1e-12
        A = G.lie_algebra[0]
        t = 1e-6
        fd = (
            np.stack(
                [scipy.linalg.expm(-t * A) @ np.asarray(broken(scipy.linalg.expm(t * A) @ v)) for v in x]
            )
            - np.stack(
                [scipy.linalg.expm(t * A) @ np.asarray(broken(scipy.linalg.expm(-t * A) @ v)) for v in x]
            )
        ) / (2 * t)
        lie = np.asarray(lie_derivative(broken, V, V, G, A, x))
        np.testing.assert_allclose(lie, fd, atol=1e-7)
        assert np.abs(lie).max() > 0.1
    assert equivariance_error(equivariant, V, V, G, x) < 1e-5  # float32 evaluation
    assert equivariance_error(broken, V, V, G, x) > 0.1
    with pytest.raises(ValueError, match="inputs"):
        equivariance_error(broken, V, V, G, np.ones((2, 4)))


def test_generator_validation_is_scale_free():
    from physbias.groups import Group, V, equivariant_basis

    # A well-conditioned tiny generator is a fine group element (|det| = 1e-15 was once refused) ...
    scaled = Group("scaled", 5, 1e-3 * np.eye(5)[None], np.zeros((0, 5, 5)))
    assert equivariant_basis(V >> V, scaled, cache=False).shape[1] == 25  # a scalar commutes with all
    # ... and an ill-conditioned one is refused (it once gave 3 basis columns where the answer is 2).
    with pytest.raises(ValueError, match="condition number"):
        Group("bad", 2, np.diag([1.0, 1e-11])[None], np.zeros((0, 2, 2)))


def test_wrong_argument_types_are_type_errors_that_say_what_to_do():
    import jax

    from physbias.groups import SO, Group, V, equivariant_basis
    from physbias.nn import EMLP

    with pytest.raises(TypeError, match="get_group"):
        EMLP(2 * V, V, "SO(3)", width=8, depth=1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="list of generators"):
        equivariant_basis(V >> V, [np.eye(3)])
    with pytest.raises(TypeError, match="NumPy array"):
        Group("g", 2, [np.eye(2)], np.zeros((0, 2, 2)))
    assert equivariant_basis(V >> V, SO(3)).shape == (9, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: (V >> V, SO(3) * S(2)),
        lambda: (T(2) >> V, SO(3) * S(2)),
        lambda: ((T(2) + V) >> (V + Scalar), D(4) * SO(2)),
    ],
    ids=["SO3xS2 V>>V", "SO3xS2 T2>>V", "D4xSO2 T2+V>>V+Scalar"],
)
def test_direct_products_split_into_factor_blocks_and_match_the_dense_solver(make):
    from physbias.groups.basis import expand
    from physbias.groups.representations import FactorVector

    rep, G = make()
    # V of a direct product is split into the factors' blocks before any solve ...
    assert all("V" not in repr(atom).replace("V[", "") for atom, _ in expand(rep, G))
    assert any(isinstance(atom, FactorVector) for atom, _ in expand(V, G))
    # ... and the basis spans the same space as the dense SVD of the whole constraint matrix.
    Q, Qd = equivariant_basis(rep, G, cache=False), _solve_dense(rep, G, 1e-7)
    assert Q.shape == Qd.shape
    np.testing.assert_allclose(Q @ Q.T, Qd @ Qd.T, atol=1e-10)


def test_a_large_direct_product_solve_finishes_with_the_right_dimension():
    # D(6) x S(3) on T2 -> T2: 6561 coordinates, true dimension 274; once a 9-minute hang.
    G, rep = D(6) * S(3), T(2) >> T(2)
    Q = equivariant_basis(rep, G, cache=False)
    assert Q.shape == (6561, 274)
    assert np.abs(constraint_matrix(rep, G) @ Q).max() < 1e-10
    np.testing.assert_allclose(Q.T @ Q, np.eye(274), atol=1e-10)
