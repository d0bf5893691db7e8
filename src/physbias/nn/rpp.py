"""Residual pathway priors (Finzi, Benton & Wilson 2021; seed 004): soft equivariance.

Every linear layer of an :class:`~physbias.nn.emlp.EMLP` becomes ``W = A + B``: ``A`` in the
equivariant subspace (an :class:`~physbias.nn.emlp.EquivariantLinear`) and ``B`` an unconstrained
``equinox.nn.Linear``. The prior is Gaussian on both, with a much smaller variance on the
flexible path, i.e. the MAP loss gets the penalty

.. math:: \\lambda_A \\sum \\|a\\|^2 + \\lambda_B \\sum \\|B\\|^2, \\qquad \\lambda_B \\gg \\lambda_A,

so the model is equivariant unless the data pay for the deviation. With exact symmetry it stays
close to the EMLP; with a broken symmetry ``B`` picks up the residual.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..bias import AbstractBias
from ..groups.groups import Group
from ..groups.representations import Rep
from .emlp import EMLP, EquivariantLinear


class ResidualPathway(eqx.Module):
    """``x -> equivariant(x) + flexible(x)``; the flexible path starts at zero, so a fresh layer
    is exactly equivariant."""

    equivariant: EquivariantLinear
    flexible: eqx.nn.Linear

    def __init__(self, equivariant: EquivariantLinear, *, key: PRNGKeyArray):
        n_in, n_out = equivariant.rep_in.size(equivariant.G), equivariant.rep_out.size(equivariant.G)
        flexible = eqx.nn.Linear(n_in, n_out, key=key)
        self.equivariant = equivariant
        self.flexible = eqx.tree_at(
            lambda lin: (lin.weight, lin.bias), flexible, (jnp.zeros((n_out, n_in)), jnp.zeros(n_out))
        )

    def __call__(self, x: Array) -> Array:
        return self.equivariant(x) + self.flexible(x)


def rpp_emlp(
    rep_in: Rep,
    rep_out: Rep,
    G: Group,
    width: int = 384,
    depth: int = 3,
    *,
    key: PRNGKeyArray,
    max_rank: int = 2,
) -> EMLP:
    """An :class:`EMLP` whose linear layers (the blocks' and the head) are :class:`ResidualPathway`s.
    The bilinear layers and gates stay equivariant. With the same ``key`` it starts as exactly the
    ``EMLP(rep_in, rep_out, G, width, depth, key=key)`` (the flexible paths start at zero), so the
    two can be compared pairwise."""
    model = EMLP(rep_in, rep_out, G, width, depth, key=key, max_rank=max_rank)
    keys = jax.random.split(jax.random.fold_in(key, 1), depth + 1)
    for i in range(depth):
        model = eqx.tree_at(
            lambda m, i=i: m.blocks[i].linear, model, ResidualPathway(model.blocks[i].linear, key=keys[i])
        )
    return eqx.tree_at(lambda m: m.head, model, ResidualPathway(model.head, key=keys[-1]))


def _pathways(model) -> list[ResidualPathway]:
    leaves = jax.tree_util.tree_leaves(model, is_leaf=lambda x: isinstance(x, ResidualPathway))
    return [leaf for leaf in leaves if isinstance(leaf, ResidualPathway)]


def _sum_squares(tree) -> Array:
    return sum(
        (jnp.sum(x**2) for x in jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))),
        jnp.zeros(()),
    )


def rpp_penalty(model, equivariant: float = 1e-5, flexible: float = 1.0) -> Array:
    """``equivariant * sum ||A coefficients||^2 + flexible * sum ||B||^2`` over every
    :class:`ResidualPathway` in ``model`` (the negative log of the two Gaussian priors, up to a
    constant). Both weights must be >= 0."""
    if equivariant < 0 or flexible < 0:
        raise ValueError(
            f"rpp_penalty: weights must be >= 0, got equivariant={equivariant}, flexible={flexible}"
        )
    total = jnp.zeros(())
    for p in _pathways(model):
        total = (
            total + equivariant * _sum_squares(p.equivariant.weights) + flexible * _sum_squares(p.flexible)
        )
    return total


def flexible_fraction(model) -> float:
    """``sum ||B||_F / (sum ||A||_F + sum ||B||_F)`` over the pathways' dense weights: how much of
    the model's linear maps lies outside the equivariant subspace (0 = exactly equivariant)."""
    a = b = 0.0
    for p in _pathways(model):
        a += float(jnp.linalg.norm(p.equivariant.weight_matrix()))
        b += float(jnp.linalg.norm(p.flexible.weight))
    return b / (a + b) if a + b else 0.0


class RPPPrior(AbstractBias):
    """The residual pathway prior as a loss term: ``penalty(model, x, y, key) -> rpp_penalty(model)``.

    For :func:`physbias.supervised_loss` (a learning bias on the weights: soft equivariance).
    """

    equivariant: float = eqx.field(static=True)
    flexible: float = eqx.field(static=True)
    kind: ClassVar[str] = "learning"
    hard: ClassVar[bool] = False

    def __init__(self, equivariant: float = 1e-5, flexible: float = 1.0):
        if equivariant < 0 or flexible < 0:
            raise ValueError(
                f"RPPPrior: weights must be >= 0, got equivariant={equivariant}, flexible={flexible}"
            )
        self.equivariant, self.flexible = float(equivariant), float(flexible)

    def __call__(self, model, x, y, key) -> Array:
        del x, y, key
        return rpp_penalty(model, self.equivariant, self.flexible)

    def __repr__(self) -> str:
        return f"RPPPrior(equivariant={self.equivariant:g}, flexible={self.flexible:g})"
