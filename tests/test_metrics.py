"""Metrics against hand-computed small cases: RMSE, relative rollout errors, energy drift, and the
projection onto SO(3) against an independent polar decomposition.

Tolerances: NumPy metrics (rmse, relative_rmse) are float64 -> 1e-12; the JAX metrics are checked
in float64 (``jax.enable_x64``) at 1e-12, or in float32 at 1e-6 where stated.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from physbias.metrics import (
    energy_drift,
    geometric_mean_relative_error,
    orthogonality_error,
    project_to_rotation,
    relative_error,
    relative_rmse,
    rmse,
)

# --- rmse / relative_rmse -----------------------------------------------------------------------


def test_rmse_sums_over_entries_and_averages_over_samples():
    # per-sample squared norms 0 and 3^2 + 4^2 = 25: sqrt((0 + 25) / 2)
    pred = np.array([[1.0, 2.0], [4.0, 6.0]])
    target = np.array([[1.0, 2.0], [1.0, 2.0]])
    assert rmse(pred, target) == pytest.approx(np.sqrt(12.5), rel=1e-12)
    # scalar outputs: squared errors 0, 0, 4 -> sqrt(4 / 3)
    assert rmse(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0])) == pytest.approx(
        np.sqrt(4.0 / 3.0), rel=1e-12
    )
    # higher-rank outputs are flattened per sample: one sample of 2x2 errors all 1 -> sqrt(4)
    assert rmse(np.ones((1, 2, 2)), np.zeros((1, 2, 2))) == pytest.approx(2.0, rel=1e-12)
    assert rmse(target, target) == 0.0


def test_relative_rmse_divides_by_the_rms_of_the_target():
    target = np.array([[3.0, 4.0], [0.0, 0.0]])  # rms = sqrt((25 + 0) / 2)
    pred = np.array([[4.0, 4.0], [0.0, 0.0]])  # rmse = sqrt((1 + 0) / 2)
    assert relative_rmse(pred, target) == pytest.approx(0.2, rel=1e-12)
    # scale-free: multiplying both by 7 leaves it unchanged, rmse scales by 7
    assert relative_rmse(7 * pred, 7 * target) == pytest.approx(0.2, rel=1e-12)
    assert rmse(7 * pred, 7 * target) == pytest.approx(7 * rmse(pred, target), rel=1e-12)


# --- relative_error / geometric_mean_relative_error ---------------------------------------------


def test_relative_error_per_step_by_hand():
    with jax.enable_x64(True):
        pred = jnp.array([[3.0, 4.0], [1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])
        true = jnp.array([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0], [-2.0, 0.0]])
        # |(0, 4)| / (5 + 3); exact; 0/0 defined as 0; opposite vectors give the maximum 1
        np.testing.assert_allclose(relative_error(pred, true), [0.5, 0.0, 0.0, 1.0], rtol=1e-12)


def test_relative_error_keeps_leading_axes_and_is_bounded():
    pred = jax.random.normal(jax.random.key(0), (2, 3, 5, 4))
    true = jax.random.normal(jax.random.key(1), (2, 3, 5, 4))
    err = relative_error(pred, true)
    assert err.shape == (2, 3, 5)
    # triangle inequality: |a - b| <= |a| + |b|
    assert float(jnp.max(err)) <= 1.0 + 1e-6 and float(jnp.min(err)) >= 0.0
    # symmetric in its arguments
    np.testing.assert_allclose(err, relative_error(true, pred), rtol=1e-6)


def test_geometric_mean_relative_error_by_hand():
    with jax.enable_x64(True):
        # steps with relative errors |3 - 1| / (3 + 1) = 0.5 and |9 - 7| / (9 + 7) = 0.125;
        # geometric mean sqrt(0.5 * 0.125) = 0.25 (the arithmetic mean would be 0.3125)
        pred = jnp.array([[[3.0, 0.0], [9.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]])
        true = jnp.array([[[1.0, 0.0], [7.0, 0.0]], [[1.0, 1.0], [0.0, 0.0]]])
        got = geometric_mean_relative_error(pred, true)
        assert got.shape == (2,)
        assert float(got[0]) == pytest.approx(0.25, rel=1e-12)
        # second trajectory: an exact step (error 0, floored at 1e-30) and error 1 -> sqrt(1e-30)
        assert float(got[1]) == pytest.approx(1e-15, rel=1e-9)


def test_energy_drift_by_hand():
    with jax.enable_x64(True):
        traj = jnp.array([[[1.0, 0.0], [0.0, 2.0], [0.0, 0.5]]])  # E = |z|^2 = 1, 4, 0.25
        drift = energy_drift(lambda z: z @ z, traj)
        np.testing.assert_allclose(drift, [[0.0, 3.0, 0.75]], rtol=1e-12)


# --- project_to_rotation ------------------------------------------------------------------------


def _polar_factor(m):
    """``M (M^T M)^{-1/2}`` by a symmetric eigendecomposition (NumPy, no SVD): the orthogonal
    polar factor, which is the nearest rotation when ``det M > 0``."""
    w, v = np.linalg.eigh(m.T @ m)
    return m @ (v @ np.diag(w**-0.5) @ v.T)


def test_project_to_rotation_gives_rotations_and_matches_the_polar_factor():
    with jax.enable_x64(True):
        m = jax.random.normal(jax.random.key(3), (64, 3, 3), dtype=jnp.float64)
        r = project_to_rotation(m)
        assert r.shape == m.shape
        np.testing.assert_array_less(np.asarray(orthogonality_error(r)), 1e-12)
        np.testing.assert_allclose(jnp.linalg.det(r), 1.0, atol=1e-12)
        dets = np.linalg.det(np.asarray(m))
        assert (dets > 0).any() and (dets < 0).any()  # both branches are exercised
        for mi, ri, d in zip(np.asarray(m), np.asarray(r), dets, strict=True):
            if d > 0:
                np.testing.assert_allclose(ri, _polar_factor(mi), atol=1e-10)


def test_project_to_rotation_flips_the_weakest_direction_of_a_reflection():
    # M = diag(1, 2, -3): det < 0, singular values 3, 2, 1. The nearest rotation flips the
    # direction of the smallest singular value (x): diag(-1, 1, -1), at squared distance
    # 4 + 1 + 4 = 9 (diag(1, -1, -1): 13; the identity: 17).
    with jax.enable_x64(True):
        r = project_to_rotation(jnp.diag(jnp.array([1.0, 2.0, -3.0])))
        np.testing.assert_allclose(r, np.diag([-1.0, 1.0, -1.0]), atol=1e-12)


def test_project_to_rotation_is_nearer_than_other_rotations():
    with jax.enable_x64(True):
        m = np.asarray(jax.random.normal(jax.random.key(4), (3, 3), dtype=jnp.float64))
        r = np.asarray(project_to_rotation(jnp.asarray(m)))
    best = np.sum((r - m) ** 2)
    others = Rotation.random(2000, random_state=5).as_matrix()
    # also the projection turned a little about each axis, both ways
    near = r @ Rotation.from_rotvec(1e-3 * np.concatenate([np.eye(3), -np.eye(3)])).as_matrix()
    for candidates in (others, near):
        assert best < np.min(np.sum((candidates - m) ** 2, axis=(-2, -1)))


def test_project_to_rotation_leaves_rotations_unchanged():
    rotations = Rotation.random(16, random_state=6).as_matrix()  # float64, independent of physbias
    with jax.enable_x64(True):
        np.testing.assert_allclose(project_to_rotation(jnp.asarray(rotations)), rotations, atol=1e-12)
        # a scaled rotation projects back onto the rotation (the polar factor drops the scale)
        np.testing.assert_allclose(project_to_rotation(jnp.asarray(2.5 * rotations)), rotations, atol=1e-12)
    # float32, with leading batch axes
    r32 = rotations[:12].reshape(2, 6, 3, 3).astype(np.float32)
    np.testing.assert_allclose(project_to_rotation(jnp.asarray(r32)), r32, atol=1e-5)


def test_equivariance_error_refuses_empty_or_non_finite_inputs():
    import numpy as np
    import pytest

    from physbias.bias import Parity
    from physbias.metrics import equivariance_error

    with pytest.raises(ValueError, match="`inputs` is empty"):
        equivariance_error(lambda x: x, Parity(), np.zeros((0, 2)))
    with pytest.raises(ValueError, match="`inputs` contains 1 NaN"):
        equivariance_error(lambda x: x, Parity(), np.array([[1.0, np.nan]]))
    assert equivariance_error(lambda x: -x, Parity(odd=True), np.ones((4, 2))) == 0.0


def test_accuracy_and_gaussian_nll_against_hand_values():
    import scipy.stats

    from physbias.metrics import accuracy, gaussian_nll

    logits = np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]])
    assert accuracy(logits, np.array([0, 1, 1])) == pytest.approx(2 / 3)
    mean, var, y = np.array([0.0, 1.0]), np.array([1.0, 4.0]), np.array([0.5, -1.0])
    ref = -np.mean(scipy.stats.norm(mean, np.sqrt(var)).logpdf(y))
    assert gaussian_nll(mean, var, y) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="accuracy needs"):
        accuracy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        gaussian_nll(mean[:, None], var, y)


def test_mmd_matches_the_closed_form_for_two_gaussians():
    from physbias.metrics import mmd_squared

    rng = np.random.default_rng(0)
    d, s, h, shift = 2, 0.5, 1.0, 0.8
    x = rng.normal(0.0, s, (1500, d))
    y = rng.normal(0.0, s, (1500, d)) + np.array([shift, 0.0])
    c = (h**2 / (h**2 + 2 * s**2)) ** (d / 2)
    exact = 2 * c * (1 - np.exp(-(shift**2) / (2 * (h**2 + 2 * s**2))))
    assert mmd_squared(x, y, bandwidth=h) == pytest.approx(exact, abs=0.03)  # 3 sampling sigmas
    # Same distribution: unbiased, so near 0 (within the sampling error).
    assert abs(mmd_squared(x, rng.normal(0.0, s, (1500, d)), bandwidth=h)) < 0.003
    # Average of kernels = average of MMDs; the median heuristic is a positive scale.
    both = mmd_squared(x, y, bandwidth=(0.5, 1.0))
    assert both == pytest.approx((mmd_squared(x, y, 0.5) + mmd_squared(x, y, 1.0)) / 2, rel=1e-9)
    assert mmd_squared(x, y) > 0.05


def test_mmd_refuses_bad_samples():
    from physbias.metrics import mmd_squared

    with pytest.raises(ValueError, match="samples"):
        mmd_squared(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        mmd_squared(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_squared(np.zeros((5, 2)), np.ones((5, 2)), bandwidth=0.0)


def test_autocorrelation_of_an_ar1_process_is_its_coefficient_to_the_lag():
    from physbias.metrics import autocorrelation

    rng = np.random.default_rng(0)
    phi, x = 0.8, np.zeros((200, 400, 2))
    x[:, 0] = rng.normal(size=(200, 2)) / np.sqrt(1 - phi**2)  # stationary start
    for t in range(1, 400):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=(200, 2))
    np.testing.assert_allclose(autocorrelation(x, 3), phi**3, atol=0.01)
    with pytest.raises(ValueError, match="lag"):
        autocorrelation(x, 400)
    with pytest.raises(ValueError, match="windows"):
        autocorrelation(x[0], 1)
