"""The Ising model on a periodic lattice and its checkerboard Metropolis sampler (seed 000: the
first physics-informed bias, "probability = exp(-energy)").

.. math:: E(s) = -J \\sum_{\\langle ij \\rangle} s_i s_j - h \\sum_i s_i, \\qquad s_i \\in \\{-1, +1\\},

with nearest neighbours on a periodic chain (1-D) or square lattice (2-D). A checkerboard sweep
updates all sites of one colour at once (they do not interact), then the other: flipping ``s_i``
costs ``dE = 2 s_i (J sum_nb s_j + h)`` and is accepted with probability ``min(1, exp(-dE / T))``
(Metropolis et al. 1953), so the Boltzmann distribution is stationary. The side ``L`` must be even
for the two colours to be independent across the periodic boundary.

How the sweep is made fast (issue #14; ``benchmarks/ising.py``):

- **Sublattices.** The chain is stored as its two colours, ``black`` and ``white``, each of shape
  ``(L, L/2)`` (``(L/2,)`` in 1-D), as ``int8``. Row ``i`` of ``black`` holds the sites
  ``(i, 2k + i mod 2)``, of ``white`` the sites ``(i, 2k + 1 - i mod 2)``: a black site's up and down
  neighbours are ``white[i +- 1, k]``, its left and right ones ``white[i, k]`` and
  ``white[i, k -+ 1]`` (``-`` on even rows, ``+`` on odd ones). A colour phase touches only the
  sites it updates, half the work of masking a full lattice.
- **Integer acceptance.** Only a flip with ``dE > 0`` needs a random number, and its probability
  takes one of a few values (``s_i sum_nb s_j`` is one of ``2 dim + 1`` integers), so the test
  ``U < exp(-b dE)`` is made on integers: ``U = (a + t / 2^16) / 2^16`` with ``a`` a 16-bit random
  number of the site and ``t`` one of its row (used only when ``a`` ties with the threshold's top
  16 bits, probability ``2^-16``). The acceptance is then exact to ``2^-32`` (finer than a float32
  uniform's ``2^-24``), and one 32-bit random word serves two sites: a site costs half a word of
  the generator, which is what bounds the sweep's speed.
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
        """The checkerboard colour (0 = black or 1 = white) of every site."""
        grid = jnp.indices(self.shape).sum(0)
        return grid % 2

    def random_spins(self, key: PRNGKeyArray) -> Array:
        """Independent uniform ``+-1`` spins (an infinite-temperature start)."""
        return jnp.where(jax.random.bernoulli(key, 0.5, self.shape), 1.0, -1.0)

    # The sublattice representation of the module docstring.

    def split(self, spins: Array) -> tuple[Array, Array]:
        """Full lattice ``shape`` -> ``(black, white)``, each ``(L, L/2)`` (``(L/2,)`` in 1-D)."""
        if self.dim == 1:
            return spins[0::2], spins[1::2]
        pairs = spins.reshape(self.size, self.size // 2, 2)
        odd = (jnp.arange(self.size) % 2 == 1)[:, None]
        return jnp.where(odd, pairs[..., 1], pairs[..., 0]), jnp.where(odd, pairs[..., 0], pairs[..., 1])

    def merge(self, black: Array, white: Array) -> Array:
        """The inverse of :meth:`split`."""
        if self.dim == 1:
            return jnp.stack([black, white], -1).reshape(self.shape)
        odd = (jnp.arange(self.size) % 2 == 1)[:, None]
        first, second = jnp.where(odd, white, black), jnp.where(odd, black, white)
        return jnp.stack([first, second], -1).reshape(self.shape)

    def black_neighbour_sum(self, white: Array) -> Array:
        """``sum_nb s_j`` at every black site, from the white sublattice."""
        if self.dim == 1:
            return white + jnp.roll(white, 1)
        even = (jnp.arange(self.size) % 2 == 0)[:, None]
        sideways = jnp.where(even, jnp.roll(white, 1, 1), jnp.roll(white, -1, 1))
        return jnp.roll(white, 1, 0) + jnp.roll(white, -1, 0) + white + sideways

    def white_neighbour_sum(self, black: Array) -> Array:
        """``sum_nb s_j`` at every white site, from the black sublattice."""
        if self.dim == 1:
            return black + jnp.roll(black, -1)
        even = (jnp.arange(self.size) % 2 == 0)[:, None]
        sideways = jnp.where(even, jnp.roll(black, -1, 1), jnp.roll(black, 1, 1))
        return jnp.roll(black, 1, 0) + jnp.roll(black, -1, 0) + black + sideways

    def costly_flips(self) -> tuple[tuple[int, int], ...]:
        """The ``(s_i, s_i sum_nb s_j)`` pairs whose flip raises the energy (``dE > 0``): only these
        need a random number; every other proposed flip is accepted. Without a field the cost does
        not depend on ``s_i`` alone, and the pairs are ``(0, s_i sum_nb s_j)`` (0: either spin)."""
        spins = (0,) if self.field == 0 else (1, -1)
        return tuple(
            (spin, aligned)
            for spin in spins
            for aligned in range(-2 * self.dim, 2 * self.dim + 1, 2)
            if self.coupling * aligned + self.field * spin > 0
        )

    def flip_thresholds(self, beta) -> Array:
        """``floor(exp(-b dE) 2^32)`` for each of :meth:`costly_flips`, as ``uint32``."""
        pairs = np.array(self.costly_flips(), np.float32).reshape(-1, 2)
        cost = 2.0 * (self.coupling * pairs[:, 1] + self.field * pairs[:, 0])
        # float32 exp: relative error 6e-8 in the probability; the clip keeps the float32 product
        # below 2^32 (a probability that rounds to 1 is always accepted, as it should be).
        scaled = jnp.exp(-jnp.asarray(beta, jnp.float32) * cost) * 2.0**32
        return jnp.minimum(scaled, 2.0**32 - 256).astype(jnp.uint32)


def _update(model: IsingModel, spins: Array, neighbours: Array, draws: Array, ties: Array, thresholds):
    """Metropolis on one colour: flip where ``dE <= 0`` or the 32-bit uniform ``(draws, ties)`` falls
    under the flip's threshold."""
    aligned = spins * neighbours
    top = jnp.full(spins.shape, 0x10000, jnp.uint32)  # above every 16-bit draw: always accepted
    rest = jnp.zeros(spins.shape, jnp.uint32)
    for (spin, value), threshold in zip(model.costly_flips(), thresholds, strict=True):
        match = aligned == value if spin == 0 else (aligned == value) & (spins == spin)
        top = jnp.where(match, threshold >> 16, top)
        rest = jnp.where(match, threshold & 0xFFFF, rest)
    accept = (draws < top) | ((draws == top) & (ties < rest))
    return jnp.where(accept, -spins, spins)


def _sublattice_sweep(model: IsingModel, black, white, black_neighbours, key, thresholds):
    """One sweep on the sublattices; returns ``(black, white, black_neighbours)`` after it (the last
    is what the next sweep and the energy need)."""
    k_sites, k_ties = jax.random.split(key)
    words = jax.random.bits(k_sites, black.shape, jnp.uint32)
    ties = jax.random.bits(k_ties, black.shape[:-1] + (1,), jnp.uint32)
    black = _update(model, black, black_neighbours, words >> 16, ties >> 16, thresholds)
    white = _update(model, white, model.white_neighbour_sum(black), words & 0xFFFF, ties & 0xFFFF, thresholds)
    return black, white, model.black_neighbour_sum(white)


def checkerboard_sweep(model: IsingModel, spins: Array, key: PRNGKeyArray, beta) -> Array:
    """One Metropolis sweep of a full lattice: every black site proposed at once, then every white
    one. (:func:`metropolis` runs the same update on the sublattices without converting.)"""
    black, white = (x.astype(jnp.int8) for x in model.split(jnp.sign(spins)))
    black, white, _ = _sublattice_sweep(
        model, black, white, model.black_neighbour_sum(white), key, model.flip_thresholds(beta)
    )
    return model.merge(black, white).astype(spins.dtype)


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
    if not bool(jnp.all(jnp.abs(spins) == 1)):
        raise ValueError("`spins` must hold only -1 and +1")
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
    thresholds = model.flip_thresholds(beta)
    black, white = (x.astype(jnp.int8) for x in model.split(jnp.sign(spins)))
    state = (black, white, model.black_neighbour_sum(white))

    def burn(state, k):
        return _sublattice_sweep(model, *state, k, thresholds), None

    state, _ = jax.lax.scan(burn, state, jax.random.split(k_burn, max(burn_in, 1))[:burn_in])

    def step(state, k):
        black, white, black_neighbours = state = _sublattice_sweep(model, *state, k, thresholds)
        # Every bond joins a black and a white site: sum over black sites of s_i sum_nb s_j.
        # float32 sums of small integers are exact below 2^24 (L <= 2048).
        bonds = jnp.sum(black * black_neighbours, dtype=jnp.float32)
        total = jnp.sum(black + white, dtype=jnp.float32)
        energy = -model.coupling * bonds - model.field * total
        return state, (energy / model.sites, total / model.sites)

    # Unrolling four sweeps per loop iteration amortises the loop's overhead on small lattices.
    keys = jax.random.split(k_run, sweeps)
    (black, white, _), (energy, magnetisation) = jax.lax.scan(step, state, keys, unroll=4)
    return IsingChain(energy, magnetisation, model.merge(black, white).astype(spins.dtype))


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
