"""Codebooks, nearest-level assignment, the straight-through estimator and the quantised subspace."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.bounds import (
    QuantizedSubspace,
    Subspace,
    assign,
    dequantize,
    kmeans_codebook,
    quantize,
    round_codebook,
    second_order_round,
    uniform_codebook,
)


def test_values_on_the_codebook_are_unchanged(getkey):
    book = jnp.array([-1.5, -0.25, 0.0, 0.7, 2.0])
    symbols = jax.random.randint(getkey(), (50,), 0, 5)
    values = book[symbols]
    assert jnp.array_equal(quantize(values, book), values)
    assert jnp.array_equal(assign(values, book), symbols)
    assert jnp.array_equal(dequantize(assign(values, book), book), values)


def test_assignment_is_to_the_nearest_level(getkey):
    book = jax.random.normal(getkey(), (7,))
    values = 2.0 * jax.random.normal(getkey(), (200,))
    s = np.asarray(assign(values, book))
    dist = np.abs(np.asarray(values)[:, None] - np.asarray(book)[None, :])
    assert np.array_equal(dist[np.arange(200), s], dist.min(axis=1))
    assert jnp.array_equal(quantize(values, book), book[s])
    assert assign(jnp.array([0.5]), jnp.array([0.0, 1.0])).tolist() == [0]  # a tie goes to the lower index


def test_straight_through_gradients():
    book = jnp.array([-1.0, 0.0, 1.0])
    values = jnp.array([0.3, -0.8, 2.0, 0.9, -0.1])  # symbols 1, 0, 2, 2, 1
    weights = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    g_w, g_c = jax.grad(lambda w, c: jnp.sum(weights * quantize(w, c)), argnums=(0, 1))(values, book)
    assert jnp.array_equal(g_w, weights)  # identity in w
    assert g_c.tolist() == [2.0, 1.0 + 5.0, 3.0 + 4.0]  # per level: the sum over its entries


def test_kmeans_recovers_cluster_means(getkey):
    centres = jnp.array([-3.0, 0.5, 4.0])
    values = jnp.repeat(centres, 40) + 0.05 * jax.random.normal(getkey(), (120,))
    book = kmeans_codebook(values, 3)
    means = jnp.array([jnp.mean(values[i * 40 : (i + 1) * 40]) for i in range(3)])
    assert jnp.allclose(book, means, atol=1e-5)
    assert book.dtype == values.dtype


def test_uniform_codebook_is_the_bin_means():
    values = jnp.array([-1.0, -0.9, -0.2, 0.1, 0.3, 1.0])
    # 3 bins over [-1, 1] (edges at -1/3, 1/3): means of {-1, -0.9}, {-0.2, 0.1, 0.3}, {1}
    assert jnp.allclose(uniform_codebook(values, 3), jnp.array([-0.95, 0.2 / 3, 1.0]), atol=1e-6)
    # an empty bin gets its centre: 4 bins with nothing in [-0.5, 0)
    assert jnp.allclose(uniform_codebook(jnp.array([-1.0, 0.2, 1.0, 0.9]), 4)[1], -0.25, atol=1e-5)


def test_round_codebook_to_float16():
    book = jnp.array([0.1, 1.0 / 3.0, 1000.7])
    rounded = round_codebook(book)
    assert rounded.dtype == jnp.float32
    assert jnp.array_equal(rounded, book.astype(jnp.float16).astype(jnp.float32))
    assert jnp.array_equal(round_codebook(rounded), rounded)  # already representable: unchanged


@eqx.filter_jit
def _quantized_outputs(qs, x):
    loss = lambda q: jnp.sum(jax.vmap(q)(x) ** 2)
    grads = eqx.filter_grad(loss)(qs)
    stepped = eqx.tree_at(lambda q: q.codebook, qs, qs.codebook - 1e-3 * grads.codebook)
    dq = qs.dequantized()
    return jax.vmap(qs)(x), jax.vmap(dq)(x), dq.w, qs.symbols(), grads, loss(qs), loss(stepped)


def test_quantized_subspace_codes_what_it_computes(getkey):
    net = eqx.nn.MLP(3, 2, 8, 1, key=getkey())
    sub = Subspace(net, 12, key=getkey())
    sub = eqx.tree_at(lambda s: s.w, sub, jax.random.normal(getkey(), (12,)))
    qs = QuantizedSubspace(sub, kmeans_codebook(sub.w, 4))
    x = jax.random.normal(getkey(), (5, 3))
    out, out_dequantized, w_dequantized, symbols, grads, before, after = _quantized_outputs(qs, x)
    assert np.array_equal(w_dequantized, np.asarray(qs.codebook)[np.asarray(symbols)])
    assert np.allclose(out, out_dequantized, atol=1e-6)
    assert qs.levels == 4
    # the straight-through gradient reaches w and the codebook, and a codebook step lowers the loss
    assert np.all(np.isfinite(grads.subspace.w)) and np.any(grads.codebook != 0)
    assert after < before


def _obq_reference(w, book, h):
    """Optimal brain quantisation written out: at each step invert H on the entries still free."""
    w, book, h = np.array(w, np.float64), np.asarray(book, np.float64), np.asarray(h, np.float64)
    free, symbols = list(range(len(w))), np.zeros(len(w), int)
    for i in range(len(w)):
        inv = np.linalg.inv(h[np.ix_(free, free)])
        symbols[i] = np.argmin(np.abs(book - w[i]))
        w[free] -= (w[i] - book[symbols[i]]) * inv[:, 0] / inv[0, 0]
        free = free[1:]
    return symbols


def _correlated(rng, d):
    a = rng.standard_normal((d, d // 2))
    return a @ a.T + 0.05 * np.eye(d)


def test_second_order_rounding_is_optimal_brain_quantisation():
    rng = np.random.default_rng(0)
    for _ in range(3):
        h = _correlated(rng, 12)
        w, book = rng.standard_normal(12), np.array([-1.2, -0.3, 0.4, 1.1])
        got = second_order_round(w, book, h, damping=0.0)
        assert got.tolist() == _obq_reference(w, book, h).tolist()
        # damping: the same algorithm on H + damping * mean(diag H) * I
        damped = h + 0.3 * np.mean(np.diag(h)) * np.eye(12)
        assert (
            second_order_round(w, book, h, damping=0.3).tolist() == _obq_reference(w, book, damped).tolist()
        )
        # another order is the same algorithm on permuted entries
        perm = np.argsort(-np.diag(h), kind="stable")
        diag = second_order_round(w, book, h, damping=0.0, order="diagonal")
        assert (
            np.asarray(diag)[perm].tolist()
            == _obq_reference(np.asarray(w)[perm], book, h[np.ix_(perm, perm)]).tolist()
        )


def test_second_order_rounding_lowers_the_quadratic_loss():
    rng, ratios = np.random.default_rng(1), []
    for _ in range(20):
        h = _correlated(rng, 40)
        w, book = rng.standard_normal(40), np.array([-1.0, 0.0, 1.0])

        def cost(symbols, w=w, book=book, h=h):
            e = np.asarray(book)[np.asarray(symbols)] - np.asarray(w)
            return float(e @ h @ e)

        nearest = np.argmin(np.abs(w[:, None] - book[None, :]), axis=1)
        ratios.append(cost(second_order_round(w, book, h, damping=0.0)) / cost(nearest))
    # Greedy, so not better on every instance, but typically by a large factor (median 0.64 here)
    assert np.median(ratios) < 0.75 and np.mean(ratios) < 0.9
    # a diagonal curvature gives no reason to move: nearest levels
    w = jnp.asarray(rng.standard_normal(30), jnp.float32)
    diag = np.diag(rng.uniform(0.5, 2.0, 30))
    assert jnp.array_equal(
        second_order_round(w, jnp.array([-1.0, 0.0, 1.0]), diag), assign(w, jnp.array([-1.0, 0.0, 1.0]))
    )


def test_second_order_rounding_bad_input():
    w, book = jnp.zeros(3), jnp.array([0.0, 1.0])
    with pytest.raises(ValueError, match="hessian"):
        second_order_round(w, book, np.eye(2))
    with pytest.raises(ValueError, match="finite"):
        second_order_round(w, book, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="damping"):
        second_order_round(w, book, np.eye(3), damping=-1.0)
    with pytest.raises(ValueError, match="order"):
        second_order_round(w, book, np.eye(3), order="random")
    with pytest.raises(ValueError, match="positive definite"):
        second_order_round(w, book, np.zeros((3, 3)), damping=0.0)


@pytest.mark.parametrize("fn", [uniform_codebook, kmeans_codebook])
def test_bad_codebook_sizes_and_values(fn):
    with pytest.raises(ValueError, match="levels"):
        fn(jnp.ones(5), 0)
    with pytest.raises(ValueError, match="levels"):
        fn(jnp.ones(5), -2)
    with pytest.raises(ValueError, match="levels"):
        fn(jnp.ones(5), 6)  # more levels than values
    with pytest.raises(ValueError, match="finite"):
        fn(jnp.array([0.0, jnp.nan, 1.0]), 2)
    with pytest.raises(ValueError, match="1-D"):
        fn(jnp.ones((2, 3)), 2)


def test_bad_codebook_for_the_subspace(getkey):
    sub = Subspace(eqx.nn.Linear(3, 2, key=getkey()), 4, key=getkey())
    with pytest.raises(ValueError, match="dtype"):
        QuantizedSubspace(sub, jnp.array([0, 1], dtype=jnp.int32))
    with pytest.raises(ValueError, match="1-D"):
        QuantizedSubspace(sub, jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="1-D"):
        assign(jnp.ones(3), jnp.zeros(()))
