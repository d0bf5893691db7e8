"""Training in a random linear subspace: ``theta = theta_0 + P w`` (intrinsic dimension).

A model with ``D`` parameters ``theta`` is reparametrised by ``d << D`` numbers ``w``: the initial
parameters ``theta_0`` and the ``D x d`` projector ``P`` are drawn once from a seed and frozen; only
``w`` is trained (Li et al. 2018). Because ``theta_0`` and ``P`` come from the seed, the trained model
is described by ``w`` alone, which is what a compression bound codes (Lotfi et al. 2022).

Projectors (columns of unit norm, so ``||P w|| ~ ||w||`` and step sizes carry over between ``d``):

* :class:`DenseProjector`: i.i.d. ``N(0, 1/D)`` entries (columns near-orthonormal), or exactly
  orthonormal columns from a QR factorisation (``D d^2`` work: for small models);
* :class:`KroneckerProjector`: ``P = S (A ⊗ B) E C`` with small Gaussian factors ``A (D_a x d_a)``,
  ``B (D_b x d_b)`` orthonormalised by QR, ``E`` the first ``d`` of the ``d_a d_b`` columns, ``S``
  a random choice of ``D`` of the ``D_a D_b`` rows (in random order) and ``C`` a low-rank
  correction that makes the columns exactly orthonormal again after the spare rows are dropped.
  ``P w`` is computed as ``A W B^T`` without forming ``P`` (``O(sqrt(D) d + D sqrt(d))`` work,
  ``O(sqrt(D d))`` memory). This plays the role of the reference's ``rdkronqr``
  (``pactl/nn/projectors.py``, which completes a square Kronecker block with a dense
  Gaussian block instead, whose columns are not orthonormal).

Projectors are drawn once, in float64 NumPy from a generator seeded by the bits of the JAX key
(set-up code: nothing to compile), and stored in the model's dtype.

:class:`Subspace` wraps any Equinox model. Its only trainable array is ``w``: ``theta_0`` and the
projector pass through ``jax.lax.stop_gradient``, so their gradients are zero and a plain optimiser
leaves them unchanged; to skip their optimiser state use
``physbias.train.only(optax.adam(lr), subspace, lambda s: s.w)``.

References:
    C. Li, H. Farkhoor, R. Liu, J. Yosinski, "Measuring the intrinsic dimension of objective
    landscapes", ICLR 2018.
    S. Lotfi et al., "PAC-Bayes compression bounds so tight that they can explain
    generalization", NeurIPS 2022.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

PROJECTORS = ("kronecker", "dense")


def _check_size(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)


def _check_orthonormal_fits(num_params: int, dim: int) -> None:
    if dim > num_params:
        raise ValueError(
            f"`dim` = {dim} exceeds the number of parameters {num_params}: a {num_params} x {dim} "
            "projector cannot have orthonormal columns (use orthonormal=False or a smaller dim)"
        )


def _rng(key: PRNGKeyArray) -> np.random.Generator:
    """A NumPy generator seeded by the bits of a JAX key: projectors are set up once, in float64
    NumPy (no compilation), and still follow the explicit key."""
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _gaussian(rng: np.random.Generator, rows: int, cols: int, orthonormal: bool) -> np.ndarray:
    """A ``rows x cols`` Gaussian matrix: entries ``N(0, 1/rows)``, or its orthonormal columns."""
    g = rng.standard_normal((rows, cols))
    if not orthonormal:
        return g / math.sqrt(rows)
    q, r = np.linalg.qr(g)
    # Fixing the signs of diag(R) makes Q exactly Haar distributed (Mezzadri 2007).
    return q * np.where(np.diagonal(r) < 0, -1.0, 1.0)[None, :]


class AbstractProjector(eqx.Module):
    """A fixed linear map ``P: R^d -> R^D`` (``d = dim``, ``D = num_params``).

    Subclasses give ``__call__(w) -> P w``; :meth:`transpose` (``P^T v``) and :meth:`as_matrix`
    (the dense ``D x d`` matrix, for tests and small sizes) follow from it.
    """

    num_params: eqx.AbstractVar[int]
    dim: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, w: Float[Array, " d"]) -> Float[Array, " D"]:
        """``P w``: shape ``(dim,)`` -> ``(num_params,)``."""

    def transpose(self, v: Float[Array, " D"]) -> Float[Array, " d"]:
        """``P^T v``: shape ``(num_params,)`` -> ``(dim,)`` (the transpose of :meth:`__call__`)."""
        (out,) = jax.linear_transpose(self, jax.ShapeDtypeStruct((self.dim,), v.dtype))(v)
        return out

    def as_matrix(self, dtype=jnp.float32) -> Float[Array, "D d"]:
        """The dense ``num_params x dim`` matrix ``P`` (``D d`` memory)."""
        return jax.vmap(self, in_axes=1, out_axes=1)(jnp.eye(self.dim, dtype=dtype))


class DenseProjector(AbstractProjector):
    """A dense random ``D x d`` projector.

    ``orthonormal=False``: entries i.i.d. ``N(0, 1/D)``, so ``E[P^T P] = I`` and the singular values
    lie within about ``1 +- sqrt(d/D)`` (the reference's ``LazyRandom``). ``orthonormal=True``:
    ``P^T P = I`` exactly, from the QR factorisation of a Gaussian matrix (requires ``d <= D``).

    Args:
        num_params: ``D``, rows.
        dim: ``d``, columns.
        key: PRNG key.
        orthonormal: orthonormalise the columns.
        dtype: floating dtype of ``P``.

    Raises:
        ValueError: non-positive sizes, or ``dim > num_params`` with ``orthonormal=True``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> p = DenseProjector(50, 4, key=jax.random.key(0), orthonormal=True)
        >>> bool(jnp.allclose(p.matrix.T @ p.matrix, jnp.eye(4), atol=1e-5))
        True
    """

    matrix: Float[Array, "D d"]
    num_params: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __init__(
        self, num_params: int, dim: int, *, key: PRNGKeyArray, orthonormal: bool = False, dtype=jnp.float32
    ):
        num_params, dim = _check_size(num_params, "num_params"), _check_size(dim, "dim")
        if orthonormal:
            _check_orthonormal_fits(num_params, dim)
        self.matrix = jnp.asarray(_gaussian(_rng(key), num_params, dim, orthonormal), dtype)
        self.num_params, self.dim = num_params, dim

    def __call__(self, w: Float[Array, " d"]) -> Float[Array, " D"]:
        return self.matrix @ w

    def transpose(self, v: Float[Array, " D"]) -> Float[Array, " d"]:
        return self.matrix.T @ v

    def as_matrix(self, dtype=jnp.float32) -> Float[Array, "D d"]:
        return self.matrix.astype(dtype)


def kronecker_shape(num_params: int, dim: int) -> tuple[int, int, int, int]:
    """Factor sizes ``(D_a, D_b, d_a, d_b)`` of :class:`KroneckerProjector`:
    ``D_a = ceil(sqrt D)``, ``d_a = ceil(sqrt d)``, ``d_b = ceil(d / d_a)``,
    ``D_b = max(ceil(D / D_a), d_b)``, so that ``D_a D_b >= D``, ``d_a d_b >= d`` and (for
    ``d <= D``) each factor has at least as many rows as columns.

    Example:
        >>> kronecker_shape(10_000, 500)
        (100, 100, 23, 22)
    """
    num_params, dim = _check_size(num_params, "num_params"), _check_size(dim, "dim")
    rows_a, cols_a = math.isqrt(num_params - 1) + 1, math.isqrt(dim - 1) + 1  # ceil(sqrt(.))
    cols_b = -(-dim // cols_a)
    rows_b = max(-(-num_params // rows_a), cols_b)
    return rows_a, rows_b, cols_a, cols_b


class KroneckerProjector(AbstractProjector):
    """A structured ``D x d`` projector with orthonormal columns, applied as ``A W B^T``.

    .. math:: P w = S\\,(A \\otimes B)\\,E\\,C\\,w, \\qquad
              (A \\otimes B)\\,\\mathrm{vec}(W) = \\mathrm{vec}(A\\, W B^\\top), \\quad
              W = \\mathrm{reshape}_{d_a \\times d_b}([C w, 0])

    Sizes from :func:`kronecker_shape`; ``S`` keeps ``D`` of the ``D_a D_b`` rows (a random
    choice, in random order; ``rows`` holds their indices). With ``orthonormal=True`` (default)
    ``A`` and ``B`` have orthonormal columns (QR of Gaussian matrices), so ``(A ⊗ B) E`` does; the
    ``k = D_a D_b - D`` dropped rows ``R`` (``k x d``; ``k < D_a`` unless ``d_b`` forces a larger
    ``D_b``) leave ``K = S (A ⊗ B) E`` with ``K^T K = I - R^T R``. The correction
    ``C = (I - R^T R)^{-1/2} = I + V diag(c) V^T`` (from the SVD ``R = U Σ V^T``,
    ``c = (1 - Σ^2)^{-1/2} - 1``) restores ``P^T P = I`` exactly at ``O(d k)`` extra work.
    Requires ``d <= D``. ``orthonormal=False``: entries ``N(0, 1/D_a)`` and ``N(0, 1/D_b)``, no
    correction (columns near-orthonormal).

    Args:
        num_params: ``D``, rows.
        dim: ``d``, columns.
        key: PRNG key.
        orthonormal: orthonormal columns.
        dtype: floating dtype of the factors.

    Raises:
        ValueError: non-positive sizes; with ``orthonormal=True``, ``dim > num_params`` or a
            ``dim`` so close to ``num_params`` that the kept rows are (nearly) rank deficient.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> p = KroneckerProjector(30, 6, key=jax.random.key(0))
        >>> p(jnp.ones(6)).shape
        (30,)
        >>> m = p.as_matrix()
        >>> bool(jnp.allclose(m.T @ m, jnp.eye(6), atol=1e-5))
        True
    """

    left: Float[Array, "Da da"]
    right: Float[Array, "Db db"]
    rows: Int[Array, " D"]
    correction_basis: Float[Array, "d k"]
    correction_scale: Float[Array, " k"]
    num_params: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)

    def __init__(
        self, num_params: int, dim: int, *, key: PRNGKeyArray, orthonormal: bool = True, dtype=jnp.float32
    ):
        num_params, dim = _check_size(num_params, "num_params"), _check_size(dim, "dim")
        if orthonormal:
            _check_orthonormal_fits(num_params, dim)
        rows_a, rows_b, cols_a, cols_b = kronecker_shape(num_params, dim)
        rng = _rng(key)
        left = _gaussian(rng, rows_a, cols_a, orthonormal)
        right = _gaussian(rng, rows_b, cols_b, orthonormal)
        order = rng.permutation(rows_a * rows_b)
        dropped = order[num_params:]
        basis, scale = np.zeros((dim, 0)), np.zeros((0,))
        if orthonormal and dropped.size:
            # The dropped rows of (A kron B) E: row (i, j) is kron(A[i], B[j]) cut to d entries.
            ia, ib = dropped // rows_b, dropped % rows_b
            spare = (left[ia][:, :, None] * right[ib][:, None, :]).reshape(dropped.size, -1)[:, :dim]
            _, sigma, vt = np.linalg.svd(spare, full_matrices=False)
            if float(np.max(sigma)) ** 2 > 1.0 - 1e-3:
                raise ValueError(
                    f"`dim` = {dim} is too close to `num_params` = {num_params} for a Kronecker projector "
                    "with orthonormal columns (the kept rows are nearly rank deficient); use "
                    "projector='dense' or a smaller dim"
                )
            basis, scale = vt.T, 1.0 / np.sqrt(1.0 - sigma**2) - 1.0
        self.left, self.right = jnp.asarray(left, dtype), jnp.asarray(right, dtype)
        self.rows = jnp.asarray(order[:num_params], jnp.int32)
        self.correction_basis, self.correction_scale = jnp.asarray(basis, dtype), jnp.asarray(scale, dtype)
        self.num_params, self.dim = num_params, dim

    def _padded(self) -> int:
        return self.left.shape[1] * self.right.shape[1]

    def _correct(self, w: Float[Array, " d"]) -> Float[Array, " d"]:
        """``C w = w + V (c * (V^T w))``: the symmetric correction (identity when no row is dropped)."""
        return w + self.correction_basis @ (self.correction_scale * (self.correction_basis.T @ w))

    def __call__(self, w: Float[Array, " d"]) -> Float[Array, " D"]:
        w = self._correct(w)
        grid = jnp.pad(w, (0, self._padded() - self.dim)).reshape(self.left.shape[1], self.right.shape[1])
        return (self.left @ grid @ self.right.T).reshape(-1)[self.rows]

    def transpose(self, v: Float[Array, " D"]) -> Float[Array, " d"]:
        full = jnp.zeros(self.left.shape[0] * self.right.shape[0], v.dtype).at[self.rows].set(v)
        grid = self.left.T @ full.reshape(self.left.shape[0], self.right.shape[0]) @ self.right
        return self._correct(grid.reshape(-1)[: self.dim])

    def as_matrix(self, dtype=jnp.float32) -> Float[Array, "D d"]:
        kron = jnp.kron(self.left, self.right)[self.rows][:, : self.dim]
        return jax.vmap(self._correct, in_axes=0)(kron).astype(dtype)  # rows of K C (C symmetric)


class Subspace(eqx.Module):
    """A model whose parameters live in a random affine subspace: ``theta = theta_0 + P w``.

    ``theta_0`` is the flat vector of the wrapped model's floating-point arrays (its
    initialisation), ``P`` a :class:`AbstractProjector`, ``w`` starts at zero, so a fresh
    ``Subspace`` computes exactly what the wrapped model does. Calling it calls the wrapped model
    with ``theta_0 + P w`` put back into its arrays.

    Args:
        model: an Equinox model; all its floating-point arrays (one dtype) are reparametrised.
        dim: subspace dimension ``d`` (> 0).
        key: PRNG key of the projector (with the model's own initialisation, the "seed" that a
            compression bound's prior fixes before training).
        projector: ``"kronecker"`` (:class:`KroneckerProjector`), ``"dense"``
            (:class:`DenseProjector`) or a ready :class:`AbstractProjector` of shape ``D x d``.
        orthonormal: orthonormal columns for a named projector (then ``d <= D`` is required).

    Raises:
        ValueError: non-positive ``dim``, ``dim`` above the number of parameters with
            ``orthonormal=True``, an unknown projector name or a projector of the wrong shape, a
            model without floating-point arrays.
        TypeError: a model whose floating-point arrays do not share one dtype.

    Example:
        >>> import jax, jax.numpy as jnp, equinox as eqx
        >>> net = eqx.nn.MLP(3, 2, 16, 1, key=jax.random.key(0))
        >>> sub = Subspace(net, 10, key=jax.random.key(1))
        >>> sub.w.shape, sub.num_params
        ((10,), 98)
        >>> bool(jnp.array_equal(sub(jnp.ones(3)), net(jnp.ones(3))))
        True
    """

    w: Float[Array, " d"]
    theta0: Float[Array, " D"]
    projector: AbstractProjector
    rest: Any
    treedef: Any = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)

    def __init__(
        self,
        model,
        dim: int,
        *,
        key: PRNGKeyArray,
        projector: str | AbstractProjector = "kronecker",
        orthonormal: bool = True,
    ):
        dim = _check_size(dim, "dim")
        if isinstance(projector, str) and projector not in PROJECTORS:
            raise ValueError(
                f"`projector` must be one of {PROJECTORS} or an AbstractProjector, got {projector!r}"
            )
        if not isinstance(projector, (str, AbstractProjector)):
            raise ValueError(
                f"`projector` must be one of {PROJECTORS} or an AbstractProjector, got {projector!r}"
            )
        params, self.rest = eqx.partition(model, eqx.is_inexact_array)
        leaves, self.treedef = jax.tree_util.tree_flatten(params)
        if not leaves:
            raise ValueError("`model` has no floating-point arrays to reparametrise")
        dtypes = {leaf.dtype for leaf in leaves}
        if len(dtypes) != 1:
            raise TypeError(
                f"`model`'s floating-point arrays must share one dtype, got {sorted(map(str, dtypes))}"
            )
        dtype = leaves[0].dtype
        self.shapes = tuple(leaf.shape for leaf in leaves)
        self.theta0 = jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])
        num_params = int(self.theta0.size)
        if isinstance(projector, AbstractProjector):
            if (projector.num_params, projector.dim) != (num_params, dim):
                got = f"{projector.dim} -> {projector.num_params}"
                raise ValueError(f"`projector` must map R^{dim} to R^{num_params}, got {got}")
            self.projector = projector
        elif projector == "dense":
            self.projector = DenseProjector(num_params, dim, key=key, orthonormal=orthonormal, dtype=dtype)
        else:
            self.projector = KroneckerProjector(
                num_params, dim, key=key, orthonormal=orthonormal, dtype=dtype
            )
        self.w = jnp.zeros(dim, dtype)

    @property
    def dim(self) -> int:
        """Subspace dimension ``d``."""
        return self.projector.dim

    @property
    def num_params(self) -> int:
        """Parameters ``D`` of the wrapped model."""
        return self.projector.num_params

    def theta(self) -> Float[Array, " D"]:
        """The flat parameters ``theta_0 + P w``; gradients flow to ``w`` only."""
        theta0, projector = jax.lax.stop_gradient((self.theta0, self.projector))
        return theta0 + projector(self.w)

    def materialize(self):
        """The wrapped model with parameters ``theta_0 + P w`` (an ordinary Equinox model)."""
        theta = self.theta()
        sizes = [math.prod(s) for s in self.shapes]
        offsets = np.cumsum([0, *sizes])
        leaves = [
            theta[a:b].reshape(s) for a, b, s in zip(offsets[:-1], offsets[1:], self.shapes, strict=True)
        ]
        return eqx.combine(jax.tree_util.tree_unflatten(self.treedef, leaves), self.rest)

    def __call__(self, *args, **kwargs):
        return self.materialize()(*args, **kwargs)


__all__ = [
    "PROJECTORS",
    "AbstractProjector",
    "DenseProjector",
    "KroneckerProjector",
    "Subspace",
    "kronecker_shape",
]
