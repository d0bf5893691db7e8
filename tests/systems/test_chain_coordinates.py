"""The four coordinate systems of a chain pendulum and the maps between them
(physbias.systems.chain_coordinates), in float64.

References written out here for a double pendulum (absolute angles from the downward vertical):
  x_k = sum_{i<=k} l_i (sin t_i, -cos t_i),    xdot_k = sum_{i<=k} l_i tdot_i (cos t_i, sin t_i),
  p_cartesian = m_k xdot_k,
  p_angles = M(t) tdot with M = [[(m1 + m2) l1^2, m2 l1 l2 cos(t1 - t2)], [.., m2 l2^2]];
the rod constraints |x_1| = l_1, |x_2 - x_1| = l_2 (and their time derivatives); and a central
finite difference of the coordinate map along the angle field, (C(s + h f) - C(s - h f)) / 2h with
h = 1e-4 (error ~h^2 ~ 1e-8, below the float32 rounding of the stored dataset).
Tolerances: 1e-10 in float64 (measured ~1e-15); 1e-5 relative for float32-stored data.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.systems import (
    CHAIN_COORDINATES,
    CartesianChainPendulum,
    ChainPendulum,
    chain_derivative_dataset,
    from_angle_velocity,
    to_cartesian_velocity,
)

CHAINS = {
    "unit": ((1.0, 1.0), (1.0, 1.0)),
    "uneven": ((0.5, 2.0), (1.2, 0.7)),  # masses, lengths: mix-ups of the two show here
}


def make_chain(name):
    masses, lengths = CHAINS[name]
    return CartesianChainPendulum(ChainPendulum(masses, lengths))


def angle_states(seed, shape=(6,)):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-2.5, 2.5, (*shape, 2))
    thetadot = rng.normal(0.0, 1.5, (*shape, 2))
    return np.concatenate([theta, thetadot], axis=-1)


def cartesian_by_hand(states, lengths):
    """(t, tdot) -> (x_1, y_1, x_2, y_2, xdot_1, ydot_1, xdot_2, ydot_2)."""
    t, td = states[..., :2], states[..., 2:]
    ell = np.asarray(lengths)
    # step[..., i, :] = l_i (sin t_i, -cos t_i)
    step = np.stack([ell * np.sin(t), -ell * np.cos(t)], axis=-1)
    vel = np.stack([ell * td * np.cos(t), ell * td * np.sin(t)], axis=-1)
    x, v = np.cumsum(step, axis=-2), np.cumsum(vel, axis=-2)
    return np.concatenate([x.reshape(*x.shape[:-2], 4), v.reshape(*v.shape[:-2], 4)], axis=-1)


def angle_momenta_by_hand(states, masses, lengths):
    (m1, m2), (l1, l2) = masses, lengths
    t1, t2, w1, w2 = np.moveaxis(states, -1, 0)
    c = np.cos(t1 - t2)
    p1 = (m1 + m2) * l1**2 * w1 + m2 * l1 * l2 * c * w2
    p2 = m2 * l1 * l2 * c * w1 + m2 * l2**2 * w2
    return np.stack([t1, t2, p1, p2], axis=-1)


@pytest.mark.parametrize("name", CHAINS)
def test_each_system_round_trips_to_the_direct_cartesian_map(name):
    chain = make_chain(name)
    masses, lengths = CHAINS[name]
    s = angle_states(0, (2, 3))  # leading axes are kept
    direct = cartesian_by_hand(s, lengths)
    size = {"angles-velocity": 4, "angles-canonical": 4, "cartesian-canonical": 8, "cartesian-velocity": 8}
    with jax.enable_x64(True):
        for c in CHAIN_COORDINATES:
            there = from_angle_velocity(chain, jnp.asarray(s), c)
            assert there.shape == (2, 3, size[c]) and there.dtype == jnp.float64
            back = np.asarray(to_cartesian_velocity(chain, there, c))
            np.testing.assert_allclose(back, direct, rtol=0, atol=1e-10, err_msg=c)
            # the intermediate coordinates themselves, by hand
            expected = {
                "angles-velocity": s,
                "angles-canonical": angle_momenta_by_hand(s, masses, lengths),
                "cartesian-velocity": direct,
                "cartesian-canonical": np.concatenate(
                    [direct[..., :4], np.repeat(masses, 2) * direct[..., 4:]], axis=-1
                ),
            }[c]
            np.testing.assert_allclose(np.asarray(there), expected, rtol=0, atol=1e-10, err_msg=c)


@pytest.mark.parametrize("name", CHAINS)
def test_cartesian_states_satisfy_the_rod_constraints(name):
    chain = make_chain(name)
    _, (l1, l2) = CHAINS[name]
    with jax.enable_x64(True):
        z = np.asarray(from_angle_velocity(chain, jnp.asarray(angle_states(1)), "cartesian-velocity"))
    x1, x2, v1, v2 = z[:, 0:2], z[:, 2:4], z[:, 4:6], z[:, 6:8]
    np.testing.assert_allclose(np.linalg.norm(x1, axis=-1), l1, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(x2 - x1, axis=-1), l2, rtol=0, atol=1e-12)
    # d/dt |x|^2 = 0: velocities are tangent to the constraint manifold
    np.testing.assert_allclose(np.sum(x1 * v1, axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.sum((x2 - x1) * (v2 - v1), axis=-1), 0.0, atol=1e-12)
    # not trivially so: the rods point in many directions
    assert np.ptp(x1[:, 0]) > 1.0


@pytest.mark.parametrize("coordinates", CHAIN_COORDINATES)
def test_chain_derivative_dataset_is_a_finite_difference_along_the_angle_field(coordinates):
    chain = make_chain("uneven")
    trajectories = angle_states(2, (2, 3))  # any (n, T, 2N) array of angle states
    data = chain_derivative_dataset(chain, trajectories, coordinates)
    flat = trajectories.reshape(-1, 4)
    h = 1e-4
    with jax.enable_x64(True):
        s = jnp.asarray(flat)
        f = jax.jit(jax.vmap(chain.angles.field))(s)
        state = np.asarray(from_angle_velocity(chain, s, coordinates))
        fd = np.asarray(
            (
                from_angle_velocity(chain, s + h * f, coordinates)
                - from_angle_velocity(chain, s - h * f, coordinates)
            )
            / (2 * h)
        )
    assert data.inputs.dtype == np.float32 and data.targets.shape == fd.shape == (6, state.shape[-1])
    np.testing.assert_allclose(data.inputs, state, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(data.targets, fd, rtol=1e-5, atol=1e-5 * np.max(np.abs(fd)))
    if coordinates.endswith("velocity"):  # d(position)/dt is the velocity half of the state itself
        half = state.shape[-1] // 2
        np.testing.assert_allclose(data.targets[:, :half], state[:, half:], rtol=1e-5, atol=1e-5)


def test_unknown_coordinates_raise():
    chain = make_chain("unit")
    s = jnp.asarray(angle_states(3), jnp.float32)
    for bad in ("cartesian", "angles", "Cartesian-Velocity"):
        with pytest.raises(ValueError, match="`coordinates`"):
            from_angle_velocity(chain, s, bad)
        with pytest.raises(ValueError, match="`coordinates`"):
            to_cartesian_velocity(chain, s, bad)
        with pytest.raises(ValueError, match="`coordinates`"):
            chain_derivative_dataset(chain, np.asarray(s), bad)
