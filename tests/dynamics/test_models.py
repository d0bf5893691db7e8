"""Learned dynamics models reproduce the true vector field when given the true H or L."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import DeepLagrangianNN, HamiltonianNN, LagrangianNN, NeuralODE, SecondOrderNODE
from physbias.systems import ChainPendulum, Pendulum
from physbias.systems.mechanics import euler_lagrange_acceleration


def test_lnn_with_true_pendulum_lagrangian_gives_true_acceleration(getkey):
    p = Pendulum()
    lnn = LagrangianNN(2, key=getkey(), lagrangian=lambda z: p.lagrangian(z[:1], z[1:]))
    for q, qdot in [(0.7, -0.3), (-1.2, 0.8), (0.05, 2.0)]:
        acc = lnn(jnp.array([q, qdot]))
        np.testing.assert_allclose(acc, [qdot, -9.81 * np.sin(q)], rtol=1e-6)


def test_lnn_with_true_double_pendulum_lagrangian_float64(getkey):
    with jax.enable_x64(True):
        dp = ChainPendulum()
        lnn = LagrangianNN(4, key=getkey(), lagrangian=lambda z: dp.lagrangian(z[:2], z[2:]))
        z = jnp.array([0.3, -0.5, 0.2, 0.1], dtype=jnp.float64)
        np.testing.assert_allclose(lnn(z), dp.field(z), rtol=1e-12)


def test_hnn_with_true_hamiltonian_gives_true_field(getkey):
    with jax.enable_x64(True):
        dp = ChainPendulum()
        hnn = HamiltonianNN(4, key=getkey(), hamiltonian=dp.hamiltonian)
        x = dp.to_canonical(jnp.array([0.3, -0.5, 0.2, 0.1], dtype=jnp.float64))
        np.testing.assert_allclose(hnn(x), dp.canonical_field(x), rtol=1e-12)
    # Harmonic oscillator H = (q^2 + p^2) / 2 in float32: (qdot, pdot) = (p, -q)
    hnn = HamiltonianNN(2, key=getkey(), hamiltonian=lambda x: 0.5 * jnp.sum(x**2))
    np.testing.assert_allclose(hnn(jnp.array([0.3, -0.7])), [-0.7, -0.3], rtol=1e-6)


def test_random_hnn_conserves_its_own_hamiltonian(getkey):
    hnn = HamiltonianNN(4, 32, 2, key=getkey())
    x = jax.random.normal(getkey(), (16, 4))
    # dH/dt = grad H . J grad H = 0 exactly (up to rounding)
    dhdt = jax.jit(jax.vmap(lambda x: jnp.dot(jax.grad(hnn.hamiltonian)(x), hnn(x))))(x)
    scale = jax.jit(jax.vmap(lambda x: jnp.sum(jax.grad(hnn.hamiltonian)(x) ** 2)))(x)
    assert float(jnp.max(jnp.abs(dhdt) / scale)) < 1e-6


def test_second_order_models_copy_the_velocity(getkey):
    z = jnp.array([0.1, 0.2, 0.3, 0.4])
    for model in (
        SecondOrderNODE(4, 16, key=getkey(), damping=True),
        LagrangianNN(4, 16, key=getkey(), regularization=1e-3),
    ):
        np.testing.assert_allclose(eqx.filter_jit(lambda m, z: m(z))(model, z)[:2], z[2:])
    node2 = SecondOrderNODE(4, 16, key=getkey(), damping=True)
    assert bool(jnp.all(node2.damping() > 0))
    assert NeuralODE(3, 16, key=getkey())(jnp.ones(3)).shape == (3,)


def test_singular_lagrangian_gives_nonfinite_without_regularization(getkey):
    singular = lambda z: z[0] * z[1]  # linear in qdot: Hessian in qdot is 0
    z = jnp.array([0.1, 0.2])
    assert not bool(jnp.all(jnp.isfinite(LagrangianNN(2, key=getkey(), lagrangian=singular)(z))))
    regular = LagrangianNN(2, key=getkey(), lagrangian=lambda z: singular(z) + 0.5 * z[1] ** 2)
    assert bool(jnp.all(jnp.isfinite(regular(z))))


@pytest.mark.parametrize("cls", [SecondOrderNODE, HamiltonianNN, LagrangianNN])
def test_odd_state_size_is_rejected(cls, getkey):
    with pytest.raises(ValueError, match="even size"):
        cls(3, key=getkey())


def test_models_are_modules_usable_under_jit_and_grad(getkey):
    model = HamiltonianNN(2, 16, key=getkey())
    x = jnp.array([0.2, 0.1])
    loss = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(x) ** 2)))
    grads = loss(model)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))


def test_delan_acceleration_solves_the_structured_euler_lagrange_equation(getkey):
    # M(q) qddot = -grad V - Mdot qdot + grad_q (qdot' M qdot) / 2, with M symmetric positive definite.
    with jax.enable_x64(True):
        model = DeepLagrangianNN(6, 32, 2, key=getkey())
        model = jax.tree_util.tree_map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, model
        )
        q, qdot = jax.random.normal(getkey(), (2, 3), dtype=jnp.float64)

        @jax.jit
        def check(q, qdot):
            mass = model.mass_matrix(q)
            mdot = jax.jvp(model.mass_matrix, (q,), (qdot,))[1]
            grad_quad = jax.grad(lambda q: 0.5 * qdot @ model.mass_matrix(q) @ qdot)(q)
            rhs = -jax.grad(model.potential_net)(q) - mdot @ qdot + grad_quad
            generic = euler_lagrange_acceleration(model.lagrangian, q, qdot)  # Hessians of L by AD
            return mass, model(jnp.concatenate([q, qdot]))[3:], jnp.linalg.solve(mass, rhs), generic

        mass, acc, expected, generic = check(q, qdot)
        np.testing.assert_allclose(acc, generic, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(mass, mass.T, atol=1e-14)
        assert float(jnp.min(jnp.linalg.eigvalsh(mass))) >= model.eps * (1 - 1e-9)
        np.testing.assert_allclose(acc, expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="eps"):
        DeepLagrangianNN(4, key=getkey(), eps=0.0)
