"""Hopfield networks: associative memory as energy minimisation (seed 000: "the Ising model with
learned couplings").

**Classical** (Hopfield 1982). ``P`` patterns ``xi^mu in {-1, +1}^N`` are stored in the Hebbian
couplings

.. math:: J_{ij} = \\sum_\\mu \\xi_i^\\mu \\xi_j^\\mu \\quad (i \\ne j), \\qquad J_{ii} = 0,

and a state ``s`` has the Ising energy ``E(s) = -1/2 s^T J s`` (zero field). The asynchronous update
``s_i <- sign(sum_j J_ij s_j)`` of one site at a time never raises ``E`` (``J`` is symmetric with a
zero diagonal), so it ends in a fixed point; the synchronous update of all sites at once may end in
a 2-cycle instead. Stored patterns are fixed points below the capacity ``alpha = P / N ~ 0.138``
(Amit, Gutfreund & Sompolinsky 1985); above it retrieval breaks down.

**Modern** (continuous; Ramsauer et al. 2021, "Hopfield networks is all you need"). Patterns are
the columns of ``X`` (shape ``(d, P)``, stored here as rows ``(P, d)``); a state ``xi in R^d`` is
updated by

.. math:: \\xi \\leftarrow X \\operatorname{softmax}(\\beta X^T \\xi),

which decreases the energy
``E(xi) = -lse(beta, X^T xi) + 1/2 xi^T xi + beta^-1 log P + 1/2 M^2`` (``lse(beta, z) =
beta^-1 log sum_mu exp(beta z_mu)``, ``M`` the largest pattern norm). Its capacity is exponential
in ``d``: one update retrieves a pattern when ``beta`` separates it from the others, and averages
patterns ("metastable states") when ``beta`` is small. No projection or normalisation is applied,
so the retrieval dynamics are the formula's own.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

CLASSICAL_CAPACITY = 0.138
"""The load ``alpha_c = P / N`` above which the Hebbian network's patterns lose stability (AGS 1985)."""


def check_patterns(patterns, name: str = "patterns") -> Array:
    """``patterns`` as a ``(P, N)`` float32 array of ``+-1``; a clear error otherwise."""
    arr = np.asarray(patterns)
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] < 2:
        raise ValueError(f"`{name}` must have shape (P, N) with P >= 1 and N >= 2, got {arr.shape}")
    if not np.all(np.isin(arr, (-1, 1))):
        raise ValueError(f"`{name}` must hold only -1 and +1 (bipolar patterns)")
    return jnp.asarray(arr, jnp.float32)


def hebbian_couplings(patterns) -> Array:
    """``J = sum_mu xi^mu xi^mu^T`` with a zero diagonal, shape ``(N, N)``."""
    xi = check_patterns(patterns)
    couplings = xi.T @ xi
    return couplings - jnp.diag(jnp.diag(couplings))


def overlap(state: Array, pattern: Array) -> Array:
    """``m = s . xi / N`` (1 for the pattern, -1 for its mirror image, ~0 for an unrelated state);
    broadcasts over leading axes."""
    return jnp.mean(state * pattern, axis=-1)


def corrupt(pattern: Array, key: PRNGKeyArray, fraction: float) -> Array:
    """``pattern`` with a random ``round(fraction N)`` of its signs flipped (along the last axis)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"`fraction` must be in [0, 1], got {fraction!r}")
    n = pattern.shape[-1]
    flips = round(fraction * n)
    order = jnp.argsort(jax.random.uniform(key, pattern.shape), axis=-1)
    flipped = jnp.sum(jax.nn.one_hot(order[..., :flips], n, dtype=pattern.dtype), axis=-2)
    return jnp.where(flipped > 0, -pattern, pattern)


def _sign_or_keep(field: Array, state: Array) -> Array:
    # sign(0) keeps the current spin: a tie changes nothing, so the energy cannot rise.
    return jnp.where(field > 0, 1.0, jnp.where(field < 0, -1.0, state))


class HopfieldNetwork(eqx.Module):
    """The classical Hopfield network of couplings ``J`` (``(N, N)``, symmetric, zero diagonal).

    Build it from patterns with :meth:`from_patterns`. Example:
        >>> xi = jnp.array([[1.0, -1.0, 1.0, -1.0, 1.0, 1.0]])
        >>> net = HopfieldNetwork.from_patterns(xi)
        >>> bool(jnp.all(net.synchronous_update(xi[0]) == xi[0]))
        True
    """

    couplings: Array

    def __check_init__(self):
        j = self.couplings
        if j.ndim != 2 or j.shape[0] != j.shape[1]:
            raise ValueError(f"`couplings` must be a square matrix, got shape {j.shape}")

    @classmethod
    def from_patterns(cls, patterns, *, capacity_warning: bool = True) -> HopfieldNetwork:
        """Hebbian couplings of ``patterns`` ``(P, N)``; warns when ``P / N`` exceeds the capacity
        :data:`CLASSICAL_CAPACITY` (the patterns will not be stable), unless told not to."""
        xi = check_patterns(patterns)
        load = xi.shape[0] / xi.shape[1]
        # One pattern is always a fixed point; the capacity is a statement about many.
        if capacity_warning and xi.shape[0] > 1 and load > CLASSICAL_CAPACITY:
            warnings.warn(
                f"{xi.shape[0]} patterns in {xi.shape[1]} neurons is a load P/N = {load:.3f} above the "
                f"Hebbian capacity {CLASSICAL_CAPACITY}: stored patterns will not be fixed points",
                stacklevel=2,
            )
        return cls(hebbian_couplings(xi))

    @property
    def neurons(self) -> int:
        return self.couplings.shape[0]

    def energy(self, state: Array) -> Array:
        """``E(s) = -1/2 s^T J s`` (the Ising energy with couplings ``J``); batches over leading axes."""
        return -0.5 * jnp.einsum("...i,ij,...j->...", state, self.couplings, state)

    def update_site(self, state: Array, site) -> Array:
        """``s_i <- sign(sum_j J_ij s_j)`` at one ``site`` (a tie keeps ``s_i``)."""
        field = self.couplings[site] @ state
        return state.at[site].set(_sign_or_keep(field, state[site]))

    def synchronous_update(self, state: Array) -> Array:
        """Every site at once: ``s <- sign(J s)``."""
        return _sign_or_keep(state @ self.couplings, state)

    def asynchronous_sweep(self, state: Array, key: PRNGKeyArray) -> Array:
        """Every site once, one at a time, in a random order."""
        order = jax.random.permutation(key, self.neurons)
        return jax.lax.fori_loop(0, self.neurons, lambda n, s: self.update_site(s, order[n]), state)

    def retrieve(self, probe: Array, key: PRNGKeyArray, *, sweeps: int = 20, mode: str = "asynchronous"):
        """Run the dynamics from ``probe`` (``(N,)``) until a sweep changes nothing or ``sweeps`` sweeps
        have run. ``mode`` is ``"asynchronous"`` or ``"synchronous"``. Returns ``(state, sweeps_run)``.
        """
        if mode not in ("asynchronous", "synchronous"):
            raise ValueError(f"`mode` must be 'asynchronous' or 'synchronous', got {mode!r}")
        if not isinstance(sweeps, int) or sweeps < 1:
            raise ValueError(f"`sweeps` must be a positive integer, got {sweeps!r}")
        if probe.shape != (self.neurons,):
            raise ValueError(f"`probe` must have shape ({self.neurons},), got {probe.shape}")

        def step(carry):
            s, _, n, k = carry
            k, sub = jax.random.split(k)
            new = self.asynchronous_sweep(s, sub) if mode == "asynchronous" else self.synchronous_update(s)
            return new, jnp.any(new != s), n + 1, k

        def going(carry):
            return carry[1] & (carry[2] < sweeps)

        state, _, ran, _ = jax.lax.while_loop(going, step, (probe, jnp.array(True), jnp.array(0), key))
        return state, ran


class ModernHopfield(eqx.Module):
    """The modern (continuous) Hopfield network of stored ``patterns`` (rows, ``(P, d)``) at inverse
    temperature ``beta``.

    Example:
        >>> x = jnp.eye(3)
        >>> net = ModernHopfield(x, beta=50.0)
        >>> bool(jnp.allclose(net.update(jnp.array([0.9, 0.2, 0.1])), x[0], atol=1e-6))
        True
    """

    patterns: Array
    beta: Array  # a scalar array: it may be traced (a sweep over beta compiles once) or learned

    def __init__(self, patterns, beta=1.0):
        patterns, beta = jnp.asarray(patterns, jnp.float32), jnp.asarray(beta, jnp.float32)
        if patterns.ndim != 2 or patterns.shape[0] == 0:
            raise ValueError(f"`patterns` must have shape (P, d) with P >= 1, got {patterns.shape}")
        if beta.shape != ():
            raise ValueError(f"`beta` must be a scalar, got shape {beta.shape}")
        # Values are checked when concrete (not while traced inside a jitted function).
        if not isinstance(patterns, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(patterns))):
            raise ValueError("`patterns` must be finite (found NaN or inf)")
        if not isinstance(beta, jax.core.Tracer) and not (float(beta) > 0 and np.isfinite(float(beta))):
            raise ValueError(f"`beta` must be positive and finite, got {float(beta)!r}")
        self.patterns, self.beta = patterns, beta

    def _check_state(self, state: Array) -> None:
        if state.shape[-1:] != self.patterns.shape[1:]:
            size = self.patterns.shape[1]
            raise ValueError(f"state must end in the pattern size {size}, got shape {state.shape}")

    def attention(self, state: Array) -> Array:
        """``softmax(beta X^T xi)``: the weight of every stored pattern, ``(..., P)``."""
        self._check_state(state)
        return jax.nn.softmax(self.beta * state @ self.patterns.T, axis=-1)

    def update(self, state: Array) -> Array:
        """``xi <- X softmax(beta X^T xi)``; batches over leading axes of ``state`` (``(..., d)``)."""
        return self.attention(state) @ self.patterns

    def energy(self, state: Array) -> Array:
        """``E(xi) = -lse(beta, X^T xi) + 1/2 xi^T xi + beta^-1 log P + 1/2 M^2`` (Ramsauer et al.
        eq. 2); ``E >= 0``, and :meth:`update` never raises it."""
        self._check_state(state)
        scores = state @ self.patterns.T
        lse = jax.nn.logsumexp(self.beta * scores, axis=-1) / self.beta
        largest = jnp.max(jnp.sum(self.patterns**2, axis=-1))
        count = self.patterns.shape[0]
        return -lse + 0.5 * jnp.sum(state**2, axis=-1) + jnp.log(count) / self.beta + 0.5 * largest
