"""2-D reference densities: normalised (quadrature on a grid), and their samples follow them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.systems import Banana, GaussianRing, TwoMoons


@pytest.mark.parametrize(
    "density, box",
    [
        (GaussianRing(), ((-3.5, 3.5), (-3.5, 3.5))),
        (Banana(), ((-5.0, 5.0), (-3.5, 11.0))),
        (TwoMoons(), ((-1.8, 2.8), (-1.3, 1.8))),
    ],
    ids=["ring", "banana", "moons"],
)
def test_density_integrates_to_one_and_matches_its_samples(density, box):
    # Normalisation by a Riemann sum on a fine grid covering the mass (smooth, fast-decaying densities).
    axes = [np.linspace(lo, hi, 361) for lo, hi in box]
    cell = (axes[0][1] - axes[0][0]) * (axes[1][1] - axes[1][0])
    xx, yy = np.meshgrid(*axes, indexing="ij")
    points = jnp.asarray(np.stack([xx.ravel(), yy.ravel()], -1), jnp.float32)
    p = np.exp(np.asarray(density.log_prob(points), np.float64)).reshape(xx.shape) * cell
    assert p.sum() == pytest.approx(1.0, abs=2e-3)
    # Samples: the histogram over 6 x 6 cells agrees with the integrated density.
    x = np.asarray(density.sample(jax.random.key(0), 40_000))
    edges = [np.linspace(lo, hi, 7) for lo, hi in box]
    hist = np.histogram2d(x[:, 0], x[:, 1], edges)[0] / len(x)
    index = [np.clip(np.digitize(a, e) - 1, 0, 5) for a, e in zip(axes, edges, strict=True)]
    expected = np.zeros((6, 6))
    np.add.at(expected, (index[0][:, None], index[1][None, :]), p)
    assert np.max(np.abs(hist - expected)) < 0.01


def test_two_moons_quadrature_has_converged():
    x = TwoMoons().sample(jax.random.key(1), 500)
    fine = TwoMoons(nodes=1024).log_prob(x)
    np.testing.assert_allclose(TwoMoons().log_prob(x), fine, atol=1e-5)


def test_bad_settings_and_samples_are_refused():
    with pytest.raises(ValueError, match="std"):
        GaussianRing(std=0.0)
    with pytest.raises(ValueError, match="width"):
        Banana(width=-1.0)
    with pytest.raises(ValueError, match="shape"):
        GaussianRing().log_prob(jnp.ones((4, 3)))
    with pytest.raises(ValueError, match="`n`"):
        TwoMoons().sample(jax.random.key(0), 0)
