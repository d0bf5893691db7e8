"""The linear model of coregionalisation over a graph (physbias.gp.coregionalization).

References: the dense Kronecker sum ``sum_q B_q (x) K_q`` built from the latent spectral mixtures
(Alvarez, Rosasco & Lawrence 2012), eigenvalues of the joint Gram matrix, the graph's hop
distances (which pairs of nodes may correlate), and a held-out segment of one node predicted from
its neighbours (seed 002: neighbours share latent processes).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.gp import (
    ExactGP,
    GraphLMC,
    SpectralMixture,
    coregionalization_matrices,
    fit_marginal_likelihood,
    lmc_covariance,
    neighbourhood_mask,
)

PATH4 = [(0, 1), (1, 2), (2, 3)]
gram_of = eqx.filter_jit(lambda kernel, X: kernel(X, X))  # one compiled Gram per kernel structure


def _random_lmc(key, features: bool):
    k1, k2, k3, k4 = jax.random.split(key, 4)
    latents = [SpectralMixture([1.0, 0.4], [0.3 + 0.2 * q, 1.1], [0.02, 0.05]) for q in range(4)]
    node_features = jax.random.normal(k4, (4, 2), jnp.float64) if features else None
    lmc = GraphLMC.from_graph(PATH4, 4, latents, node_features=node_features, rank=2)
    replace = {
        "loadings": jax.random.normal(k1, lmc.loadings.shape, jnp.float64),
        "log_kappa": jax.random.normal(k2, lmc.log_kappa.shape, jnp.float64) - 2,
    }
    if features:
        replace["feature_frequencies"] = 0.3 * jax.random.normal(
            k3, lmc.feature_frequencies.shape, jnp.float64
        )
    return eqx.tree_at(lambda m: [getattr(m, name) for name in replace], lmc, list(replace.values()))


def _node_major(x, num_nodes):
    return jnp.tile(x, num_nodes), jnp.repeat(jnp.arange(num_nodes), x.shape[0])


@eqx.filter_jit
def _gram_and_kronecker_sum(lmc: GraphLMC, x, mask):
    """The LMC kernel's Gram matrix, and sum_q B_q (x) K_q built from its parts: B_q from the
    masked loadings and kappa, K_q from each latent as a SpectralMixture."""
    w = jnp.where(mask[:, :, None], lmc.loadings, 0.0)
    b = coregionalization_matrices(w, jnp.where(mask, jnp.exp(lmc.log_kappa), 0.0))
    grams = jnp.stack([lmc.latent_kernel(q)(x, x) for q in range(lmc.num_latents)])
    return lmc(_node_major(x, 4), _node_major(x, 4)), lmc_covariance(b, grams), b, grams


@pytest.mark.parametrize("features", [False, True])
def test_lmc_gram_equals_the_dense_kronecker_sum(features, getkey):
    with jax.enable_x64(True):
        lmc = _random_lmc(getkey(), features)
        x = jnp.sort(jax.random.uniform(getkey(), (9,), jnp.float64, 0.0, 6.0))
        gram, dense, b, grams = _gram_and_kronecker_sum(lmc, x, jnp.asarray(neighbourhood_mask(PATH4, 4)))
        gram, dense, b, grams = (np.asarray(a) for a in (gram, dense, b, grams))
    assert gram.shape == (36, 36)
    np.testing.assert_allclose(gram, dense, rtol=0, atol=1e-8)
    # the Kronecker sum written out entry by entry
    i, j, a, c = 1, 2, 3, 7
    assert gram[i * 9 + a, j * 9 + c] == pytest.approx(
        sum(b[q, i, j] * grams[q, a, c] for q in range(4)), abs=1e-12
    )


def test_node_features_modulate_each_latent_spectrum(getkey):
    with jax.enable_x64(True):
        lmc = _random_lmc(getkey(), features=True)
        features, shift = lmc.latent_features, lmc.feature_frequencies
        for q in range(4):
            expected = jnp.exp(lmc.log_frequencies[0] + jnp.einsum("f,fmd->md", features[q], shift))
            np.testing.assert_allclose(np.asarray(lmc.latent_kernel(q).frequencies), np.asarray(expected))
        x = jnp.linspace(0.0, 3.0, 5)
        X = _node_major(x, 4)
        grad = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(X, X))))(lmc)
    assert np.max(np.abs(np.asarray(grad.feature_frequencies))) > 0  # the feature map is learnable
    assert np.max(np.abs(np.asarray(grad.latent_features))) == 0  # the features themselves are data


def test_lmc_gram_is_positive_semidefinite(getkey):
    with jax.enable_x64(True):
        lmc = _random_lmc(getkey(), features=True)
        x = jax.random.uniform(getkey(), (40,), jnp.float64, 0.0, 10.0)
        eigenvalues = np.linalg.eigvalsh(np.asarray(gram_of(lmc, _node_major(x, 4))))
    assert eigenvalues.min() >= -1e-6 * eigenvalues.max()


def test_the_graph_decides_which_nodes_correlate(getkey):
    # Latent q loads on q's closed neighbourhood: nodes 0 and 3 (three hops apart) share no latent
    # and are uncorrelated; nodes 0 and 2 share latent 1. Loadings outside the mask change nothing.
    with jax.enable_x64(True):
        lmc = _random_lmc(getkey(), features=False)
        x = jnp.linspace(0.0, 2.0, 4)
        gram = np.asarray(gram_of(lmc, _node_major(x, 4)))
        block = lambda i, j: gram[4 * i : 4 * i + 4, 4 * j : 4 * j + 4]  # noqa: E731
        assert np.all(block(0, 3) == 0) and np.all(block(3, 0) == 0)
        assert np.max(np.abs(block(0, 2))) > 1e-3
        outside = ~neighbourhood_mask(PATH4, 4)
        shifted = lmc.loadings + jnp.asarray(5.0 * outside)[:, :, None]
        noisy = eqx.tree_at(lambda m: m.loadings, lmc, shifted)
        np.testing.assert_array_equal(np.asarray(gram_of(noisy, _node_major(x, 4))), gram)
        alone = GraphLMC.from_graph([], 4, [lmc.latent_kernel(q) for q in range(4)])
        b = alone.coregionalization()
    assert np.all(np.asarray(b)[~np.eye(4, dtype=bool)[None].repeat(4, 0)] == 0)  # every B_q diagonal


def _coupled_signals():
    """Three nodes on a path 0-1-2; node 0 and node 1 share latent a, nodes 1 and 2 latent b
    (short-coherence oscillations at 0.5 and 0.8 cycles per unit)."""
    latents = [SpectralMixture([1.0], [f], [0.025]) for f in (0.5, 0.3, 0.8)]
    true = GraphLMC.from_graph([(0, 1), (1, 2)], 3, latents)
    w = np.zeros((3, 3, 1), np.float32)
    w[0, :2, 0] = 1.0
    w[2, 1:, 0] = [0.8, 1.0]
    true = eqx.tree_at(lambda m: (m.loadings, m.log_kappa), true, (jnp.asarray(w), jnp.full((3, 3), -7.0)))
    x = jnp.linspace(0.0, 20.0, 50)
    X = _node_major(x, 3)
    cov = np.asarray(gram_of(true, X), np.float64) + 0.1**2 * np.eye(150)
    y = np.linalg.cholesky(cov) @ np.random.default_rng(0).normal(size=150)
    gap = (np.asarray(X[1]) == 0) & (np.asarray(X[0]) > 7.0) & (np.asarray(X[0]) < 13.0)
    _coupled_signals.truth = true
    return X, jnp.asarray(y, jnp.float32), gap


def test_the_coupling_predicts_a_held_out_segment_that_independent_gps_cannot():
    # With the generating parameters: the LMC posterior mean of node 0 in its gap (which node 1
    # observes) against independent GPs with the same per-node marginal kernels (the joint
    # covariance with its cross-node blocks removed). Fitting both by the marginal likelihood is
    # the experiment's test (tests/experiments/test_gp.py).
    X, y, gap = _coupled_signals()
    joint = np.asarray(gram_of(_coupled_signals.truth, X), np.float64)
    nodes = np.asarray(X[1])
    independent = joint * (nodes[:, None] == nodes[None, :])
    y = np.asarray(y, np.float64)
    errors = {}
    for name, cov in (("lmc", joint), ("independent", independent)):
        train = cov[np.ix_(~gap, ~gap)] + 0.1**2 * np.eye(int((~gap).sum()))
        mean = cov[np.ix_(gap, ~gap)] @ np.linalg.solve(train, y[~gap])
        errors[name] = float(np.mean((mean - y[gap]) ** 2))
    lmc_mean = ExactGP(_coupled_signals.truth, noise=0.1).predict(
        (X[0][~gap], X[1][~gap]), y[~gap], (X[0][gap], X[1][gap])
    )
    assert float(np.mean((np.asarray(lmc_mean) - y[gap]) ** 2)) == pytest.approx(errors["lmc"], rel=1e-2)
    assert errors["lmc"] < 0.1 * errors["independent"]
    assert errors["lmc"] < 0.1 * float(np.var(y[gap]))


def test_bad_graphs_and_inputs_are_rejected():
    latents = [SpectralMixture([1.0], [0.5], [0.02])] * 3
    with pytest.raises(ValueError, match="out of range"):
        neighbourhood_mask([(0, 1), (1, 3)], 3)
    with pytest.raises(ValueError, match="out of range"):
        GraphLMC.from_graph([(-1, 0)], 3, latents)
    with pytest.raises(ValueError, match="integer"):
        neighbourhood_mask([(0.0, 1.5)], 3)
    with pytest.raises(ValueError, match=r"\(E, 2\)"):
        neighbourhood_mask([0, 1, 2], 3)
    with pytest.raises(ValueError, match="num_nodes"):
        neighbourhood_mask([], 0)
    with pytest.raises(ValueError, match="one SpectralMixture per node"):
        GraphLMC.from_graph([(0, 1)], 4, latents)
    lmc = GraphLMC.from_graph([(0, 1)], 3, latents)
    x = np.linspace(0, 1, 4)
    with pytest.raises(ValueError, match="node index 3 out of range"):
        fit_marginal_likelihood(ExactGP(lmc), (x, np.array([0, 1, 2, 3])), np.zeros(4))
    with pytest.raises(ValueError, match="integer"):
        ExactGP(lmc).log_marginal_likelihood((x, np.zeros(4)), np.zeros(4))
    with pytest.raises(ValueError, match=r"tuple \(x, node\)"):
        ExactGP(lmc).predict((x, np.zeros(4, int)), np.zeros(4), x)
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_marginal_likelihood(ExactGP(lmc), (np.full(4, np.nan), np.zeros(4, int)), np.zeros(4))
