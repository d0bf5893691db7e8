"""Quantisation of a parameter vector with a learned codebook of ``L`` levels.

Each of the ``d`` entries ``w_i`` is replaced by its nearest level ``c_{s_i}``,
``s_i = argmin_k |w_i - c_k|``; the vector is then stored as the symbols ``s`` and the codebook
``c`` (:mod:`physbias.bounds.coding`). The codebook starts from a uniform grid or 1-D k-means on
``w`` and is fine-tuned together with ``w`` by the straight-through estimator (Bengio et al. 2013):
the forward pass uses ``c_{s_i}``, the backward pass treats the rounding as the identity in ``w``
and sends to each level the sum of the gradients of the entries assigned to it,

.. math:: \\frac{\\partial q_i}{\\partial w_j} = \\delta_{ij}, \\qquad
          \\frac{\\partial q_i}{\\partial c_k} = [s_i = k]

(as ``pactl/bounds/quantize_fns.Quantize`` of ``activatedgeek/tight-pac-bayes`` does). The levels
that are finally coded are rounded to float16 (:func:`round_codebook`), the precision that the
message length charges for (16 bits per level).

Rounding every entry to its nearest level ignores that the loss is far more sensitive along some
directions of ``w`` than others. :func:`second_order_round` rounds one entry at a time and moves
the entries not yet rounded to compensate, greedily minimising the quadratic model
``(q - w)^T H (q - w) / 2`` of the loss increase (optimal brain quantisation as in GPTQ, with
``H`` e.g. the Gauss-Newton matrix of :func:`~physbias.bounds.gauss_newton`). This is an addition
to the reference pipeline; it lets a few levels keep the accuracy of the unquantised model.

References:
    S. Lotfi et al., "PAC-Bayes compression bounds so tight that they can explain
    generalization", NeurIPS 2022.
    Y. Bengio, N. Léonard, A. Courville, "Estimating or propagating gradients through stochastic
    neurons for conditional computation", arXiv:1308.3432, 2013.
    B. Hassibi, D. G. Stork, "Second order derivatives for network pruning: optimal brain
    surgeon", NeurIPS 1992; E. Frantar, S. Ashkboos, T. Hoefler, D. Alistarh, "GPTQ: accurate
    post-training quantization for generative pre-trained transformers", ICLR 2023.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from jaxtyping import Array, Float, Int

from .subspace import Subspace


def _check_levels(levels) -> int:
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or levels <= 0:
        raise ValueError(f"`levels` must be a positive integer (codebook size), got {levels!r}")
    return int(levels)


def _check_values(values, levels: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"`values` must be a non-empty 1-D array, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("`values` must be finite (no NaN or inf)")
    if levels > arr.size:
        raise ValueError(f"`levels` = {levels} exceeds the number of values {arr.size}")
    return arr


def _check_codebook(codebook) -> None:
    if getattr(codebook, "ndim", None) != 1 or codebook.shape[0] == 0:
        raise ValueError(
            f"`codebook` must be a non-empty 1-D array, got shape {getattr(codebook, 'shape', None)}"
        )


def uniform_codebook(values, levels: int) -> Float[Array, " L"]:
    """Codebook from ``levels`` equal bins over ``[-m, m]``, ``m = max |w_i|``: each level is the
    mean of the values in its bin (the bin's centre when it is empty), as the reference's
    ``get_random_symbols_and_codebook``. Sorted ascending; the dtype of ``values``.

    Raises:
        ValueError: non-positive ``levels``, more levels than values, empty or non-finite values.

    Example:
        >>> uniform_codebook(jax.numpy.array([-1.0, -0.9, 0.1, 1.0]), 2).tolist()
        [-0.949999988079071, 0.550000011920929]
    """
    levels = _check_levels(levels)
    arr = _check_values(values, levels)
    largest = float(np.max(np.abs(arr))) + 1e-6
    edges = np.linspace(-largest, largest, levels + 1)
    bins = np.clip(np.digitize(arr, edges) - 1, 0, levels - 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    sums, counts = np.bincount(bins, arr, levels), np.bincount(bins, minlength=levels)
    book = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return jnp.asarray(book, dtype=jnp.asarray(values).dtype)


def kmeans_codebook(values, levels: int, *, iterations: int = 100) -> Float[Array, " L"]:
    """Codebook from 1-D k-means (Lloyd's algorithm), started at the quantiles ``(k + 1/2) / L``.

    Each iteration assigns every value to its nearest level and moves each level to the mean of
    its values (an empty level stays where it is); deterministic. Sorted ascending.

    Raises:
        ValueError: non-positive ``levels`` or ``iterations``, more levels than values, empty or
            non-finite values.

    Example:
        >>> kmeans_codebook(jax.numpy.array([0.0, 0.1, 5.0, 5.2]), 2).tolist()
        [0.05000000074505806, 5.099999904632568]
    """
    levels = _check_levels(levels)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations <= 0:
        raise ValueError(f"`iterations` must be a positive integer, got {iterations!r}")
    arr = _check_values(values, levels)
    book = np.quantile(arr, (np.arange(levels) + 0.5) / levels)
    for _ in range(iterations):
        bins = np.argmin(np.abs(arr[:, None] - book[None, :]), axis=1)
        sums, counts = np.bincount(bins, arr, levels), np.bincount(bins, minlength=levels)
        new = np.where(counts > 0, sums / np.maximum(counts, 1), book)
        if np.array_equal(new, book):
            break
        book = new
    return jnp.asarray(np.sort(book), dtype=jnp.asarray(values).dtype)


def assign(values: Float[Array, " d"], codebook: Float[Array, " L"]) -> Int[Array, " d"]:
    """Nearest level of each value, ``s_i = argmin_k |w_i - c_k|`` (ties: the lowest index); int32.

    Example:
        >>> assign(jax.numpy.array([0.2, 0.9, -3.0]), jax.numpy.array([0.0, 1.0])).tolist()
        [0, 1, 0]
    """
    _check_codebook(codebook)
    distance = jnp.abs(values[:, None] - codebook[None, :])
    return jnp.argmin(distance, axis=1).astype(jnp.int32)


def dequantize(symbols: Int[Array, " d"], codebook: Float[Array, " L"]) -> Float[Array, " d"]:
    """The quantised values ``c_{s_i}``."""
    _check_codebook(codebook)
    return codebook[symbols]


def quantize(values: Float[Array, " d"], codebook: Float[Array, " L"]) -> Float[Array, " d"]:
    """``c_{s_i}`` with the nearest-level symbols, differentiable by the straight-through estimator.

    Value: exactly ``dequantize(assign(values, codebook), codebook)``. Gradient: identity in
    ``values``; for level ``k`` the sum of the incoming gradients of the entries assigned to it.

    Example:
        >>> import jax.numpy as jnp
        >>> book = jnp.array([-1.0, 0.0, 1.0])
        >>> quantize(jnp.array([0.3, -0.8, 2.0]), book).tolist()
        [0.0, -1.0, 1.0]
        >>> jax.grad(lambda c: quantize(jnp.array([0.3, -0.8, 2.0, 0.9]), c).sum())(book).tolist()
        [1.0, 1.0, 2.0]
    """
    symbols = assign(jax.lax.stop_gradient(values), jax.lax.stop_gradient(codebook))
    # c[s] carries the codebook's gradient; (w - sg(w)) is exactly 0 forward and passes w's gradient.
    return codebook[symbols] + (values - jax.lax.stop_gradient(values))


ORDERS = ("natural", "diagonal")


def second_order_round(
    values: Float[Array, " d"],
    codebook: Float[Array, " L"],
    hessian: Float[Array, "d d"],
    *,
    damping: float = 0.1,
    order: str = "natural",
) -> Int[Array, " d"]:
    """Symbols that round ``w`` to the codebook with a small quadratic loss increase (GPTQ).

    Entries are rounded one at a time, in ``order``. Rounding entry ``i`` (still free, with the
    not-yet-rounded set ``F`` containing it) to its nearest level ``c`` and moving the others by
    the optimal-brain-surgeon step minimises ``delta^T H_F delta`` subject to
    ``delta_i = c - w_i``:

    .. math:: w_F \\leftarrow w_F - (w_i - c)\\,
              \\frac{[H_F^{-1}]_{F, i}}{[H_F^{-1}]_{ii}}

    computed for all steps at once from the upper Cholesky factor ``U`` of
    ``H^{-1} = U^T U``: row ``i`` of ``U`` divided by ``U_ii`` is that step (Frantar et al. 2023).
    ``H`` is damped to ``H + damping * mean(diag H) * I``. With a diagonal ``H`` nothing moves and
    the result is :func:`assign`. Runs in float64 NumPy (``O(d^3)``: for ``d`` up to a few
    thousand).

    Args:
        values: ``w``, shape ``(d,)``.
        codebook: levels, shape ``(L,)``.
        hessian: ``(d, d)`` symmetric positive semi-definite curvature of the loss in ``w``.
        damping: relative diagonal damping (>= 0).
        order: ``"natural"`` (index order) or ``"diagonal"`` (largest ``H_ii`` first).

    Returns:
        int32 symbols, shape ``(d,)``.

    Raises:
        ValueError: wrong shapes, non-finite input, negative damping, an unknown ``order``, or a
            damped ``H`` that is not positive definite.

    Example:
        >>> import jax.numpy as jnp
        >>> h = jnp.array([[1.0, 0.9], [0.9, 1.0]])  # errors along (1, -1) are cheap
        >>> assign(jnp.array([0.4, 0.4]), jnp.array([0.0, 1.0])).tolist()
        [0, 0]
        >>> second_order_round(jnp.array([0.4, 0.4]), jnp.array([0.0, 1.0]), h, damping=0.0).tolist()
        [0, 1]
    """
    _check_codebook(codebook)
    w = np.asarray(values, dtype=np.float64)
    book = np.asarray(codebook, dtype=np.float64)
    h = np.asarray(hessian, dtype=np.float64)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"`values` must be a non-empty 1-D array, got shape {w.shape}")
    if h.shape != (w.size, w.size):
        raise ValueError(f"`hessian` must have shape ({w.size}, {w.size}), got {h.shape}")
    if not (np.all(np.isfinite(w)) and np.all(np.isfinite(h)) and np.all(np.isfinite(book))):
        raise ValueError("`values`, `codebook` and `hessian` must be finite")
    if not (isinstance(damping, (int, float)) and math.isfinite(damping) and damping >= 0):
        raise ValueError(f"`damping` must be a finite number >= 0, got {damping!r}")
    if order not in ORDERS:
        raise ValueError(f"`order` must be one of {ORDERS}, got {order!r}")
    h = 0.5 * (h + h.T)
    perm = np.argsort(-np.diag(h), kind="stable") if order == "diagonal" else np.arange(w.size)
    w, h = w[perm].copy(), h[np.ix_(perm, perm)]
    h = h + damping * max(float(np.mean(np.diag(h))), 0.0) * np.eye(w.size)
    try:
        inv = scipy.linalg.cho_solve(scipy.linalg.cho_factor(h), np.eye(w.size))
        upper = scipy.linalg.cholesky(0.5 * (inv + inv.T), lower=False)
    except np.linalg.LinAlgError as exc:
        raise ValueError("the damped `hessian` is not positive definite; increase `damping`") from exc
    symbols = np.empty(w.size, dtype=np.int64)
    for i in range(w.size):
        symbols[i] = int(np.argmin(np.abs(book - w[i])))
        step = (w[i] - book[symbols[i]]) / upper[i, i]
        w[i + 1 :] -= step * upper[i, i + 1 :]
    out = np.empty_like(symbols)
    out[perm] = symbols
    return jnp.asarray(out, dtype=jnp.int32)


def round_codebook(codebook: Float[Array, " L"], dtype=jnp.float16) -> Float[Array, " L"]:
    """The levels rounded to ``dtype`` (float16: what 16 bits per level can store), in the
    codebook's own dtype."""
    _check_codebook(codebook)
    return codebook.astype(dtype).astype(codebook.dtype)


class QuantizedSubspace(eqx.Module):
    """A :class:`~physbias.bounds.Subspace` model whose ``w`` is quantised with a learned codebook.

    Calling it runs the subspace model with ``w`` replaced by :func:`quantize` ``(w, codebook)``,
    so training it (``w`` and ``codebook``, e.g. with
    ``physbias.train.only(opt, qs, lambda q: (q.subspace.w, q.codebook))``) fine-tunes the
    codebook by the straight-through estimator.

    Args:
        subspace: the trained subspace model.
        codebook: initial levels, shape ``(L,)`` (:func:`kmeans_codebook`, :func:`uniform_codebook`).

    Raises:
        ValueError: a codebook that is not a non-empty 1-D array of the dtype of ``w``.
    """

    subspace: Subspace
    codebook: Float[Array, " L"]

    def __init__(self, subspace: Subspace, codebook):
        codebook = jnp.asarray(codebook)
        _check_codebook(codebook)
        if codebook.dtype != subspace.w.dtype:
            raise ValueError(
                f"`codebook` must have dtype {subspace.w.dtype} (that of w), got {codebook.dtype}"
            )
        self.subspace, self.codebook = subspace, codebook

    @property
    def levels(self) -> int:
        """Codebook size ``L``."""
        return int(self.codebook.shape[0])

    def symbols(self) -> Int[Array, " d"]:
        """The symbols ``s`` of the current ``w`` (nearest levels)."""
        return assign(self.subspace.w, self.codebook)

    def dequantized(self) -> Subspace:
        """The subspace model with ``w`` set to its quantised values (what the message codes)."""
        return eqx.tree_at(lambda s: s.w, self.subspace, dequantize(self.symbols(), self.codebook))

    def __call__(self, *args, **kwargs):
        w = quantize(self.subspace.w, self.codebook)
        return eqx.tree_at(lambda s: s.w, self.subspace, w)(*args, **kwargs)


__all__ = [
    "ORDERS",
    "QuantizedSubspace",
    "assign",
    "dequantize",
    "kmeans_codebook",
    "quantize",
    "round_codebook",
    "second_order_round",
    "uniform_codebook",
]
