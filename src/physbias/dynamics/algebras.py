"""Reading learned generators: reference symmetry algebras in phase space, the singular values of a
stack of generators, and principal angles between a learned span and a reference algebra.

Generators are affine ``(d+1) x (d+1)`` matrices ``G = [[J A, J b], [0, 0]]`` of quadratic
conserved quantities (:func:`~physbias.dynamics.quadratic_generator`). ``K`` learned quantities
span at most a ``K``-dimensional algebra; its dimension shows as the number of dominant singular
values of the ``K x (d+1)^2`` stack (Noether's razor, Fig. 3: 1 for the harmonic oscillator, ``n^2``
for ``n`` isotropic oscillators, 3 for the planar ``N``-body problem).
"""

from __future__ import annotations

import numpy as np

from .conserved import QuadraticConservedQuantities, _check_count


def unitary_algebra(n: int) -> QuadraticConservedQuantities:
    """The ``n^2`` conserved quadratics of ``n`` isotropic unit oscillators
    ``H = |q|^2 / 2 + |p|^2 / 2``, generating ``U(n)``: ``C = x^T A x / 2`` with
    ``A = [[S, T], [-T, S]]``, ``S`` symmetric, ``T`` antisymmetric (exactly the quadratics with
    ``{C, H} = 0``). ``n = 1`` is ``SO(2)``, the rotation of the phase plane (``A = I``). Use it as
    a fixed (oracle) symmetry; ``.generators()`` has shape ``(n^2, 2n+1, 2n+1)``."""
    _check_count(n, "n", "unitary_algebra")
    blocks = []
    for i in range(n):
        for j in range(i, n):
            s = np.zeros((n, n))
            s[i, j] = s[j, i] = 1.0
            blocks.append(np.block([[s, np.zeros((n, n))], [np.zeros((n, n)), s]]))
    for i in range(n):
        for j in range(i + 1, n):
            t = np.zeros((n, n))
            t[i, j], t[j, i] = 1.0, -1.0
            blocks.append(np.block([[np.zeros((n, n)), t], [-t, np.zeros((n, n))]]))
    quadratic = np.stack(blocks).astype(np.float32)
    return QuadraticConservedQuantities(2 * n, n * n, quadratic=quadratic)


def euclidean_algebra_2d(n_bodies: int) -> QuadraticConservedQuantities:
    """The 3 conserved quantities generating ``SE(2)`` on ``n_bodies`` planar bodies, state
    ``(x_1, y_1, ..., x_n, y_n, p_x1, p_y1, ...)``: total momenta ``P_x``, ``P_y`` (translations) and
    the angular momentum ``L = sum_i x_i p_yi - y_i p_xi`` (rotation). ``.generators()`` has shape
    ``(3, 4n+1, 4n+1)``."""
    _check_count(n_bodies, "n_bodies", "euclidean_algebra_2d")
    d = 4 * n_bodies
    half = 2 * n_bodies
    linear = np.zeros((3, d), np.float32)
    linear[0, half::2] = 1.0  # P_x
    linear[1, half + 1 :: 2] = 1.0  # P_y
    quadratic = np.zeros((3, d, d), np.float32)
    for i in range(n_bodies):
        x, y, px, py = 2 * i, 2 * i + 1, half + 2 * i, half + 2 * i + 1
        quadratic[2, x, py] = quadratic[2, py, x] = 1.0
        quadratic[2, y, px] = quadratic[2, px, y] = -1.0
    return QuadraticConservedQuantities(d, 3, quadratic=quadratic, linear=linear)


def _stack(generators) -> np.ndarray:
    g = np.asarray(generators, np.float64)
    if g.ndim != 3 or g.shape[1] != g.shape[2] or g.shape[0] < 1:
        raise ValueError(f"`generators` must have shape (K, d+1, d+1) with K >= 1, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise ValueError("`generators` must be finite")
    return g.reshape(g.shape[0], -1)


def generator_singular_values(generators) -> np.ndarray:
    """Singular values (descending) of the ``K x (d+1)^2`` stack of generators: how many
    independent symmetries ``K`` learned quantities actually span."""
    return np.linalg.svd(_stack(generators), compute_uv=False)


def principal_cosines(generators, reference, rank: int | None = None) -> np.ndarray:
    """Cosines of the principal angles between the span of the ``rank`` dominant right singular
    vectors of ``generators`` and the span of ``reference``, descending (Bjorck & Golub 1973).

    ``rank=None`` takes the reference's dimension: all ones when the learned generators span the
    reference algebra. A smaller ``rank`` asks whether the ``rank`` learned directions lie inside
    the reference; a one-generator ``reference`` asks how much of it the learned span contains.
    Missing learned directions count as cosine 0.
    """
    learned, ref = _stack(generators), _stack(reference)
    if learned.shape[1] != ref.shape[1]:
        raise ValueError(
            "`generators` and `reference` act on different spaces: "
            f"{learned.shape[1]} vs {ref.shape[1]} entries"
        )
    u_ref, s_ref, _ = np.linalg.svd(ref.T, full_matrices=False)
    ref_rank = int(np.sum(s_ref > 1e-8 * s_ref[0]))
    q_ref = u_ref[:, :ref_rank]
    rank = ref_rank if rank is None else int(rank)
    if rank < 1:
        raise ValueError(f"`rank` must be a positive integer, got {rank}")
    _, _, vt = np.linalg.svd(learned, full_matrices=False)
    q_learned = vt[: min(rank, vt.shape[0])].T
    cosines = np.clip(np.linalg.svd(q_learned.T @ q_ref, compute_uv=False), 0.0, 1.0)
    return np.concatenate([cosines, np.zeros(min(rank, ref_rank) - cosines.size)])


def nbody_algebra_2d(n_bodies: int) -> QuadraticConservedQuantities:
    """Every quadratic conserved quantity of ``n_bodies`` unit masses in the plane with a central
    pair potential (7 of them): ``P_x``, ``P_y``, the angular momentum ``L``, the centre of mass's
    own angular momentum ``L_cm = X P_y - Y P_x`` (``X`` the mean position: ``dL_cm/dt = P x P / n
    = 0``), and the products ``P_x^2``, ``P_y^2``, ``P_x P_y``. It contains :func:`euclidean_algebra_2d`;
    ``L`` splits into ``L_cm`` and the internal ``L - L_cm``, each a rotation symmetry on its own."""
    base = euclidean_algebra_2d(n_bodies)
    d, half = 4 * n_bodies, 2 * n_bodies
    quadratic = np.zeros((7, d, d), np.float32)
    linear = np.zeros((7, d), np.float32)
    quadratic[:3], linear[:3] = np.asarray(base.quadratic), np.asarray(base.linear)
    px, py = linear[0], linear[1]
    x = np.zeros(d, np.float32)
    y = np.zeros(d, np.float32)
    x[0:half:2], y[1:half:2] = 1.0 / n_bodies, 1.0 / n_bodies
    # C = u^T x v^T x = x^T (u v^T + v u^T) x / 2 for the product of two linear forms u.x and v.x
    product = lambda u, v: np.outer(u, v) + np.outer(v, u)  # noqa: E731
    quadratic[3] = product(x, py) - product(y, px)
    quadratic[4], quadratic[5], quadratic[6] = product(px, px), product(py, py), product(px, py)
    return QuadraticConservedQuantities(d, 7, quadratic=quadratic, linear=linear)


def generator_cosine(a, b) -> float:
    """``|<a, b>| / (|a| |b|)`` of two generators (their sign and scale are arbitrary)."""
    a, b = np.ravel(np.asarray(a, np.float64)), np.ravel(np.asarray(b, np.float64))
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(abs(a @ b) / norm) if norm > 0 else 0.0


def quadratic_of_generator(generator) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` of the quadratic ``C = x^T A x / 2 + b^T x`` whose generator is ``generator``
    (the inverse of :func:`~physbias.dynamics.quadratic_generator`: ``A = -J (J A)``, as ``J^2 = -I``)."""
    g = np.asarray(generator, np.float64)
    d = g.shape[0] - 1
    n = d // 2
    j = np.block([[np.zeros((n, n)), np.eye(n)], [-np.eye(n), np.zeros((n, n))]])
    return -j @ g[:d, :d], -j @ g[:d, d]


def describe_quadratic(quadratic, linear, names=None, threshold: float = 0.05) -> str:
    """A readable formula of ``C = x^T A x / 2 + b^T x``, scaled so that its largest coefficient is
    1 (a conserved quantity's scale and sign are arbitrary); smaller terms than ``threshold`` times
    the largest are dropped. ``names`` default to ``q1..qn, p1..pn``.

    Example:
        >>> describe_quadratic(np.eye(2), np.zeros(2))
        '1 q1^2 + 1 p1^2'
    """
    a, b = np.asarray(quadratic, np.float64), np.asarray(linear, np.float64)
    d = b.shape[0]
    if names is None:
        n = d // 2
        names = [f"q{i + 1}" for i in range(n)] + [f"p{i + 1}" for i in range(n)]
    terms = [(0.5 * a[i, i], f"{names[i]}^2") for i in range(d)]
    terms += [(a[i, j] + 0.0, f"{names[i]} {names[j]}") for i in range(d) for j in range(i + 1, d)]
    terms += [(b[i], names[i]) for i in range(d)]
    top = max(abs(c) for c, _ in terms) or 1.0
    kept = [(c / top, name) for c, name in terms if abs(c) >= threshold * top]
    text = " ".join(f"{'-' if c < 0 else '+'} {abs(c):.3g} {name}" for c, name in kept)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]
