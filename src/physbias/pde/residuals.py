"""PDE residuals of a field network ``u(z)``, ``z`` one point of the domain (shape ``(d,)``).

Derivatives are forward mode: ``du/dz_i`` by ``jax.jvp`` along the unit vector ``e_i``, and
``d2u/dz_i^2`` by a ``jvp`` of that ``jvp`` (forward-over-forward: one extra pass per derivative, no
Hessian is formed). Batch the residual with ``jax.vmap``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

Field = Callable[[Float[Array, " d"]], Float[Array, ""]]


def _basis(z: Array, i: int) -> Array:
    return jnp.zeros_like(z).at[i].set(1.0)


def derivative(u: Field, z: Array, i: int) -> tuple[Array, Array]:
    """``(u(z), du/dz_i)`` by one forward-mode pass."""
    return jax.jvp(u, (z,), (_basis(z, i),))


def second_derivative(u: Field, z: Array, i: int) -> Array:
    """``d2u/dz_i^2`` (forward over forward)."""
    e = _basis(z, i)
    return jax.jvp(lambda y: jax.jvp(u, (y,), (e,))[1], (z,), (e,))[1]


def burgers_residual(u: Field, z: Float[Array, " 2"], viscosity: float, x: int = 0, t: int = 1) -> Array:
    """``u_t + u u_x - nu u_xx`` at ``z`` (``x``, ``t``: the indices of position and time)."""
    if not (isinstance(viscosity, (int, float)) and math.isfinite(viscosity) and viscosity > 0):
        raise ValueError(f"`viscosity` must be a positive number, got {viscosity!r}")
    value, u_x = derivative(u, z, x)
    _, u_t = derivative(u, z, t)
    return u_t + value * u_x - viscosity * second_derivative(u, z, x)


def laplace_residual(u: Field, z: Float[Array, " d"]) -> Array:
    """``sum_i d2u/dz_i^2`` (the Laplacian) at ``z``."""
    return sum(second_derivative(u, z, i) for i in range(z.shape[0]))


def heat_residual(u: Field, z: Float[Array, " d"], diffusivity: float, t: int = -1) -> Array:
    """``u_t - kappa sum_{i != t} d2u/dz_i^2`` (time is coordinate ``t``, by default the last)."""
    if not (isinstance(diffusivity, (int, float)) and math.isfinite(diffusivity) and diffusivity > 0):
        raise ValueError(f"`diffusivity` must be a positive number, got {diffusivity!r}")
    d = z.shape[0]
    t = t % d
    _, u_t = derivative(u, z, t)
    return u_t - diffusivity * sum(second_derivative(u, z, i) for i in range(d) if i != t)
