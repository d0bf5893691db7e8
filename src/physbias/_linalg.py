"""Ground-floor linear algebra for the many tiny systems of the mechanics models.

A learned vector field solves one ``k x k`` system per example (a mass matrix, the Gram matrix of
the constraint Jacobian). Batched by ``vmap``, a LAPACK factorisation runs one small matrix at a
time; for ``k`` of a few, an unrolled Cholesky factorisation is a fixed sequence of elementwise
operations on the whole batch, which XLA fuses and vectorises.
"""

from __future__ import annotations

import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import Array, Float

UNROLL_MAX = 4
"""Largest size solved by the unrolled factorisation. Larger systems use LU (``jnp.linalg.solve``):
measured on the CPU, batched LU is faster than batched Cholesky (``cho_solve``), forward and
backward, at sizes 4 and 8."""


def _unrolled_cholesky(a: Array) -> list[list[Array]]:
    n = a.shape[-1]
    low: list[list[Array]] = [[None] * n for _ in range(n)]  # type: ignore[list-item]
    for j in range(n):
        d = a[j, j]
        for k in range(j):
            d = d - low[j][k] ** 2
        low[j][j] = jnp.sqrt(d)
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s = s - low[i][k] * low[j][k]
            low[i][j] = s / low[j][j]
    return low


def _unrolled_solve(low: list[list[Array]], b: Array) -> Array:
    n = len(low)
    y: list[Array] = []
    for i in range(n):
        s = b[i]
        for k in range(i):
            s = s - low[i][k] * y[k]
        y.append(s / low[i][i])
    x: list[Array] = [None] * n  # type: ignore[list-item]
    for i in reversed(range(n)):
        s = y[i]
        for k in range(i + 1, n):
            s = s - low[k][i] * x[k]
        x[i] = s / low[i][i]
    return jnp.stack(x)


class SPDFactor:
    """The Cholesky factor ``A = L L^T`` of one symmetric positive-definite ``(k, k)`` matrix
    (its lower triangle is read), to solve ``A x = b`` for one or several right-hand sides; above
    :data:`UNROLL_MAX`, the LU factors of the whole matrix. Either way the matrix is factorised
    once, however many solves follow.

    Not a pytree: build and use it inside one traced function (``vmap`` over examples).
    """

    def __init__(self, a: Float[Array, "k k"]):
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"SPDFactor needs one square matrix, got shape {a.shape}")
        self.size = a.shape[0]
        if self.size <= UNROLL_MAX:
            self._low = _unrolled_cholesky(a)
        else:
            self._lu = jsl.lu_factor(a)

    def solve(self, b: Float[Array, " k *rhs"]) -> Float[Array, " k *rhs"]:
        """``A^{-1} b`` for ``b`` of shape ``(k,)`` or ``(k, r)``."""
        if b.shape[0] != self.size:
            raise ValueError(f"right-hand side has {b.shape[0]} rows for a {self.size}x{self.size} system")
        if self.size <= UNROLL_MAX:
            return _unrolled_solve(self._low, b)
        return jsl.lu_solve(self._lu, b)


def spd_solve(a: Float[Array, "k k"], b: Float[Array, " k *rhs"]) -> Float[Array, " k *rhs"]:
    """``A^{-1} b`` for a symmetric positive-definite ``A``: unrolled Cholesky up to
    :data:`UNROLL_MAX`, LU above (see :class:`SPDFactor`)."""
    return SPDFactor(a).solve(b)


ELEMENTWISE_MAX = 512
"""Largest broadcast product (``i * j * k`` entries) that :func:`small_matmul` forms elementwise;
measured on the CPU, larger products are faster as ``dot_general`` (a 5-link chain's 10 x 20 x 10)."""


def small_matmul(a: Float[Array, "i j"], b: Float[Array, "j k"]) -> Float[Array, "i k"]:
    """``a @ b``, for tiny matrices as a broadcast product and a sum. Under ``vmap`` a matrix
    product of tiny per-example matrices becomes a batched ``dot_general``, which XLA's CPU backend
    runs one small product at a time; elementwise, the whole batch is one fused loop."""
    if a.shape[0] * a.shape[1] * b.shape[1] > ELEMENTWISE_MAX:
        return a @ b
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def small_matvec(a: Float[Array, "i j"], v: Float[Array, " j"]) -> Float[Array, " i"]:
    """``a @ v``, elementwise for tiny ``a`` (see :func:`small_matmul`)."""
    if a.size > ELEMENTWISE_MAX:
        return a @ v
    return jnp.sum(a * v[None, :], axis=1)
