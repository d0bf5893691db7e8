"""EMLP's synthetic regression tasks (Finzi et al. 2021, seed 004), generated locally.

Each task returns a :class:`SymmetricTask`: inputs ``X`` ``(N, size_in)``, targets ``Y``
``(N, size_out)``, the group and the reps, plus an equivariance-preserving standardisation
(one scale per input *copy*, a mean only for invariant outputs).

- :func:`o5_synthetic`: two 5-vectors -> ``sin|x1| - |x2|^3 / 2 + x1.x2 / (|x1||x2|)``, O(5).
- :func:`inertia`: ``k`` masses and positions -> ``sum_i m_i (|r_i|^2 I - r_i r_i^T)``, O(3);
  ``broken`` adds ``broken * sum_i m_i z_hat r_i^T``-style term that is not O(3)-equivariant
  (a fixed external direction), for the residual-pathway experiment.
- :func:`particle_interaction`: four 4-momenta -> the electron-muon scattering matrix element
  ``4 L_e^{ab} L_mu,ab``, Lorentz O(1,3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..groups.groups import Group, Lorentz, O
from ..groups.representations import Rep, Scalar, T, V


@dataclasses.dataclass(frozen=True)
class SymmetricTask:
    """A regression task with a known symmetry. ``x_scale`` ``(size_in,)`` is constant on every
    copy of a rep (so dividing by it commutes with the group); ``y_mean`` is zero unless the
    output is invariant."""

    name: str
    X: np.ndarray
    Y: np.ndarray
    G: Group
    rep_in: Rep
    rep_out: Rep
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: float


def _check_n(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")


def _copy_rms(x: np.ndarray, copies: int, d: int) -> np.ndarray:
    """RMS of each of ``copies`` d-vectors over the data, repeated over its ``d`` coordinates."""
    rms = np.sqrt((x.reshape(len(x), copies, d) ** 2).mean(axis=(0, 2)))
    return np.repeat(rms, d)


def o5_target(X: np.ndarray) -> np.ndarray:
    """``(N, 10) -> (N, 1)``: ``sin|x1| - |x2|^3 / 2 + x1.x2 / (|x1||x2|)``."""
    r1, r2 = X[:, :5], X[:, 5:]
    n1, n2 = np.linalg.norm(r1, axis=1), np.linalg.norm(r2, axis=1)
    return (np.sin(n1) - 0.5 * n2**3 + np.sum(r1 * r2, axis=1) / (n1 * n2))[:, None]


def o5_synthetic(rng: np.random.Generator, n: int) -> SymmetricTask:
    _check_n(n)
    X = rng.standard_normal((n, 10))
    Y = o5_target(X)
    return SymmetricTask(
        "O5Synthetic", X, Y, O(5), 2 * V, Scalar, _copy_rms(X, 2, 5), Y.mean(0), float(Y.std())
    )


def inertia(rng: np.random.Generator, n: int, k: int = 5, broken: float = 0.0) -> SymmetricTask:
    _check_n(n)
    X = rng.standard_normal((n, 4 * k))
    X[:, :k] = np.logaddexp(0.0, X[:, :k])  # softplus: positive masses
    Y = inertia_target(X, k, broken)
    m = X[:, :k]
    x_scale = np.concatenate([np.abs(m).mean(0), _copy_rms(X[:, k:], k, 3)])
    name = "Inertia" if not broken else f"Inertia+{broken:g} z-term"
    return SymmetricTask(
        name, X, Y, O(3), k * Scalar + k * V, T(2), x_scale, np.zeros(9), float(np.abs(Y).mean())
    )


def inertia_target(X: np.ndarray, k: int = 5, broken: float = 0.0) -> np.ndarray:
    """``(N, 4k) -> (N, 9)``: masses ``X[:, :k]``, positions ``X[:, k:]`` -> inertia tensor
    (plus ``broken`` times the symmetric z-term)."""
    n = len(X)
    m, r = X[:, :k], X[:, k:].reshape(n, k, 3)
    r2 = np.sum(r**2, axis=-1)
    inertia_tensor = np.einsum(
        "nk,nkij->nij", m, r2[..., None, None] * np.eye(3) - r[..., :, None] * r[..., None, :]
    )
    if broken:
        # A fixed direction (e.g. gravity, z): m_i (z r_i^T + r_i z^T) is not O(3)-equivariant.
        z = np.array([0.0, 0.0, 1.0])
        zr = np.einsum("nk,nki,j->nij", m, r, z)
        inertia_tensor = inertia_tensor + broken * (zr + np.swapaxes(zr, 1, 2))
    return inertia_tensor.reshape(n, 9)


def minkowski_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.b = a_t b_t - a_x b_x - a_y b_y - a_z b_z`` over the last axis (signature +,-,-,-;
    the group is the same O(1,3) as physbias' ``Lorentz()`` with eta = diag(-1, 1, 1, 1))."""
    return a[..., 0] * b[..., 0] - np.sum(a[..., 1:] * b[..., 1:], axis=-1)


def particle_target(X: np.ndarray) -> np.ndarray:
    """``(N, 16) -> (N, 1)``: four 4-momenta -> ``4 L_e^{ab} L_mu,ab``."""
    p1, p2, p3, p4 = (X[:, 4 * i : 4 * i + 4] for i in range(4))
    eta = np.diag([1.0, -1.0, -1.0, -1.0])
    # L_e^{ab} = p1^a p3^b - (p1.p3 - p1.p1) eta^{ab};  L_mu with lowered indices.
    Le = (
        p1[:, :, None] * p3[:, None, :] - (minkowski_dot(p1, p3) - minkowski_dot(p1, p1))[:, None, None] * eta
    )
    q2, q4 = p2 @ eta, p4 @ eta
    Lmu = (
        q2[:, :, None] * q4[:, None, :] - (minkowski_dot(p2, p4) - minkowski_dot(p2, p2))[:, None, None] * eta
    )
    return 4 * np.sum(Le * Lmu, axis=(1, 2))[:, None]


def particle_interaction(rng: np.random.Generator, n: int) -> SymmetricTask:
    _check_n(n)
    X = rng.standard_normal((n, 16)) / 4
    Y = particle_target(X)
    eta = np.diag([1.0, -1.0, -1.0, -1.0])
    x_scale = np.repeat(np.sqrt(np.abs(X.reshape(n, 4, 4) @ eta * X.reshape(n, 4, 4)).mean(-1).mean(0)), 4)
    return SymmetricTask(
        "ParticleInteraction", X, Y, Lorentz(), 4 * V, Scalar, x_scale, Y.mean(0), float(Y.std())
    )


TASKS = {"O5Synthetic": o5_synthetic, "Inertia": inertia, "ParticleInteraction": particle_interaction}


def rotation_arcs(
    rng: np.random.Generator, n: int, degrees: float = 120.0, noise: float = 0.06
) -> tuple[np.ndarray, np.ndarray]:
    """Two classes in the plane whose label depends on the radius only (LILA's illustrative data,
    Immer, van der Ouderaa et al. 2022): class 0 on an arc of radius 0.5, class 1 a blob at the
    origin plus an arc of radius 1; the arcs span angles ``[0, degrees]``. Half the points are
    class 0; of class 1, two thirds are on the arc. Radial noise ``noise`` (multiplicative).

    Returns ``(x (n, 2) float32, labels (n,) int32)``. The labels are invariant under every
    rotation; data spanning ``degrees`` show that invariance over a range of that size.
    """
    _check_n(n)
    if not (0 < degrees <= 360):
        raise ValueError(f"`degrees` must lie in (0, 360], got {degrees}")
    if not noise >= 0:
        raise ValueError(f"`noise` must be >= 0, got {noise}")
    n0 = n // 2
    n_outer = int((n - n0) // 1.5)
    n_inner = n - n0 - n_outer
    span = np.deg2rad(degrees)

    def arc(count, radius):
        t = rng.uniform(0.0, span, count)
        return np.stack([np.cos(t), np.sin(t)], axis=1) * (radius + noise * rng.standard_normal((count, 2)))

    x = np.concatenate([arc(n0, 0.5), noise * rng.standard_normal((n_inner, 2)), arc(n_outer, 1.0)])
    labels = (np.arange(n) >= n0).astype(np.int32)
    return x.astype(np.float32), labels
