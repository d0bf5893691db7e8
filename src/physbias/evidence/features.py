"""Basis functions ``phi(x)`` for Bayesian linear models, and their symmetrised versions (seed 003).

A basis is an ``equinox.Module`` mapping one input ``x`` of shape ``(d,)`` to ``(M,)`` features.
Its fixed random draws (frequencies, phases, centres) are held with ``stop_gradient``, so that
type-II maximum likelihood (:func:`physbias.evidence.evidence_loss` with :func:`physbias.fit`) moves
only the hyperparameters: the frequency scale ``log_omega2`` and a symmetry's ``strength``.

- :class:`RandomFourierFeatures`: ``phi_m(x) = sqrt(2/M) cos(omega w_m . x + b_m)``,
  ``w_m ~ N(0, I)``, ``b_m ~ U[0, 2 pi)`` (Rahimi & Recht 2007): ``phi(x) . phi(x')`` approximates
  the RBF kernel ``exp(-omega^2 |x - x'|^2 / 2)``, so ``omega^2`` is an inverse squared lengthscale.
- :class:`RBFFeatures`: ``phi_m(x) = exp(-omega^2 |x - c_m|^2 / 2)`` at fixed centres ``c_m``.
- :class:`SymmetrizedFeatures`: ``phi_G(x) = (1/|G|) sum_g phi(g . x)``, exactly ``G``-invariant,
  for any finite symmetry of :mod:`physbias.bias` (parity, permutations, a finite matrix group).
- :class:`InterpolatedFeatures`: ``phi_lambda = (1 - lambda) phi + lambda phi_G``; for parity
  ``(1 - lambda/2) phi(x) + (lambda/2) phi(-x)`` (seed 003): ``lambda = 0`` plain, ``1`` invariant,
  ``2`` the mirrored basis ``phi(-x)``. ``lambda`` is learned by the evidence.
"""

from __future__ import annotations

import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..bias.symmetry import AbstractSymmetry, require_symmetry


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"`{name}` must be a positive number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be positive and finite, got {value!r}")
    return float(value)


def _check_point(x: Array, d: int, owner: str) -> None:
    if x.shape != (d,):
        raise ValueError(
            f"{owner}: one input must have shape ({d},), got {x.shape}; use jax.vmap for a batch"
        )


class RandomFourierFeatures(eqx.Module):
    """``M`` random Fourier features of a ``d``-dimensional input, frequency scale ``omega^2``.

    Args:
        in_size: input dimension ``d``.
        n_features: ``M``.
        omega2: initial ``omega^2`` (learnable as ``log_omega2``).
        key: PRNG key of the fixed draws.
        dtype: float dtype of the draws (float64 under ``jax.enable_x64`` for exact evidence).

    Input ``(d,)``, output ``(M,)``.
    """

    frequencies: Float[Array, "M d"]
    phases: Float[Array, " M"]
    log_omega2: Float[Array, ""]

    def __init__(self, in_size: int, n_features: int, omega2: float = 1.0, *, key: PRNGKeyArray, dtype=None):
        for name, v in (("in_size", in_size), ("n_features", n_features)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
                raise ValueError(f"RandomFourierFeatures: `{name}` must be a positive integer, got {v!r}")
        omega2 = _positive(omega2, "omega2")
        dtype = jnp.result_type(float) if dtype is None else dtype
        kw, kb = jax.random.split(key)
        self.frequencies = jax.random.normal(kw, (n_features, in_size), dtype)
        self.phases = jax.random.uniform(kb, (n_features,), dtype, 0.0, 2 * math.pi)
        self.log_omega2 = jnp.asarray(math.log(omega2), dtype)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " M"]:
        _check_point(x, self.frequencies.shape[1], "RandomFourierFeatures")
        w, b = jax.lax.stop_gradient(self.frequencies), jax.lax.stop_gradient(self.phases)
        omega = jnp.exp(0.5 * self.log_omega2)
        return jnp.sqrt(2.0 / w.shape[0]).astype(x.dtype) * jnp.cos(omega * (w @ x) + b)


class RBFFeatures(eqx.Module):
    """Gaussian bumps ``phi_m(x) = exp(-omega^2 |x - c_m|^2 / 2)`` at fixed centres ``(M, d)``.

    Input ``(d,)``, output ``(M,)``; ``log_omega2`` is learnable.
    """

    centres: Float[Array, "M d"]
    log_omega2: Float[Array, ""]

    def __init__(self, centres: Float[Array, "M d"], omega2: float = 1.0):
        centres = jnp.asarray(centres)
        if centres.ndim != 2 or centres.shape[0] == 0:
            raise ValueError(f"RBFFeatures: `centres` must have shape (M, d) with M > 0, got {centres.shape}")
        if not bool(jnp.all(jnp.isfinite(centres))):
            raise ValueError("RBFFeatures: `centres` contains NaN or inf")
        self.centres = centres
        self.log_omega2 = jnp.asarray(math.log(_positive(omega2, "omega2")), centres.dtype)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " M"]:
        _check_point(x, self.centres.shape[1], "RBFFeatures")
        c = jax.lax.stop_gradient(self.centres)
        return jnp.exp(-0.5 * jnp.exp(self.log_omega2) * jnp.sum((x[None, :] - c) ** 2, axis=-1))


def _finite_symmetry(symmetry, owner: str) -> AbstractSymmetry:
    symmetry = require_symmetry(symmetry, owner)
    if not symmetry.is_finite:
        raise ValueError(f"{owner} needs a finite symmetry to average over, got {symmetry!r}")
    return symmetry


def _group_average(features, symmetry: AbstractSymmetry, x: Array) -> Array:
    g0 = jax.tree_util.tree_map(lambda e: e[0], symmetry.elements())
    moved = jax.eval_shape(symmetry.act_input, g0, x)
    if moved.shape != x.shape:  # shapes are static: checked at trace time, before any work
        raise ValueError(
            f"{symmetry!r} maps an input of shape {x.shape} to shape {moved.shape}; the symmetry of a "
            "basis must act on the basis' inputs"
        )
    return jnp.mean(jax.vmap(lambda g: features(symmetry.act_input(g, x)))(symmetry.elements()), axis=0)


class SymmetrizedFeatures(eqx.Module):
    """``phi_G(x) = (1/|G|) sum_{g in G} phi(g . x)``: every function ``w . phi_G`` is G-invariant.

    ``symmetry`` is any finite symmetry (its action on inputs is used; features are invariant).
    Input and output as ``features``.
    """

    features: Any
    symmetry: AbstractSymmetry

    def __check_init__(self):
        _finite_symmetry(self.symmetry, "SymmetrizedFeatures")

    def __call__(self, x: Array) -> Array:
        return _group_average(self.features, self.symmetry, x)


class InterpolatedFeatures(eqx.Module):
    """``phi_lambda(x) = (1 - lambda) phi(x) + lambda phi_G(x)`` with a learnable ``strength`` lambda.

    For parity this is seed 003's ``(1 - lambda/2) phi(x) + (lambda/2) phi(-x)``: lambda = 0 is the
    plain basis, 1 the symmetric one, 2 the mirrored one. Lambda is kept in ``(0, 2)`` as
    ``2 sigmoid(logit)`` (``logit`` is what is learned): outside that range the basis is no longer
    an interpolation, and the evidence of non-symmetric data would push it without bound.
    """

    features: Any
    symmetry: AbstractSymmetry
    logit: Float[Array, ""]

    def __init__(self, features, symmetry: AbstractSymmetry, strength: float = 0.5):
        self.features = features
        self.symmetry = _finite_symmetry(symmetry, "InterpolatedFeatures")
        if isinstance(strength, bool) or not isinstance(strength, (int, float, np.floating)):
            raise TypeError(f"InterpolatedFeatures: `strength` must be a number in (0, 2), got {strength!r}")
        if not 0 < strength < 2:
            raise ValueError(f"InterpolatedFeatures: `strength` must lie in (0, 2), got {strength!r}")
        dtype = jax.tree_util.tree_leaves(eqx.filter(features, eqx.is_inexact_array))
        p = strength / 2
        self.logit = jnp.asarray(math.log(p / (1 - p)), dtype[0].dtype if dtype else jnp.result_type(float))

    @property
    def strength(self) -> Float[Array, ""]:
        """lambda in (0, 2)."""
        return 2 * jax.nn.sigmoid(self.logit)

    def __call__(self, x: Array) -> Array:
        lam = self.strength.astype(x.dtype)
        return (1 - lam) * self.features(x) + lam * _group_average(self.features, self.symmetry, x)
