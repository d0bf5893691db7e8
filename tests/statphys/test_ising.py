"""Ising model and checkerboard Metropolis (physbias.statphys).

References: the Boltzmann distribution of a 2x2 lattice by exact enumeration of its 16 states; the
1-D transfer-matrix energy and magnetisation; Onsager's 2-D magnetisation and energy.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.statphys import (
    ONSAGER_CRITICAL_TEMPERATURE,
    IsingChain,
    IsingModel,
    checkerboard_sweep,
    ising_chain_exact,
    metropolis,
    observables,
    onsager_energy,
    onsager_magnetisation,
)


def test_energy_counts_each_bond_once():
    model = IsingModel(4, 2, coupling=1.0, field=0.5)
    assert float(model.energy(jnp.ones((4, 4)))) == -32.0 - 8.0  # 2 N bonds, N spins
    checker = jnp.where(model.colours() == 0, 1.0, -1.0)
    assert float(model.energy(checker)) == 32.0  # every bond frustrated, zero net spin


def test_flip_cost_equals_the_energy_difference():
    model = IsingModel(6, 2, coupling=0.7, field=0.3)
    spins = model.random_spins(jax.random.key(0))
    delta = 2.0 * spins * (model.coupling * model.neighbour_sum(spins) + model.field)
    for i, j in [(0, 0), (2, 5), (5, 3)]:
        flipped = spins.at[i, j].multiply(-1.0)
        np.testing.assert_allclose(model.energy(flipped) - model.energy(spins), delta[i, j], atol=1e-5)


@pytest.mark.parametrize("dim, size", [(1, 2), (1, 10), (2, 2), (2, 6)])
def test_sublattices_hold_the_colours_and_their_neighbour_sums(dim, size):
    model = IsingModel(size, dim, coupling=1.0, field=0.0)
    spins = model.random_spins(jax.random.key(size))
    black, white = model.split(spins)
    np.testing.assert_array_equal(model.merge(black, white), spins)
    colours = np.asarray(model.colours())
    # Row-major order of the black sites is the sublattice's order.
    np.testing.assert_array_equal(np.asarray(black).ravel(), np.asarray(spins)[colours == 0])
    np.testing.assert_array_equal(np.asarray(white).ravel(), np.asarray(spins)[colours == 1])
    full = model.split(model.neighbour_sum(spins))
    np.testing.assert_array_equal(model.black_neighbour_sum(white), full[0])
    np.testing.assert_array_equal(model.white_neighbour_sum(black), full[1])


def test_only_energy_raising_flips_get_a_threshold():
    # J = 1, h = 0.5 in 2-D: dE = 2 (s sum_nb + h s) > 0 for s sum_nb in {2, 4} with either spin, and
    # s sum_nb = 0 with s = +1 (against the field).
    model = IsingModel(4, 2, coupling=1.0, field=0.5)
    assert set(model.costly_flips()) == {(1, 0), (1, 2), (1, 4), (-1, 2), (-1, 4)}
    beta = 0.4
    cost = np.array([2 * (a + 0.5 * s) for s, a in model.costly_flips()])
    np.testing.assert_allclose(
        np.asarray(model.flip_thresholds(beta), np.float64) / 2.0**32, np.exp(-beta * cost), rtol=1e-6
    )


def test_sampler_reaches_the_boltzmann_distribution_of_a_2x2_lattice():
    model, temperature = IsingModel(2, 2, coupling=1.0, field=0.2), 2.5
    states = np.array(list(itertools.product([-1.0, 1.0], repeat=4))).reshape(-1, 2, 2)
    weights = np.exp(-np.array([float(model.energy(jnp.asarray(s))) for s in states]) / temperature)
    exact = weights / weights.sum()

    def step(s, k):
        s = checkerboard_sweep(model, s, k, 1.0 / temperature)
        return s, s

    _, chain = jax.lax.scan(step, jnp.ones((2, 2)), jax.random.split(jax.random.key(0), 100_000))
    index = np.asarray(((chain.reshape(-1, 4) + 1) / 2) @ np.array([8.0, 4.0, 2.0, 1.0])).astype(int)
    empirical = np.bincount(index, minlength=16) / len(index)
    assert np.max(np.abs(empirical - exact)) < 0.01


def test_chain_matches_the_transfer_matrix():
    model = IsingModel(16, 1, coupling=1.0, field=0.3)
    chain = metropolis(model, jax.random.key(1), 1.5, 20_000, burn_in=500)
    exact = ising_chain_exact(16, 1.5, 1.0, 0.3)
    assert abs(observables(chain, model, 1.5).energy - exact["energy"]) < 0.01
    assert abs(float(jnp.mean(chain.magnetisation)) - exact["magnetisation"]) < 0.015


def test_transfer_matrix_limits():
    # No field: u = -tanh(1/T) for a long chain; zero magnetisation.
    exact = ising_chain_exact(200, 1.3)
    assert abs(exact["energy"] + np.tanh(1 / 1.3)) < 1e-10 and abs(exact["magnetisation"]) < 1e-12


@pytest.mark.parametrize("temperature", [1.5, 2.0])
def test_2d_magnetisation_and_energy_match_onsager(temperature):
    # Four independent chains averaged: one short chain at T = 2 can wander (a domain-wall excursion
    # of a few hundred sweeps moves its <|m|> by 0.01 at L = 16).
    model = IsingModel(16, 2)
    chains = metropolis(model, jax.random.key(2), [temperature] * 4, 3000, burn_in=300)
    obs = [observables(IsingChain(*(x[i] for x in chains)), model, temperature) for i in range(4)]
    abs_m = np.mean([o.abs_magnetisation for o in obs])
    assert abs(abs_m - float(onsager_magnetisation(temperature))) < 0.01
    assert abs(np.mean([o.energy for o in obs]) - float(onsager_energy(temperature))) < 0.01
    assert min(o.binder for o in obs) > 0.6  # ordered: close to 2/3


def test_onsager_references():
    assert ONSAGER_CRITICAL_TEMPERATURE == pytest.approx(2.269185314213022, rel=1e-12)
    assert float(onsager_magnetisation(3.0)) == 0.0 and float(onsager_magnetisation(0.5)) > 0.9999
    # At T_c the energy is -sqrt(2); at high T it approaches 0 as -2 tanh(1/T) (leading order).
    assert float(onsager_energy(ONSAGER_CRITICAL_TEMPERATURE)) == pytest.approx(-np.sqrt(2), rel=1e-6)
    assert float(onsager_energy(50.0)) == pytest.approx(-2 * np.tanh(1 / 50.0), rel=1e-3)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="even"):
        IsingModel(5, 2)
    with pytest.raises(ValueError, match="dim"):
        IsingModel(4, 3)
    with pytest.raises(ValueError, match="temperature"):
        metropolis(IsingModel(4, 2), jax.random.key(0), 0.0, 10)
    with pytest.raises(ValueError, match="sweeps"):
        metropolis(IsingModel(4, 2), jax.random.key(0), 1.0, 0)
    with pytest.raises(ValueError, match="shape"):
        metropolis(IsingModel(4, 2), jax.random.key(0), 1.0, 10, spins=jnp.ones((4,)))
    with pytest.raises(ValueError, match="temperature"):
        onsager_magnetisation(-1.0)
    with pytest.raises(ValueError, match="-1 and \\+1"):
        metropolis(IsingModel(4, 2), jax.random.key(0), 1.0, 10, spins=jnp.zeros((4, 4)))


def test_chains_at_several_temperatures_run_together():
    model = IsingModel(8, 2)
    chains = metropolis(model, jax.random.key(3), [1.0, 5.0], 200, burn_in=50)
    assert chains.energy.shape == (2, 200) and chains.spins.shape == (2, 8, 8)
    assert float(jnp.mean(chains.magnetisation[0])) > 0.99 > abs(float(jnp.mean(chains.magnetisation[1])))


def test_binder_crossing_interpolates_the_sign_change():
    from physbias.statphys import binder_crossing

    t = np.array([2.0, 2.2, 2.4, 2.6])
    small, large = 0.5 - 0.1 * (t - 2.3), 0.5 - 0.5 * (t - 2.3)  # cross exactly at T = 2.3
    assert binder_crossing(t, small, large) == pytest.approx(2.3, abs=1e-12)
    assert np.isnan(binder_crossing(t, small, small + 1.0))
