"""Hard boundary and initial conditions: ``u(z) = g(z) + D(z) N(z)``, with ``g`` meeting the
conditions and ``D`` vanishing where they are imposed, so that they hold for every network ``N``
(Lagaris, Likas & Fotiadis 1998). The soft alternative adds them to the loss as penalties."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class HardConstraintField(eqx.Module):
    """``u(z) = particular(z) + distance(z) * net(z)``.

    Args:
        net: any ``z -> scalar`` network (e.g. ``eqx.nn.MLP(d, "scalar", ...)``).
        particular: ``g``, a fixed function meeting the conditions.
        distance: ``D``, zero exactly on the constrained set and nonzero inside.
    """

    net: Any
    particular: Callable[[Array], Array] = eqx.field(static=True)
    distance: Callable[[Array], Array] = eqx.field(static=True)

    def __call__(self, z: Float[Array, " d"]) -> Float[Array, ""]:
        return self.particular(z) + self.distance(z) * jnp.reshape(self.net(z), ())


def burgers_initial(z: Array) -> Array:
    """``g(x, t) = -sin(pi x)``: the Burgers benchmark's initial condition (zero on the walls)."""
    return -jnp.sin(jnp.pi * z[0])


def burgers_distance(z: Array) -> Array:
    """``D(x, t) = t (1 - x^2)``: zero at ``t = 0`` and on the walls ``x = +-1``."""
    return z[1] * (1.0 - z[0] ** 2)


def burgers_hard_field(net) -> HardConstraintField:
    """``u = -sin(pi x) + t (1 - x^2) N(x, t)``: meets ``u(0, x) = -sin(pi x)`` and
    ``u(t, +-1) = 0`` exactly, whatever ``N``."""
    return HardConstraintField(net, burgers_initial, burgers_distance)


def chebyshev_t(k: int, x: Array) -> Array:
    """The Chebyshev polynomial ``T_k(x)`` by ``T_{n+1} = 2 x T_n - T_{n-1}``; on the unit circle
    ``T_k(cos theta) = cos(k theta)``."""
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"`k` must be a non-negative integer, got {k!r}")
    t_prev, t = jnp.ones_like(x), x
    if k == 0:
        return t_prev
    for _ in range(k - 1):
        t_prev, t = t, 2 * x * t - t_prev
    return t


def laplace_disk_hard_field(net, order: int) -> HardConstraintField:
    """``u = T_k(x) + (1 - x^2 - y^2) N(x, y)`` on the unit disk: meets ``u = cos(k theta)`` on the
    circle exactly. ``T_k(x)`` is not harmonic for ``k >= 2``, so ``N`` has work to do."""
    return HardConstraintField(net, lambda z: chebyshev_t(order, z[0]), lambda z: 1.0 - z[0] ** 2 - z[1] ** 2)


def _square_particular(z: Array) -> Array:
    return z[1] * jnp.sin(jnp.pi * z[0])


def _square_distance(z: Array) -> Array:
    return z[0] * (1 - z[0]) * z[1] * (1 - z[1])


def laplace_square_hard_field(net) -> HardConstraintField:
    """``u = y sin(pi x) + x (1 - x) y (1 - y) N(x, y)`` on ``[0, 1]^2``: meets ``u = sin(pi x)`` on
    the top side and ``u = 0`` on the other three exactly."""
    return HardConstraintField(net, _square_particular, _square_distance)
