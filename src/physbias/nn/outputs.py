"""Output layers whose values are valid by construction (seed 001's inductive bias on outputs).

Each wraps a network ``net`` that produces unconstrained numbers and maps them onto the set the
output must lie in: rotations SO(3), positive numbers, symmetric positive-definite matrices.
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..groups.so3 import hat, so3_exp  # noqa: F401 (re-exported)


def gram_schmidt_rotation(six: Float[Array, 6]) -> Float[Array, "3 3"]:
    """Continuous 6-D representation of SO(3) (Zhou et al., CVPR 2019).

    Gram-Schmidt on two 3-vectors, the third column their cross product; columns are
    orthonormal and ``det = +1``.
    """
    a, b = six[:3], six[3:]
    e1 = a / jnp.linalg.norm(a)
    b = b - jnp.dot(e1, b) * e1
    e2 = b / jnp.linalg.norm(b)
    return jnp.stack([e1, e2, jnp.cross(e1, e2)], axis=-1)


class ExpMapRotation(eqx.Module):
    """A network whose 3 outputs ``omega`` become the rotation ``exp(hat(omega))``."""

    net: Any
    parametrization: ClassVar[str] = "exp-map"

    def __call__(self, x: Array) -> Float[Array, "3 3"]:
        return so3_exp(self.net(x))


class GramSchmidtRotation(eqx.Module):
    """A network whose 6 outputs become a rotation by :func:`gram_schmidt_rotation`."""

    net: Any
    parametrization: ClassVar[str] = "6d-gram-schmidt"

    def __call__(self, x: Array) -> Float[Array, "3 3"]:
        return gram_schmidt_rotation(self.net(x))


class RawMatrix(eqx.Module):
    """A network whose 9 outputs are reshaped to a 3x3 matrix (no constraint: the baseline)."""

    net: Any
    parametrization: ClassVar[str] = "raw-3x3"

    def __call__(self, x: Array) -> Float[Array, "3 3"]:
        return jnp.reshape(self.net(x), (3, 3))


class PositiveOutput(eqx.Module):
    """``softplus(net(x)) + floor``: strictly positive outputs (masses, rates, variances)."""

    net: Any
    floor: float = eqx.field(static=True, default=0.0)

    def __call__(self, x: Array) -> Array:
        return jax.nn.softplus(self.net(x)) + self.floor


class SPDMatrixOutput(eqx.Module):
    """Symmetric positive-definite ``n x n`` matrix ``L L^T + eps I`` from ``n(n+1)/2`` outputs
    (``L`` lower triangular with a softplus diagonal), e.g. a learned mass matrix."""

    net: Any
    n: int = eqx.field(static=True)
    eps: float = eqx.field(static=True, default=1e-6)

    def __call__(self, x: Array) -> Array:
        raw = self.net(x)
        rows, cols = jnp.tril_indices(self.n)
        lower = jnp.zeros((self.n, self.n), raw.dtype).at[rows, cols].set(raw)
        diag = jax.nn.softplus(jnp.diagonal(lower))
        lower = lower - jnp.diag(jnp.diagonal(lower)) + jnp.diag(diag)
        return lower @ lower.T + self.eps * jnp.eye(self.n, dtype=raw.dtype)
