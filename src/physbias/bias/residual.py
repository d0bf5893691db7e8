"""Physics bias: a known model plus a learned residual."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from jaxtyping import Array

from .base import AbstractBias


class PhysicsResidual(AbstractBias):
    """``f(x) = known(x) + residual(x)``.

    ``known`` is the physics one trusts: a fixed function (``lambda x: k_star * x``) or an
    ``equinox.Module`` with a few physical parameters that are fitted too (Heron's
    ``C sqrt(...)``). ``residual`` is a flexible model that learns what the physics misses, or
    None to fit the known form alone.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx
        >>> net = eqx.nn.MLP(1, 1, 8, 1, key=jax.random.key(0))
        >>> model = PhysicsResidual(lambda x: 2.0 * x, net)
        >>> model(jnp.ones(1)).shape
        (1,)
    """

    known: Callable[[Array], Array] | Any
    residual: Any = None
    kind: ClassVar[str] = "physics"
    hard: ClassVar[bool] = True

    def __check_init__(self):
        if not callable(self.known):
            raise TypeError(f"PhysicsResidual: `known` must be callable, got {type(self.known).__name__}")
        if self.residual is not None and not callable(self.residual):
            raise TypeError(
                f"PhysicsResidual: `residual` must be callable or None, got {type(self.residual).__name__}"
            )

    def __call__(self, x: Array) -> Array:
        base = self.known(x)
        return base if self.residual is None else base + self.residual(x)
