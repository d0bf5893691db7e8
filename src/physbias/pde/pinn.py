"""Physics-informed losses (the soft, "learning" bias of seed 000/001; Raissi et al. 2019):
mean squared PDE residual at collocation points, plus the boundary and initial conditions as
penalties unless the field meets them by construction (:class:`~physbias.pde.HardConstraintField`)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..data import check_array

Residual = Callable[[Callable[[Array], Array], Array], Array]
"""``residual(u, z) -> scalar``, e.g. ``lambda u, z: burgers_residual(u, z, nu)``."""


def pinn_loss(
    residual: Residual,
    conditions: tuple[Array, Array] | None = None,
    condition_weight: float = 1.0,
):
    """A :func:`physbias.fit` loss: ``mean_i r(z_i)^2 + w mean_j (u(z_j) - g_j)^2``.

    The batch is ``(collocation_points,)`` of shape ``(N, d)``; ``conditions = (points, values)``
    holds the boundary/initial data (``(M, d)`` and ``(M,)``) for the soft form (None for a hard
    ansatz).
    """
    if conditions is not None:
        points = check_array(conditions[0], "conditions[0] (points)", min_ndim=2)
        values = check_array(conditions[1], "conditions[1] (values)")
        if points.ndim != 2 or values.shape != (points.shape[0],):
            raise ValueError(
                f"`conditions` must be (points (M, d), values (M,)), got {points.shape} and {values.shape}"
            )
        conditions = (points, values)
    if not (condition_weight > 0 and jnp.isfinite(condition_weight)):
        raise ValueError(f"`condition_weight` must be positive, got {condition_weight!r}")

    def loss(u, batch, key):
        r = jax.vmap(lambda z: residual(u, z))(batch[0])
        total = jnp.mean(r**2)
        if conditions is not None:
            pred = jax.vmap(u)(conditions[0])
            total = total + condition_weight * jnp.mean((jnp.reshape(pred, (-1,)) - conditions[1]) ** 2)
        return total

    return loss


def residual_adaptive_points(
    key,
    u: Callable[[Array], Array],
    residual: Residual,
    sample: Callable,
    count: int,
    candidates: int = 10_000,
) -> Array:
    """Residual-based adaptive refinement (RAR; Lu, Meng, Mao & Karniadakis 2021, DeepXDE): the
    ``count`` points with the largest ``|residual(u, z)|`` among ``candidates`` fresh ones drawn by
    ``sample(key, candidates)`` (e.g. ``Box.uniform``), to add to the collocation set before
    training on.

    Returns ``(count, d)``.
    """
    for name, value in (("count", count), ("candidates", candidates)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if count > candidates:
        raise ValueError(f"`count` ({count}) cannot exceed `candidates` ({candidates})")
    pool = sample(key, candidates)
    r = jnp.abs(jax.vmap(lambda z: residual(u, z))(pool))
    if not bool(jnp.all(jnp.isfinite(r))):
        raise ValueError("the residual is not finite at some candidate points")
    _, idx = jax.lax.top_k(r, count)
    return pool[idx]
