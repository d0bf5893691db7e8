"""Constrained dynamics in Cartesian coordinates: same physics as angles, constraints kept."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from physbias.systems import (
    CartesianChainPendulum,
    ChainPendulum,
    DistanceConstraints,
    constraint_violation,
    sample_initial_states,
    simulate,
)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_cartesian_field_equals_angle_dynamics_float64(n):
    with jax.enable_x64(True):
        angles = ChainPendulum((1.0, 2.0, 1.5, 1.0, 0.5)[:n], (1.0, 0.8, 1.2, 1.0, 0.7)[:n])
        cart = CartesianChainPendulum(angles)
        s = angles.sample_initial(jax.random.key(n))

        @jax.jit
        def both(s):
            z = cart.from_angles(s)
            mapped = jax.jvp(cart.from_angles, (s,), (angles.field(s),))[1]
            return cart.field(z), mapped, cart.hamiltonian(z), angles.energy(s), cart.constraints(z[: 2 * n])

        field, mapped, h, e, phi = both(s)
        np.testing.assert_allclose(field, mapped, atol=1e-11)
        assert float(h) == pytest.approx(float(e), rel=1e-12)
        np.testing.assert_allclose(phi, 0.0, atol=1e-12)


def test_chnn_with_true_potential_and_masses_is_the_true_field():
    with jax.enable_x64(True):
        angles = ChainPendulum((1.0, 2.0, 1.5), (1.0, 0.8, 1.2))
        cart = CartesianChainPendulum(angles)
        g = angles.gravity
        m = jnp.asarray(angles.masses)
        chnn = ConstrainedHamiltonianNN(
            cart.constraints,
            key=jax.random.key(0),
            masses=angles.masses,
            potential=lambda x: g * jnp.sum(m * x.reshape(-1, 2)[:, 1]),
        )
        z = cart.sample_initial(jax.random.key(1))
        np.testing.assert_allclose(
            eqx.filter_jit(lambda m, z: m(z))(chnn, z), jax.jit(cart.field)(z), atol=1e-11
        )


def test_clnn_with_true_potential_is_the_constrained_euler_lagrange_field():
    # The CLNN acceleration in (x, xdot) must equal the true chain dynamics mapped from angles.
    with jax.enable_x64(True):
        angles = ChainPendulum((1.0, 2.0, 1.5), (1.0, 0.8, 1.2))
        cart = CartesianChainPendulum(angles)
        g = angles.gravity
        m = jnp.asarray(angles.masses)
        clnn = ConstrainedLagrangianNN(
            cart.constraints,
            key=jax.random.key(0),
            masses=angles.masses,
            potential=lambda x: g * jnp.sum(m * x.reshape(-1, 2)[:, 1]),
        )
        s = angles.sample_initial(jax.random.key(1))

        @jax.jit
        def both(s):
            z = cart.to_velocity(cart.from_angles(s))
            mapped = jax.jvp(lambda s: cart.to_velocity(cart.from_angles(s)), (s,), (angles.field(s),))[1]
            return clnn(z), cart.velocity_field(z), mapped

        learned, true, mapped = both(s)
        np.testing.assert_allclose(learned, mapped, atol=1e-11)
        np.testing.assert_allclose(true, mapped, atol=1e-11)


def test_random_clnn_keeps_second_derivative_of_constraints_zero():
    # d^2/dt^2 Phi = DPhi xddot + D^2Phi[xdot, xdot] = 0 for any learned potential and masses.
    constraints = DistanceConstraints.chain((1.0, 1.0))
    clnn = ConstrainedLagrangianNN(constraints, 32, 2, key=jax.random.key(3), masses=(0.5, 2.0))
    cart = CartesianChainPendulum()
    z = cart.to_velocity(cart.sample_initial(jax.random.key(4)))
    zdot = eqx.filter_jit(lambda m, z: m(z))(clnn, z)
    x, v, a = z[:4], z[4:], zdot[4:]
    second = jax.jvp(lambda x: jax.jvp(constraints, (x,), (v,))[1], (x,), (v,))[1]
    total = jax.jvp(constraints, (x,), (a,))[1] + second
    assert float(jnp.max(jnp.abs(total))) < 1e-4
    with pytest.raises(ValueError, match="masses"):
        ConstrainedLagrangianNN(constraints, key=jax.random.key(0), masses=(1.0, -1.0))


def test_simulated_cartesian_chain_keeps_constraints_and_energy():
    cart = CartesianChainPendulum(ChainPendulum((1.0,) * 3, (1.0,) * 3))
    z0 = sample_initial_states(cart, jax.random.key(2), 2)
    traj = simulate(cart, z0, 0.03, 100)
    with jax.enable_x64(True):
        viol = np.asarray(constraint_violation(cart.constraints, jnp.asarray(traj)))
        energy = np.asarray(jax.vmap(jax.vmap(cart.hamiltonian))(jnp.asarray(traj)))
    assert viol.max() < 1e-7
    assert np.max(np.abs(energy - energy[:, :1])) < 1e-7 * np.max(np.abs(energy))


def test_random_chnn_keeps_its_state_on_the_constraint_manifold():
    # d/dt Phi(x) = DPhi xdot must vanish for any learned H: the multipliers enforce it.
    constraints = DistanceConstraints.chain((1.0, 1.0))
    chnn = ConstrainedHamiltonianNN(constraints, 32, 2, key=jax.random.key(3))
    z = CartesianChainPendulum().sample_initial(jax.random.key(4))
    zdot = eqx.filter_jit(lambda m, z: m(z))(chnn, z)
    dphi = jax.jvp(constraints, (z[:4],), (zdot[:4],))[1]
    assert float(jnp.max(jnp.abs(dphi))) < 1e-5


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DistanceConstraints(2, ((0, 0, 1.0),), ()), "bad edge"),
        (lambda: DistanceConstraints(2, ((0, 1, -1.0),), ()), "positive"),
        (lambda: DistanceConstraints(2, (), ()), "at least one"),
        (lambda: DistanceConstraints(2, (), ((0, (0.0,), 1.0),)), "bad anchor"),
    ],
)
def test_bad_constraints(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_projection_restores_position_and_velocity_constraints():
    with jax.enable_x64(True):
        cart = CartesianChainPendulum(ChainPendulum((1.0, 2.0, 1.0), (1.0, 0.5, 1.5)))
        z = cart.sample_initial(jax.random.key(5))
        noisy = z + 1e-2 * jax.random.normal(jax.random.key(6), z.shape)
        fixed = jax.jit(cart.project)(noisy)
        q, p = fixed[:6], fixed[6:]
        velocity = p / jnp.repeat(jnp.asarray(cart.angles.masses), 2)
        assert float(jnp.max(jnp.abs(cart.constraints(q)))) < 1e-12
        assert float(jnp.max(jnp.abs(jax.jvp(cart.constraints, (q,), (velocity,))[1]))) < 1e-12
        assert float(jnp.linalg.norm(fixed - z)) < 0.1  # stays near the state it came from


@pytest.mark.slow  # two 14 s long-horizon simulations: `pytest -m slow`
def test_chaos_floor_is_small_for_a_pendulum_and_large_for_a_chaotic_chain():
    from physbias.metrics import chaos_floor
    from physbias.systems import Pendulum

    key = jax.random.key(7)
    pend = Pendulum()
    floor_pend = chaos_floor(pend, sample_initial_states(pend, key, 2), 0.03, 100, key=key)
    assert np.all(floor_pend < 1e-3) and np.all(floor_pend > 1e-7)
    chain = CartesianChainPendulum(ChainPendulum((1.0,) * 3, (1.0,) * 3, max_angle=2.0))
    floor_chain = chaos_floor(chain, sample_initial_states(chain, key, 2), 0.03, 200, key=key)
    assert np.all(np.isfinite(floor_chain)) and np.max(floor_chain) > np.max(floor_pend)


def _dense_hamiltonian_field(hamiltonian, constraints, velocity, z):
    # The module docstring's formula with one 2k x 2k LU solve, the reference for the block solve.
    n = z.shape[0] // 2
    j = lambda m: jnp.concatenate([m[n:], -m[:n]])
    j_grad = j(jax.grad(hamiltonian)(z))
    psi = lambda z: jnp.concatenate(
        [constraints(z[:n]), jax.jvp(constraints, (z[:n],), (velocity(z[:n], z[n:]),))[1]]
    )
    dpsi = jax.jacfwd(psi)(z)
    return j_grad - j(dpsi.T) @ jnp.linalg.solve(dpsi @ j(dpsi.T), dpsi @ j_grad)


def _dense_lagrangian_field(lagrangian, constraints, z):
    # Hessian of L and two LU solves, the reference for the diagonal-mass path.
    n = z.shape[0] // 2
    q, v = z[:n], z[n:]
    mass = jax.hessian(lagrangian, argnums=1)(q, v)
    force = jax.grad(lagrangian, argnums=0)(q, v) - jax.jacfwd(jax.grad(lagrangian, argnums=1))(q, v) @ v
    jac = jax.jacfwd(constraints)(q)
    gamma = jax.jvp(lambda q: jax.jvp(constraints, (q,), (v,))[1], (q,), (v,))[1]
    free, m_inv_jac_t = jnp.linalg.solve(mass, force), jnp.linalg.solve(mass, jac.T)
    multipliers = -jnp.linalg.solve(jac @ m_inv_jac_t, gamma + jac @ free)
    return jnp.concatenate([v, free + m_inv_jac_t @ multipliers])


@pytest.mark.parametrize("links", [2, 3, 5])
def test_random_constrained_models_equal_the_dense_formulas_on_and_off_the_manifold(links):
    # The block (CHNN) and diagonal-mass (CLNN) solves are exact rewrites: any potential, any state.
    with jax.enable_x64(True):
        constraints = DistanceConstraints.chain((1.0, 0.7, 1.3, 0.9, 1.1)[:links])
        masses = (1.0, 0.5, 2.0, 1.5, 0.8)[:links]
        kwargs = dict(key=jax.random.key(links), masses=masses)
        chnn = ConstrainedHamiltonianNN(constraints, 16, 2, **kwargs)
        clnn = ConstrainedLagrangianNN(constraints, 16, 2, **kwargs)
        cart = CartesianChainPendulum(ChainPendulum((1.0, 0.7, 1.3, 0.9, 1.1)[:links], masses))
        on = cart.sample_initial(jax.random.key(7))
        off = on + 0.05 * jax.random.normal(jax.random.key(8), on.shape)
        for z in (on, off):
            np.testing.assert_allclose(
                chnn(z), _dense_hamiltonian_field(chnn.hamiltonian, constraints, chnn.velocity, z), atol=1e-10
            )
            np.testing.assert_allclose(
                clnn(z), _dense_lagrangian_field(clnn.lagrangian, constraints, z), atol=1e-10
            )


def test_distance_constraint_jacobians_in_closed_form_equal_autodiff():
    # Edges and two anchors in 3D: DPhi and d/dq (DPhi v) against forward-mode autodiff.
    c = DistanceConstraints(
        3, ((0, 1, 1.0), (2, 1, 0.5)), ((0, (0.1, 0.2, 0.3), 1.2), (2, (1.0, 0.0, -1.0), 0.7)), 3
    )
    with jax.enable_x64(True):
        q = jax.random.normal(jax.random.key(0), (9,), jnp.float64)
        v = jax.random.normal(jax.random.key(1), (9,), jnp.float64)
        np.testing.assert_allclose(c.jacobian(q), jax.jacfwd(c)(q), rtol=1e-14)
        second = jax.jacfwd(lambda q: jax.jvp(c, (q,), (v,))[1])(q)
        np.testing.assert_allclose(c.jacobian_along(c.relative(v)), second, rtol=1e-14)
        np.testing.assert_allclose(
            jnp.sum(c.differences(q) ** 2, axis=-1) - c(q), [1.0, 0.25, 1.44, 0.49], rtol=1e-14
        )
