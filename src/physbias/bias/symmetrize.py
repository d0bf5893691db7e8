"""Inductive bias: wrappers that make a symmetry violation impossible (hard).

Each wraps any model ``f`` (a callable on one example) and is itself an ``equinox.Module``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from .base import AbstractBias
from .symmetry import AbstractSymmetry, as_symmetry, require_symmetry


class Symmetrized(AbstractBias):
    """Group averaging over a finite symmetry.

    .. math:: f_G(x) = \\frac{1}{|G|} \\sum_{g \\in G} \\rho(g)^{-1} f(g \\cdot x)

    is exactly invariant/equivariant: ``f_G(h.x) = rho(h) f_G(x)`` for every ``h`` in ``G``.
    Costs ``|G|`` evaluations of ``f``.
    """

    model: Any
    symmetry: AbstractSymmetry = eqx.field(converter=as_symmetry)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = True

    def __check_init__(self):
        require_symmetry(self.symmetry, "Symmetrized")
        if not self.symmetry.is_finite:
            raise ValueError(
                f"Symmetrized needs a finite symmetry to average over; {self.symmetry!r} is "
                "continuous: use Canonicalized instead"
            )

    def __call__(self, x: Array) -> Array:
        s = self.symmetry

        def term(g):
            return s.act_output_inverse(g, self.model(s.act_input(g, x)))

        return jnp.mean(jax.vmap(term)(s.elements()), axis=0)


class RelaxedSymmetrized(AbstractBias):
    """Soft equivariance by partial group averaging (seed 003), for a finite symmetry:

    .. math:: f_\\lambda(x) = (1 - \\lambda) f(x) + \\lambda \\frac{1}{|G|} \\sum_{g \\in G}
              \\rho(g)^{-1} f(g \\cdot x)

    ``strength`` ``lambda`` in ``[0, 1]`` interpolates between the free model (0) and the exactly
    equivariant group average (1). For ``G = {1, -1}`` acting by ``x -> -x`` this is the seed's
    ``(1 - lambda/2) f(x) + lambda/2 f(-x)``. ``lambda`` is a fixed hyperparameter (a static
    field): the seed shows it cannot be learned from the training loss, which always prefers 0.
    """

    model: Any
    symmetry: AbstractSymmetry = eqx.field(converter=as_symmetry)
    strength: float = eqx.field(static=True)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = False

    def __check_init__(self):
        require_symmetry(self.symmetry, "RelaxedSymmetrized")
        if not self.symmetry.is_finite:
            raise ValueError(f"RelaxedSymmetrized needs a finite symmetry; {self.symmetry!r} is continuous")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ValueError(f"RelaxedSymmetrized: `strength` must be in [0, 1], got {self.strength!r}")

    def __call__(self, x: Array) -> Array:
        average = Symmetrized(self.model, self.symmetry)(x)
        return (1.0 - self.strength) * self.model(x) + self.strength * average


class Canonicalized(AbstractBias):
    """Canonicalisation: evaluate ``f`` on one representative of the orbit of ``x``.

    .. math:: f_c(x) = \\rho(g_x) f(x_c), \\qquad x = g_x \\cdot x_c

    e.g. seed 001's level 3, normalise-and-sort: ``x_c = sort(x / s)``, ``f_c(x) = s^2 f(x_c)``
    for ``Permutation(3) * Scaling(degree=2)``. Exact for finite and continuous symmetries alike,
    at the cost of one evaluation (the canonical form may be non-smooth on orbit boundaries).
    """

    model: Any
    symmetry: AbstractSymmetry = eqx.field(converter=as_symmetry)
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = True

    def __check_init__(self):
        require_symmetry(self.symmetry, "Canonicalized")

    def __call__(self, x: Array) -> Array:
        x_c, g = self.symmetry.canonicalize(x)
        return self.symmetry.act_output(g, self.model(x_c))


class OddFunction(AbstractBias):
    """``f_odd(x) = f(x) - f(-x)``: odd by construction (seed 001's inductive bias)."""

    model: Any
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = True

    def __call__(self, x: Array) -> Array:
        return self.model(x) - self.model(-x)


class EvenFunction(AbstractBias):
    """``f_even(x) = f(x) + f(-x)``: even by construction."""

    model: Any
    kind: ClassVar[str] = "inductive"
    hard: ClassVar[bool] = True

    def __call__(self, x: Array) -> Array:
        return self.model(x) + self.model(-x)
