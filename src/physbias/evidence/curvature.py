"""Generalised Gauss-Newton (GGN) curvature of a network's negative log-likelihood: full, diagonal
and Kronecker-factored (KFAC), each with a differentiable log-determinant of ``c G + diag(delta)``.

For outputs ``f_n = f(x_n; theta)`` (``K`` numbers each) and a likelihood whose Hessian in ``f`` is
``Lambda_n`` (``I`` for a Gaussian, whose ``1/sigma^2`` is the scale ``c``; ``diag(p) - p p^T`` for
a categorical), the GGN is ``G = sum_n J_n^T Lambda_n J_n`` with ``J_n = d f_n / d theta``
(Martens 2020; Immer et al. 2021).

- :func:`ggn_full`: the ``(P, P)`` matrix, from per-example Jacobians (reverse mode, chunked over
  examples): for small networks.
- :func:`ggn_diagonal`: its diagonal, from the same Jacobians, one chunk at a time.
- :func:`ggn_kfac`: per ``equinox.nn.Linear`` layer ``G_l ~ B_l (x) A_l`` (KFAC-expand, Martens &
  Grosse 2015; Eschenhagen et al. 2023) with ``A_l = mean_n a a^T`` over the layer's inputs (a 1
  appended for the bias) and ``B_l = sum_n g_n^T Lambda_n g_n`` over the output Jacobians with
  respect to the layer's pre-activations. Both factors come from one forward pass with a zero
  perturbation added to every layer's output (``g`` is the Jacobian in that perturbation), so
  no Jacobian in the parameters is ever formed. ``log det(c B (x) A + delta I) = sum_ij log(c
  lambda^B_i lambda^A_j + delta)`` from the factors' eigenvalues.

Parameters are grouped for per-layer prior precisions by :func:`parameter_groups`: each
``equinox.nn.Linear`` (weight and bias) is one group, any other array its own group.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float

OutputHessian = Callable[[Array], Array]
"""``f (K,) -> Lambda (K, K)``: the Hessian of the negative log-likelihood in the outputs."""


def _is_linear(node) -> bool:
    return isinstance(node, eqx.nn.Linear)


Filter = Any
"""Which leaves are parameters: ``equinox.is_inexact_array`` (all floating-point arrays) or a
pytree of bools shaped like the model (see :func:`physbias.evidence.laplace`'s ``hyperparameters``)."""


def parameter_groups(model, params: Filter = eqx.is_inexact_array) -> list[tuple[str, int]]:
    """``[(path, number of parameters)]`` in ``ravel_pytree`` order: one entry per
    ``equinox.nn.Linear`` (weight and bias together) and one per other floating-point array."""
    groups: list[tuple[str, int]] = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(eqx.filter(model, params))[0]:
        groups.append((jax.tree_util.keystr(path), int(math.prod(leaf.shape))))
    # Merge a Linear's weight and bias (consecutive in flattening order).
    merged: list[tuple[str, int]] = []
    for path, size in groups:
        owner = path.rsplit(".", 1)[0] if path.endswith((".weight", ".bias")) else path
        if merged and merged[-1][0] == owner and path.endswith(".bias"):
            merged[-1] = (owner, merged[-1][1] + size)
        else:
            merged.append((owner, size))
    return merged


def _outputs(model, x) -> Array:
    return jnp.reshape(model(x), (-1,))


def _per_example_jacobian(model, params_filter: Filter):
    params, static = eqx.partition(model, params_filter)
    flat, unravel = ravel_pytree(params)

    def jac(x):
        return jax.jacrev(lambda p: _outputs(eqx.combine(unravel(p), static), x))(flat)

    return flat, jac


def _accumulate(chunk_sum, x, chunk: int, init):
    """``sum`` of ``chunk_sum(x_chunk)`` (a pytree of arrays) over chunks of ``chunk`` examples
    (the remainder in one last call): memory is one chunk's worth of per-example Jacobians."""
    n = x.shape[0]
    size = max(1, min(chunk, n))
    whole = (n // size) * size
    add = lambda a, b: jax.tree_util.tree_map(jnp.add, a, b)  # noqa: E731
    total = jax.lax.scan(
        lambda acc, xs: (add(acc, chunk_sum(xs)), None),
        init,
        x[:whole].reshape(n // size, size, *x.shape[1:]),
    )[0]
    if whole < n:
        total = add(total, chunk_sum(x[whole:]))
    return total


def _ggn_contraction(model, x, output_hessian, chunk, params, contraction: str, shape) -> Array:
    """``sum_n`` of ``J_n^T Lambda_n J_n`` contracted by ``contraction`` over chunks of examples."""
    flat, jac = _per_example_jacobian(model, params)

    def chunk_sum(xs):
        j = jax.vmap(jac)(xs)  # (c, K, P)
        lam = jax.vmap(lambda xn: output_hessian(_outputs(model, xn)))(xs)  # (c, K, K)
        return jnp.einsum(contraction, j, lam, j)

    return _accumulate(chunk_sum, x, chunk, jnp.zeros(shape(flat.size), flat.dtype))


def ggn_full(
    model,
    x: Float[Array, "N ..."],
    output_hessian: OutputHessian,
    *,
    chunk: int = 32,
    params: Filter = eqx.is_inexact_array,
) -> Float[Array, "P P"]:
    """``G = sum_n J_n^T Lambda_n J_n`` as a dense ``(P, P)`` matrix (``ravel_pytree`` order)."""
    return _ggn_contraction(model, x, output_hessian, chunk, params, "ckp,ckl,clq->pq", lambda p: (p, p))


def ggn_diagonal(
    model,
    x: Float[Array, "N ..."],
    output_hessian: OutputHessian,
    *,
    chunk: int = 32,
    params: Filter = eqx.is_inexact_array,
) -> Float[Array, " P"]:
    """The diagonal of :func:`ggn_full` without forming the ``(P, P)`` matrix."""
    return _ggn_contraction(model, x, output_hessian, chunk, params, "ckp,ckl,clp->p", lambda p: (p,))


class _Tap(eqx.Module):
    """A Linear whose output gets ``perturbation`` added and whose input is recorded."""

    linear: eqx.nn.Linear
    perturbation: Array
    record: list = eqx.field(static=True)

    def __call__(self, a, *, key=None):
        self.record.append(jnp.reshape(a, (-1,)))
        return self.linear(a) + self.perturbation


def _check_kfac_supported(model, params_filter: Filter) -> list[eqx.nn.Linear]:
    linears = [n for n in jax.tree_util.tree_leaves(model, is_leaf=_is_linear) if _is_linear(n)]
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(model, params_filter), is_leaf=_is_linear)[0]
    for path, leaf in leaves:
        if eqx.is_inexact_array(leaf):
            owner = _resolve(model, path[:-1])
            raise ValueError(
                f"curvature='kfac' supports parameters in equinox.nn.Linear layers only; "
                f"`model{jax.tree_util.keystr(path)}` (shape {leaf.shape}, in a {type(owner).__name__}) "
                "is not in one: use curvature='full' or 'diagonal'"
            )
    if not linears:
        raise ValueError("curvature='kfac' found no equinox.nn.Linear layer in the model")
    return linears


def _resolve(tree, path):
    """The node of ``tree`` at a key path (attribute, index or dict key entries)."""
    for entry in path:
        if isinstance(entry, jax.tree_util.GetAttrKey):
            tree = getattr(tree, entry.name)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            tree = tree[entry.idx]
        elif isinstance(entry, jax.tree_util.DictKey):
            tree = tree[entry.key]
    return tree


class KroneckerFactors(eqx.Module):
    """Per Linear layer, the eigenvalues of ``B_l`` (outputs) and ``A_l`` (inputs, bias included)."""

    eig_b: list[Array]
    eig_a: list[Array]


def ggn_kfac(
    model,
    x: Float[Array, "N ..."],
    output_hessian: OutputHessian,
    *,
    chunk: int = 256,
    params: Filter = eqx.is_inexact_array,
) -> KroneckerFactors:
    """KFAC factors of the GGN for every ``equinox.nn.Linear`` of ``model`` (see the module docstring).

    Raises:
        ValueError: if ``model`` has a parameter outside an ``equinox.nn.Linear`` (named), or no
            Linear layer at all.
    """
    linears = _check_kfac_supported(model, params)
    out_shapes = [
        eqx.filter_eval_shape(lin, jnp.zeros(_in_shape(lin), lin.weight.dtype)).shape for lin in linears
    ]

    def per_example(xn):
        def forward(perturbations):
            record: list = []
            taps = iter(_Tap(lin, p, record) for lin, p in zip(linears, perturbations, strict=True))
            tapped = jax.tree_util.tree_map(
                lambda n: next(taps) if _is_linear(n) else n, model, is_leaf=_is_linear
            )
            return _outputs(tapped, xn), record

        zeros = [jnp.zeros(s, linears[0].weight.dtype) for s in out_shapes]
        grads, inputs = jax.jacrev(forward, has_aux=True)(zeros)
        grads = [jnp.reshape(g, (g.shape[0], -1)) for g in grads]  # (K, out) per layer
        inputs = [
            jnp.concatenate([a, jnp.ones(1, a.dtype)]) if lin.bias is not None else a
            for lin, a in zip(linears, inputs, strict=True)
        ]
        return grads, inputs, output_hessian(_outputs(model, xn))

    def chunk_sum(xs):
        # Contract over the chunk directly: no per-example (out, out) or (in, in) matrices.
        grads, inputs, lam = jax.vmap(per_example)(xs)
        b = [jnp.einsum("cko,ckl,clp->op", g, lam, g) for g in grads]
        a = [jnp.einsum("ci,cj->ij", v, v) for v in inputs]
        return b, a

    init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(chunk_sum, x[:1]))
    n = x.shape[0]
    b_sum, a_sum = _accumulate(chunk_sum, x, chunk, init)
    # KFAC-expand: one factor carries N (B a sum, A a mean).
    eig_b = [jnp.clip(jnp.linalg.eigvalsh(b), 0.0) for b in b_sum]
    eig_a = [jnp.clip(jnp.linalg.eigvalsh(a / n), 0.0) for a in a_sum]
    return KroneckerFactors(eig_b, eig_a)


def _in_shape(linear: eqx.nn.Linear) -> tuple[int, ...]:
    return () if linear.in_features == "scalar" else (linear.in_features,)


def kfac_logdet(factors: KroneckerFactors, scale, prior_precision: Array) -> Array:
    """``sum_l sum_ij log(scale lambda^B_li lambda^A_lj + delta_l)``; ``prior_precision`` is a scalar
    or one value per layer."""
    delta = (
        jnp.broadcast_to(prior_precision, (len(factors.eig_b),))
        if jnp.ndim(prior_precision) == 0
        else prior_precision
    )
    total = jnp.zeros((), delta.dtype)
    for layer, (eb, ea) in enumerate(zip(factors.eig_b, factors.eig_a, strict=True)):
        total = total + jnp.sum(jnp.log(scale * eb[:, None] * ea[None, :] + delta[layer]))
    return total


def dense_logdet(ggn: Array, scale, prior_diagonal: Array) -> Array:
    """``log det(scale G + diag(prior))`` by Cholesky (``G`` symmetric PSD, ``prior > 0``)."""
    chol = jnp.linalg.cholesky(scale * ggn + jnp.diag(prior_diagonal))
    return 2.0 * jnp.sum(jnp.log(jnp.diag(chol)))


def diagonal_logdet(diagonal: Array, scale, prior_diagonal: Array) -> Array:
    """``sum_p log(scale g_p + prior_p)``."""
    return jnp.sum(jnp.log(scale * diagonal + prior_diagonal))
