"""Triangle area task: Heron's formula against the shoelace formula, valid samples."""

import jax
import jax.numpy as jnp
import numpy as np

from physbias.systems import HeronForm, heron_area, sample_triangles


def test_heron_matches_known_areas_and_the_shoelace_formula():
    np.testing.assert_allclose(heron_area(jnp.array([3.0, 4.0, 5.0])), 6.0, rtol=1e-6)
    np.testing.assert_allclose(heron_area(jnp.array([2.0, 2.0, 2.0])), np.sqrt(3.0), rtol=1e-6)
    # Random planar triangles: edge lengths from the vertices, area from the shoelace formula.
    p = np.random.default_rng(0).standard_normal((50, 3, 2))
    edges = np.linalg.norm(p - np.roll(p, -1, axis=1), axis=-1)
    u, v = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    shoelace = 0.5 * np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])
    with jax.enable_x64(True):
        np.testing.assert_allclose(heron_area(jnp.asarray(edges)), shoelace, rtol=1e-7, atol=1e-12)


def test_samples_are_triangles_in_range_and_heron_form_is_exact_at_one_quarter():
    x = sample_triangles(jax.random.key(0), 500, 0.2, 1.0)
    assert x.shape == (500, 3) and float(x.min()) > 0.2 and float(x.max()) < 1.0
    s = jnp.sort(x, axis=-1)
    assert bool(jnp.all(s[:, 0] + s[:, 1] > s[:, 2]))
    np.testing.assert_allclose(jax.vmap(HeronForm(C=0.25))(x), heron_area(x), rtol=1e-5)
    assert float(jnp.max(jnp.abs(jax.vmap(HeronForm(C=0.0))(x)))) == 0.0
