"""The PINN loss: soft and hard conditions, and training by Adam then L-BFGS."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias import fit, fit_lbfgs
from physbias.pde import Box, HardConstraintField, heat_residual, laplace_residual, pinn_loss


def test_soft_loss_is_residual_plus_condition_misfit():
    u = lambda z: z[0] ** 2 + z[1] ** 2  # noqa: E731  (Laplacian 4 everywhere)
    z = jnp.array([[0.1, 0.2], [0.3, -0.4]])
    cond = (jnp.array([[1.0, 0.0]]), jnp.array([0.5]))
    loss = pinn_loss(lambda f, p: laplace_residual(f, p), cond, condition_weight=2.0)
    assert float(loss(u, (z,), None)) == pytest.approx(16.0 + 2.0 * 0.25, rel=1e-6)
    with pytest.raises(ValueError, match="conditions"):
        pinn_loss(laplace_residual, (jnp.ones((3, 2)), jnp.ones(4)))
    with pytest.raises(ValueError, match="finite"):
        pinn_loss(laplace_residual, (jnp.full((3, 2), jnp.nan), jnp.ones(3)))


@pytest.mark.slow  # a training run of 20-40 s on 2 cores: `pytest -m slow`
def test_adam_then_lbfgs_solves_the_heat_equation_with_a_hard_ansatz():
    # u_t = 0.1 u_xx on [0, 1] x [0, 1], u(0, x) = sin(pi x), u = 0 at x = 0, 1:
    # exact u = sin(pi x) exp(-0.1 pi^2 t).
    box = Box((0.0, 0.0), (1.0, 1.0), ("x", "t"))
    z = box.latin_hypercube(jax.random.key(0), 256)
    net = eqx.nn.MLP(2, "scalar", 16, 2, activation=jnp.tanh, key=jax.random.key(1))
    u = HardConstraintField(net, lambda p: jnp.sin(jnp.pi * p[0]), lambda p: p[1] * p[0] * (1 - p[0]))
    loss = pinn_loss(lambda f, p: heat_residual(f, p, 0.1))
    adam = fit(u, loss, (z,), key=jax.random.key(2), epochs=300, optimizer=optax.adam(3e-3), progress=False)
    lbfgs = fit_lbfgs(adam.model, loss, (z,), key=jax.random.key(3), steps=300, progress=False)
    assert lbfgs.losses[-1] < 0.1 * adam.final_loss and not lbfgs.diverged
    test = box.uniform(jax.random.key(4), 500)
    exact = jnp.sin(jnp.pi * test[:, 0]) * jnp.exp(-0.1 * jnp.pi**2 * test[:, 1])
    error = jnp.linalg.norm(jax.vmap(lbfgs.model)(test) - exact) / jnp.linalg.norm(exact)
    assert float(error) < 1e-2


def test_lbfgs_stops_on_a_non_finite_loss_and_keeps_finite_parameters():
    model = eqx.nn.Linear(1, 1, key=jax.random.key(0))
    x = jnp.linspace(-1, 1, 8)[:, None]

    def loss(m, batch, key):  # NaN once the weight passes 0.5 (the line search may still probe there)
        w = m.weight[0, 0]
        return (w - 3.0) ** 2 + jnp.sum(batch[0]) * jnp.where(w < 0.5, 0.0, jnp.nan)

    nan_model = eqx.tree_at(lambda m: m.weight, model, jnp.full((1, 1), 1.0))
    with pytest.warns(RuntimeWarning, match="L-BFGS stopped"):
        result = fit_lbfgs(nan_model, loss, (x,), key=jax.random.key(1), steps=20, progress=False)
    assert result.diverged and np.all(np.isfinite(np.asarray(result.model.weight)))
    # from a finite start the line search stays where the loss is finite
    start = eqx.tree_at(lambda m: m.weight, model, jnp.zeros((1, 1)))
    good = fit_lbfgs(start, loss, (x,), key=jax.random.key(1), steps=20, progress=False)
    assert np.isfinite(good.losses[-1]) and float(good.model.weight[0, 0]) < 0.5
    with pytest.raises(ValueError, match="steps"):
        fit_lbfgs(model, loss, (x,), key=jax.random.key(1), steps=0)


def test_residual_adaptive_points_go_where_the_residual_is_large():
    from physbias.pde import Box, laplace_residual, residual_adaptive_points

    # u = exp(-50 |z - c|^2) has its Laplacian concentrated around c = (0.5, 0.5).
    c = jnp.array([0.5, 0.5])
    u = lambda z: jnp.exp(-50.0 * jnp.sum((z - c) ** 2))  # noqa: E731
    box = Box((0.0, 0.0), (1.0, 1.0))
    points = residual_adaptive_points(jax.random.key(0), u, laplace_residual, box.uniform, 50, 5000)
    assert points.shape == (50, 2)
    assert float(jnp.max(jnp.linalg.norm(points - c[None], axis=1))) < 0.3
    with pytest.raises(ValueError, match="count"):
        residual_adaptive_points(jax.random.key(0), u, laplace_residual, box.uniform, 10, 5)
