"""Noether Networks: prediction-time tailoring with a conservation loss (seed 002).

A one-step predictor ``f_theta`` is fine-tuned *per query* by a gradient step on the Noether
loss of its own rollout, then rolled out again with the tailored weights (Algorithm 1,
PREDICTSEQUENCE). The outer (meta) step differentiates the task loss of the tailored rollout
through the inner step (second-order gradients) w.r.t. ``theta`` and, for a neural embedding,
``phi``.

Reference: Alet, Doblar, Zhou, Tenenbaum, Kawaguchi, Finn, "Noether Networks: meta-learning
useful conserved quantities", NeurIPS 2021, Algorithm 1 and App. C.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, PRNGKeyArray

Embedding = Callable[[Float[Array, " d"]], Float[Array, "..."]]
"""A candidate conserved quantity ``g: x -> R^k`` (a scalar output counts as ``k = 1``)."""


def _orthogonal_mlp(mlp: eqx.nn.MLP, key: PRNGKeyArray) -> eqx.nn.MLP:
    """Re-initialise every weight matrix of ``mlp`` orthogonally and every bias to zero
    (as ``torch.nn.init.orthogonal_`` in Greydanus' HNN baseline)."""
    init = jax.nn.initializers.orthogonal()
    keys = jax.random.split(key, len(mlp.layers))
    layers = tuple(
        eqx.tree_at(
            lambda lin: (lin.weight, lin.bias),
            layer,
            (init(k, layer.weight.shape, layer.weight.dtype), jnp.zeros_like(layer.bias)),
        )
        for layer, k in zip(mlp.layers, keys, strict=False)
    )
    return eqx.tree_at(lambda m: m.layers, mlp, layers)


class OneStepPredictor(eqx.Module):
    """Forward-Euler one-step predictor ``f_theta(x) = x + dt * v_theta(x)``.

    ``v_theta`` is an MLP (default ``d-200-200-d``, tanh, orthogonal init as HNN's baseline)
    predicting ``dx/dt``; ``f_theta`` maps a state of shape ``(d,)`` to the next state ``(d,)``.
    """

    net: eqx.nn.MLP
    dt: float = eqx.field(static=True)

    def __init__(
        self,
        state_size: int = 2,
        dt: float = 0.1,
        width: int = 200,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation: Callable = jnp.tanh,
        orthogonal_init: bool = True,
    ):
        if state_size < 1:
            raise ValueError(f"OneStepPredictor: `state_size` must be positive, got {state_size}")
        if not dt > 0:
            raise ValueError(f"OneStepPredictor: `dt` must be > 0, got {dt}")
        k_mlp, k_init = jax.random.split(key)
        net = eqx.nn.MLP(state_size, state_size, width, depth, activation=activation, key=k_mlp)
        self.net = _orthogonal_mlp(net, k_init) if orthogonal_init else net
        self.dt = float(dt)

    def derivative(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """The learned time derivative ``v_theta(x) ~ dx/dt``."""
        return self.net(x)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        return x + self.dt * self.net(x)


class NeuralEmbedding(eqx.Module):
    """A meta-learned conserved quantity ``g_phi: R^d -> R^k`` (default MLP ``2-16-4`` tanh)."""

    net: eqx.nn.MLP

    def __init__(
        self,
        state_size: int = 2,
        out_size: int = 4,
        width: int = 16,
        depth: int = 1,
        *,
        key: PRNGKeyArray,
        activation: Callable = jnp.tanh,
    ):
        self.net = eqx.nn.MLP(state_size, out_size, width, depth, activation=activation, key=key)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " k"]:
        return self.net(x)


def iterate_map(predictor: Callable, x0: Float[Array, " d"], steps: int) -> Float[Array, "steps d"]:
    """``x_t = f(x_{t-1})`` for ``t = 1..steps`` by ``lax.scan``; returns ``x_{1:steps}``."""

    def step(x, _):
        nxt = predictor(x)
        return nxt, nxt

    _, xs = jax.lax.scan(step, x0, None, length=steps)
    return xs


def noether_loss(embedding: Embedding, x0: Float[Array, " d"], xs: Float[Array, "T d"]) -> Array:
    """Noether loss ``L_N = sum_{t=1}^T |g(x_0) - g(x_t)|^2`` (seed 002; [NN] eq. 2).

    Args:
        embedding: ``g``, one state ``(d,)`` -> scalar or vector ``(k,)``.
        x0: initial state ``(d,)``.
        xs: predicted states ``x_{1:T}``, shape ``(T, d)``.
    Returns:
        A scalar.
    """
    g0 = jnp.atleast_1d(embedding(x0))
    gs = jax.vmap(lambda x: jnp.atleast_1d(embedding(x)))(xs)
    return jnp.sum((gs - g0[None]) ** 2)


def _split(predictor):
    return eqx.partition(predictor, eqx.is_inexact_array)


def tailor(
    predictor: eqx.Module,
    embedding: Embedding,
    x0: Float[Array, " d"],
    steps: int,
    inner_lr: float | Array,
    inner_steps: int = 1,
) -> eqx.Module:
    """Tailored weights ``theta' = theta - lr grad_theta L_N(x_0, x~_{1:T}(theta); g)``, repeated
    ``inner_steps`` times (Algorithm 1, line 4). Differentiable w.r.t. ``theta``, ``g`` and lr."""
    if embedding is None or inner_steps == 0:
        return predictor
    params, static = _split(predictor)

    def loss(p):
        model = eqx.combine(p, static)
        return noether_loss(embedding, x0, iterate_map(model, x0, steps))

    for _ in range(inner_steps):
        grads = jax.grad(loss)(params)
        params = jax.tree_util.tree_map(lambda w, g: w - inner_lr * g, params, grads)
    return eqx.combine(params, static)


def predict_sequence(
    predictor: eqx.Module,
    embedding: Embedding,
    x0: Float[Array, " d"],
    steps: int,
    inner_lr: float | Array,
    inner_steps: int = 1,
) -> Float[Array, "steps d"]:
    """PREDICTSEQUENCE of Algorithm 1 ([NN]): initial rollout ``x~``, ``inner_steps`` gradient
    steps on ``theta`` with the Noether loss, final rollout ``x^_{1:T}`` with the tailored weights.

    With ``inner_lr = 0``, ``inner_steps = 0`` or ``embedding = None`` this is the plain
    rollout of ``predictor``.

    Args:
        predictor: ``f_theta``, an ``eqx.Module`` state ``(d,)`` -> next state ``(d,)``.
        embedding: ``g_phi`` (any callable state -> scalar or ``(k,)``).
        x0: initial state ``(d,)``.
        steps: horizon ``T``.
        inner_lr: ``lambda_in`` (may be a traced scalar).
        inner_steps: number of inner gradient steps (static).
    Returns:
        ``x^_{1:T}``, shape ``(T, d)``.
    """
    tailored = tailor(predictor, embedding, x0, steps, inner_lr, inner_steps)
    return iterate_map(tailored, x0, steps)


def tailored_task_loss(
    predictor: eqx.Module,
    embedding: Embedding,
    trajectories: Float[Array, "n T+1 d"],
    inner_lr: float | Array,
    inner_steps: int = 1,
) -> Array:
    """Task loss ``mean_{n,t,i} (x^_t - x_t)^2`` of tailored rollouts from ``x_0`` of each
    trajectory (each trajectory gets its own tailored weights)."""
    steps = trajectories.shape[1] - 1

    def one(traj):
        pred = predict_sequence(predictor, embedding, traj[0], steps, inner_lr, inner_steps)
        return jnp.mean((pred - traj[1:]) ** 2)

    return jnp.mean(jax.vmap(one)(trajectories))


def meta_tailoring_loss(
    trainable: tuple[Any, Any],
    static: tuple[Any, Any],
    trajectories: Float[Array, "n T+1 d"],
    inner_lr: float | Array,
    inner_steps: int = 1,
) -> Array:
    """Outer loss of Algorithm 1 (lines 14-15) as a function of the trainable leaves of
    ``(predictor, embedding)``; its gradient goes through the inner step (second order)."""
    predictor, embedding = eqx.combine(trainable, static)
    return tailored_task_loss(predictor, embedding, trajectories, inner_lr, inner_steps)


class MetaTrainResult(NamedTuple):
    predictor: eqx.Module
    embedding: Embedding
    inner_lr: Array
    """The inner learning rate (learned when ``learn_inner_lr``, else the one given)."""
    losses: Array
    """Outer loss before each step, shape ``(num_steps,)``."""
    diverged: bool = False
    """Whether a non-finite loss or gradient stopped the updates (the last finite parameters are kept)."""


def meta_train(
    predictor: eqx.Module,
    embedding: Embedding,
    trajectories: Float[Array, "n T+1 d"],
    *,
    num_steps: int,
    inner_lr: float,
    inner_steps: int = 1,
    optimizer: optax.GradientTransformation | None = None,
    embedding_optimizer: optax.GradientTransformation | None = None,
    train_embedding: bool = True,
    learn_inner_lr: bool = False,
    inner_lr_optimizer: optax.GradientTransformation | None = None,
) -> MetaTrainResult:
    """Meta-tailoring (TRAIN of Algorithm 1), full batch, ``num_steps`` outer steps fused by
    ``lax.scan``.

    ``theta`` is updated by ``optimizer`` (``lambda_out``; default Adam 1e-4); ``phi`` by
    ``embedding_optimizer`` (``lambda_emb``; default: ``optimizer``) when ``train_embedding``
    and ``embedding`` is an ``eqx.Module`` with inexact-array leaves (a fixed formula is
    frozen with ``train_embedding=False``). With ``learn_inner_lr`` (not in [NN]; as in
    Meta-SGD, Li et al. 2017) ``log lambda_in`` is a meta-parameter too, updated by
    ``inner_lr_optimizer`` (default Adam 0.05); ``inner_lr`` is then its initial value.

    Raises:
        ValueError: ``num_steps < 1``, ``inner_lr < 0`` (``<= 0`` when learned) or
        ``trajectories`` not of shape ``(n, T+1 >= 2, d)``.
    """
    if num_steps < 1:
        raise ValueError(f"meta_train: `num_steps` must be positive, got {num_steps}")
    if inner_lr < 0 or (learn_inner_lr and inner_lr == 0):
        raise ValueError(f"meta_train: `inner_lr` must be >= 0 (> 0 if learned), got {inner_lr}")
    if trajectories.ndim != 3 or trajectories.shape[1] < 2:
        raise ValueError(
            f"meta_train: `trajectories` must have shape (n, T+1 >= 2, d), got {trajectories.shape}"
        )
    opt_theta = optimizer if optimizer is not None else optax.adam(1e-4)
    opt_phi = embedding_optimizer if embedding_optimizer is not None else opt_theta
    opt_lr = inner_lr_optimizer if inner_lr_optimizer is not None else optax.adam(0.05)
    emb_filter = eqx.is_inexact_array if train_embedding else (lambda _: False)
    filt = (
        jax.tree_util.tree_map(eqx.is_inexact_array, predictor),
        jax.tree_util.tree_map(emb_filter, embedding),
    )
    trainable, static = eqx.partition((predictor, embedding), filt)
    log_lr = jnp.log(jnp.asarray(inner_lr, jnp.float32)) if learn_inner_lr else None
    opt_state = (
        opt_theta.init(trainable[0]),
        opt_phi.init(trainable[1]),
        opt_lr.init(log_lr) if learn_inner_lr else None,
    )

    def loss_fn(tr, log_lr):
        lr = jnp.exp(log_lr) if learn_inner_lr else inner_lr
        return meta_tailoring_loss(tr, static, trajectories, lr, inner_steps)

    grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1) if learn_inner_lr else 0)

    @jax.jit
    def run(trainable, log_lr, opt_state):
        def step(carry, _):
            tr, log_lr, states, ok = carry
            s_theta, s_phi, s_lr = states
            loss, grads = grad_fn(tr, log_lr)
            new_log_lr = log_lr
            # Optax mixes Python floats with int32 step counts: standard promotion, as in `fit`.
            with jax.numpy_dtype_promotion("standard"):
                if learn_inner_lr:
                    grads, g_lr = grads
                    u_lr, s_lr = opt_lr.update(g_lr, s_lr, log_lr)
                    new_log_lr = optax.apply_updates(log_lr, u_lr)
                u_theta, s_theta = opt_theta.update(grads[0], s_theta, tr[0])
                u_phi, s_phi = opt_phi.update(grads[1], s_phi, tr[1])
            new = (optax.apply_updates(tr[0], u_theta), optax.apply_updates(tr[1], u_phi))
            # A non-finite loss or gradient freezes the last finite parameters (and stops updates).
            finite = jnp.isfinite(loss) & jnp.all(
                jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree_util.tree_leaves(grads)])
            )
            ok = ok & finite
            keep = lambda a, b: jax.tree_util.tree_map(lambda x, y: jnp.where(ok, x, y), a, b)  # noqa: E731
            carry = (keep(new, tr), keep(new_log_lr, log_lr), keep((s_theta, s_phi, s_lr), states), ok)
            return carry, loss

        return jax.lax.scan(step, (trainable, log_lr, opt_state, jnp.array(True)), None, length=num_steps)

    (trainable, log_lr, _, ok), losses = run(trainable, log_lr, opt_state)
    if not bool(ok):
        bad = int(np.argmin(np.isfinite(np.asarray(losses))))
        warnings.warn(
            f"meta_train: the loss or its gradient became non-finite at outer step {bad}; returning the last "
            "finite parameters. Try a smaller inner or outer learning rate.",
            RuntimeWarning,
            stacklevel=2,
        )
    predictor, embedding = eqx.combine(trainable, static)
    lr = jnp.exp(log_lr) if learn_inner_lr else jnp.asarray(inner_lr)
    return MetaTrainResult(predictor, embedding, lr, losses, not bool(ok))
