"""Regression data with a known symmetry (or none), for ``physbias run select-demo``.

Each task draws ``x ~ U[-2, 2]^d`` and ``y = f(x) + noise * eps`` for an ``f`` whose symmetry is
known; :data:`SELECTION_TASKS` maps a name to ``(f, layout, answer)``, where ``layout`` is the
input layout ``"NxM"`` (N groups of M inputs) and ``answer`` the most restrictive symmetry ``f``
has (the bias a selection should pick):

- ``rotation-invariant``: two 2-D vectors, ``cos|x1| + x1.x2 / 2 + 0.3 |x2|^2``: SO(2)-invariant
  (so even too: -I is a rotation in 2-D), not symmetric in swapping the vectors.
- ``parity-odd-force``: the force ``F = -grad V`` of the even, anisotropic potential
  ``V = x1^2 / 2 + x2^2 + (x1 + x2)^4 / 4``: odd, ``F(-x) = -F(x)``; not invariant under a swap.
- ``permutation-invariant``: four numbers, ``sum_i sin(2 x_i) / 2 + (sum_i x_i)^2 / 8``:
  invariant under S(4), neither even nor odd.
- ``no-symmetry``: one 2-D vector, ``sin(x1 + 1/2) cos(0.7 x2 - 0.3) + 0.3 x2``: none.
"""

from __future__ import annotations

import numpy as np


def _rotation_invariant(x):
    a, b = x[:, :2], x[:, 2:]
    return np.cos(np.linalg.norm(a, axis=1)) + 0.5 * np.sum(a * b, axis=1) + 0.3 * np.sum(b * b, axis=1)


def _parity_odd_force(x):
    s = (x[:, 0] + x[:, 1]) ** 3
    return -np.stack([x[:, 0] + s, 2.0 * x[:, 1] + s], axis=1)


def _permutation_invariant(x):
    return 0.5 * np.sum(np.sin(2.0 * x), axis=1) + np.sum(x, axis=1) ** 2 / 8.0


def _no_symmetry(x):
    return np.sin(x[:, 0] + 0.5) * np.cos(0.7 * x[:, 1] - 0.3) + 0.3 * x[:, 1]


SELECTION_TASKS = {
    "rotation-invariant": (_rotation_invariant, "2x2", "rotation"),
    "parity-odd-force": (_parity_odd_force, "2x1", "parity-odd"),
    "permutation-invariant": (_permutation_invariant, "4x1", "permutation"),
    "no-symmetry": (_no_symmetry, "1x2", "none"),
}


def selection_task(name: str, n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray, str, str]:
    """``(x (n, d), y (n, k), layout, answer)`` of the task ``name`` (module docstring)."""
    if name not in SELECTION_TASKS:
        raise ValueError(f"unknown selection task {name!r}; valid names: {', '.join(SELECTION_TASKS)}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"`n` must be an integer >= 2, got {n!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"`noise` must be >= 0, got {noise!r}")
    f, layout, answer = SELECTION_TASKS[name]
    d = int(np.prod([int(v) for v in layout.split("x")]))
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, (n, d))
    y = f(x)
    y = y[:, None] if y.ndim == 1 else y
    return x, y + noise * rng.standard_normal(y.shape), layout, answer
