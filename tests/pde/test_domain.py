"""Boxes and collocation points."""

import jax
import numpy as np
import pytest

from physbias.pde import Box


def test_latin_hypercube_puts_one_point_in_every_slice():
    box = Box((-1.0, 0.0), (1.0, 1.0), ("x", "t"))
    pts = np.asarray(box.latin_hypercube(jax.random.key(0), 64))
    unit = (pts - np.array(box.lower)) / np.array(box.extent)
    for i in range(2):
        assert sorted(np.floor(unit[:, i] * 64).astype(int)) == list(range(64))
    uniform = np.asarray(box.uniform(jax.random.key(1), 64))
    assert np.all((uniform >= box.lower) & (uniform <= box.upper))


def test_side_points_lie_on_the_side():
    box = Box((-1.0, 0.0), (1.0, 1.0), ("x", "t"))
    initial = np.asarray(box.side(jax.random.key(0), 10, "t", "lower"))
    wall = np.asarray(box.side(jax.random.key(1), 10, "x", "upper"))
    assert np.all(initial[:, 1] == 0.0) and np.all(wall[:, 0] == 1.0)
    assert np.ptp(initial[:, 0]) > 0.5


def test_boundary_points_cover_every_side_equally():
    box = Box((0.0, -1.0, 2.0), (1.0, 1.0, 3.0), ("x", "y", "z"))
    pts = np.asarray(box.boundary(jax.random.key(0), 60))
    assert pts.shape == (60, 3)
    on_side = np.stack([np.isclose(pts, box.lower), np.isclose(pts, box.upper)], 2).reshape(60, 6)
    assert np.all(on_side.sum(0) == 10) and np.all(on_side.sum(1) == 1)


@pytest.mark.parametrize(
    "args, match",
    [
        (((0.0, 0.0), (1.0, 0.0)), "positive extent"),
        (((0.0,), (1.0, 1.0)), "same non-zero length"),
        (((0.0, 0.0), (1.0, np.inf)), "finite"),
        (((0.0, 0.0), (1.0, 1.0), ("x", "x")), "distinct"),
    ],
)
def test_bad_boxes_are_refused(args, match):
    with pytest.raises(ValueError, match=match):
        Box(*args)


def test_bad_requests_are_refused():
    box = Box((0.0, 0.0), (1.0, 1.0), ("x", "y"))
    with pytest.raises(ValueError, match="no coordinate 't'"):
        box.side(jax.random.key(0), 4, "t", "lower")
    with pytest.raises(ValueError, match="positive integer"):
        box.uniform(jax.random.key(0), 0)
    with pytest.raises(ValueError, match="which"):
        box.side(jax.random.key(0), 4, "x", "left")


def test_disk_points_are_uniform_inside_and_on_the_circle():
    from physbias.pde import Disk

    disk = Disk((1.0, -1.0), 2.0)
    inside = np.asarray(disk.uniform(jax.random.key(0), 4000)) - np.array([1.0, -1.0])
    r = np.linalg.norm(inside, axis=1)
    assert np.all(r <= 2.0 + 1e-6) and abs(np.mean(r <= 1.0) - 0.25) < 0.03  # area fraction
    edge = np.asarray(disk.boundary(jax.random.key(1), 100)) - np.array([1.0, -1.0])
    np.testing.assert_allclose(np.linalg.norm(edge, axis=1), 2.0, rtol=1e-6)
    with pytest.raises(ValueError, match="radius"):
        Disk((0.0, 0.0), 0.0)
