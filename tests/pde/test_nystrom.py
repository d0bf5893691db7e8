"""Randomized Nyström approximation and preconditioner (physbias.pde.nystrom).

References: a PSD matrix of rank r is recovered exactly by a rank-r sketch (Frangella, Tropp & Udell
2023, Lemma A.1); preconditioned CG solves the damped system to the dense solution and in fewer
steps than plain CG.
"""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np

from physbias.pde import nystrom_approximation


def _spd(p, decay, key):
    q, _ = jnp.linalg.qr(jax.random.normal(key, (p, p), jnp.float64))
    lam = 10.0 ** (-jnp.arange(p, dtype=jnp.float64) * decay)
    return (q * lam[None]) @ q.T, lam


def test_low_rank_matrix_is_recovered_exactly():
    with jax.enable_x64(True):
        b = jax.random.normal(jax.random.key(0), (60, 8), jnp.float64)
        a = b @ b.T
        approx = nystrom_approximation(lambda v: a @ v, 60, 8, jax.random.key(1), jnp.float64)
        dense = jax.vmap(approx, in_axes=1, out_axes=1)(jnp.eye(60, dtype=jnp.float64))
        np.testing.assert_allclose(dense, a, atol=1e-8 * float(jnp.max(jnp.abs(a))))
        np.testing.assert_allclose(approx.eigenvalues, np.linalg.eigvalsh(np.asarray(a))[::-1][:8], rtol=1e-8)


def test_preconditioned_cg_matches_the_dense_solve_in_fewer_steps():
    with jax.enable_x64(True):
        a, lam = _spd(120, 0.08, jax.random.key(2))  # condition number 1e9
        mu = 1e-6
        b = jax.random.normal(jax.random.key(3), (120,), jnp.float64)
        exact = np.linalg.solve(np.asarray(a) + mu * np.eye(120), np.asarray(b))
        structure = jax.ShapeDtypeStruct((120,), jnp.float64)
        op = lx.FunctionLinearOperator(lambda v: a @ v + mu * v, structure, lx.positive_semidefinite_tag)
        approx = nystrom_approximation(lambda v: a @ v, 120, 40, jax.random.key(4), jnp.float64)
        pre = lx.FunctionLinearOperator(
            approx.inverse_preconditioner(mu), structure, lx.positive_semidefinite_tag
        )
        rms = lambda r: jnp.sqrt(jnp.mean(r**2))  # noqa: E731
        solver = lx.CG(rtol=1e-8, atol=1e-8 * float(rms(b)), norm=rms, max_steps=5000)
        with_pre = lx.linear_solve(op, b, solver, options={"preconditioner": pre})
        plain = lx.linear_solve(op, b, solver, throw=False)
        assert np.linalg.norm(with_pre.value - exact) < 1e-6 * np.linalg.norm(exact)
        assert int(with_pre.stats["num_steps"]) < int(plain.stats["num_steps"]) / 3
