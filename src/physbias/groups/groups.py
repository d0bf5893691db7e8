"""Matrix groups as data: discrete generators, a Lie-algebra basis and the defining dimension.

A group ``G <= GL(d)`` is described by what the equivariance constraints need (seed 004, EMLP):

- ``discrete_generators``: ``(m, d, d)`` matrices ``h_i`` that, with the identity component,
  generate ``G`` (e.g. a reflection for O(n), the shift for C(n));
- ``lie_algebra``: ``(k, d, d)`` basis ``A_j`` of the Lie algebra (empty for finite groups), so that
  ``exp(t A_j)`` lies in ``G``.

A linear map is equivariant for the whole group iff it commutes with every ``h_i`` and every
``A_j`` (for connected components reached by the generators). Everything is float64 NumPy: these
are exact constants, not trained parameters.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

MAX_CONDITION = 1e8
"""Largest condition number of an accepted discrete generator (scale-free invertibility test)."""


@dataclass(frozen=True, eq=False)
class Group:
    """A matrix group ``G <= GL(d)``; construct with the named functions below."""

    name: str
    d: int
    discrete_generators: np.ndarray = field(repr=False)
    lie_algebra: np.ndarray = field(repr=False)
    compact: bool = True
    factors: tuple[Group, ...] = field(default=(), repr=False)
    """The factors of a direct product (empty otherwise)."""

    def __post_init__(self):
        if not isinstance(self.d, (int, np.integer)) or isinstance(self.d, bool) or self.d < 1:
            raise TypeError(f"{self.name}: `d` must be a positive integer, got {self.d!r}")
        for label in ("discrete_generators", "lie_algebra"):
            value = getattr(self, label)
            if not isinstance(value, np.ndarray):
                raise TypeError(
                    f"{self.name}: `{label}` must be a NumPy array of shape (m, d, d), "
                    f"got {type(value).__name__}"
                )
        for label, mats in (
            ("discrete_generators", self.discrete_generators),
            ("lie_algebra", self.lie_algebra),
        ):
            if mats.ndim != 3 or mats.shape[1:] != (self.d, self.d):
                raise ValueError(
                    f"{self.name}: `{label}` must have shape (m, {self.d}, {self.d}), got {mats.shape}"
                )
            if not np.all(np.isfinite(mats)):
                raise ValueError(f"{self.name}: `{label}` contains NaN or inf")
        for i, h in enumerate(self.discrete_generators):
            # Scale-free: the condition number, not |det| (1e-3 I is fine, diag(1, 1e-11) is not).
            if np.linalg.cond(h) > MAX_CONDITION:
                raise ValueError(
                    f"{self.name}: discrete generator {i} is not invertible (numerically): condition number "
                    f"{np.linalg.cond(h):.2e} > {MAX_CONDITION:.0e}"
                )

    def __repr__(self) -> str:
        return self.name

    def __hash__(self) -> int:
        return hash(self.key())

    def __eq__(self, other) -> bool:
        return isinstance(other, Group) and self.key() == other.key()

    def key(self) -> str:
        """A string that identifies the group's data (for caches): name plus a digest of the
        generators."""
        import hashlib

        digest = hashlib.sha256()
        for mats in (self.discrete_generators, self.lie_algebra):
            digest.update(np.ascontiguousarray(np.round(mats, 12), dtype=np.float64).tobytes())
            digest.update(str(mats.shape).encode())
        return f"{self.name}:{digest.hexdigest()[:16]}"

    def __mul__(self, other: Group) -> Group:
        """Direct product ``G1 x G2`` acting block-diagonally on ``R^(d1 + d2)``."""
        if not isinstance(other, Group):
            return NotImplemented
        return direct_product(self, other)

    def sample(self, rng: np.random.Generator, n: int = 1) -> np.ndarray:
        """``n`` random elements ``(n, d, d)``: products of generators and ``exp`` of random
        Lie-algebra elements (Haar for SO(n)/O(n) only up to this construction; any element of the
        group reached this way is a valid test element)."""
        out = np.empty((n, self.d, self.d))
        for i in range(n):
            g = np.eye(self.d)
            if len(self.lie_algebra):
                coeffs = rng.normal(size=len(self.lie_algebra))
                scale = 1.0 if self.compact else 0.3
                g = scipy.linalg.expm(scale * np.einsum("k,kij->ij", coeffs, self.lie_algebra))
            for _ in range(3 if len(self.discrete_generators) else 0):
                h = self.discrete_generators[rng.integers(len(self.discrete_generators))]
                g = g @ (h if rng.random() < 0.5 else np.eye(self.d))
            out[i] = g
        return out


def _empty(d: int) -> np.ndarray:
    return np.zeros((0, d, d))


def _unit(d: int, i: int, j: int) -> np.ndarray:
    m = np.zeros((d, d))
    m[i, j] = 1.0
    return m


def _antisymmetric_basis(d: int) -> np.ndarray:
    mats = [_unit(d, i, j) - _unit(d, j, i) for i in range(d) for j in range(i + 1, d)]
    return np.array(mats) if mats else _empty(d)


def _check_size(name: str, n: int, low: int = 1) -> None:
    if not isinstance(n, (int, np.integer)) or n < low:
        raise ValueError(f"{name}: `n` must be an integer >= {low}, got {n!r}")


def SO(n: int) -> Group:
    """Rotations of ``R^n``: Lie algebra of antisymmetric matrices, no discrete generators."""
    _check_size("SO(n)", n, 2)
    return Group(f"SO({n})", n, _empty(n), _antisymmetric_basis(n))


def O(n: int) -> Group:  # noqa: E743 - the group's standard name
    """Rotations and reflections of ``R^n``: SO(n) plus the reflection ``diag(-1, 1, ..., 1)``."""
    _check_size("O(n)", n, 1)
    reflection = np.eye(n)
    reflection[0, 0] = -1.0
    return Group(f"O({n})", n, reflection[None], _antisymmetric_basis(n))


def Z2(n: int = 1) -> Group:
    """Parity ``x -> -x`` on ``R^n``."""
    _check_size("Z2", n)
    return Group(f"Z2({n})" if n > 1 else "Z2", n, -np.eye(n)[None], _empty(n), True)


def _permutation_matrix(perm) -> np.ndarray:
    n = len(perm)
    m = np.zeros((n, n))
    m[np.asarray(perm), np.arange(n)] = 1.0
    return m


def C(n: int) -> Group:
    """Cyclic group ``Z_n`` acting on ``R^n`` by cyclic shifts."""
    _check_size("C(n)", n, 2)
    return Group(f"C({n})", n, _permutation_matrix(np.roll(np.arange(n), 1))[None], _empty(n))


def D(n: int) -> Group:
    """Dihedral group of order ``2n`` acting on ``R^n`` (shift and reversal of the n vertices)."""
    _check_size("D(n)", n, 2)
    shift = _permutation_matrix(np.roll(np.arange(n), 1))
    flip = _permutation_matrix(np.arange(n)[::-1])
    return Group(f"D({n})", n, np.stack([shift, flip]), _empty(n))


def S(n: int) -> Group:
    """Symmetric group acting on ``R^n`` by permuting coordinates (generators: a transposition and
    the n-cycle)."""
    _check_size("S(n)", n, 2)
    swap = np.arange(n)
    swap[[0, 1]] = [1, 0]
    gens = [_permutation_matrix(swap)] + ([_permutation_matrix(np.roll(np.arange(n), 1))] if n > 2 else [])
    return Group(f"S({n})", n, np.stack(gens), _empty(n))


_MINKOWSKI = np.diag([-1.0, 1.0, 1.0, 1.0])


def _lorentz_algebra() -> np.ndarray:
    """Generators ``A`` with ``A^T eta + eta A = 0``, ``eta = diag(-1, 1, 1, 1)`` (time first):
    three rotations and three boosts."""
    rotations = [_unit(4, i, j) - _unit(4, j, i) for i in range(1, 4) for j in range(i + 1, 4)]
    boosts = [_unit(4, 0, i) + _unit(4, i, 0) for i in range(1, 4)]
    return np.array(rotations + boosts)


def Lorentz() -> Group:
    """The full Lorentz group O(1,3) on ``(t, x, y, z)``: algebra plus parity and time reversal."""
    parity = np.diag([1.0, -1.0, -1.0, -1.0])
    time_reversal = np.diag([-1.0, 1.0, 1.0, 1.0])
    return Group("O(1,3)", 4, np.stack([parity, time_reversal]), _lorentz_algebra(), compact=False)


def SO13p() -> Group:
    """The proper orthochronous Lorentz group SO+(1,3) (the identity component)."""
    return Group("SO+(1,3)", 4, _empty(4), _lorentz_algebra(), compact=False)


def Sp(n: int) -> Group:
    """The symplectic group Sp(2n) on ``R^{2n}``: ``A`` with ``A^T J + J A = 0``,
    ``J = [[0, I], [-I, 0]]``; algebra basis ``J S`` for symmetric ``S``."""
    _check_size("Sp(n)", n)
    d = 2 * n
    j = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    sym = [_unit(d, a, b) + _unit(d, b, a) for a in range(d) for b in range(a, d)]
    return Group(f"Sp({n})", d, _empty(d), np.array([j @ s for s in sym]), compact=False)


def _complex_to_real(m: np.ndarray) -> np.ndarray:
    """Real form of a complex ``n x n`` matrix acting on ``(Re z, Im z)``."""
    return np.block([[m.real, -m.imag], [m.imag, m.real]])


def _unitary_algebra(n: int, traceless: bool) -> np.ndarray:
    mats = []
    for a in range(n):
        for b in range(a + 1, n):
            mats.append(_unit(n, a, b) - _unit(n, b, a))
            mats.append(1j * (_unit(n, a, b) + _unit(n, b, a)))
    diagonals = [1j * _unit(n, a, a) for a in range(n)]
    if traceless:
        diagonals = [1j * (_unit(n, a, a) - _unit(n, a + 1, a + 1)) for a in range(n - 1)]
    mats.extend(diagonals)
    return np.array([_complex_to_real(np.asarray(m, complex)) for m in mats])


def U(n: int) -> Group:
    """Unitary group U(n) in its real form on ``R^{2n}`` (real and imaginary parts)."""
    _check_size("U(n)", n)
    return Group(f"U({n})", 2 * n, _empty(2 * n), _unitary_algebra(n, traceless=False))


def SU(n: int) -> Group:
    """Special unitary group SU(n) in its real form on ``R^{2n}``."""
    _check_size("SU(n)", n, 2)
    return Group(f"SU({n})", 2 * n, _empty(2 * n), _unitary_algebra(n, traceless=True))


def _block(mats: np.ndarray, offset: int, d: int, identity: bool) -> np.ndarray:
    out = np.tile(np.eye(d) if identity else np.zeros((d, d)), (len(mats), 1, 1))
    k = mats.shape[-1]
    out[:, offset : offset + k, offset : offset + k] = mats
    return out


def direct_product(*groups: Group) -> Group:
    """``G1 x G2 x ...`` acting block-diagonally on ``R^(d1 + d2 + ...)``: each factor's
    generators act on its own block (identity elsewhere; zero elsewhere for the algebra)."""
    flat = list(itertools.chain.from_iterable(g.factors or (g,) for g in groups))
    d = sum(g.d for g in flat)
    discrete, algebra, offset = [], [], 0
    for g in flat:
        discrete.append(_block(g.discrete_generators, offset, d, identity=True))
        algebra.append(_block(g.lie_algebra, offset, d, identity=False))
        offset += g.d
    return Group(
        "x".join(g.name for g in flat),
        d,
        np.concatenate(discrete) if discrete else _empty(d),
        np.concatenate(algebra) if algebra else _empty(d),
        all(g.compact for g in flat),
        tuple(flat),
    )


def _affine(linear: Group, name: str) -> Group:
    """``linear`` acting on ``R^n`` extended by translations, in homogeneous coordinates
    ``(x, 1)`` of ``R^(n+1)``: elements ``[[R, t], [0, 1]]``."""
    n = linear.d

    def embed(mats: np.ndarray, last: float) -> np.ndarray:
        out = np.zeros((len(mats), n + 1, n + 1))
        out[:, :n, :n] = mats
        out[:, n, n] = last
        return out

    translations = [_unit(n + 1, i, n) for i in range(n)]
    algebra = np.concatenate([embed(linear.lie_algebra, 0.0), np.array(translations)])
    return Group(name, n + 1, embed(linear.discrete_generators, 1.0), algebra, compact=False)


def SE(n: int) -> Group:
    """Rigid motions SE(n) (rotations and translations) acting affinely on ``(x, 1)`` in ``R^(n+1)``.

    ``V`` is the homogeneous point ``(x, 1)``; the vectors ``(v, 0)`` (differences of points) form
    an invariant subspace on which translations act trivially."""
    _check_size("SE(n)", n, 2)
    return _affine(SO(n), f"SE({n})")


def E(n: int) -> Group:
    """Euclidean group E(n) = O(n) plus translations, acting affinely on ``(x, 1)``."""
    _check_size("E(n)", n, 2)
    return _affine(O(n), f"E({n})")


GROUPS = {"SO": SO, "O": O, "Z2": Z2, "C": C, "D": D, "S": S, "Sp": Sp, "U": U, "SU": SU, "SE": SE, "E": E}
"""Groups with one integer size, by name; plus ``Lorentz`` and ``SO13p`` (no size)."""


def get_group(name: str, n: int | None = None) -> Group:
    """A group by name: ``get_group("SO", 3)``, ``get_group("Lorentz")``."""
    if name in ("Lorentz", "O(1,3)"):
        return Lorentz()
    if name in ("SO13p", "SO+(1,3)"):
        return SO13p()
    if name not in GROUPS:
        valid = ", ".join(sorted([*GROUPS, "Lorentz", "SO13p"]))
        raise ValueError(f"unknown group {name!r}; valid names: {valid}")
    if n is None:
        raise ValueError(f"group {name!r} needs a size n")
    return GROUPS[name](n)


def finite_elements(G: Group, max_elements: int = 10_000) -> np.ndarray:
    """All elements ``(|G|, d, d)`` of a finite group (no Lie algebra), by closing the discrete
    generators under multiplication (breadth first; the identity comes first)."""
    if len(G.lie_algebra):
        raise ValueError(f"{G} is continuous (it has a Lie algebra): it has no finite list of elements")
    identity = np.eye(G.d)
    found = {(np.round(identity, 8) + 0.0).tobytes(): identity}
    frontier = [identity]
    while frontier:
        nxt = []
        for g in frontier:
            for h in G.discrete_generators:
                gh = h @ g
                k = (np.round(gh, 8) + 0.0).tobytes()  # + 0.0 turns -0.0 into 0.0
                if k not in found:
                    found[k] = gh
                    nxt.append(gh)
                    if len(found) > max_elements:
                        raise ValueError(f"{G} has more than max_elements={max_elements} elements")
        frontier = nxt
    return np.stack(list(found.values()))


def require_group(value, argument: str = "G") -> Group:
    """``value`` if it is a :class:`Group`; otherwise a ``TypeError`` naming ``argument`` and saying
    how to make one (a name goes through :func:`get_group`, matrices through the constructors)."""
    if isinstance(value, Group):
        return value
    hint = ""
    if isinstance(value, str):
        hint = f"; for a name use physbias.groups.get_group({value!r}) or the constructor, e.g. SO(3)"
    elif isinstance(value, (list, tuple, np.ndarray)):
        hint = (
            "; a list of generators is not a group: build a Group "
            "(e.g. Group(name, d, generators, lie_algebra))"
        )
    raise TypeError(f"`{argument}` must be a physbias.groups.Group, got {type(value).__name__}{hint}")
