"""Soft equivariance: residual pathway priors, relaxed group averaging, finite matrix groups as
symmetries, and the synthetic tasks' own symmetry."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.bias import MatrixSymmetry, RelaxedSymmetrized, Symmetrized, describe
from physbias.groups import Z2, C, D, O, S, Scalar, V, equivariance_error, finite_elements
from physbias.nn.emlp import EMLP
from physbias.nn.rpp import ResidualPathway, flexible_fraction, rpp_emlp, rpp_penalty
from physbias.systems.symmetric_tasks import TASKS, inertia_target, o5_target, particle_target


@pytest.mark.parametrize("G, order", [(C(4), 4), (D(4), 8), (S(4), 24), (Z2(3), 2)], ids=str)
def test_finite_elements_form_a_group_of_the_right_order(G, order):
    els = finite_elements(G)
    assert els.shape == (order, G.d, G.d)
    np.testing.assert_allclose(els[0], np.eye(G.d))
    key = lambda m: (np.round(m, 8) + 0.0).tobytes()  # noqa: E731
    keys = {key(g) for g in els}
    for a in els[:5]:
        for b in els[:5]:
            assert key(a @ b) in keys  # closure
        assert key(np.linalg.inv(a)) in keys  # inverses
    with pytest.raises(ValueError, match="continuous"):
        finite_elements(O(3))


def test_relaxed_symmetrization_interpolates_and_matches_the_seed_formula(getkey):
    mlp = eqx.nn.MLP(4, 4, 16, 2, key=getkey())
    sym = MatrixSymmetry(C(4), V, V)
    x = np.random.default_rng(0).standard_normal((8, 4))
    errors = [equivariance_error(RelaxedSymmetrized(mlp, sym, lam), V, V, C(4), x) for lam in (0.0, 0.5, 1.0)]
    assert errors[0] > 0.1 and errors[0] > errors[1] > 1e-3 and errors[2] < 1e-6
    f1 = RelaxedSymmetrized(mlp, sym, 1.0)
    np.testing.assert_allclose(f1(jnp.ones(4)), Symmetrized(mlp, sym)(jnp.ones(4)), rtol=1e-6)
    # Seed 003 for G = {1, -1}: (1 - lam/2) f(x) + lam/2 f(-x).
    g = eqx.nn.MLP(3, 1, 8, 1, key=getkey())
    xx = jnp.array([0.3, -0.1, 0.7])
    relaxed = RelaxedSymmetrized(g, MatrixSymmetry(Z2(3), V, Scalar), 0.6)
    np.testing.assert_allclose(relaxed(xx), 0.7 * g(xx) + 0.3 * g(-xx), rtol=1e-6)
    assert describe(relaxed) == "inductive (soft)"
    with pytest.raises(ValueError, match="strength"):
        RelaxedSymmetrized(g, MatrixSymmetry(Z2(3), V, Scalar), 1.5)
    with pytest.raises(ValueError, match="finite"):
        RelaxedSymmetrized(g, MatrixSymmetry(O(3), V, Scalar), 0.5)


def test_rpp_starts_equivariant_and_its_prior_is_the_weighted_sum_of_squares(getkey):
    G, rin, rout = O(3), Scalar + V, V
    key = getkey()
    model = rpp_emlp(rin, rout, G, 16, 1, key=key)
    x = np.random.default_rng(0).standard_normal((8, rin.size(G)))
    # With the same key it starts as exactly the EMLP (flexible paths at zero).
    emlp = EMLP(rin, rout, G, 16, 1, key=key)
    np.testing.assert_array_equal(model(jnp.asarray(x[0], jnp.float32)), emlp(jnp.asarray(x[0], jnp.float32)))
    assert equivariance_error(model, rin, rout, G, x, n_elements=3) < 1e-6
    assert flexible_fraction(model) == 0.0
    paths = [
        p
        for p in jax.tree_util.tree_leaves(model, is_leaf=lambda n: isinstance(n, ResidualPathway))
        if isinstance(p, ResidualPathway)
    ]
    assert len(paths) == 2  # one block + the head
    # Move the flexible paths: the model stops being equivariant and the prior counts them.
    model = eqx.tree_at(lambda m: m.head.flexible.weight, model, jnp.ones_like(model.head.flexible.weight))
    assert equivariance_error(model, rin, rout, G, x, n_elements=3) > 1e-3
    a = sum(float(jnp.sum(w**2)) for p in paths for w in p.equivariant.weights)
    b = float(jnp.sum(model.head.flexible.weight**2))
    np.testing.assert_allclose(float(rpp_penalty(model, 1e-5, 1e-2)), 1e-5 * a + 1e-2 * b, rtol=1e-5)
    with pytest.raises(ValueError, match=">= 0"):
        rpp_penalty(model, -1.0, 1.0)


def test_synthetic_targets_have_their_symmetry():
    rng = np.random.default_rng(0)
    for name, target in (
        ("O5Synthetic", o5_target),
        ("Inertia", inertia_target),
        ("ParticleInteraction", particle_target),
    ):
        task = TASKS[name](rng, 64)
        np.testing.assert_allclose(target(task.X), task.Y)
        for g in task.G.sample(rng, 3):
            moved = target(task.X @ task.rep_in.rho(task.G, g).T)
            np.testing.assert_allclose(moved, task.Y @ task.rep_out.rho(task.G, g).T, rtol=1e-9, atol=1e-9)
    broken = TASKS["Inertia"](rng, 64, broken=0.3)
    g = broken.G.sample(rng, 1)[0]
    moved = inertia_target(broken.X @ broken.rep_in.rho(broken.G, g).T, 5, 0.3)
    assert np.abs(moved - broken.Y @ broken.rep_out.rho(broken.G, g).T).max() > 0.1
    with pytest.raises(ValueError, match="`n`"):
        TASKS["O5Synthetic"](rng, 0)
