"""Randomized Nyström approximation of a positive semi-definite operator and the preconditioner
built from it (Frangella, Tropp & Udell 2023, "Randomized Nyström preconditioning", SIAM J. Matrix
Anal. Appl. 44(2), Algorithms 2.1 and 5.1).

Only products ``A v`` are needed: with a random orthonormal test matrix ``Omega`` (``p x r``),
``A ~ (A Omega) (Omega^T A Omega)^+ (A Omega)^T = U diag(lam) U^T``. The preconditioner for
``(A + mu I) x = b`` is

.. math:: P^{-1} = U (\\Lambda + \\mu I)^{-1} U^T + (I - U U^T) / (\\lambda_r + \\mu),

the inverse of ``A + mu I`` on the top ``r`` eigen-directions and ``1 / (lambda_r + mu)`` on the
rest (Frangella et al.'s formula divided by ``lambda_r + mu``: the same CG iterates, but the
preconditioned operator's eigenvalues lie in ``[mu / (lambda_r + mu), 1]``, where Lineax's breakdown
test, relative to ``|r^T P^{-1} r|``, expects them). Conjugate gradients then converge at a rate set
by ``(lambda_r + mu) / mu`` rather than ``(lambda_1 + mu) / mu``.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class NystromApproximation(eqx.Module):
    """``A ~ U diag(eigenvalues) U^T``: ``U`` ``(p, r)`` orthonormal, ``eigenvalues`` ``(r,)``
    non-negative and descending."""

    basis: Float[Array, "p r"]
    eigenvalues: Float[Array, " r"]

    def __call__(self, v: Float[Array, " p"]) -> Float[Array, " p"]:
        return self.basis @ (self.eigenvalues * (self.basis.T @ v))

    def inverse_preconditioner(self, damping: float | Array) -> Callable[[Array], Array]:
        """``v -> P^{-1} v`` for the damped operator ``A + damping I`` (formula above)."""
        u, lam = self.basis, self.eigenvalues

        def apply(v: Array) -> Array:
            coef = u.T @ v
            return u @ (coef / (lam + damping)) + (v - u @ coef) / (lam[-1] + damping)

        return apply


def nystrom_approximation(
    matvec: Callable[[Array], Array], size: int, rank: int, key: PRNGKeyArray, dtype=jnp.float32
) -> NystromApproximation:
    """The rank-``rank`` randomized Nyström approximation of the PSD operator ``matvec`` on
    ``R^size`` (Frangella et al., Algorithm 2.1, with the stabilising shift
    ``nu = eps(dtype) * ||A Omega||_F``).

    Cost: ``rank`` products with ``matvec`` (batched with ``vmap``) plus ``O(size rank^2)``.
    """
    if not isinstance(rank, int) or not 1 <= rank <= size:
        raise ValueError(f"`rank` must be an integer in [1, {size}], got {rank!r}")
    omega, _ = jnp.linalg.qr(jax.random.normal(key, (size, rank), dtype))
    y = jax.vmap(matvec, in_axes=1, out_axes=1)(omega)
    shift = jnp.finfo(dtype).eps * jnp.linalg.norm(y)
    y = y + shift * omega
    core = omega.T @ y
    chol = jnp.linalg.cholesky(0.5 * (core + core.T))
    b = jax.scipy.linalg.solve_triangular(chol, y.T, lower=True).T  # Y C^{-T}
    u, sigma, _ = jnp.linalg.svd(b, full_matrices=False)
    eigenvalues = jnp.maximum(sigma**2 - shift, 0.0)
    return NystromApproximation(u, eigenvalues)
