"""Curvature of a classifier's loss in its subspace coordinates: the Gauss-Newton matrix.

For softmax cross-entropy with logits ``f(x_i; w)`` (``K`` classes) the Gauss-Newton matrix is

.. math:: G = \\frac{1}{n} \\sum_i J_i^\\top \\big(\\mathrm{diag}(p_i) - p_i p_i^\\top\\big) J_i,
          \\qquad J_i = \\partial f(x_i; w) / \\partial w \\ (K \\times d),
          \\quad p_i = \\mathrm{softmax}(f(x_i; w)),

a positive semi-definite approximation of the Hessian of the mean loss that equals it when the
logits are linear in ``w``. It is computed from the factor ``R_i J_i`` with rows
``sqrt(p_ik) (e_k - p_i)^T J_i`` (so that ``G = (1/n) sum_i (R_i J_i)^T (R_i J_i)``), in batches.
:func:`~physbias.bounds.second_order_round` uses it to round ``w`` to a codebook with the least
increase of the loss.

Reference: N. N. Schraudolph, "Fast curvature matrix-vector products for second-order gradient
descent", Neural Computation 14, 2002; J. Martens, "New insights and perspectives on the natural
gradient method", JMLR 21, 2020.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .subspace import Subspace


def _check_batch(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}")
    return int(batch_size)


@eqx.filter_jit
def _gauss_newton(subspace: Subspace, inputs, weights):
    def logits(w, x):
        return eqx.tree_at(lambda s: s.w, subspace, w)(x)

    def factor(x):  # R_i J_i, shape (K, d)
        jac = jax.jacrev(logits)(subspace.w, x)
        p = jax.nn.softmax(logits(subspace.w, x))
        r = jnp.sqrt(p)[:, None] * (jnp.eye(p.shape[0], dtype=p.dtype) - p[None, :])
        return r @ jac

    def batch_sum(args):
        xb, wb = args
        f = jax.vmap(factor)(xb) * jnp.sqrt(wb)[:, None, None]  # padded examples weigh 0
        f = f.reshape(-1, f.shape[-1])
        return f.T @ f

    return jnp.sum(jax.lax.map(batch_sum, (inputs, weights)), axis=0)


def gauss_newton(subspace: Subspace, inputs, *, batch_size: int = 100) -> Float[Array, "d d"]:
    """Gauss-Newton matrix ``G`` (``d x d``) of the mean softmax cross-entropy in ``w``.

    The labels do not enter ``G``. ``subspace(x)`` must return the logits of one input.

    Args:
        subspace: a :class:`~physbias.bounds.Subspace` classifier.
        inputs: ``(n, ...)`` the training inputs.
        batch_size: inputs per vectorised batch (memory ``batch_size * K * d``).

    Returns:
        ``G``, symmetric positive semi-definite, in the dtype of ``w``.

    Raises:
        ValueError: empty or non-finite ``inputs``, a non-positive ``batch_size``.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx
        >>> sub = Subspace(eqx.nn.Linear(3, 4, key=jax.random.key(0)), 5, key=jax.random.key(1))
        >>> g = gauss_newton(sub, jax.random.normal(jax.random.key(2), (10, 3)))
        >>> g.shape, bool(jnp.all(jnp.linalg.eigvalsh(g) > -1e-6))
        ((5, 5), True)
    """
    batch_size = _check_batch(batch_size)
    inputs = jnp.asarray(inputs)
    if inputs.ndim < 1 or inputs.shape[0] == 0:
        raise ValueError(
            f"`inputs` must be a non-empty array with a leading sample axis, got shape {inputs.shape}"
        )
    if not bool(jnp.all(jnp.isfinite(inputs))):
        raise ValueError("`inputs` must be finite (no NaN or inf)")
    n = inputs.shape[0]
    batch_size = min(batch_size, n)
    batches = math.ceil(n / batch_size)
    pad = batches * batch_size - n
    padded = jnp.concatenate([inputs, jnp.zeros((pad, *inputs.shape[1:]), inputs.dtype)])
    weights = (jnp.arange(batches * batch_size) < n).astype(subspace.w.dtype)
    shape = (batches, batch_size)
    total = _gauss_newton(subspace, padded.reshape(*shape, *inputs.shape[1:]), weights.reshape(shape))
    return total / jnp.asarray(n, total.dtype)


__all__ = ["gauss_newton"]
