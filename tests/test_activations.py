"""The library's two softplus forms against float64 references: value and derivatives."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.nn import softplus, softplus_one_exp

FORMS = pytest.mark.parametrize("softplus", [softplus, softplus_one_exp], ids=["logistic", "one_exp"])


def _reference(x):
    """softplus and its two derivatives in float64 NumPy."""
    x = np.asarray(x, np.float64)
    value = np.logaddexp(x, 0.0)
    s = 1 / (1 + np.exp(-x))
    return value, s, s * (1 - s)


@FORMS
def test_softplus_matches_float64_over_its_whole_range(softplus):
    # -40..40 covers exp(-|x|) from 1 down to 4e-18: the log1p trick's small-argument branch
    # (u == 1), its rounding-undoing branch, and both signs of x.
    x = jnp.linspace(-40.0, 40.0, 100_001, dtype=jnp.float32)
    value, first, second = _reference(x)
    got = np.asarray(softplus(x), np.float64)
    assert np.max(np.abs(got - value) / value) < 3e-7
    d1 = np.asarray(jax.vmap(jax.grad(softplus))(x), np.float64)
    assert np.max(np.abs(d1 - first) / first) < 1e-6
    d2 = np.asarray(jax.vmap(jax.grad(jax.grad(softplus)))(x), np.float64)
    # s (1 - s) loses digits to float32's 1 - s for large x, as jax.nn.softplus's own does.
    mid = np.abs(np.asarray(x)) < 5
    assert np.max(np.abs(d2[mid] - second[mid]) / second[mid]) < 1e-4
    assert np.max(np.abs(d2 - second)) < 2e-7  # measured 9e-8; jax.nn.softplus's: 5e-7
    assert float(jax.grad(jax.grad(softplus))(0.0)) == pytest.approx(0.25, rel=1e-6)
    # Third derivative s (1 - s) (1 - 2 s), at a few points including 0.
    for point in (-2.0, 0.0, 0.5, 3.0):
        s = 1 / (1 + np.exp(-point))
        third = float(jax.grad(jax.grad(jax.grad(softplus)))(point))
        assert third == pytest.approx(s * (1 - s) * (1 - 2 * s), rel=1e-4, abs=1e-7)


@FORMS
def test_softplus_agrees_with_jax_and_in_float64(softplus):
    x = jax.random.normal(jax.random.key(0), (512,)) * 10
    np.testing.assert_allclose(softplus(x), jax.nn.softplus(x), rtol=3e-7, atol=1e-30)
    with jax.enable_x64(True):
        x64 = jnp.linspace(-700.0, 700.0, 20_001, dtype=jnp.float64)
        value, first, _ = _reference(x64)
        got = np.asarray(softplus(x64))
        assert got.dtype == np.float64
        assert np.max(np.abs(got - value) / value) < 1e-15
        np.testing.assert_allclose(jax.vmap(jax.grad(softplus))(x64), first, rtol=1e-14)


@FORMS
def test_softplus_edge_values_and_forward_mode(softplus):
    x = jnp.array([-jnp.inf, -1e30, 0.0, 1e30, jnp.inf, jnp.nan])
    got = np.asarray(softplus(x))
    np.testing.assert_array_equal(got[:5], np.array([0.0, 0.0, np.log(2.0), 1e30, np.inf], np.float32))
    assert np.isnan(got[5])
    # Forward over reverse (the LNN's Hessian-vector products) equals reverse over reverse.
    f = lambda v: jnp.sum(softplus(v) ** 2)
    v = jnp.linspace(-3.0, 3.0, 7)
    t = jnp.ones_like(v)
    hvp_fwd = jax.jvp(jax.grad(f), (v,), (t,))[1]
    hvp_rev = jax.grad(lambda u: jnp.vdot(jax.grad(f)(u), t))(v)
    np.testing.assert_allclose(hvp_fwd, hvp_rev, rtol=1e-6)
