"""Random rotations and rotated point clouds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.metrics import orthogonality_error, rotation_angle_error
from physbias.systems import random_rotations, rotated_clouds


def test_random_rotations_are_rotations_within_the_angle():
    r = random_rotations(jax.random.key(0), 200, max_angle=1.0)
    assert float(jnp.max(orthogonality_error(r))) < 2e-6
    np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=2e-6)
    angles = rotation_angle_error(r, jnp.broadcast_to(jnp.eye(3), r.shape))
    assert float(angles.max()) <= 1.0 + 1e-3 and float(angles.max()) > 0.8


def test_clouds_are_the_reference_rotated():
    ref = jax.random.normal(jax.random.key(1), (5, 3))
    r = random_rotations(jax.random.key(2), 4)
    clouds = rotated_clouds(jax.random.key(3), ref, r, noise=0.0)
    np.testing.assert_allclose(clouds[2], ref @ r[2].T, atol=1e-6)
    # Rotations keep distances between points.
    np.testing.assert_allclose(
        jnp.linalg.norm(clouds[:, 0] - clouds[:, 1], axis=-1), jnp.linalg.norm(ref[0] - ref[1]), rtol=1e-5
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="positive"):
        random_rotations(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="max_angle"):
        random_rotations(jax.random.key(0), 3, max_angle=4.0)
