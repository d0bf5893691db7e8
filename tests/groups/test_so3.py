"""The so(3) hat map and exponential map (Rodrigues) against SciPy's matrix exponential."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias.groups.so3 import hat, so3_exp
from physbias.metrics import orthogonality_error

vectors = st.lists(st.floats(-4, 4), min_size=3, max_size=3)


@settings(max_examples=30, deadline=None)
@given(w=vectors)
def test_so3_exp_matches_matrix_exponential_float64(w):
    with jax.enable_x64(True):
        w = jnp.array(w, dtype=jnp.float64)
        r = so3_exp(w)
        np.testing.assert_allclose(r, scipy.linalg.expm(np.asarray(hat(w))), atol=1e-12)
        assert float(orthogonality_error(r)) < 1e-13
        assert float(jnp.linalg.det(r)) == pytest.approx(1.0, abs=1e-13)


@settings(max_examples=30, deadline=None)
@given(w=vectors)
def test_so3_exp_is_a_rotation_float32(w):
    r = so3_exp(jnp.array(w, dtype=jnp.float32))
    assert float(orthogonality_error(r)) < 2e-6
    assert float(jnp.linalg.det(r)) == pytest.approx(1.0, abs=2e-6)


def test_so3_exp_near_zero_is_smooth():
    for scale in (0.0, 1e-6, 1e-5, 1e-3):
        w = scale * jnp.array([0.3, -0.5, 0.8])
        with jax.enable_x64(True):
            ref = scipy.linalg.expm(np.asarray(hat(jnp.asarray(w, jnp.float64))))
        np.testing.assert_allclose(so3_exp(w), ref, atol=1e-7)
    jac = jax.jacfwd(so3_exp)(jnp.zeros(3))
    assert bool(jnp.all(jnp.isfinite(jac)))
    # d exp(hat(w)) / dw at 0 is the hat map's basis: column k of the derivative is hat(e_k).
    for k in range(3):
        np.testing.assert_allclose(jac[:, :, k], hat(jnp.eye(3)[k]), atol=1e-7)


def test_hat_is_the_cross_product():
    w, v = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.5, 0.2, -0.7])
    np.testing.assert_allclose(hat(w) @ v, jnp.cross(w, v), atol=1e-6)
    np.testing.assert_allclose(hat(w), -hat(w).T)
