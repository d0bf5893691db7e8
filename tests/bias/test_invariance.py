"""LearnedInvariance: the plain model at extent 0, exact invariance to the sampled rotations at a
full turn, a radial target it can still fit, and an evidence differentiable in the extent."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias import fit
from physbias.bias import ROTATION_2D, LearnedInvariance, extent_degrees
from physbias.evidence import laplace
from physbias.losses import supervised_loss


def _rotation(angle):
    c, s = np.cos(angle), np.sin(angle)
    return jnp.array([[c, -s], [s, c]], jnp.float32)


def test_extent_zero_is_the_plain_model_and_a_full_turn_is_invariant():
    mlp = eqx.nn.MLP(2, 3, 16, 2, key=jax.random.key(0))
    x = jnp.array([0.3, -0.8])
    np.testing.assert_allclose(LearnedInvariance(mlp, extent=0.0, n_samples=8)(x), mlp(x), atol=1e-6)
    full = LearnedInvariance(mlp, extent=np.pi, n_samples=12)
    # Midpoints over [-pi, pi] are 30 degrees apart: rotating the input by 30 degrees permutes them.
    np.testing.assert_allclose(full(_rotation(np.pi / 6) @ x), full(x), atol=1e-5)
    # ...and a plain MLP is not invariant (the check can fail).
    assert float(jnp.max(jnp.abs(mlp(_rotation(np.pi / 6) @ x) - mlp(x)))) > 1e-2
    assert extent_degrees(full)[0] == pytest.approx(180.0)


def test_a_fully_invariant_model_still_fits_a_radial_target():
    x = jax.random.normal(jax.random.key(1), (256, 2))
    y = jnp.sum(x**2, axis=1)
    model = LearnedInvariance(
        eqx.nn.MLP(2, "scalar", 32, 2, key=jax.random.key(2)), extent=np.pi, n_samples=8
    )
    result = fit(
        model,
        supervised_loss(),
        (x, y),
        key=jax.random.key(3),
        epochs=400,
        learning_rate=1e-2,
        progress=False,
    )
    assert result.losses[-1] < 0.01 * result.losses[0]


def test_the_evidence_is_differentiable_in_the_extent():
    x = jax.random.normal(jax.random.key(4), (30, 2))
    labels = (jnp.sum(x**2, axis=1) > 1.0).astype(jnp.int32)
    model = LearnedInvariance(
        eqx.nn.MLP(2, 2, 6, 1, activation=jnp.tanh, key=jax.random.key(5)), extent=0.6, n_samples=8
    )

    def evidence(extent):
        m = eqx.tree_at(lambda m: m.extent, model, extent)
        lap = laplace(
            m, (x, labels), likelihood="classification", curvature="full", hyperparameters=lambda m: m.extent
        )
        return lap.log_evidence(1.0)

    with jax.enable_x64(False):
        extent = jnp.array([0.6])
        grad = jax.grad(lambda e: evidence(e))(extent)[0]
        h = 1e-2
        fd = (evidence(extent + h) - evidence(extent - h)) / (2 * h)
    assert float(grad) == pytest.approx(float(fd), rel=0.05, abs=0.05)
    # The extent is not a parameter: the parameter count is the MLP's.
    lap = laplace(
        model, (x, labels), likelihood="classification", curvature="full", hyperparameters=lambda m: m.extent
    )
    assert sum(lap.group_sizes) == 2 * 6 + 6 + 6 * 2 + 2


def test_kfac_refuses_an_averaged_model():
    model = LearnedInvariance(eqx.nn.MLP(2, 2, 4, 1, key=jax.random.key(6)))
    x = jnp.ones((4, 2))
    with pytest.raises(ValueError, match="LearnedInvariance"):
        laplace(
            model,
            (x, jnp.zeros(4, jnp.int32)),
            likelihood="classification",
            curvature="kfac",
            hyperparameters=lambda m: m.extent,
        )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"generators": np.zeros((2, 2))}, "`generators` must have shape"),
        ({"generators": ROTATION_2D * np.nan}, "NaN"),
        ({"extent": -0.1}, "`extent` must be >= 0"),
        ({"n_samples": 0}, "`n_samples`"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LearnedInvariance(lambda x: x, **kwargs)


def test_wrong_input_shape_is_refused():
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        LearnedInvariance(lambda x: x)(jnp.ones(3))


def test_affine_resample_rotates_pixels_and_the_identity_keeps_them():
    from physbias.bias import AFFINE_2D, affine_resample

    image = jnp.zeros((1, 8, 8)).at[0, 2, 5].set(1.0)
    quarter = jax.scipy.linalg.expm(np.pi / 2 * jnp.asarray(AFFINE_2D[2], jnp.float32))
    np.testing.assert_allclose(affine_resample(image, jnp.eye(3)), image, atol=1e-6)
    turned = affine_resample(image, quarter)
    assert np.argwhere(np.asarray(turned[0]) > 0.5).tolist() == [[2, 2]]
    np.testing.assert_allclose(turned, jnp.rot90(image, k=1, axes=(1, 2)), atol=1e-5)


def test_an_image_model_averaged_over_a_full_turn_is_invariant_to_quarter_turns():
    from physbias.bias import AFFINE_2D

    net = eqx.nn.Sequential([eqx.nn.Lambda(jnp.ravel), eqx.nn.MLP(64, 3, 8, 1, key=jax.random.key(7))])
    model = LearnedInvariance(net, AFFINE_2D[2:3], extent=np.pi, n_samples=4, images=True)
    image = jax.random.uniform(jax.random.key(8), (1, 8, 8))
    rotated = jnp.rot90(image, k=1, axes=(1, 2))
    np.testing.assert_allclose(model(rotated), model(image), atol=1e-5)
    assert float(jnp.max(jnp.abs(net(rotated) - net(image)))) > 1e-3


def test_rotate_images_turns_each_image_by_its_own_angle():
    from physbias.bias import rotate_images

    images = jax.random.uniform(jax.random.key(9), (2, 1, 8, 8))
    out = rotate_images(images, jnp.array([np.pi / 2, 0.0], jnp.float32))
    np.testing.assert_allclose(out[0], jnp.rot90(images[0], k=1, axes=(1, 2)), atol=1e-5)
    np.testing.assert_allclose(out[1], images[1], atol=1e-6)
    with pytest.raises(ValueError, match="`angles` must have shape"):
        rotate_images(images, jnp.zeros(3))
