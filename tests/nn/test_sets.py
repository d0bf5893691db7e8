"""DeepSets (permutation invariant) and interaction networks (permutation equivariant).

Tolerances: float32 sums of a handful of O(1) terms taken in another order -> 1e-5. The models are
built once per module: on CPU every new array shape costs a compilation.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.nn.sets import DeepSets, InteractionNetwork

ATOL = 1e-5


@pytest.fixture(scope="module")
def net():
    # Sizes chosen so that most layers share shapes (fewer compilations).
    return InteractionNetwork(4, 8, width=8, depth=1, rounds=2, readout_size=8, key=jax.random.key(1))


def normal(rng, *shape):
    return jnp.asarray(rng.standard_normal(shape), dtype=jnp.float32)


def max_error(a, b):
    return float(jnp.max(jnp.abs(a - b)))


def test_deepsets_is_permutation_invariant():
    rng = np.random.default_rng(0)
    x = normal(rng, 6, 4)
    perms = jnp.asarray(np.stack([rng.permutation(6) for _ in range(5)]))
    for aggregation in ("sum", "mean"):
        model = DeepSets(4, 8, width=8, depth=1, aggregation=aggregation, key=jax.random.key(0))

        @jax.jit
        def outputs(x, perms, model=model):
            return model(x), jax.vmap(lambda p: model(x[p]))(perms), model(x[:1]), model.rho(model.phi(x[0]))

        reference, permuted, single, by_hand = outputs(x, perms)
        assert reference.shape == (8,)
        assert max_error(permuted, reference[None]) < ATOL
        # Independent value: a one-element set is rho(phi(x)) for either aggregation.
        assert max_error(single, by_hand) < 1e-6
        assert max_error(permuted[:, None], permuted[None, :]) < ATOL


def test_interaction_network_is_permutation_equivariant(net):
    rng = np.random.default_rng(1)
    x = normal(rng, 5, 4)
    adjacency = jnp.asarray(rng.random((5, 5)) < 0.5, dtype=jnp.float32)  # directed, random
    perm = jnp.asarray(rng.permutation(5))
    permuted_adjacency = adjacency[perm][:, perm]

    @jax.jit
    def outputs(x, a):
        return net(x), net(x, a), net.readout(x), net.readout(x, a)

    full, graph, read_full, read_graph = outputs(x, adjacency)
    p_full, p_graph, p_read_full, p_read_graph = outputs(x[perm], permuted_adjacency)
    assert full.shape == (5, 8) and read_full.shape == (8,)
    assert max_error(p_full, full[perm]) < ATOL
    assert max_error(p_graph, graph[perm]) < ATOL
    assert max_error(p_read_full, read_full) < ATOL
    assert max_error(p_read_graph, read_graph) < ATOL
    # The check can fail: permuting the nodes but not the adjacency is not a symmetry.
    assert max_error(outputs(x[perm], adjacency)[1], graph[perm]) > 1e-3
    # Nodes are not all alike (so equivariance is not trivially true).
    assert float(jnp.max(jnp.std(full, axis=0))) > 1e-3


def test_interaction_network_without_edges_updates_nodes_independently(net):
    x = normal(np.random.default_rng(2), 5, 4)

    @jax.jit
    def both(x):
        h = x
        for layer in net.layers:  # no messages: m_i = 0 in every round
            h = jax.vmap(layer.node)(jnp.concatenate([h, jnp.zeros((5, layer.edge.out_size))], axis=-1))
        return net(x, jnp.zeros((5, 5))), h

    got, expected = both(x)
    assert max_error(got, expected) < 1e-6


def test_sets_reject_bad_shapes_and_options(net):
    deepsets = DeepSets(4, 8, width=8, depth=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"DeepSets: input must have shape \(n, 4\)"):
        deepsets(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="DeepSets"):
        deepsets(jnp.zeros(4))
    with pytest.raises(ValueError, match="aggregation"):
        DeepSets(4, 8, aggregation="max", key=jax.random.key(0))
    with pytest.raises(ValueError, match="InteractionNetwork"):
        net(jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"adjacency` must have shape \(3, 3\)"):
        net(jnp.zeros((3, 4)), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="rounds"):
        InteractionNetwork(4, 8, rounds=0, key=jax.random.key(0))
    without_readout = InteractionNetwork(4, 8, width=8, depth=1, rounds=2, key=jax.random.key(1))
    with pytest.raises(ValueError, match="readout_size"):
        without_readout.readout(jnp.zeros((3, 4)))
