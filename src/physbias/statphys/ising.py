"""The Ising model on a periodic lattice and its checkerboard Metropolis sampler (seed 000: the
first physics-informed bias, "probability = exp(-energy)").

.. math:: E(s) = -J \\sum_{\\langle ij \\rangle} s_i s_j - h \\sum_i s_i, \\qquad s_i \\in \\{-1, +1\\},

with nearest neighbours on a periodic chain (1-D) or square lattice (2-D). A checkerboard sweep
updates all sites of one colour at once (they do not interact), then the other: flipping ``s_i``
costs ``dE = 2 s_i (J sum_nb s_j + h)`` and is accepted with probability ``min(1, exp(-dE / T))``
(Metropolis et al. 1953), so the Boltzmann distribution is stationary. The side ``L`` must be even
for the two colours to be independent across the periodic boundary.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray


class IsingModel(eqx.Module):
    """A periodic Ising lattice of side ``size`` in ``dim`` = 1 or 2 dimensions.

    Example:
        >>> IsingModel(size=4, dim=2).sites
        16
    """

    size: int = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=2)
    coupling: float = eqx.field(static=True, default=1.0)
    field: float = eqx.field(static=True, default=0.0)

    def __check_init__(self):
        if self.dim not in (1, 2):
            raise ValueError(f"`dim` must be 1 or 2, got {self.dim!r}")
        if not isinstance(self.size, int) or self.size < 2 or self.size % 2:
            raise ValueError(
                f"`size` must be an even integer >= 2 (the checkerboard needs two colours across the "
                f"periodic boundary), got {self.size!r}"
            )
        if not (math.isfinite(self.coupling) and math.isfinite(self.field)):
            raise ValueError(f"`coupling` and `field` must be finite, got {self.coupling}, {self.field}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.size,) * self.dim

    @property
    def sites(self) -> int:
        return self.size**self.dim

    def neighbour_sum(self, spins: Array) -> Array:
        """``sum_nb s_j`` at every site (``2 dim`` neighbours)."""
        return sum(jnp.roll(spins, shift, axis) for axis in range(self.dim) for shift in (1, -1))

    def energy(self, spins: Array) -> Array:
        """``E(s)``, each bond counted once."""
        bonds = sum(jnp.sum(spins * jnp.roll(spins, 1, axis)) for axis in range(self.dim))
        return -self.coupling * bonds - self.field * jnp.sum(spins)

    def colours(self) -> Array:
        """The checkerboard colour (0 or 1) of every site."""
        grid = jnp.indices(self.shape).sum(0)
        return grid % 2

    def random_spins(self, key: PRNGKeyArray) -> Array:
        """Independent uniform ``+-1`` spins (an infinite-temperature start)."""
        return jnp.where(jax.random.bernoulli(key, 0.5, self.shape), 1.0, -1.0)


def checkerboard_sweep(model: IsingModel, spins: Array, key: PRNGKeyArray, beta) -> Array:
    """One Metropolis sweep: every site of colour 0 proposed at once, then every site of colour 1."""
    colours = model.colours()
    # One uniform per site per sweep: a site is proposed in one colour phase only, so its number is
    # used once (half the random numbers of a draw per phase; about 1.5x faster on a CPU).
    uniform = jax.random.uniform(key, spins.shape, spins.dtype)
    for colour in (0, 1):
        delta = 2.0 * spins * (model.coupling * model.neighbour_sum(spins) + model.field)
        accept = uniform < jnp.exp(-beta * delta)
        spins = jnp.where(accept & (colours == colour), -spins, spins)
    return spins


class IsingChain(NamedTuple):
    """Per-sweep measurements of a Metropolis run after burn-in.

    Attributes:
        energy: ``E / N`` per sweep ``(sweeps,)``.
        magnetisation: ``M / N`` per sweep ``(sweeps,)`` (signed).
        spins: the final configuration.
    """

    energy: Array
    magnetisation: Array
    spins: Array


def metropolis(
    model: IsingModel,
    key: PRNGKeyArray,
    temperature,
    sweeps: int,
    burn_in: int = 0,
    spins: Array | None = None,
) -> IsingChain:
    """``burn_in`` then ``sweeps`` checkerboard sweeps at ``temperature`` (one ``lax.scan`` each),
    from ``spins`` (default: all ``+1``, the ordered start that avoids domain walls at low ``T``).

    ``temperature`` may be a 1-D array: the chains at all temperatures then run together
    (``vmap``), each with its own key, and every field of the result gains a leading axis.
    """
    temps = np.asarray(temperature, np.float64)
    if temps.ndim > 1 or temps.size == 0 or not np.all(np.isfinite(temps)) or np.any(temps <= 0):
        raise ValueError(
            f"`temperature` must be positive and finite (a number or a 1-D array), got {temperature!r}"
        )
    if not isinstance(sweeps, int) or sweeps < 1:
        raise ValueError(f"`sweeps` must be a positive integer, got {sweeps!r}")
    if not isinstance(burn_in, int) or burn_in < 0:
        raise ValueError(f"`burn_in` must be a non-negative integer, got {burn_in!r}")
    spins = jnp.ones(model.shape) if spins is None else jnp.asarray(spins)
    if spins.shape != model.shape:
        raise ValueError(f"`spins` must have shape {model.shape}, got {spins.shape}")
    betas = jnp.asarray(1.0 / temps, spins.dtype)
    if temps.ndim == 0:
        return _run(model, key, betas, sweeps, burn_in, spins)
    keys = jax.random.split(key, temps.size)
    return _run_many(model, keys, betas, sweeps, burn_in, spins)


@eqx.filter_jit
def _run_many(model, keys, betas, sweeps: int, burn_in: int, spins):
    return jax.vmap(lambda k, b: _run(model, k, b, sweeps, burn_in, spins))(keys, betas)


@eqx.filter_jit
def _run(model, key, beta, sweeps: int, burn_in: int, spins):
    k_burn, k_run = jax.random.split(key)

    def burn(s, k):
        return checkerboard_sweep(model, s, k, beta), None

    spins, _ = jax.lax.scan(burn, spins, jax.random.split(k_burn, max(burn_in, 1))[:burn_in])

    def step(s, k):
        s = checkerboard_sweep(model, s, k, beta)
        return s, (model.energy(s) / model.sites, jnp.mean(s))

    spins, (energy, magnetisation) = jax.lax.scan(step, spins, jax.random.split(k_run, sweeps))
    return IsingChain(energy, magnetisation, spins)


class IsingObservables(NamedTuple):
    """Thermal averages from a chain (host floats).

    Attributes:
        abs_magnetisation: ``<|m|>``.
        energy: ``u = <E> / N``.
        specific_heat: ``c = N (<e^2> - <e>^2) / T^2``.
        susceptibility: ``chi = N (<m^2> - <|m|>^2) / T``.
        binder: ``U = 1 - <m^4> / (3 <m^2>^2)`` (2/3 ordered, 0 for a Gaussian).
    """

    abs_magnetisation: float
    energy: float
    specific_heat: float
    susceptibility: float
    binder: float


def observables(chain: IsingChain, model: IsingModel, temperature: float) -> IsingObservables:
    """The thermal averages of :class:`IsingObservables` (float64 on the host)."""
    e = np.asarray(chain.energy, np.float64)
    m = np.asarray(chain.magnetisation, np.float64)
    n, t = model.sites, float(temperature)
    m2, m4 = np.mean(m**2), np.mean(m**4)
    return IsingObservables(
        float(np.mean(np.abs(m))),
        float(np.mean(e)),
        float(n * np.var(e) / t**2),
        float(n * (m2 - np.mean(np.abs(m)) ** 2) / t),
        float(1 - m4 / (3 * m2**2)) if m2 > 0 else 0.0,
    )


def binder_crossing(temperatures: np.ndarray, u_small: np.ndarray, u_large: np.ndarray) -> float:
    """The temperature where ``U_small - U_large`` changes sign (linear interpolation between grid
    points; the crossing closest to the middle of the grid if several, NaN if none)."""
    d = np.asarray(u_small) - np.asarray(u_large)
    idx = np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]
    if idx.size == 0:
        return float("nan")
    i = idx[np.argmin(np.abs(idx - len(d) / 2))]
    t0, t1 = temperatures[i], temperatures[i + 1]
    return float(t0 + (t1 - t0) * d[i] / (d[i] - d[i + 1]))
