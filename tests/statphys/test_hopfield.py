"""Hopfield networks (physbias.statphys.hopfield).

References: Hebbian storage below capacity (patterns are fixed points), the Lyapunov property of
asynchronous updates (the energy never rises), the modern update's retrieval at large beta and its
energy decrease (Ramsauer et al. 2021).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.statphys import HopfieldNetwork, ModernHopfield, corrupt, hebbian_couplings, overlap


def _patterns(key, count, size):
    return jnp.where(jax.random.bernoulli(key, 0.5, (count, size)), 1.0, -1.0)


def test_hebbian_couplings_are_the_outer_product_sum_without_diagonal():
    xi = np.array([[1, -1, 1], [1, 1, -1]], np.float32)
    expected = np.outer(xi[0], xi[0]) + np.outer(xi[1], xi[1])
    np.fill_diagonal(expected, 0)
    np.testing.assert_array_equal(hebbian_couplings(xi), expected)
    # E(s) = -1/2 s^T J s is the Ising energy -sum_{i<j} J_ij s_i s_j.
    net, s = HopfieldNetwork(jnp.asarray(expected)), jnp.array([1.0, -1.0, -1.0])
    pairs = sum(expected[i, j] * s[i] * s[j] for i in range(3) for j in range(i + 1, 3))
    assert float(net.energy(s)) == pytest.approx(-float(pairs))


def test_stored_patterns_are_fixed_points_at_low_load():
    xi = _patterns(jax.random.key(0), 5, 200)  # alpha = 0.025
    net = HopfieldNetwork.from_patterns(xi)
    np.testing.assert_array_equal(net.synchronous_update(xi), xi)
    for mu in range(5):
        np.testing.assert_array_equal(net.asynchronous_sweep(xi[mu], jax.random.key(mu)), xi[mu])


def test_asynchronous_updates_never_raise_the_energy():
    xi = _patterns(jax.random.key(1), 30, 100)  # above capacity: a rugged landscape
    net = HopfieldNetwork.from_patterns(xi, capacity_warning=False)
    sites = jax.random.randint(jax.random.key(2), (2000,), 0, 100)

    def step(s, i):
        s = net.update_site(s, i)
        return s, net.energy(s)

    start = _patterns(jax.random.key(3), 1, 100)[0]
    _, energies = jax.lax.scan(step, start, sites)
    energies = np.concatenate([[float(net.energy(start))], np.asarray(energies)])
    assert np.all(np.diff(energies) <= 1e-4)
    assert energies[-1] < energies[0] - 100  # it does descend


def test_a_corrupted_pattern_is_retrieved_and_a_large_load_fails():
    key = jax.random.key(4)
    xi = _patterns(key, 25, 500)  # alpha = 0.05
    net = HopfieldNetwork.from_patterns(xi)
    probe = corrupt(xi[3], jax.random.key(5), 0.1)
    assert float(overlap(probe, xi[3])) == pytest.approx(0.8)
    state, sweeps = net.retrieve(probe, jax.random.key(6))
    np.testing.assert_array_equal(state, xi[3])
    assert 1 <= int(sweeps) <= 5
    crowded = _patterns(key, 150, 500)  # alpha = 0.3
    with pytest.warns(UserWarning, match="capacity"):
        over = HopfieldNetwork.from_patterns(crowded)
    state, _ = over.retrieve(corrupt(crowded[3], jax.random.key(5), 0.1), jax.random.key(6))
    assert float(overlap(state, crowded[3])) < 0.9


def test_modern_update_retrieves_at_large_beta_and_averages_at_small_beta():
    xi = _patterns(jax.random.key(7), 2000, 64)
    probe = corrupt(xi[11], jax.random.key(8), 0.1)
    retrieved = ModernHopfield(xi, beta=1.0).update(probe)
    np.testing.assert_allclose(retrieved, xi[11], atol=1e-5)
    blurred = ModernHopfield(xi, beta=0.02).update(probe)
    assert float(jnp.max(jnp.abs(blurred - xi[11]))) > 0.5


def test_modern_energy_is_nonnegative_and_does_not_rise_under_updates():
    key = jax.random.key(9)
    x = jax.random.normal(key, (50, 16))
    net = ModernHopfield(x, beta=0.7)
    state = jax.random.normal(jax.random.key(10), (20, 16)) * 3.0
    energies = [net.energy(state)]
    for _ in range(5):
        state = net.update(state)
        energies.append(net.energy(state))
    energies = np.stack(energies)
    assert np.all(energies >= -1e-4)
    assert np.all(np.diff(energies, axis=0) <= 1e-4)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="-1 and \\+1"):
        HopfieldNetwork.from_patterns(np.array([[1, 0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        HopfieldNetwork.from_patterns(np.ones(5))
    with pytest.raises(ValueError, match="shape"):
        HopfieldNetwork.from_patterns(np.ones((1, 4))).retrieve(jnp.ones(3), jax.random.key(0))
    with pytest.raises(ValueError, match="mode"):
        HopfieldNetwork.from_patterns(np.ones((1, 4))).retrieve(jnp.ones(4), jax.random.key(0), mode="x")
    with pytest.raises(ValueError, match="beta"):
        ModernHopfield(np.ones((3, 4)), beta=0.0)
    with pytest.raises(ValueError, match="finite"):
        ModernHopfield(np.full((3, 4), np.nan))
    with pytest.raises(ValueError, match="pattern size"):
        ModernHopfield(np.ones((3, 4))).update(jnp.ones(5))
