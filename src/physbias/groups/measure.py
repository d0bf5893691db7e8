"""Measuring equivariance (M15): sampled equivariance error and the Lie derivative.

For ``f: rep_in -> rep_out`` and a Lie-algebra generator ``A`` the Lie derivative is

.. math:: (L_A f)(x) = \\frac{d}{dt}\\Big|_{t=0} \\rho_{out}(e^{-tA}) f(\\rho_{in}(e^{tA}) x)
          = J_f(x)\\, d\\rho_{in}(A) x - d\\rho_{out}(A) f(x),

computed with one JVP. It vanishes for every ``A`` iff ``f`` is equivariant under the identity
component. Its size is reported as the Euclidean norm ``|L_A f(x)|_2`` per input (no
normalisation by ``|f(x)|`` or ``|A|``: the generators are the group's basis as stored).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .groups import Group
from .representations import Rep


def _check_inputs(rep_in: Rep, G: Group, inputs) -> np.ndarray:
    x = np.asarray(inputs)
    n = rep_in.size(G)
    if x.ndim != 2 or x.shape[1] != n:
        raise ValueError(f"`inputs` must have shape (batch, {n}) for rep_in {rep_in!r} of {G}, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("`inputs` contains NaN or inf")
    return x


def relative_equivariance_error(left, right) -> float:
    """The one normalisation of every equivariance measure in physbias (EMLP's convention):

    .. math:: \\frac{\\|L - R\\|_F}{\\|L\\|_F + \\|R\\|_F}, \\qquad L = F(g \\cdot X), \\ R = \\rho(g) F(X)

    with Frobenius norms over the whole batch (so one input with a near-zero output does not
    dominate); computed in float64. 0 is exact equivariance, 1 the worst possible.
    """
    left = np.asarray(left, np.float64).ravel()
    right = np.asarray(right, np.float64).ravel()
    if left.shape != right.shape:
        raise ValueError(f"F(g.X) has {left.size} entries but rho(g) F(X) has {right.size}")
    scale = np.linalg.norm(left) + np.linalg.norm(right)
    return float(np.linalg.norm(left - right) / max(scale, 1e-30))


def equivariance_error(
    f: Callable, rep_in: Rep, rep_out: Rep, G: Group, inputs, *, n_elements: int = 8, seed: int = 0
) -> float:
    """Relative equivariance error of a map between representations of a matrix group, the worst
    over ``n_elements`` sampled ``g`` (the normalisation of :func:`relative_equivariance_error`,
    shared with :func:`physbias.metrics.equivariance_error` for any symmetry):

    .. math:: \\max_g \\frac{\\|F(\\rho_{in}(g) X) - \\rho_{out}(g) F(X)\\|_F}
              {\\|F(\\rho_{in}(g) X)\\|_F + \\|\\rho_{out}(g) F(X)\\|_F}

    with ``X`` the batch of ``inputs`` ``(batch, size_in)`` and Frobenius norms over the whole
    batch (so one input with a near-zero output does not dominate). ``f`` maps one input vector
    to one output vector; it is vmapped, jitted and evaluated in float32; ``rho`` in float64.
    """
    x = _check_inputs(rep_in, G, inputs)
    fx = np.asarray(_batched(f, jnp.asarray(x, jnp.float32)), np.float64).reshape(len(x), -1)
    worst = 0.0
    for g in G.sample(np.random.default_rng(seed), n_elements):
        rin, rout = rep_in.rho(G, g), rep_out.rho(G, g)
        left = np.asarray(_batched(f, jnp.asarray(x @ rin.T, jnp.float32)), np.float64).reshape(len(x), -1)
        worst = max(worst, relative_equivariance_error(left, fx @ rout.T))
    return worst


@eqx.filter_jit
def _batched(f, x):
    return jax.vmap(f)(x)


def lie_derivative(f: Callable, rep_in: Rep, rep_out: Rep, G: Group, A, inputs) -> jax.Array:
    """``L_A f`` at each input, shape ``(batch, size_out)`` (see the module docstring)."""
    x = _check_inputs(rep_in, G, inputs)
    A = np.asarray(A, dtype=float)
    if A.shape != (G.d, G.d):
        raise ValueError(f"`A` must be a ({G.d}, {G.d}) Lie-algebra element of {G}, got {A.shape}")
    dtype = jnp.result_type(float)
    d_in = jnp.asarray(rep_in.drho(G, A), dtype)
    d_out = jnp.asarray(rep_out.drho(G, A), dtype)

    def one(x):
        fx, jvp = jax.jvp(f, (x,), (d_in @ x,))
        return jvp - d_out @ fx

    return jax.vmap(one)(jnp.asarray(x, dtype))
