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
