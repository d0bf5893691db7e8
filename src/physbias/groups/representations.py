"""Representations as expressions, bound to a group when evaluated (EMLP-style notation).

``V`` is the defining representation (``rho(g) = g``), ``V.T`` (or ``V.dual``) its dual
(``rho(g) = g^{-T}``), ``Scalar`` the trivial one. They combine by direct sums ``+``, tensor
products ``*``, powers ``**`` and linear maps ``rep_in >> rep_out`` (``= rep_out * rep_in.T``);
``T(p, q) = V**p * V.T**q``. Integers multiply: ``3 * V`` is ``V + V + V``.

Every rep gives, for a group ``G``:

- ``size(G)``;
- ``rho(G, g)``: the ``(size, size)`` matrix of an element ``g`` of the defining rep;
- ``drho(G, A)``: the Lie-algebra action (the derivative of ``rho`` at the identity along ``A``):
  ``d(V)A = A``, ``d(V*)A = -A^T``, sums block-diagonal, products ``dA x I + I x dB``.

Tensor products use NumPy's row-major ``kron``: ``vec(W)`` for a map ``W`` of shape
``(out, in)`` is ``W.ravel()``.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.linalg

from .groups import Group


class Rep:
    """Base class of representation expressions."""

    def size(self, G: Group) -> int:
        raise NotImplementedError

    def rho(self, G: Group, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def drho(self, G: Group, A: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # algebra -----------------------------------------------------------------
    def __add__(self, other):
        if isinstance(other, int) and other == 0:
            return self
        if not isinstance(other, Rep):
            return NotImplemented
        return SumRep((self, other))

    __radd__ = __add__

    def __mul__(self, other):
        if isinstance(other, int):
            return _repeat(self, other)
        if not isinstance(other, Rep):
            return NotImplemented
        return ProductRep((self, other))

    def __rmul__(self, other):
        if isinstance(other, int):
            return _repeat(self, other)
        return NotImplemented

    def __pow__(self, k: int):
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"rep ** k needs an integer k >= 0, got {k!r}")
        if k == 0:
            return Scalar
        return functools.reduce(lambda a, b: ProductRep((a, b)), [self] * k)

    def __rshift__(self, other):
        """``rep_in >> rep_out``: linear maps from ``rep_in`` to ``rep_out``."""
        if not isinstance(other, Rep):
            return NotImplemented
        return ProductRep((other, self.T))

    @property
    def T(self) -> Rep:
        """The dual (contragredient) representation."""
        return DualRep(self)

    dual = T

    def __eq__(self, other):
        return isinstance(other, Rep) and repr(self) == repr(other)

    def __hash__(self):
        return hash(repr(self))


def _repeat(rep: Rep, k: int) -> Rep:
    if k < 0:
        raise ValueError(f"k * rep needs k >= 0, got {k}")
    if k == 0:
        return ZeroRep()
    return rep if k == 1 else SumRep((rep,) * k)


class _Vector(Rep):
    def size(self, G):
        return G.d

    def rho(self, G, g):
        return np.asarray(g, dtype=float)

    def drho(self, G, A):
        return np.asarray(A, dtype=float)

    def __repr__(self):
        return "V"


class FactorVector(Rep):
    """The block of ``V`` on which factor ``index`` of a direct-product group acts.

    A direct product ``G = G_1 x G_2 x ...`` acts block-diagonally, so ``V = V[0] + V[1] + ...`` is
    a direct sum of representations of ``G`` (factor ``k``'s block ``rho(g)[s:s+d, s:s+d]``, the
    other factors acting trivially on it). Splitting ``V`` this way before tensor products makes
    every atom of ``T(p, q)`` a product of small blocks (:func:`physbias.groups.basis.expand`).
    """

    def __init__(self, index: int, start: int, dim: int):
        self.index, self.start, self.dim = int(index), int(start), int(dim)

    def size(self, G):
        return self.dim

    def rho(self, G, g):
        s, e = self.start, self.start + self.dim
        return np.asarray(g, dtype=float)[s:e, s:e]

    def drho(self, G, A):
        s, e = self.start, self.start + self.dim
        return np.asarray(A, dtype=float)[s:e, s:e]

    def __repr__(self):
        return f"V[{self.index}:{self.start}+{self.dim}]"


class _Scalar(Rep):
    def size(self, G):
        return 1

    def rho(self, G, g):
        return np.ones((1, 1))

    def drho(self, G, A):
        return np.zeros((1, 1))

    def __repr__(self):
        return "Scalar"


class ZeroRep(Rep):
    """The zero-dimensional representation (``0 * V``)."""

    def size(self, G):
        return 0

    def rho(self, G, g):
        return np.zeros((0, 0))

    def drho(self, G, A):
        return np.zeros((0, 0))

    def __repr__(self):
        return "0"


class DualRep(Rep):
    def __init__(self, rep: Rep):
        self.rep = rep

    def size(self, G):
        return self.rep.size(G)

    def rho(self, G, g):
        return np.linalg.inv(self.rep.rho(G, g)).T

    def drho(self, G, A):
        return -self.rep.drho(G, A).T

    @property
    def T(self):
        return self.rep

    def __repr__(self):
        return f"{self.rep!r}*" if isinstance(self.rep, (_Vector, _Scalar)) else f"({self.rep!r})*"


class SumRep(Rep):
    def __init__(self, reps):
        flat = []
        for r in reps:
            flat.extend(r.reps if isinstance(r, SumRep) else [r])
        self.reps = tuple(r for r in flat if not isinstance(r, ZeroRep))

    def size(self, G):
        return sum(r.size(G) for r in self.reps)

    def rho(self, G, g):
        return scipy.linalg.block_diag(*(r.rho(G, g) for r in self.reps))

    def drho(self, G, A):
        return scipy.linalg.block_diag(*(r.drho(G, A) for r in self.reps))

    def __repr__(self):
        return "+".join(repr(r) for r in self.reps)


class ProductRep(Rep):
    def __init__(self, reps):
        flat = []
        for r in reps:
            flat.extend(r.reps if isinstance(r, ProductRep) else [r])
        self.reps = tuple(flat)

    def size(self, G):
        return int(np.prod([r.size(G) for r in self.reps]))

    def rho(self, G, g):
        return functools.reduce(np.kron, (r.rho(G, g) for r in self.reps))

    def drho(self, G, A):
        # Leibniz rule: sum over factors of I x ... x dA_i x ... x I.
        mats = [r.drho(G, A) for r in self.reps]
        eyes = [np.eye(r.size(G)) for r in self.reps]
        total = 0
        for i in range(len(mats)):
            total = total + functools.reduce(np.kron, eyes[:i] + [mats[i]] + eyes[i + 1 :])
        return total

    def __repr__(self):
        return "⊗".join(f"({r!r})" if isinstance(r, SumRep) else repr(r) for r in self.reps)


V = _Vector()
Scalar = _Scalar()


def T(p: int, q: int = 0) -> Rep:
    """Tensors of rank ``(p, q)``: ``V**p * V.T**q`` (``T(0, 0)`` is the scalar)."""
    if p < 0 or q < 0:
        raise ValueError(f"T(p, q) needs p, q >= 0, got ({p}, {q})")
    if p == q == 0:
        return Scalar
    if q == 0:
        return V**p
    if p == 0:
        return V.T**q
    return V**p * V.T**q
