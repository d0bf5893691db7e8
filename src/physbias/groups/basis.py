"""The equivariant-basis solver (seed 004, EMLP; M12), dense version.

A representation ``rep`` of a group ``G`` has equivariant vectors ``v`` with ``rho(h) v = v`` for
every discrete generator ``h`` and ``drho(A) v = 0`` for every Lie-algebra generator ``A``. For
maps ``W: rep_in -> rep_out`` use ``rep = rep_in >> rep_out`` (``vec(W) = W.ravel()``), which turns
``rho_out(g) W = W rho_in(g)`` into that form. The solution space is the null space of the stacked
constraint matrix ``[rho(h_i) - I; drho(A_j)]``, found by an SVD in float64.

(Large problems will use the Kronecker structure without building the constraint matrix; this
dense solver is the reference it will be tested against.)
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from .groups import Group
from .representations import Rep


def constraint_matrix(rep: Rep, G: Group) -> np.ndarray:
    """``[rho(h_i) - I; drho(A_j)]`` stacked, shape ``(n_constraints * size, size)``."""
    if not isinstance(G, Group):
        raise TypeError(f"`G` must be a Group, got {type(G).__name__}")
    if not isinstance(rep, Rep):
        raise TypeError(f"`rep` must be a Rep, got {type(rep).__name__}")
    n = rep.size(G)
    blocks = [rep.rho(G, h) - np.eye(n) for h in G.discrete_generators]
    blocks += [rep.drho(G, A) for A in G.lie_algebra]
    return np.concatenate(blocks) if blocks else np.zeros((0, n))


def cache_dir() -> Path:
    """Where solved bases are kept: ``$PHYSBIAS_CACHE_DIR`` or ``~/.cache/physbias/basis``."""
    root = os.environ.get("PHYSBIAS_CACHE_DIR")
    return Path(root) if root else Path.home() / ".cache" / "physbias" / "basis"


def _cache_path(rep: Rep, G: Group, tol: float) -> Path:
    key = f"{G.key()}|{rep!r}|{tol:.3e}"
    return cache_dir() / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


def equivariant_basis(rep: Rep, G: Group, tol: float = 1e-7, *, cache: bool = True) -> np.ndarray:
    """Orthonormal basis ``Q`` of shape ``(size, r)`` of the ``G``-equivariant vectors of ``rep``.

    Singular values below ``tol`` times the largest (at least ``tol``) count as zero. With
    ``cache``, the result is stored on disk (``.npz``, no pickle; key: the group's generators, the
    rep expression and ``tol``) and later calls load it.
    """
    path = _cache_path(rep, G, tol) if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as f:
            return f["basis"]
    basis = _solve_dense(rep, G, tol)
    if path is not None:
        buf = io.BytesIO()
        np.savez(buf, basis=basis)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:  # a read-only home must not break the solve
            pass
    return basis


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
