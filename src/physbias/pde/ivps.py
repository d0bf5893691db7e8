"""Initial value problems ``u_t = L[u]`` on the box ``[-1, 1]^d`` with ``u = 0`` on its boundary and
exact solutions, for :func:`~physbias.pde.neural_ivp` (Finzi, Potapczynski, Choptuik & Wilson 2023,
"A Stable and Scalable Method for Solving Initial Value Problems with Neural Networks", ICLR).

- Advection ``u_t = -c . grad u`` of a Gaussian bump: exact ``u(x, t) = u0(x - c t)``; the bump is
  narrow and starts far enough from the walls that it stays below ``1e-6`` there up to ``t_end``, so
  the zero boundary holds to that accuracy.
- Heat ``u_t = kappa lap u`` of a product of sine modes ``prod_i sin(k_i pi (x_i + 1) / 2)``: exact
  ``u(x, t) = exp(-kappa pi^2 |k|^2 t / 4) u0(x)``, zero on the walls exactly.

An IVP is data: ``dim``, ``initial(x)``, ``rhs(u, x)`` (the operator ``L`` applied to a field
``u: R^d -> R`` at one point, by forward-mode derivatives) and ``exact(x, t)``; ``IVPS`` names the
built-in ones and :func:`get_ivp` looks them up.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .residuals import Field, derivative, second_derivative


class AbstractIVP(eqx.Module):
    """``u_t = rhs(u, x)`` on ``[-1, 1]^dim``, ``u = 0`` on the walls, ``u(x, 0) = initial(x)``."""

    # Subclasses hold ``t_end``, the end of the benchmark's time interval.

    @property
    def dim(self) -> int:
        raise NotImplementedError

    def initial(self, x: Float[Array, " d"]) -> Array:
        return self.exact(x, 0.0)

    def rhs(self, u: Field, x: Float[Array, " d"]) -> Array:
        raise NotImplementedError

    def exact(self, x: Float[Array, " d"], t) -> Array:
        raise NotImplementedError


def _check_positive(name: str, value) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"`{name}` must be a positive number, got {value!r}")
    return float(value)


class Advection(AbstractIVP):
    """``u_t = -c . grad u``, ``u0 = exp(-|x - x0|^2 / (2 sigma^2))``; exact ``u0(x - c t)``.

    Example (the 2-D benchmark): ``Advection(velocity=(0.8, 0.8), centre=(-0.2, -0.2),
    width=0.15)``.
    """

    velocity: tuple[float, ...] = eqx.field(static=True)
    centre: tuple[float, ...] = eqx.field(static=True)
    width: float = eqx.field(static=True)
    t_end: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if len(self.velocity) != len(self.centre) or not self.velocity:
            raise ValueError(
                f"`velocity` and `centre` need the same non-zero length, got {self.velocity} and "
                f"{self.centre}"
            )
        _check_positive("width", self.width)
        _check_positive("t_end", self.t_end)
        end = [c + v * self.t_end for c, v in zip(self.centre, self.velocity, strict=True)]
        reach = self.width * math.sqrt(2 * math.log(1e6))  # where the bump falls below 1e-6
        if any(abs(c) + reach > 1 for c in (*self.centre, *end)):
            raise ValueError(
                f"the bump (width {self.width}) must stay inside [-1, 1]^d up to t_end = {self.t_end}: it "
                f"starts at {self.centre} and ends at {tuple(round(e, 3) for e in end)}"
            )

    @property
    def dim(self) -> int:
        return len(self.velocity)

    def rhs(self, u: Field, x: Float[Array, " d"]) -> Array:
        return -sum(c * derivative(u, x, i)[1] for i, c in enumerate(self.velocity))

    def exact(self, x: Float[Array, " d"], t) -> Array:
        shift = jnp.asarray(self.centre, x.dtype) + jnp.asarray(self.velocity, x.dtype) * t
        return jnp.exp(-jnp.sum((x - shift) ** 2) / (2 * self.width**2))


class Heat(AbstractIVP):
    """``u_t = kappa lap u``, ``u0 = prod_i sin(k_i pi (x_i + 1) / 2)``; exact
    ``exp(-kappa pi^2 |k|^2 t / 4) u0``."""

    modes: tuple[int, ...] = eqx.field(static=True)
    diffusivity: float = eqx.field(static=True, default=0.05)
    t_end: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if not self.modes or not all(isinstance(k, int) and k >= 1 for k in self.modes):
            raise ValueError(f"`modes` must be positive integers, one per dimension, got {self.modes}")
        _check_positive("diffusivity", self.diffusivity)
        _check_positive("t_end", self.t_end)

    @property
    def dim(self) -> int:
        return len(self.modes)

    def rhs(self, u: Field, x: Float[Array, " d"]) -> Array:
        return self.diffusivity * sum(second_derivative(u, x, i) for i in range(self.dim))

    def exact(self, x: Float[Array, " d"], t) -> Array:
        k = jnp.asarray(self.modes, x.dtype)
        decay = jnp.exp(-self.diffusivity * jnp.pi**2 * jnp.sum(k**2) * t / 4)
        return decay * jnp.prod(jnp.sin(k * jnp.pi * (x + 1) / 2))


IVPS: dict[str, AbstractIVP] = {
    "advection-1d": Advection(velocity=(0.8,), centre=(-0.2,), width=0.15),
    "advection-2d": Advection(velocity=(0.8, 0.8), centre=(-0.2, -0.2), width=0.15),
    "heat-1d": Heat(modes=(1,), diffusivity=0.1),
    "heat-2d": Heat(modes=(1, 2), diffusivity=0.1),
}
"""The built-in problems of ``physbias run neural-ivp``."""


def get_ivp(name: str) -> AbstractIVP:
    """The built-in IVP called ``name`` (one of ``IVPS``); ``ValueError`` naming them otherwise."""
    if name not in IVPS:
        raise ValueError(f"unknown PDE {name!r}; the built-in initial value problems are {tuple(IVPS)}")
    return IVPS[name]
