"""Exact PDE references: the Cole-Hopf Burgers solution and harmonic functions."""

import numpy as np
import pytest

from physbias.pde import RAISSI_VISCOSITY, burgers_cole_hopf, laplace_disk_solution, laplace_square_solution


def _grid():
    x, t = np.linspace(-1, 1, 256), np.linspace(0, 0.99, 100)
    return np.meshgrid(x, t, indexing="ij")


def test_cole_hopf_meets_the_initial_and_boundary_conditions():
    x = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(burgers_cole_hopf(x, 0.0), -np.sin(np.pi * x), atol=1e-15)
    np.testing.assert_allclose(
        burgers_cole_hopf(x, 1e-6), -np.sin(np.pi * x), atol=1e-3
    )  # continuous at t = 0
    t = np.linspace(0.01, 1.0, 50)
    assert np.max(np.abs(burgers_cole_hopf(-1.0, t))) < 1e-12
    assert np.max(np.abs(burgers_cole_hopf(1.0, t))) < 1e-12


def test_cole_hopf_satisfies_burgers_by_finite_differences():
    # away from the steep front at x = 0 (width ~ nu), where 4th-order differences resolve u
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.95, 200) * rng.choice([-1, 1], 200)
    t = rng.uniform(0.05, 0.95, 200)
    h = 1e-3
    u = lambda dx=0.0, dt=0.0: burgers_cole_hopf(x + dx, t + dt)  # noqa: E731
    u_t = (-u(dt=2 * h) + 8 * u(dt=h) - 8 * u(dt=-h) + u(dt=-2 * h)) / (12 * h)
    u_x = (-u(2 * h) + 8 * u(h) - 8 * u(-h) + u(-2 * h)) / (12 * h)
    u_xx = (-u(2 * h) + 16 * u(h) - 30 * u() + 16 * u(-h) - u(-2 * h)) / (12 * h**2)
    residual = u_t + u() * u_x - RAISSI_VISCOSITY * u_xx
    assert np.max(np.abs(residual)) < 1e-5 * np.max(np.abs(u_t) + np.abs(u() * u_x))
    # and a wrong viscosity is visibly not a solution (the test can fail)
    wrong = u_t + u() * u_x - 10 * RAISSI_VISCOSITY * u_xx
    assert np.max(np.abs(wrong)) > 1e-3


def test_cole_hopf_converges_in_the_quadrature_nodes():
    x, t = _grid()
    u100 = burgers_cole_hopf(x, t, nodes=100)
    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    assert rel(burgers_cole_hopf(x, t, nodes=50), u100) < 1e-7
    assert rel(burgers_cole_hopf(x, t, nodes=200), u100) < rel(burgers_cole_hopf(x, t, nodes=50), u100)
    assert np.all(np.isfinite(u100)) and np.max(np.abs(u100)) <= 1.0 + 1e-12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"viscosity": 0.0}, "viscosity"),
        ({"viscosity": -1.0}, "viscosity"),
        ({"nodes": 400}, "nodes"),
        ({"nodes": 1}, "nodes"),
        ({"t": -0.1}, "t"),
        ({"x": np.nan}, "finite"),
        ({"x": np.array([])}, "empty"),
    ],
)
def test_cole_hopf_refuses_bad_input(kwargs, match):
    args = {"x": 0.3, "t": 0.5} | kwargs
    with pytest.raises(ValueError, match=match):
        burgers_cole_hopf(**args)


def _laplacian(f, x, y, h=1e-3):
    return (f(x + h, y) + f(x - h, y) + f(x, y + h) + f(x, y - h) - 4 * f(x, y)) / h**2


@pytest.mark.parametrize("order", [1, 2, 5])
def test_disk_solution_is_harmonic_with_cos_k_theta_on_the_circle(order):
    rng = np.random.default_rng(order)
    r, theta = np.sqrt(rng.uniform(0, 0.8, 50)), rng.uniform(0, 2 * np.pi, 50)
    f = lambda x, y: laplace_disk_solution(x, y, order)  # noqa: E731
    assert np.max(np.abs(_laplacian(f, r * np.cos(theta), r * np.sin(theta)))) < 1e-4 * order**2
    np.testing.assert_allclose(f(np.cos(theta), np.sin(theta)), np.cos(order * theta), atol=1e-12)
    with pytest.raises(ValueError, match="order"):
        laplace_disk_solution(0.1, 0.2, 0)


def test_square_solution_is_harmonic_with_its_boundary_values():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0.05, 0.95, (2, 50))
    assert np.max(np.abs(_laplacian(laplace_square_solution, x, y))) < 1e-4
    s = np.linspace(0, 1, 21)
    np.testing.assert_allclose(laplace_square_solution(s, 1.0), np.sin(np.pi * s), atol=1e-12)
    for side in (
        laplace_square_solution(s, 0.0),
        laplace_square_solution(0.0, s),
        laplace_square_solution(1.0, s),
    ):
        assert np.max(np.abs(side)) < 1e-12


def test_raissi_condition_points_carry_the_initial_and_wall_values():
    from physbias.pde import raissi_condition_points

    points, values = raissi_condition_points(np.random.default_rng(0), 100)
    assert points.shape == (100, 2) and values.shape == (100,)
    assert len(np.unique(points, axis=0)) == 100  # drawn without replacement
    initial, wall = points[:, 1] == 0, np.abs(points[:, 0]) == 1
    assert np.all(initial | wall) and initial.any() and wall.any()
    np.testing.assert_allclose(values[initial], -np.sin(np.pi * points[initial, 0]), atol=1e-6)
    assert np.all(values[wall & ~initial] == 0)
    assert len(raissi_condition_points(np.random.default_rng(0), 10_000)[0]) == 456
