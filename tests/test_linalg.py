"""The small positive-definite solver of the mechanics models, against LAPACK."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias._linalg import UNROLL_MAX, SPDFactor, spd_solve


@pytest.mark.parametrize("k", [1, 2, 3, UNROLL_MAX, UNROLL_MAX + 2])
@pytest.mark.parametrize("rhs", [(), (3,)])
def test_spd_solve_matches_a_dense_solve_batched_and_differentiated(k, rhs):
    with jax.enable_x64(True):
        g = jax.random.normal(jax.random.key(k), (5, k, k))
        a = g @ jnp.swapaxes(g, 1, 2) + 0.1 * jnp.eye(k)[None]
        b = jax.random.normal(jax.random.key(k + 10), (5, k, *rhs))
        x = jax.jit(jax.vmap(spd_solve))(a, b)
        np.testing.assert_allclose(
            x, np.linalg.solve(a, b if rhs else b[..., None]).reshape(b.shape), rtol=1e-9
        )
        # Derivatives through the factorisation equal the dense solve's along a symmetric direction
        # (the factorisation reads the lower triangle only, so the gradients differ off it).
        e = jax.random.normal(jax.random.key(k + 20), a.shape)
        e = e + jnp.swapaxes(e, 1, 2)
        loss = lambda solve: lambda a: jnp.sum(jnp.sin(jax.vmap(solve)(a, b)))
        dense = jnp.linalg.solve if rhs else _vector_solve
        np.testing.assert_allclose(
            jax.jvp(loss(spd_solve), (a,), (e,))[1], jax.jvp(loss(dense), (a,), (e,))[1], rtol=1e-8
        )
        np.testing.assert_allclose(
            jnp.sum(jax.grad(loss(spd_solve))(a) * e), jnp.sum(jax.grad(loss(dense))(a) * e), rtol=1e-8
        )


def _vector_solve(a, b):
    return jnp.linalg.solve(a, b[:, None])[:, 0]


def test_spd_factor_reuses_one_factorisation_and_checks_shapes():
    a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
    factor = SPDFactor(a)
    for b in (jnp.array([1.0, 2.0]), jnp.array([-1.0, 0.5])):
        np.testing.assert_allclose(a @ factor.solve(b), b, rtol=1e-6)
    with pytest.raises(ValueError, match="square"):
        SPDFactor(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="3 rows for a 2x2"):
        factor.solve(jnp.ones(3))
