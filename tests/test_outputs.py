"""Outputs valid by construction: SO(3) by the exponential map and by Gram-Schmidt, SPD, positive."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias.metrics import orthogonality_error, rotation_angle_error
from physbias.nn import (
    ExpMapRotation,
    GramSchmidtRotation,
    PositiveOutput,
    SPDMatrixOutput,
    gram_schmidt_rotation,
    hat,
    so3_exp,
)

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


def test_rotation_angle_error_recovers_the_angle():
    axis = jnp.array([0.0, 0.0, 1.0])
    angle = rotation_angle_error(so3_exp(0.7 * axis), jnp.eye(3))
    assert float(angle) == pytest.approx(0.7, abs=1e-5)


@settings(max_examples=30, deadline=None)
@given(v=st.lists(st.floats(-3, 3), min_size=6, max_size=6))
def test_gram_schmidt_is_a_rotation(v):
    v = jnp.array(v)
    a, b = v[:3], v[3:]
    sin_angle = jnp.linalg.norm(jnp.cross(a, b)) / (jnp.linalg.norm(a) * jnp.linalg.norm(b) + 1e-30)
    if float(sin_angle) < 0.1:  # near-parallel pair: Gram-Schmidt loses digits to cancellation
        return
    r = gram_schmidt_rotation(v)
    # float32: a few tens of ulps on a 3x3 product
    assert float(orthogonality_error(r)) < 4e-6
    assert float(jnp.linalg.det(r)) == pytest.approx(1.0, abs=4e-6)


def test_output_layers_on_random_networks(getkey):
    x = jax.random.normal(getkey(), (64, 5))
    exp = ExpMapRotation(eqx.nn.MLP(5, 3, 16, 2, key=getkey()))
    gs = GramSchmidtRotation(eqx.nn.MLP(5, 6, 16, 2, key=getkey()))
    for model in (exp, gs):
        r = jax.vmap(model)(x)
        assert float(jnp.max(orthogonality_error(r))) < 2e-6
        np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=2e-6)
    pos = jax.vmap(PositiveOutput(eqx.nn.MLP(5, 2, 16, 2, key=getkey()), floor=1e-3))(x)
    assert float(jnp.min(pos)) >= 1e-3
    spd = jax.vmap(SPDMatrixOutput(eqx.nn.MLP(5, 6, 16, 2, key=getkey()), n=3))(x)
    np.testing.assert_allclose(spd, jnp.swapaxes(spd, -1, -2), atol=1e-6)
    assert float(jnp.min(jnp.linalg.eigvalsh(spd))) > 0
