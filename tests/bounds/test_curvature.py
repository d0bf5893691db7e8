"""The Gauss-Newton matrix of the softmax cross-entropy in subspace coordinates."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias.bounds import Subspace, gauss_newton


def _f64(tree):
    return jax.tree_util.tree_map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree)


def test_equals_the_hessian_when_logits_are_linear_in_w(getkey):
    # (For a network G differs from the Hessian; the experiment's rounding uses it there.)
    # logits = W x + b with (W, b) = theta_0 + P w: linear in w, so G is the exact Hessian.
    with jax.enable_x64(True):
        net = _f64(eqx.nn.Linear(4, 3, key=getkey()))
        sub = Subspace(net, 7, key=getkey(), projector="dense")
        sub = eqx.tree_at(lambda s: s.w, sub, 0.5 * jax.random.normal(getkey(), (7,), jnp.float64))
        x = jax.random.normal(getkey(), (23, 4), jnp.float64)
        y = jax.random.randint(getkey(), (23,), 0, 3)

        @jax.jit
        def hessian(w):
            def mean_loss(w):
                logits = jax.vmap(eqx.tree_at(lambda s: s.w, sub, w))(x)
                return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

            return jax.hessian(mean_loss)(w)

        g = np.asarray(gauss_newton(sub, x, batch_size=5))  # 5 does not divide n = 23: padding
        assert np.allclose(g, np.asarray(hessian(sub.w)), rtol=1e-10, atol=1e-12)
        assert np.allclose(g, g.T, atol=1e-15) and np.linalg.eigvalsh(g).min() > -1e-12


def test_bad_input(getkey):
    sub = Subspace(eqx.nn.Linear(3, 2, key=getkey()), 4, key=getkey())
    with pytest.raises(ValueError, match="non-empty"):
        gauss_newton(sub, jnp.zeros((0, 3)))
    with pytest.raises(ValueError, match="finite"):
        gauss_newton(sub, jnp.full((2, 3), jnp.nan))
    with pytest.raises(ValueError, match="batch_size"):
        gauss_newton(sub, jnp.zeros((2, 3)), batch_size=0)
