"""Permutation symmetry: DeepSets (invariant) and interaction networks (equivariant) (seed 000).

A set of ``n`` objects with ``d`` features each is an array ``(n, d)`` whose row order carries no
meaning. :class:`DeepSets` sums per-element features before anything else, so its output does not
depend on the order; :class:`InteractionNetwork` passes messages along the edges of a graph and
updates every node with the same functions, so permuting the nodes permutes its output.

References: M. Zaheer et al., "Deep Sets", NeurIPS 2017; P. Battaglia et al., "Interaction
Networks for Learning about Objects, Relations and Physics", NeurIPS 2016, and "Relational
inductive biases, deep learning, and graph networks", arXiv:1806.01261 (2018).
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def _check_set(x, size: int, who: str) -> None:
    shape = getattr(x, "shape", None)
    if shape is None or len(shape) != 2 or shape[1] != size or shape[0] < 1:
        raise ValueError(f"{who}: input must have shape (n, {size}) with n >= 1, got {shape}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        low = 0 if name == "depth" else 1
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}")


def _check_aggregation(aggregation: str) -> None:
    if aggregation not in ("sum", "mean"):
        raise ValueError(f"`aggregation` must be 'sum' or 'mean', got {aggregation!r}")


class DeepSets(eqx.Module):
    """Permutation-invariant function of a set: ``rho(sum_i phi(x_i))``.

    .. math:: f(\\{x_1, \\dots, x_n\\}) = \\rho\\Big(\\sum_{i=1}^n \\phi(x_i)\\Big)

    ``phi`` and ``rho`` are :class:`equinox.nn.MLP`. The sum (or mean, ``aggregation="mean"``) is
    the only place where elements meet, so ``f(P x) = f(x)`` for every permutation ``P`` exactly
    (up to the rounding of the sum's order). Sets of any size ``n >= 1`` are accepted.

    Args:
        in_size: features per element ``d``.
        out_size: size of the output.
        width: hidden width of both MLPs.
        depth: hidden layers of both MLPs.
        latent_size: size of ``phi(x_i)`` (default ``width``).
        aggregation: ``"sum"`` or ``"mean"``.
        activation: hidden activation of both MLPs.
        key: PRNG key.

    Input ``(n, in_size)``; output ``(out_size,)``.

    Raises:
        ValueError: bad sizes or aggregation, or (when called) a wrong input shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = DeepSets(3, 2, width=16, depth=1, key=jax.random.key(0))
        >>> x = jax.random.normal(jax.random.key(1), (5, 3))
        >>> bool(jnp.allclose(model(x), model(x[::-1]), atol=1e-5))
        True
    """

    phi: eqx.nn.MLP
    rho: eqx.nn.MLP
    in_size: int = eqx.field(static=True)
    aggregation: str = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width: int = 64,
        depth: int = 2,
        latent_size: int | None = None,
        *,
        aggregation: str = "sum",
        activation: Callable = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        latent_size = width if latent_size is None else latent_size
        _check_sizes(in_size=in_size, out_size=out_size, width=width, depth=depth, latent_size=latent_size)
        _check_aggregation(aggregation)
        kphi, krho = jax.random.split(key)
        self.phi = eqx.nn.MLP(in_size, latent_size, width, depth, activation=activation, key=kphi)
        self.rho = eqx.nn.MLP(latent_size, out_size, width, depth, activation=activation, key=krho)
        self.in_size, self.aggregation = in_size, aggregation

    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, " out"]:
        _check_set(x, self.in_size, "DeepSets")
        latent = jax.vmap(self.phi)(x)
        pooled = jnp.sum(latent, axis=0) if self.aggregation == "sum" else jnp.mean(latent, axis=0)
        return self.rho(pooled)


class _Round(eqx.Module):
    """One round of message passing: edge MLP ``phi_e(x_i, x_j)`` and node MLP ``phi_v(x_i, m_i)``."""

    edge: eqx.nn.MLP
    node: eqx.nn.MLP

    def __call__(self, x: Float[Array, "n d"], weights: Float[Array, "n n"]) -> Float[Array, "n e"]:
        n = x.shape[0]
        receivers = jnp.broadcast_to(x[:, None, :], (n, n, x.shape[1]))
        senders = jnp.broadcast_to(x[None, :, :], (n, n, x.shape[1]))
        pairs = jnp.concatenate([receivers, senders], axis=-1)
        messages = jax.vmap(jax.vmap(self.edge))(pairs)  # m_ij, receiver i, sender j
        incoming = jnp.sum(weights[:, :, None] * messages, axis=1)
        return jax.vmap(self.node)(jnp.concatenate([x, incoming], axis=-1))


class InteractionNetwork(eqx.Module):
    """Permutation-equivariant message passing on a graph (an interaction network).

    Each of ``rounds`` rounds computes, for every receiver ``i``,

    .. math:: m_i = \\sum_j A_{ij}\\, \\phi_e(x_i, x_j), \\qquad x_i' = \\phi_v(x_i, m_i)

    with ``A`` the adjacency matrix (default: the complete graph without self-loops,
    ``A = 1 - I``). Every node and edge uses the same MLPs, so for a permutation matrix ``P``:
    ``net(P x, P A P^T) = P net(x, A)``. The optional readout
    ``readout(x) = psi(sum_i net(x)_i)`` is then invariant, like :class:`DeepSets`.

    Args:
        in_size: node features ``d``.
        out_size: node features after the last round.
        width: hidden width of every MLP (and node size between rounds).
        depth: hidden layers of every MLP.
        rounds: message-passing rounds (>= 1), each with its own MLPs.
        message_size: size of the messages (default ``width``).
        readout_size: output size of the invariant readout; None builds none.
        activation: hidden activation of every MLP.
        key: PRNG key.

    Input ``(n, in_size)`` and optionally an adjacency ``(n, n)`` (edge weights, ``A[i, j]`` from
    sender ``j`` to receiver ``i``); output ``(n, out_size)``.

    Raises:
        ValueError: bad sizes, or (when called) wrong input or adjacency shapes; :meth:`readout`
            without ``readout_size``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> net = InteractionNetwork(2, 3, width=8, depth=1, rounds=2, key=jax.random.key(0))
        >>> x = jax.random.normal(jax.random.key(1), (4, 2))
        >>> perm = jnp.array([2, 0, 3, 1])
        >>> bool(jnp.allclose(net(x[perm]), net(x)[perm], atol=1e-5))
        True
    """

    layers: tuple[_Round, ...]
    readout_mlp: eqx.nn.MLP | None
    in_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        width: int = 64,
        depth: int = 2,
        rounds: int = 2,
        message_size: int | None = None,
        readout_size: int | None = None,
        *,
        activation: Callable = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        message_size = width if message_size is None else message_size
        _check_sizes(
            in_size=in_size,
            out_size=out_size,
            width=width,
            depth=depth,
            rounds=rounds,
            message_size=message_size,
        )
        if readout_size is not None:
            _check_sizes(readout_size=readout_size)
        keys = jax.random.split(key, 2 * rounds + 1)
        sizes = [in_size] + [width] * (rounds - 1) + [out_size]
        self.layers = tuple(
            _Round(
                eqx.nn.MLP(2 * a, message_size, width, depth, activation=activation, key=keys[2 * t]),
                eqx.nn.MLP(a + message_size, b, width, depth, activation=activation, key=keys[2 * t + 1]),
            )
            for t, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
        )
        self.readout_mlp = (
            None
            if readout_size is None
            else eqx.nn.MLP(out_size, readout_size, width, depth, activation=activation, key=keys[-1])
        )
        self.in_size = in_size

    def _weights(self, x: Array, adjacency) -> Array:
        n = x.shape[0]
        if adjacency is None:
            return 1.0 - jnp.eye(n, dtype=x.dtype)
        shape = getattr(adjacency, "shape", None)
        if shape is None or tuple(shape) != (n, n):
            raise ValueError(f"InteractionNetwork: `adjacency` must have shape ({n}, {n}), got {shape}")
        return jnp.asarray(adjacency, dtype=x.dtype)

    def __call__(self, x: Float[Array, "n d"], adjacency: Float[Array, "n n"] | None = None) -> Array:
        _check_set(x, self.in_size, "InteractionNetwork")
        weights = self._weights(x, adjacency)
        h = x
        for layer in self.layers:
            h = layer(h, weights)
        return h

    def readout(self, x: Float[Array, "n d"], adjacency: Float[Array, "n n"] | None = None) -> Array:
        """Permutation-invariant output ``psi(sum_i net(x, A)_i)``, shape ``(readout_size,)``."""
        if self.readout_mlp is None:
            raise ValueError("InteractionNetwork.readout needs a model built with `readout_size`")
        return self.readout_mlp(jnp.sum(self(x, adjacency), axis=0))


__all__ = ["DeepSets", "InteractionNetwork"]
