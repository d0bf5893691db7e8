"""Outputs valid by construction: SO(3) by the exponential map and by Gram-Schmidt, SPD, positive."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from physbias.metrics import orthogonality_error, rotation_angle_error
from physbias.nn import (
    ExpMapRotation,
    GramSchmidtRotation,
    PositiveOutput,
    SPDMatrixOutput,
    gram_schmidt_rotation,
    so3_exp,  # re-exported from physbias.groups
)


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
    short = min(float(jnp.linalg.norm(a)), float(jnp.linalg.norm(b))) < 1e-3
    if short or float(sin_angle) < 0.1:  # (near-)degenerate pair: Gram-Schmidt has no stable answer
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
