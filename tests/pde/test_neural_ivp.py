"""Neural IVP (physbias.pde.neural_ivp).

References: the matrix-free M v against the dense Jacobian (jax.jacfwd); the preconditioned CG
solve against a dense solve of (M + mu I) theta_dot = F; the evolved heat equation against its
exact solution exp(-kappa pi^2 t / 4) sin(pi (x + 1) / 2).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.pde import (
    DirichletField,
    NeuralIVPSettings,
    flatten_field,
    get_ivp,
    gram_operator,
    neural_ivp,
    parameter_velocity,
    project_field,
)


def test_dirichlet_field_vanishes_on_the_walls_for_random_networks():
    s = jnp.linspace(-1, 1, 21)
    for seed in range(3):
        u = DirichletField(2, jax.random.key(seed), width=16, depth=2)
        for wall in (jnp.stack([s, -jnp.ones_like(s)], 1), jnp.stack([jnp.ones_like(s), s], 1)):
            assert float(jnp.max(jnp.abs(jax.vmap(u)(wall)))) < 1e-7
        assert float(jnp.max(jnp.abs(jax.vmap(u)(0.5 * jnp.stack([s, s], 1))))) > 1e-4


def test_projection_fits_a_function_of_the_class():
    ivp = get_ivp("heat-2d")  # sin modes: zero on the walls, as the ansatz
    u, error = project_field(DirichletField(2, jax.random.key(0), 32, 2), ivp.initial, jax.random.key(1))
    assert float(error) < 1e-2


def test_gram_product_matches_the_dense_jacobian():
    with jax.enable_x64(True):
        field = DirichletField(1, jax.random.key(0), width=8, depth=1, octaves=3, dtype=jnp.float64)
        theta, rebuild = flatten_field(field)
        points = jax.random.uniform(jax.random.key(1), (64, 1), jnp.float64, -1.0, 1.0)
        values, _, matvec, transpose = gram_operator(rebuild, theta, points)
        jac = jax.jacfwd(lambda th: jax.vmap(rebuild(th))(points))(theta)  # (N, P)
        v = jax.random.normal(jax.random.key(2), theta.shape, jnp.float64)
        np.testing.assert_allclose(matvec(v), jac.T @ (jac @ v) / 64, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(values, jax.vmap(field)(points), rtol=1e-12)


@pytest.mark.slow  # a training run of 20-40 s on 2 cores: `pytest -m slow`
def test_cg_velocity_matches_the_dense_solve():
    ivp = get_ivp("heat-1d")
    with jax.enable_x64(True):
        field = DirichletField(1, jax.random.key(0), width=16, depth=2, dtype=jnp.float64)
        field, _ = project_field(field, ivp.initial, jax.random.key(1), steps=300)
        theta, rebuild = flatten_field(field)
        points = jax.random.uniform(jax.random.key(2), (512, 1), jnp.float64, -1.0, 1.0)
        velocity, stats = parameter_velocity(
            rebuild, theta, ivp.rhs, points, jax.random.key(3), damping=1e-6, rank=32, cg_rtol=1e-10
        )
        jac = np.asarray(jax.jacfwd(lambda th: jax.vmap(rebuild(th))(points))(theta))
        target = np.asarray(jax.vmap(lambda x: ivp.rhs(field, x))(points))
        m = jac.T @ jac / 512
        dense = np.linalg.solve(m + float(stats.damping) * np.eye(len(theta)), jac.T @ target / 512)
        assert np.linalg.norm(velocity - dense) < 1e-5 * np.linalg.norm(dense)
        assert 0 < int(stats.cg_steps) < 100
        np.testing.assert_allclose(float(stats.top_eigenvalue), np.linalg.eigvalsh(m)[-1], rtol=1e-6)


@pytest.mark.slow  # a training run of 20-40 s on 2 cores: `pytest -m slow`
def test_evolved_heat_equation_tracks_the_exact_solution():
    ivp = get_ivp("heat-1d")
    with jax.enable_x64(True):
        new = lambda key: DirichletField(1, key, width=16, depth=2, dtype=jnp.float64)  # noqa: E731
        settings = NeuralIVPSettings(points=512, rank=16)
        result = neural_ivp(
            ivp, new(jax.random.key(0)), jax.random.key(1), [0.1, 0.2], settings, fit_steps=1500
        )
        x = jnp.linspace(-1, 1, 201, dtype=jnp.float64)[:, None]
        assert not result.failed and len(result.fields) == 3
        for t, u in zip(result.times, result.fields, strict=True):
            exact = jax.vmap(lambda xi, t=t: ivp.exact(xi, t))(x)
            error = float(jnp.linalg.norm(jax.vmap(u)(x) - exact) / jnp.linalg.norm(exact))
            assert error < 5e-3, (t, error)
        # The solution decayed as the exact one did (by exp(-0.1 pi^2 0.2 / 4) = 0.952).
        peak = float(result.fields[-1](jnp.zeros(1, jnp.float64)))
        assert abs(peak - np.exp(-0.1 * np.pi**2 * 0.2 / 4)) < 5e-3


def test_bad_arguments_are_refused_before_any_work():
    ivp = get_ivp("heat-1d")
    field = DirichletField(1, jax.random.key(0), width=4, depth=1)
    with pytest.raises(ValueError, match="save_times"):
        neural_ivp(ivp, field, jax.random.key(0), [0.2, 0.1])
    with pytest.raises(ValueError, match="save_times"):
        neural_ivp(ivp, field, jax.random.key(0), [0.0, jnp.nan])
    with pytest.raises(ValueError, match="new_field"):
        neural_ivp(ivp, field, jax.random.key(0), [0.1], restart_cg_steps=10)
    with pytest.raises(ValueError, match="points"):
        NeuralIVPSettings(points=0)
    with pytest.raises(ValueError, match="damping"):
        NeuralIVPSettings(damping=-1.0)
    with pytest.raises(ValueError, match="width"):
        DirichletField(1, jax.random.key(0), width=0)
