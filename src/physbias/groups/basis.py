"""The equivariant-basis solver (seed 004, EMLP; M12).

A representation ``rep`` of a group ``G`` has equivariant vectors ``v`` with ``rho(h) v = v`` for
every discrete generator ``h`` and ``drho(A) v = 0`` for every Lie-algebra generator ``A``. For
maps ``W: rep_in -> rep_out`` use ``rep = rep_in >> rep_out`` (``vec(W) = W.ravel()``), which turns
``rho_out(g) W = W rho_in(g)`` into that form. The solution space is the null space of the stacked
constraint matrix ``C = [rho(h_i) - I; drho(A_j)]``.

The solver exploits structure before it solves anything:

1. **Direct sums.** Tensor products distribute over sums, so ``rep`` is expanded into *atoms*
   (products of leaves ``V``, ``V*``, ...) at known coordinates, e.g.
   ``(10 V + 5 T2) >> (3 Scalar + T2)`` has 60 blocks but only 4 distinct atoms. Each distinct
   atom is solved once and its basis is scattered into every block where it occurs.
2. **Small atoms** (``size <= dense_max``): the null space of the Gram matrix ``C^T C`` (an
   ``n x n`` symmetric eigenproblem, float64), checked against ``C``.
3. **Large atoms**: ``C`` is never built. ``C^T C`` is applied matrix-free through the Kronecker
   structure (each leaf's matrix acts on one axis of the tensor ``v``) and its null space is found
   by LOBPCG on the smallest eigenvalues, growing the block until a non-zero eigenvalue shows.

Each atom's basis is cached on disk (``.npz``, no pickle) under :func:`cache_dir`, keyed by the
group's data, the atom and ``tol``.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import warnings
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

from .._io import atomic_write_bytes
from .groups import Group, require_group
from .representations import DualRep, FactorVector, ProductRep, Rep, Scalar, SumRep, ZeroRep, _Vector

DENSE_MAX = 4096
"""Atoms up to this size are solved by a dense SVD; larger ones matrix-free (LOBPCG)."""


def _check(rep: Rep, G: Group) -> None:
    require_group(G)
    if not isinstance(rep, Rep):
        raise TypeError(f"`rep` must be a Rep, got {type(rep).__name__}")


def constraint_matrix(rep: Rep, G: Group) -> np.ndarray:
    """``[rho(h_i) - I; drho(A_j)]`` stacked, shape ``(n_constraints * size, size)``."""
    _check(rep, G)
    n = rep.size(G)
    blocks = [rep.rho(G, h) - np.eye(n) for h in G.discrete_generators]
    blocks += [rep.drho(G, A) for A in G.lie_algebra]
    return np.concatenate(blocks) if blocks else np.zeros((0, n))


# ----------------------------------------------------------------------------- structure
def _product_atom(atoms: list[Rep]) -> Rep:
    leaves = []
    for a in atoms:
        leaves.extend(a.reps if isinstance(a, ProductRep) else [a])
    leaves = [a for a in leaves if a != Scalar]
    if not leaves:
        return Scalar
    return leaves[0] if len(leaves) == 1 else ProductRep(tuple(leaves))


def expand(rep: Rep, G: Group) -> list[tuple[Rep, np.ndarray]]:
    """``rep`` as a direct sum of atoms: ``[(atom, positions)]`` where ``positions`` (shape
    ``(atom.size(G),)``) are the coordinates of ``rep`` the atom occupies, in the atom's own order.
    Sums are split, duals pushed onto leaves, products distributed over sums."""
    if isinstance(rep, ZeroRep):
        return []
    if isinstance(rep, SumRep):
        out, offset = [], 0
        for r in rep.reps:
            out += [(a, p + offset) for a, p in expand(r, G)]
            offset += r.size(G)
        return out
    if isinstance(rep, DualRep):
        inner = rep.rep
        if isinstance(inner, SumRep):
            return expand(SumRep(tuple(r.T for r in inner.reps)), G)
        if isinstance(inner, ProductRep):
            return expand(ProductRep(tuple(r.T for r in inner.reps)), G)
        if isinstance(inner, DualRep):
            return expand(inner.rep, G)
        if inner == Scalar:
            return [(Scalar, np.zeros(1, dtype=np.int64))]
    if isinstance(rep, ProductRep):
        factors = [expand(r, G) for r in rep.reps]
        sizes = [r.size(G) for r in rep.reps]
        strides = np.cumprod([1] + sizes[::-1])[:-1][::-1]
        out = []
        for combo in itertools.product(*factors):
            pos = np.zeros((), dtype=np.int64)
            for (_, p), stride in zip(combo, strides, strict=True):
                pos = np.add.outer(pos, p * stride)  # row-major, like np.kron
            out.append((_product_atom([a for a, _ in combo]), pos.reshape(-1)))
        return out
    dual = isinstance(rep, DualRep)
    if G.factors and isinstance(rep.rep if dual else rep, _Vector):
        # A direct product acts block-diagonally: V = V[0] + V[1] + ..., so tensor powers split
        # into products of the factors' small blocks before anything is solved.
        out, offset = [], 0
        for k, factor in enumerate(G.factors):
            leaf = FactorVector(k, offset, factor.d)
            out.append((DualRep(leaf) if dual else leaf, offset + np.arange(factor.d)))
            offset += factor.d
        return out
    return [(rep, np.arange(rep.size(G)))]


# ----------------------------------------------------------------------------- solvers
def _solve_dense(rep: Rep, G: Group, tol: float) -> np.ndarray:
    C = constraint_matrix(rep, G)
    n = C.shape[1]
    if n == 0:
        return np.zeros((0, 0))
    if C.shape[0] == 0:
        return np.eye(n)
    _, s, vt = np.linalg.svd(C, full_matrices=C.shape[0] < n)
    s = np.concatenate([s, np.zeros(n - len(s))])
    cutoff = tol * max(1.0, float(s.max(initial=0.0)))
    return vt[s <= cutoff].T.copy()


def _solve_gram(rep: Rep, G: Group, tol: float) -> np.ndarray:
    """Null space of ``C`` from the eigenvectors of the ``(n, n)`` Gram matrix ``C^T C``, split
    into its connected components: far cheaper than the SVD of the tall ``C``. Eigenvalues below
    ``tol * max(1, |C^T C|_inf)`` count as zero (``C^T C`` squares the singular values, so this is
    a cutoff of ``sqrt(tol)`` on them; the structured constraints have non-zero singular values of
    order one), and the result is checked against ``C`` itself."""
    n = rep.size(G)
    if n == 0:
        return np.zeros((0, 0))
    gram = np.zeros((n, n))
    blocks = [rep.rho(G, h) - np.eye(n) for h in G.discrete_generators]
    blocks += [rep.drho(G, A) for A in G.lie_algebra]
    for B in blocks:
        gram += B.T @ B
    if not blocks:
        return np.eye(n)
    # The constraints couple few coordinates: the Gram matrix splits into connected components
    # (e.g. 15 blocks of <= 120 for S(5) on T(2) >> T(2)), each solved on its own.
    cutoff = tol * max(1.0, float(np.abs(gram).sum(axis=1).max()))  # bounds lambda_max
    n_comp, label = scipy.sparse.csgraph.connected_components(
        scipy.sparse.csr_matrix(np.abs(gram) > 0), directed=False
    )
    columns = []
    for c in range(n_comp):
        idx = np.flatnonzero(label == c)
        evals, evecs = np.linalg.eigh(gram[np.ix_(idx, idx)])
        for v in evecs[:, evals <= cutoff].T:
            col = np.zeros(n)
            col[idx] = v
            columns.append(col)
    Q = np.stack(columns, axis=1) if columns else np.zeros((n, 0))
    residual = max(float(np.abs(B @ Q).max(initial=0.0)) for B in blocks)
    if residual > 1e3 * tol:  # not cleanly separated: fall back to the SVD
        return _solve_dense(rep, G, tol)
    return Q


def _leaf_actions(atom: Rep, G: Group):
    leaves = list(atom.reps) if isinstance(atom, ProductRep) else [atom]
    sizes = [leaf.size(G) for leaf in leaves]
    discrete = [[leaf.rho(G, h) for leaf in leaves] for h in G.discrete_generators]
    algebra = [[leaf.drho(G, A) for leaf in leaves] for A in G.lie_algebra]
    return sizes, discrete, algebra


def _apply_axis(M: np.ndarray, v: np.ndarray, axis: int) -> np.ndarray:
    """``M`` acting on axis ``axis + 1`` of ``v`` (axis 0 is the block of vectors)."""
    return np.moveaxis(np.tensordot(M, v, axes=([1], [axis + 1])), 0, axis + 1)


def _solve_matrix_free(atom: Rep, G: Group, tol: float, seed: int = 0) -> np.ndarray:
    """Null space of ``C`` for a product atom without building ``C`` (see the module docstring)."""
    sizes, discrete, algebra = _leaf_actions(atom, G)
    n = int(np.prod(sizes))

    def constraints(v: np.ndarray) -> list[np.ndarray]:
        t = v.T.reshape(-1, *sizes)
        out = []
        for mats in discrete:
            gv = t
            for axis, M in enumerate(mats):
                gv = _apply_axis(M, gv, axis)
            out.append(gv - t)
        for mats in algebra:
            out.append(sum(_apply_axis(M, t, axis) for axis, M in enumerate(mats)))
        return [c.reshape(t.shape[0], n).T for c in out]

    def adjoint(cs: list[np.ndarray]) -> np.ndarray:
        total = np.zeros_like(cs[0]) if cs else None
        k = 0
        for mats in discrete:
            t = cs[k].T.reshape(-1, *sizes)
            gt = t
            for axis, M in enumerate(mats):
                gt = _apply_axis(M.T, gt, axis)
            total = total + (gt - t).reshape(t.shape[0], n).T
            k += 1
        for mats in algebra:
            t = cs[k].T.reshape(-1, *sizes)
            total = total + sum(_apply_axis(M.T, t, axis) for axis, M in enumerate(mats)).reshape(-1, n).T
            k += 1
        return total

    def gram(v):
        v = v.reshape(n, -1)
        return adjoint(constraints(v))

    if not discrete and not algebra:
        return np.eye(n)
    op = scipy.sparse.linalg.LinearOperator((n, n), matvec=gram, matmat=gram, dtype=np.float64)
    # Scale of C^T C from a few power iterations, for the relative cutoff.
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1))
    for _ in range(20):
        x = gram(x)
        x /= np.linalg.norm(x)
    top = float(np.linalg.norm(gram(x)))
    cutoff = (tol * max(1.0, np.sqrt(top))) ** 2
    block = 8
    while True:
        block = min(block, n)
        X = rng.standard_normal((n, block))
        with warnings.catch_warnings():  # LOBPCG reports reaching 1e-13 instead of 1e-12; we check below
            warnings.simplefilter("ignore", UserWarning)
            evals, evecs = scipy.sparse.linalg.lobpcg(op, X, largest=False, tol=1e-12, maxiter=2000)
        order = np.argsort(evals)
        evals, evecs = evals[order], evecs[:, order]
        null = evals <= 1e4 * cutoff
        if not null.all() or block == n:
            break
        block *= 2  # every found vector is in the null space: there may be more
    Q = np.linalg.qr(evecs[:, null])[0] if null.any() else np.zeros((n, 0))
    residual = max((float(np.linalg.norm(c)) for c in constraints(Q)), default=0.0) if Q.size else 0.0
    if residual > 1e3 * tol * max(1.0, np.sqrt(top)):
        raise RuntimeError(
            f"matrix-free solve of {atom!r} for {G} did not converge (residual {residual:.2e})"
        )
    return Q


def solve_atom(atom: Rep, G: Group, tol: float, *, dense_max: int = DENSE_MAX) -> np.ndarray:
    """Basis of one atom, dense or matrix-free by its size."""
    n = atom.size(G)
    return _solve_gram(atom, G, tol) if n <= dense_max else _solve_matrix_free(atom, G, tol)


# ----------------------------------------------------------------------------- cache
def cache_dir() -> Path:
    """Where solved bases are kept: ``$PHYSBIAS_CACHE_DIR`` or ``~/.cache/physbias/basis``."""
    root = os.environ.get("PHYSBIAS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "physbias" / "basis"


def _cache_path(rep: Rep, G: Group, tol: float) -> Path:
    key = f"{G.key()}|{rep!r}|{tol:.3e}"
    return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def atom_basis(atom: Rep, G: Group, tol: float = 1e-7, *, cache: bool = True, dense_max: int = DENSE_MAX):
    """Orthonormal basis ``(atom.size(G), r)`` of one atom, through the on-disk cache."""
    path = _cache_path(atom, G, tol) if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return f["basis"]
    basis = solve_atom(atom, G, tol, dense_max=dense_max)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, basis=basis)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:  # a read-only home must not break the solve
            pass
    return basis


def equivariant_basis(
    rep: Rep, G: Group, tol: float = 1e-7, *, cache: bool = True, dense_max: int = DENSE_MAX
) -> np.ndarray:
    """Orthonormal basis ``Q`` of shape ``(size, r)`` of the ``G``-equivariant vectors of ``rep``.

    ``rep`` is split into atoms (:func:`expand`); each distinct atom is solved once (dense SVD up
    to ``dense_max`` coordinates, matrix-free LOBPCG above) and scattered into place. Singular
    values below ``tol`` times the largest (at least ``tol``) count as zero. With ``cache``, atom
    bases are stored on disk and later calls load them.
    """
    _check(rep, G)
    terms = expand(rep, G)
    solved: dict[str, np.ndarray] = {}
    for atom, _ in terms:
        if repr(atom) not in solved:
            solved[repr(atom)] = atom_basis(atom, G, tol, cache=cache, dense_max=dense_max)
    size = rep.size(G)
    r = sum(solved[repr(a)].shape[1] for a, _ in terms)
    Q = np.zeros((size, r))
    col = 0
    for atom, pos in terms:
        q = solved[repr(atom)]
        Q[pos, col : col + q.shape[1]] = q
        col += q.shape[1]
    return Q
