"""The neural Hamiltonian flow (physbias.flows): volume preservation and exact inversion on random
non-trivial maps, the exact density at initialisation, the bounds' order, and a fit of a target of
its class (a volume-preserving shear of a Gaussian)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias import fit
from physbias.flows import HamiltonianFlow, elbo_loss
from physbias.systems import Banana


def _random_flow(key, scale=True):
    """A small flow whose zero-initialised layers are replaced by random ones (a non-trivial map)."""
    flow = HamiltonianFlow(2, blocks=2, steps=3, width=16, key=key, scale=scale)
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.fold_in(key, 1), len(leaves))
    leaves = [x + 0.3 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys, strict=True)]
    return eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), static)


def test_the_core_preserves_volume_and_inverts_exactly():
    flow = _random_flow(jax.random.key(0))
    s = jax.random.normal(jax.random.key(1), (200, 4))
    moved = jax.vmap(flow.core)(s)
    assert float(jnp.max(jnp.abs(moved - s))) > 0.1  # the map is not the identity
    _, log_det = jnp.linalg.slogdet(jax.jit(jax.vmap(jax.jacfwd(flow.core)))(s))
    assert float(jnp.max(jnp.abs(log_det))) < 1e-5
    assert float(jnp.max(jnp.abs(jax.vmap(flow.core_inverse)(moved) - s))) < 1e-5
    # The whole map: its log-determinant is the affine layer's constant, and it inverts too.
    _, full = jnp.linalg.slogdet(jax.jit(jax.vmap(jax.jacfwd(flow.forward)))(s))
    np.testing.assert_allclose(full, float(flow.log_det()), atol=1e-5)
    assert float(jnp.max(jnp.abs(jax.vmap(flow.inverse)(jax.vmap(flow.forward)(s)) - s))) < 1e-5
    assert float(_random_flow(jax.random.key(0), scale=False).log_det()) == 0.0


def test_at_initialisation_the_density_is_the_free_flight_of_the_base():
    # Zero-output MLPs: every block is free flight, q = q0 + T p0, p = p0 with T = 2 * 2 * 0.1, so
    # q ~ N(0, (1 + T^2) I) exactly; the bounds must sit below it and the IW bound close to it.
    flow = HamiltonianFlow(2, blocks=2, steps=2, width=8, step_size=0.1, key=jax.random.key(2))
    variance = 1 + 0.4**2
    q = jnp.array([1.5, -2.0])
    exact = -0.5 * float(jnp.sum(q**2)) / variance - np.log(2 * np.pi * variance)
    keys = jax.random.split(jax.random.key(3), 4000)
    elbo = float(jnp.mean(jax.vmap(lambda k: flow.log_weight(q, k))(keys)))
    iw = float(flow.log_prob(q, jax.random.key(4), samples=4000))
    assert elbo < exact - 0.02  # the ELBO is a strict bound with a mismatched encoder...
    assert iw == pytest.approx(exact, abs=0.02)  # ...which 4000 importance samples close
    x = flow.sample(jax.random.key(5), 20_000)
    np.testing.assert_allclose(np.std(np.asarray(x), 0), np.sqrt(variance), rtol=0.03)


@pytest.mark.slow  # a training run of 20-40 s on 2 cores: `pytest -m slow`
def test_the_flow_fits_a_sheared_gaussian():
    # The banana is a volume-preserving shear of N(0, diag(1, 0.25)): within the flow's class.
    banana = Banana()
    x, test = banana.sample(jax.random.key(6), 4096), banana.sample(jax.random.key(9), 512)
    exact = -float(jnp.mean(banana.log_prob(test)))
    keys = jax.random.split(jax.random.key(10), 512)

    def nll(flow):
        return -float(jnp.mean(jax.vmap(lambda q, k: flow.log_prob(q, k, 16))(test, keys)))

    flow = HamiltonianFlow(2, blocks=3, steps=2, width=32, encoder_width=16, key=jax.random.key(7))
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(1e-2, 960))
    )
    result = fit(
        flow,
        elbo_loss(),
        (x,),
        key=jax.random.key(8),
        epochs=60,
        batch_size=256,
        optimizer=optimizer,
        progress=False,
    )
    assert not result.diverged
    assert nll(flow) - exact > 0.6  # the untrained flow is far off
    assert nll(result.model) - exact < 0.3  # measured 0.17


def test_bad_settings_and_data_are_refused():
    with pytest.raises(ValueError, match="blocks"):
        HamiltonianFlow(2, blocks=0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="step_size"):
        HamiltonianFlow(2, step_size=-0.1, key=jax.random.key(0))
    flow = HamiltonianFlow(2, blocks=1, steps=1, width=4, key=jax.random.key(0))
    with pytest.raises(ValueError, match="shape"):
        elbo_loss()(flow, (jnp.ones((5, 3)),), jax.random.key(0))
    with pytest.raises(ValueError, match="NaN"):
        fit(flow, elbo_loss(), (jnp.full((5, 2), jnp.nan),), key=jax.random.key(0), epochs=1, progress=False)
