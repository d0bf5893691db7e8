"""Evaluation functions: pure, usable on any model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .bias.symmetry import AbstractSymmetry


def rmse(pred: Array, target: Array) -> float:
    """Root-mean-square error ``sqrt(mean ||pred - target||^2)`` (summed over output entries)."""
    diff = np.reshape(np.asarray(pred) - np.asarray(target), (len(pred), -1))
    return float(np.sqrt(np.mean(np.sum(diff**2, axis=-1))))


def relative_rmse(pred: Array, target: Array) -> float:
    """``rmse(pred, target) / rms(target)``: scale-free, comparable across data ranges."""
    t = np.reshape(np.asarray(target), (len(target), -1))
    return rmse(pred, target) / float(np.sqrt(np.mean(np.sum(t**2, axis=-1))))


def symmetry_violation(
    model, symmetry: AbstractSymmetry, inputs: Array, *, key: PRNGKeyArray | None = None
) -> float:
    """Relative violation ``||f(g.x) - rho(g) f(x)|| / ||rho(g) f(x)||`` over a batch.

    Norms are taken over the whole batch ``inputs`` (shape ``(N, *in_shape)``) and the worst
    element is returned: every element of a finite group, or one random element per example of a
    continuous one (``key`` required). 0 means exact symmetry.
    """
    n = inputs.shape[0]
    # Each example goes through the same compiled single-example kernel (lax.map, not vmap):
    # a batched matmul may round a row differently depending on its position in the batch, and
    # the metric must measure the function's violation, not the batching kernel's.
    evaluate = jax.jit(lambda xs: jax.lax.map(model, xs))
    fx = evaluate(inputs)

    def violation(g):  # g batched over examples
        pred = evaluate(jax.vmap(symmetry.act_input)(g, inputs))
        target = jax.vmap(symmetry.act_output)(g, fx)
        return jnp.linalg.norm((pred - target).ravel()) / jnp.linalg.norm(target.ravel())

    if symmetry.is_finite:
        elements = symmetry.elements()

        def element(i):  # the i-th element, repeated for every example
            return jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a[i], (n, *a.shape[1:])), elements)

        per_g = [violation(element(i)) for i in range(symmetry.order)]
        return float(jnp.max(jnp.stack(per_g)))
    if key is None:
        raise ValueError("symmetry_violation: a continuous symmetry needs `key` to sample elements")
    g = jax.vmap(symmetry.sample)(jax.random.split(key, n))
    return float(violation(g))


def oddness_error(model, inputs: Array) -> float:
    """``max_i |f(x_i) + f(-x_i)|``: zero for an odd function."""
    f = jax.vmap(model)
    return float(jnp.max(jnp.abs(f(inputs) + f(-inputs))))


def orthogonality_error(rotations: Array) -> Array:
    """``||R^T R - I||_F`` for each matrix of a stack of shape ``(..., 3, 3)``."""
    r = jnp.asarray(rotations)
    eye = jnp.broadcast_to(jnp.eye(r.shape[-1], dtype=r.dtype), r.shape)
    return jnp.linalg.norm(jnp.swapaxes(r, -1, -2) @ r - eye, axis=(-2, -1))


def project_to_rotation(matrices: Array) -> Array:
    """Nearest rotation (Frobenius) to each ``(..., 3, 3)`` matrix: ``U diag(1, 1, det(U V^T)) V^T``."""
    u, _, vt = jnp.linalg.svd(matrices)
    d = jnp.sign(jnp.linalg.det(u @ vt))
    u = u.at[..., :, -1].multiply(d[..., None])
    return u @ vt


def rotation_angle_error(pred: Array, target: Array) -> Array:
    """Geodesic angle (radians) between rotations: ``arccos((tr(R_true^T R_pred) - 1) / 2)``.

    For a matrix that is not a rotation the trace is clipped to ``[-1, 3]`` first.
    """
    tr = jnp.trace(jnp.swapaxes(target, -1, -2) @ pred, axis1=-2, axis2=-1)
    return jnp.arccos(jnp.clip((tr - 1.0) / 2.0, -1.0, 1.0))


def relative_error(pred: Array, true: Array) -> Array:
    """Per-step relative error ``|z_hat - z| / (|z_hat| + |z|)`` over the last axis (seed 004's
    rollout metric; bounded in ``[0, 1]``). Shapes ``(..., T, d) -> (..., T)``."""
    pred, true = jnp.asarray(pred), jnp.asarray(true)
    num = jnp.linalg.norm(pred - true, axis=-1)
    den = jnp.linalg.norm(pred, axis=-1) + jnp.linalg.norm(true, axis=-1)
    return num / jnp.where(den > 0, den, 1.0)


def geometric_mean(values: Array, axis: int = -1) -> Array:
    """``exp(mean(log v))`` along ``axis`` (zeros are floored at 1e-30)."""
    return jnp.exp(jnp.mean(jnp.log(jnp.maximum(jnp.asarray(values), 1e-30)), axis=axis))


def geometric_mean_relative_error(pred: Array, true: Array) -> Array:
    """Geometric mean over time of :func:`relative_error`: ``(..., T, d) -> (...)``."""
    return geometric_mean(relative_error(pred, true), axis=-1)


def energy_drift(energy_fn, trajectory: Array) -> Array:
    """``|E(z_t) - E(z_0)| / |E(z_0)|`` along a trajectory of shape ``(..., T, d) -> (..., T)``."""
    traj = jnp.asarray(trajectory)
    flat = traj.reshape(-1, traj.shape[-1])
    e = jax.vmap(energy_fn)(flat).reshape(traj.shape[:-1])
    e0 = e[..., :1]
    return jnp.abs(e - e0) / jnp.where(jnp.abs(e0) > 0, jnp.abs(e0), 1.0)


def chaos_floor(
    system,
    z0: Array,
    dt: float,
    steps: int,
    *,
    key: PRNGKeyArray,
    epsilon: float = 1e-4,
    per_step: bool = False,
) -> Array:
    """The error floor of any learned model on a (chaotic) system (Finzi et al. 2020).

    The true trajectory from ``z0`` (shape ``(B, d)``) is compared with the true trajectory from
    ``z0 + epsilon * u`` (``u`` a random unit direction per state), projected back onto the
    constraints when the system has a ``project`` method. Returns the geometric-mean relative
    error over steps ``1..steps`` for each initial state, shape ``(B,)`` (float64 simulation);
    with ``per_step`` the relative error at every time instead, shape ``(B, steps + 1)``.
    """
    from .systems.mechanics import simulate

    z0 = np.asarray(z0, dtype=np.float64)
    u = np.asarray(jax.random.normal(key, z0.shape), dtype=np.float64)
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    perturbed = z0 + epsilon * u
    if hasattr(system, "project"):
        with jax.enable_x64(True):
            perturbed = np.asarray(jax.vmap(system.project)(jnp.asarray(perturbed)))
    both = simulate(system, np.concatenate([z0, perturbed]), dt, steps)  # one solver compilation
    true, near = both[: len(z0)], both[len(z0) :]
    with jax.enable_x64(True):
        rel = np.asarray(relative_error(jnp.asarray(near), jnp.asarray(true)))
    return rel if per_step else np.asarray(geometric_mean(rel[..., 1:], axis=-1))
