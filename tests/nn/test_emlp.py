"""The equivariant MLP: exact equivariance on many groups, its layers, and its Hamiltonian variant."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.groups import SO, Lorentz, O, S, Scalar, Sp, T, V, equivariance_error
from physbias.nn.emlp import EMLP, EquivariantLinear, GatedNonlinearity, gated, hamiltonian_emlp, uniform_rep

CASES = [  # (G, rep_in, rep_out, depth): two blocks where the group is continuous and non-compact
    (SO(3), 2 * V, Scalar, 1),
    (O(5), 2 * V, Scalar, 2),
    (O(3), 2 * Scalar + 2 * V, T(2), 1),
    (Lorentz(), 4 * V, Scalar, 2),
    (Sp(2), 2 * V, V, 1),
    (S(5), V + T(2), V, 1),
    (SO(3) * S(2), V, V + Scalar, 1),
]


@pytest.mark.parametrize("G, rep_in, rep_out, depth", CASES, ids=str)
def test_emlp_is_equivariant_to_float32_rounding(G, rep_in, rep_out, depth, getkey):
    model = EMLP(rep_in, rep_out, G, width=48, depth=depth, key=getkey())
    x = np.random.default_rng(0).standard_normal((8, rep_in.size(G)))
    assert equivariance_error(model, rep_in, rep_out, G, x, n_elements=4) < 1e-6
    # ...and it is not a constant: the output moves with the input. (For O(5), 2V -> Scalar, only
    # the bilinear layer lets it see invariants such as |x1|^2: V -> Scalar maps are zero.)
    y = np.asarray(jax.vmap(model)(jnp.asarray(x, jnp.float32)))
    assert np.std(y, axis=0).max() > 1e-3


def test_a_plain_mlp_is_not_equivariant(getkey):
    G = O(5)
    mlp = eqx.nn.MLP(10, 1, 32, 2, key=getkey())
    x = np.random.default_rng(0).standard_normal((8, 10))
    assert equivariance_error(mlp, 2 * V, Scalar, G, x, n_elements=4) > 1e-2


def test_equivariant_linear_spans_the_basis_and_commutes(getkey):
    G, rep_in, rep_out = S(4), 2 * V + Scalar, V + Scalar
    layer = EquivariantLinear(rep_in, rep_out, G, key=getkey())
    W = np.asarray(layer.weight_matrix(), np.float64)
    assert W.shape == (5, 9)
    for g in G.sample(np.random.default_rng(0), 3):
        np.testing.assert_allclose(rep_out.rho(G, g) @ W, W @ rep_in.rho(G, g), atol=1e-6)
    # S(4): V->V has 2 maps, V->Scalar 1, Scalar->V 1, Scalar->Scalar 1: 2*2 + 2*1 + 1 + 1 = 8
    assert sum(int(np.prod(w.shape)) for w in layer.weights) == 8


def test_gated_nonlinearity_gates_each_copy_by_its_own_scalar():
    G = SO(3)
    rep = Scalar + 2 * V
    assert gated(rep, G).size(G) == 7 + 2
    act = GatedNonlinearity(rep, G)
    x = jnp.arange(9.0)
    y = act(x)
    np.testing.assert_allclose(y[0], 0.0)  # swish(0)
    np.testing.assert_allclose(y[1:4], x[1:4] * jax.nn.sigmoid(x[7]), rtol=1e-6)
    np.testing.assert_allclose(y[4:7], x[4:7] * jax.nn.sigmoid(x[8]), rtol=1e-6)


def test_uniform_rep_and_bad_input(getkey):
    assert uniform_rep(96, O(5)).size(O(5)) == 32 + 6 * 5 + 1 * 25
    with pytest.raises(ValueError, match="shape"):
        EMLP(2 * V, Scalar, O(5), width=32, depth=1, key=getkey())(jnp.ones(9))
    with pytest.raises(TypeError, match="rep_in"):
        EquivariantLinear("V", Scalar, O(5), key=getkey())
    with pytest.raises(ValueError, match="depth"):
        EMLP(V, V, O(3), depth=0, key=getkey())


def test_hamiltonian_emlp_flow_is_equivariant(getkey):
    G = SO(2)
    model = hamiltonian_emlp(2 * V, G, width=32, depth=1, key=getkey())
    rep_state = 2 * V + (2 * V).T
    x = np.random.default_rng(0).standard_normal((8, 8))
    # H is invariant and the vector field X_H is equivariant (the action is symplectic).
    assert equivariance_error(model.hamiltonian, rep_state, Scalar, G, x, n_elements=3) < 1e-6
    assert equivariance_error(model, rep_state, rep_state, G, x, n_elements=3) < 1e-5
