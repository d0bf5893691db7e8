"""Energy-based models trained contrastively: ``p(x) = exp(-E(x)) / Z`` with ``E`` a network
(seed 000's "define probability = energy"; the Boltzmann distribution at ``T = 1``).

The log-likelihood gradient is ``-E_data[grad E] + E_p[grad E]``: the second expectation is over
the model itself, estimated by samples from Langevin chains. **Persistent contrastive divergence**
(PCD; Tieleman 2008) keeps the chains from step to step in a **replay buffer** (Du & Mordatch
2019): every step draws a batch of chains from the buffer, restarts a fraction ``restart`` of them
from uniform noise on a box, runs a few Langevin steps under the current energy and writes them
back. The loss is

.. math:: L = \\overline{E(x_{data})} - \\overline{E(x_{chain})}
          + a_d\\, \\overline{E(x_{data})^2} + a_s\\, \\overline{E(x_{chain})^2},

the squares fixing the free additive constant of ``E``. A larger weight on the data term pulls all
modes of the data to one energy level: chains do not travel between modes, so nothing else sets
their relative depth (a pitfall measured in issue #14).

Samplers (batched over the first axis of ``x``):

- :func:`langevin`: the unadjusted Langevin algorithm at temperature 1,
  ``x <- x - (eps/2) grad E(x) + sqrt(eps) xi`` — calibrated, unlike JEM's "step 1, noise 0.01",
  which targets ``exp(-E / 10^-4)`` and does not learn a density.
- :func:`mala`: the Metropolis-adjusted version, exact for ``exp(-E)``.
- :func:`grid_samples`: exact samples of ``exp(-E)`` restricted to a 2-D box, on a fine grid (the
  honest test of a 2-D energy, which no chain's mixing limits).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

Energy = Callable[[Array], Array]
"""``energy(x) -> scalar`` for one point ``x`` ``(d,)`` (e.g. ``eqx.nn.MLP(d, "scalar", ...)``)."""


def _energies(energy: Energy, x: Array) -> Array:
    return jax.vmap(energy)(x)


def _gradients(energy: Energy, x: Array) -> Array:
    return jax.vmap(jax.grad(energy))(x)


def _check_chain_settings(steps: int, step_size) -> None:
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size) and step_size > 0):
        raise ValueError(f"`step_size` must be a positive number, got {step_size!r}")


def langevin(
    energy: Energy, x: Array, key: PRNGKeyArray, steps: int, step_size: float, box: float | None = None
) -> Array:
    """``steps`` unadjusted Langevin steps ``x <- x - (eps/2) grad E(x) + sqrt(eps) xi`` of every
    row of ``x`` ``(n, d)``; with ``box``, each coordinate is clipped to ``[-box, box]``."""
    _check_chain_settings(steps, step_size)

    def step(x, k):
        x = x - 0.5 * step_size * _gradients(energy, x)
        x = x + math.sqrt(step_size) * jax.random.normal(k, x.shape, x.dtype)
        return (x if box is None else jnp.clip(x, -box, box)), None

    return jax.lax.scan(step, x, jax.random.split(key, steps))[0]


def mala(
    energy: Energy, x: Array, key: PRNGKeyArray, steps: int, step_size: float, box: float | None = None
) -> tuple[Array, Array]:
    """``steps`` Metropolis-adjusted Langevin steps (Roberts & Tweedie 1996): the Langevin proposal
    ``x' = x - (eps/2) grad E(x) + sqrt(eps) xi``, accepted with probability
    ``min(1, exp(-E(x')) q(x | x') / (exp(-E(x)) q(x' | x)))``, so ``exp(-E)`` (restricted to the
    ``box`` if given) is stationary exactly. Returns ``(x, mean acceptance rate)``."""
    _check_chain_settings(steps, step_size)

    def log_proposal(to, start, grad):
        return -jnp.sum((to - start + 0.5 * step_size * grad) ** 2, -1) / (2.0 * step_size)

    def step(carry, k):
        x, e, g = carry
        k_move, k_accept = jax.random.split(k)
        proposal = (
            x - 0.5 * step_size * g + math.sqrt(step_size) * jax.random.normal(k_move, x.shape, x.dtype)
        )
        e_new, g_new = _energies(energy, proposal), _gradients(energy, proposal)
        log_ratio = e - e_new + log_proposal(x, proposal, g_new) - log_proposal(proposal, x, g)
        if box is not None:
            log_ratio = jnp.where(jnp.all(jnp.abs(proposal) <= box, -1), log_ratio, -jnp.inf)
        accept = jnp.log(jax.random.uniform(k_accept, e.shape, e.dtype)) < log_ratio
        pick = lambda new, old: jnp.where(accept.reshape(accept.shape + (1,) * (new.ndim - 1)), new, old)
        return (pick(proposal, x), pick(e_new, e), pick(g_new, g)), jnp.mean(accept.astype(x.dtype))

    start = (x, _energies(energy, x), _gradients(energy, x))
    (x, _, _), rates = jax.lax.scan(step, start, jax.random.split(key, steps))
    return x, jnp.mean(rates)


def grid_samples(energy: Energy, key: PRNGKeyArray, n: int, box: float, resolution: int = 400) -> Array:
    """``n`` samples of ``exp(-E)`` on ``[-box, box]^2`` (2-D energies): a cell of a
    ``resolution x resolution`` grid is drawn with probability ``exp(-E(centre))`` (inverse CDF),
    then a uniform point inside it. Exact up to the grid's resolution."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")
    edges = jnp.linspace(-box, box, resolution + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    xx, yy = jnp.meshgrid(centres, centres, indexing="ij")
    points = jnp.stack([xx.ravel(), yy.ravel()], -1)
    cdf = jnp.cumsum(jax.nn.softmax(-_energies(energy, points)))
    k_cell, k_jitter = jax.random.split(key)
    cell = jnp.searchsorted(cdf, jax.random.uniform(k_cell, (n,)) * cdf[-1])
    cell = jnp.clip(cell, 0, points.shape[0] - 1)
    width = 2.0 * box / resolution
    return points[cell] + width * (jax.random.uniform(k_jitter, (n, 2)) - 0.5)


class ReplayBuffer(eqx.Module):
    """The persistent chains of PCD, ``samples`` ``(size, d)``: the training state :func:`fit`
    carries for :func:`pcd_loss`."""

    samples: Array

    @classmethod
    def uniform(cls, key: PRNGKeyArray, size: int, dim: int, box: float) -> ReplayBuffer:
        """``size`` chains started uniformly on ``[-box, box]^dim``."""
        if not isinstance(size, int) or size < 1 or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"`size` and `dim` must be positive integers, got {size!r}, {dim!r}")
        if not box > 0:
            raise ValueError(f"`box` must be positive, got {box!r}")
        return cls(jax.random.uniform(key, (size, dim), minval=-box, maxval=box))


def pcd_loss(
    *,
    box: float,
    langevin_steps: int = 20,
    step_size: float = 0.01,
    restart: float = 0.05,
    data_weight: float = 0.1,
    sample_weight: float = 0.01,
):
    """The PCD loss of the module docstring for :func:`~physbias.train.fit` with
    ``state=ReplayBuffer...``: ``loss_fn(energy, (x,), key, buffer) -> (loss, buffer)``.

    Each call draws as many chains from the buffer as the data batch has rows, restarts a fraction
    ``restart`` of them uniformly on ``[-box, box]^d``, runs ``langevin_steps`` calibrated Langevin
    steps of size ``step_size`` (clipped to the box) under the current energy (no gradient flows
    through the chains) and writes them back.
    """
    _check_chain_settings(langevin_steps, step_size)
    if not 0 <= restart <= 1:
        raise ValueError(f"`restart` must be in [0, 1], got {restart!r}")
    if data_weight < 0 or sample_weight < 0:
        raise ValueError(
            f"`data_weight` and `sample_weight` must be >= 0, got {data_weight}, {sample_weight}"
        )
    if not box > 0:
        raise ValueError(f"`box` must be positive, got {box!r}")

    def loss_fn(energy, batch, key, buffer: ReplayBuffer):
        (x,) = batch[:1]
        k_pick, k_restart, k_noise, k_chain = jax.random.split(key, 4)
        index = jax.random.randint(k_pick, (x.shape[0],), 0, buffer.samples.shape[0])
        chains = buffer.samples[index]
        fresh = jax.random.uniform(k_noise, chains.shape, chains.dtype, -box, box)
        restarted = jax.random.uniform(k_restart, (x.shape[0], 1)) < restart
        chains = jnp.where(restarted, fresh, chains)
        params, static = eqx.partition(energy, eqx.is_inexact_array)
        frozen = eqx.combine(jax.lax.stop_gradient(params), static)
        chains = jax.lax.stop_gradient(langevin(frozen, chains, k_chain, langevin_steps, step_size, box))
        e_data, e_chain = _energies(energy, x), _energies(energy, chains)
        loss = (
            jnp.mean(e_data)
            - jnp.mean(e_chain)
            + data_weight * jnp.mean(e_data**2)
            + sample_weight * jnp.mean(e_chain**2)
        )
        return loss, ReplayBuffer(buffer.samples.at[index].set(chains))

    return loss_fn
