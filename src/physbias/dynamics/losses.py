"""Losses for learning dynamics, with :func:`physbias.fit`'s signature ``(model, batch, key)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..data import require_same_shape
from .integrators import RK4, AbstractIntegrator, rollout


def derivative_loss():
    """``mean ||f_theta(z) - dz/dt||^2`` on a batch ``(states, derivatives)`` (Greydanus et al.)."""

    def loss(model, batch, key):
        z, dz = batch
        pred = jax.vmap(model)(z)
        require_same_shape(pred, dz, "derivative_loss")
        return jnp.mean(jnp.sum((pred - dz) ** 2, axis=-1))

    return loss


def rollout_loss(dt: float, integrator: AbstractIntegrator | None = None, norm: str = "l1"):
    """Error of a multi-step rollout on chunks ``(z0 (N, d), future (N, L, d))``:
    ``mean_{n, t} |rollout(f_theta, z0_n)_t - future_{n, t}|`` (``"l1"``, as in Finzi et al. 2020)
    or its square (``"l2"``), averaged over entries."""
    if norm not in ("l1", "l2"):
        raise ValueError(f"`norm` must be 'l1' or 'l2', got {norm!r}")
    integrator = RK4() if integrator is None else integrator

    def loss(model, batch, key):
        z0, future = batch
        pred = rollout(model, z0, dt, future.shape[1], integrator)[:, 1:]
        require_same_shape(pred, future, "rollout_loss")
        diff = pred - future
        return jnp.mean(jnp.abs(diff)) if norm == "l1" else jnp.mean(diff**2)

    return loss
