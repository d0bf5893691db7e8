"""``fit``: one training loop for every model.

Steps are fused with ``jax.lax.scan`` into chunks of epochs (one compiled call per chunk, a
progress-bar update between chunks). A finite blow-up of the loss (more than ``BLOWUP_OVER_BEST``
times its best and ``BLOWUP_OVER_FIRST`` times its first value) stops training with the best
parameters. A non-finite loss or gradient freezes the parameters at their
last finite values, stops training after the chunk and is reported in the result.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from ._progress import progress_bar
from .data import Dataset, check_array, check_same_length

BLOWUP_OVER_BEST = 1e4
"""A finite loss this many times above the best so far (and :data:`BLOWUP_OVER_FIRST` times above
the first) counts as a divergence: training stops and the best parameters are returned."""
BLOWUP_OVER_FIRST = 100.0

Batch = tuple[Array, ...]
LossFn = Callable[[Any, Batch, PRNGKeyArray], Array]
"""``loss_fn(model, batch, key) -> scalar``; ``batch`` is a tuple of arrays with a leading batch axis."""


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (if training diverged: the last finite parameters after a
            non-finite loss, the best-loss parameters after a finite blow-up).
        losses: loss of every optimisation step, shape ``(steps_run,)`` (NumPy).
        epochs: epochs completed.
        seconds: wall-clock time of training, compilation included.
        diverged: whether a non-finite loss or gradient, or a finite blow-up, stopped training.
        message: human-readable summary (why it stopped, when it diverged).
        state: the final training state when :func:`fit` was given one (e.g. a persistent
            sampler's replay buffer), else None.
        last_model: with ``ema_decay``, the last iterate (``model`` is then the average); else None.
        chunk_seconds: wall-clock time of each compiled chunk, in order; the first includes the
            compilation (and, with the persistent cache, its lookup).
        chunk_epochs: epochs run by each chunk.
    """

    model: Any
    losses: np.ndarray
    epochs: int
    seconds: float
    diverged: bool
    message: str
    state: Any = None
    last_model: Any = None
    chunk_seconds: tuple[float, ...] = ()
    chunk_epochs: tuple[int, ...] = ()

    @property
    def seconds_per_epoch(self) -> float:
        """Wall-clock seconds per epoch of the compiled loop, compilation left out: the median
        over the chunks after the first (NaN with fewer than two chunks)."""
        later = [t / e for t, e in zip(self.chunk_seconds[1:], self.chunk_epochs[1:], strict=True) if e > 0]
        return float(np.median(later)) if later else float("nan")

    @property
    def final_loss(self) -> float:
        finite = self.losses[np.isfinite(self.losses)]
        return float(finite[-1]) if finite.size else float("nan")


def _as_batch(data) -> tuple[Batch, int]:
    if isinstance(data, Dataset):
        arrays = data.as_tuple()
        return arrays, len(data)
    if not isinstance(data, (tuple, list)) or not data:
        raise ValueError("`data` must be a Dataset or a non-empty tuple of arrays (inputs, targets, ...)")
    names = [f"data[{i}]" for i in range(len(data))]
    arrays = tuple(check_array(a, n) for a, n in zip(data, names, strict=True))
    return arrays, check_same_length(arrays, names)


def _all_finite(tree) -> Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def adam_cosine(learning_rate: float, steps: int) -> optax.GradientTransformation:
    """Adam whose step size decays from ``learning_rate`` to 0 on a cosine over ``steps`` steps."""
    return optax.adam(optax.cosine_decay_schedule(learning_rate, max(1, int(steps))))


def only(
    optimizer: optax.GradientTransformation, model, where: Callable[[Any], Any]
) -> optax.GradientTransformation:
    """``optimizer`` on the arrays ``where(model)`` selects (an array or a tuple of them); every
    other array of ``model`` stays where it is (its update is zero).

    Example: learn only a Bayesian linear model's noise and prior precision, keeping its basis
    fixed: ``only(optax.adam(0.05), blr, lambda m: (m.log_noise_std, m.log_prior_precision))``.
    """
    params = eqx.filter(model, eqx.is_inexact_array)
    labels = jax.tree_util.tree_map(lambda _: "frozen", params)
    selected = where(params)
    count = len(selected) if isinstance(selected, tuple) else 1
    labels = eqx.tree_at(where, labels, ("trained",) * count if isinstance(selected, tuple) else "trained")
    # A function, not the tree: the label tree of a callable Module would be called by optax.
    return optax.multi_transform({"trained": optimizer, "frozen": optax.set_to_zero()}, lambda _: labels)


def _chunk_length(epochs: int, chunks: int) -> int:
    """Epochs per compiled chunk: about ``epochs / chunks``, preferring a divisor of ``epochs`` (up
    to twice that length) so that every chunk has the same length and compiles once, not twice."""
    base = max(1, math.ceil(epochs / max(1, chunks)))
    for length in range(base, min(epochs, 2 * base) + 1):
        if epochs % length == 0:
            return length
    return base


def fit(
    model,
    loss_fn: LossFn,
    data,
    *,
    key: PRNGKeyArray,
    epochs: int,
    learning_rate: float = 1e-3,
    optimizer: optax.GradientTransformation | None = None,
    batch_size: int | None = None,
    chunks: int = 20,
    progress: bool = True,
    description: str = "fit",
    state=None,
    ema_decay: float | None = None,
) -> FitResult:
    """Train ``model`` by minimising ``loss_fn`` over ``data``.

    Args:
        model: an ``equinox.Module``; its floating-point arrays are trained.
        loss_fn: ``loss_fn(model, batch, key) -> scalar`` (see :data:`LossFn`).
        data: a :class:`~physbias.data.Dataset` or a tuple of arrays sharing a leading axis ``N``.
        key: PRNG key for minibatch shuffling and the loss's own randomness.
        epochs: passes over the data (> 0).
        learning_rate: Adam step size (> 0), used when ``optimizer`` is None.
        optimizer: any Optax transformation (overrides ``learning_rate``).
        batch_size: minibatch size; None (or >= N) trains on the full batch. The last partial
            batch of an epoch is dropped; data are reshuffled every epoch.
        chunks: roughly how many compiled chunks (and progress updates) to split training into.
        progress: show a progress bar (only on a terminal).
        description: label of the progress bar.
        state: a pytree of arrays carried from step to step and not trained (a persistent
            sampler's chains, running statistics). When given, the loss is
            ``loss_fn(model, batch, key, state) -> (loss, new_state)``; a step that goes bad keeps
            the old state with the old parameters, and the result's ``state`` is the final one.
        ema_decay: if given (in ``[0, 1)``), return the exponential moving average of the
            parameters (Polyak averaging, as diffusion models are trained: Song et al. 2021),
            ``bar_t = d_t bar_{t-1} + (1 - d_t) theta_t`` with the warm-up
            ``d_t = min(ema_decay, (1 + t) / (10 + t))``, so that the first steps do not keep the
            initial parameters. Only good steps enter the average. The last iterate is the result's
            ``last_model``.

    Returns:
        :class:`FitResult`.

    Raises:
        ValueError: non-positive ``epochs``/``learning_rate``/``batch_size``, empty or non-finite
            data, or arrays with different numbers of samples.
    """
    if not isinstance(epochs, (int, np.integer)) or epochs <= 0:
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    if optimizer is None:
        if not (isinstance(learning_rate, (int, float)) and math.isfinite(learning_rate)):
            raise ValueError(f"`learning_rate` must be a positive number, got {learning_rate!r}")
        if learning_rate <= 0:
            raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}")
        optimizer = optax.adam(learning_rate)
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer)) or batch_size <= 0):
        raise ValueError(f"`batch_size` must be a positive integer or None, got {batch_size!r}")
    if ema_decay is not None and not (isinstance(ema_decay, (int, float)) and 0 <= ema_decay < 1):
        raise ValueError(f"`ema_decay` must be a number in [0, 1) or None, got {ema_decay!r}")
    batch, n = _as_batch(data)
    if batch_size is None or batch_size >= n:
        steps_per_epoch, batch_size = 1, n
    else:
        steps_per_epoch = n // batch_size

    params, static = eqx.partition(model, eqx.is_inexact_array)
    opt_state = optimizer.init(params)

    stateful = state is not None

    def value_and_grad(params, sub_batch, loss_key, train_state):
        if not stateful:
            loss = lambda p: loss_fn(eqx.combine(p, static), sub_batch, loss_key)
            return (*jax.value_and_grad(loss)(params), train_state)
        loss = lambda p: loss_fn(eqx.combine(p, static), sub_batch, loss_key, train_state)
        (value, new_state), grads = jax.value_and_grad(loss, has_aux=True)(params)
        return value, grads, new_state

    def step(carry, step_key):
        params, opt_state, ok, first, best, best_params, reason, train_state, average, count = carry
        sub_batch, loss_key = step_key
        loss, grads, new_train_state = value_and_grad(params, sub_batch, loss_key, train_state)
        # Optax's own arithmetic mixes Python floats with int32 step counts; it is run under
        # standard promotion so that callers (and the tests) may use strict promotion elsewhere.
        with jax.numpy_dtype_promotion("standard"):
            updates, new_state = optimizer.update(grads, opt_state, params)
        new_params = eqx.apply_updates(params, updates)
        finite = jnp.isfinite(loss) & _all_finite(grads)
        first = jnp.where(jnp.isnan(first), loss, first)
        # A finite blow-up: orders of magnitude above the best loss and well above the start, in
        # absolute value (a negative log evidence may start below zero and climb through it).
        blowup = (
            finite
            & (loss > 0)
            & (loss > BLOWUP_OVER_BEST * jnp.abs(best))
            & (loss > BLOWUP_OVER_FIRST * jnp.abs(first))
        )
        good = ok & finite & ~blowup
        improved = good & (loss < best)
        best_params = jax.tree_util.tree_map(lambda p, b: jnp.where(improved, p, b), params, best_params)
        best = jnp.where(improved, loss, best)
        reason = jnp.where(ok & ~good, jnp.where(finite, 2, 1), reason)
        # Keep the last good parameters: once a step goes bad, nothing moves any more.
        keep = lambda new, old: jnp.where(good, new, old)
        params = jax.tree_util.tree_map(keep, new_params, params)
        opt_state = jax.tree_util.tree_map(keep, new_state, opt_state)
        train_state = jax.tree_util.tree_map(keep, new_train_state, train_state)
        if average is not None:
            t = count.astype(loss.dtype)
            decay = jnp.minimum(jnp.asarray(ema_decay, loss.dtype), (1 + t) / (10 + t))
            average = jax.tree_util.tree_map(
                lambda a, p: jnp.where(good, decay.astype(a.dtype) * a + (1 - decay.astype(a.dtype)) * p, a),
                average,
                params,
            )
        count = count + good.astype(jnp.int32)
        carry = (params, opt_state, good, first, best, best_params, reason, train_state, average, count)
        return carry, (loss, good)

    def epoch(carry, epoch_key, batch):
        shuffle_key, loss_key = jax.random.split(epoch_key)
        loss_keys = jax.random.split(loss_key, steps_per_epoch)
        if steps_per_epoch == 1 and batch_size == n:
            carry, (loss, good) = step(carry, (batch, loss_keys[0]))
            return carry, (loss[None], good[None])
        perm = jax.random.permutation(shuffle_key, n)[: steps_per_epoch * batch_size]
        idx = perm.reshape(steps_per_epoch, batch_size)
        return jax.lax.scan(
            lambda c, xs: step(c, (tuple(a[xs[0]] for a in batch), xs[1])), carry, (idx, loss_keys)
        )

    # The data are an argument, not a closed-over constant: the compiled loop depends only on
    # shapes, so another seed's data (a sweep) or a second run finds it in the compilation cache.
    @eqx.filter_jit
    def run_chunk(carry, keys, batch):
        return jax.lax.scan(lambda c, k: epoch(c, k, batch), carry, keys)

    epoch_keys = jax.random.split(key, epochs)
    per_chunk = _chunk_length(epochs, chunks)
    first_batch = tuple(a[:batch_size] for a in batch)

    def loss_only(p):  # the loss's dtype, without tracing its gradient
        value = loss_fn(eqx.combine(p, static), first_batch, key, *((state,) if stateful else ()))
        return value[0] if stateful else value

    loss_dtype = jax.eval_shape(loss_only, params).dtype
    nan, inf = jnp.array(jnp.nan, loss_dtype), jnp.array(jnp.inf, loss_dtype)
    average = params if ema_decay is not None else None
    zero = jnp.array(0, jnp.int32)
    carry = (params, opt_state, jnp.array(True), nan, inf, params, zero, state, average, zero)
    history: list[np.ndarray] = []
    chunk_seconds: list[float] = []
    chunk_epochs: list[int] = []
    done = 0
    diverged = False
    start = time.perf_counter()
    with progress_bar(epochs, description, enabled=progress) as advance:
        while done < epochs:
            size = min(per_chunk, epochs - done)
            chunk_start = time.perf_counter()
            carry, (losses, good) = run_chunk(carry, epoch_keys[done : done + size], batch)
            losses = np.asarray(losses).reshape(-1)  # waits for the chunk
            chunk_seconds.append(time.perf_counter() - chunk_start)
            chunk_epochs.append(size)
            if not bool(carry[2]):
                bad = int(np.argmin(np.asarray(good).reshape(-1)))
                history.append(losses[: bad + 1])
                done_steps = sum(len(h) for h in history)
                diverged = True
                break
            history.append(losses)
            done += size
            advance(size, loss=f"{losses[-1]:.3e}")
    seconds = time.perf_counter() - start
    losses = np.concatenate(history) if history else np.zeros(0)
    trained = eqx.combine(carry[0], static)
    if diverged and int(carry[6]) == 2:
        trained = eqx.combine(carry[5], static)
        message = (
            f"training stopped at step {done_steps} (epoch {done_steps // steps_per_epoch + 1}): "
            f"the loss blew up to {losses[-1]:.3e} (more than {BLOWUP_OVER_BEST:.0e} times its best, "
            f"{float(carry[4]):.3e}, and {BLOWUP_OVER_FIRST:.0f} times its first value); returning the "
            "parameters with the best loss. Try a smaller learning rate."
        )
    elif diverged:
        message = (
            f"training stopped at step {done_steps} (epoch {done_steps // steps_per_epoch + 1}): "
            f"the loss or its gradient became non-finite (loss={losses[-1]}); returning the last "
            "finite parameters. Try a smaller learning rate."
        )
    if diverged:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        epochs_done = done_steps // steps_per_epoch
    else:
        message = f"trained {epochs} epochs ({len(losses)} steps) in {seconds:.2f} s"
        epochs_done = epochs
    last = None
    if ema_decay is not None:
        # The average holds only good steps, so it is the result after a divergence too.
        last, trained = trained, eqx.combine(carry[8], static)
        message += f"; returning the moving average of the parameters (decay {ema_decay:g})"
    return FitResult(
        trained,
        losses,
        epochs_done,
        seconds,
        diverged,
        message,
        carry[7],
        last,
        tuple(chunk_seconds),
        tuple(chunk_epochs),
    )


def fit_lbfgs(
    model,
    loss_fn: LossFn,
    data,
    *,
    key: PRNGKeyArray,
    steps: int,
    memory_size: int = 50,
    chunks: int = 20,
    progress: bool = True,
    description: str = "l-bfgs",
) -> FitResult:
    """Minimise ``loss_fn`` over the full batch ``data`` by L-BFGS with a zoom line search
    (``optax.lbfgs``; the quasi-Newton second stage of PINN training, after Adam).

    ``loss_fn(model, batch, key)`` is called with one fixed ``key`` (L-BFGS needs a deterministic
    objective). Steps are fused with ``lax.scan`` in chunks. A non-finite loss or gradient, or a
    step that raises the loss orders of magnitude, freezes the parameters; the parameters with the
    lowest loss seen are returned (:class:`FitResult`, ``epochs`` = steps run).
    """
    if not isinstance(steps, (int, np.integer)) or steps <= 0:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")
    if not isinstance(memory_size, int) or memory_size < 1:
        raise ValueError(f"`memory_size` must be a positive integer, got {memory_size!r}")
    batch, _ = _as_batch(data)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    objective = lambda p: loss_fn(eqx.combine(p, static), batch, key)  # noqa: E731
    optimizer = optax.lbfgs(memory_size=memory_size)
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(carry, _):
        params, state, ok, best, best_params = carry
        value, grad = value_and_grad(params, state=state)
        with jax.numpy_dtype_promotion("standard"):
            updates, new_state = optimizer.update(
                grad, state, params, value=value, grad=grad, value_fn=objective
            )
        new_params = eqx.apply_updates(params, updates)
        finite = jnp.isfinite(value) & _all_finite(grad)
        ok = ok & finite & ~(value > BLOWUP_OVER_BEST * jnp.abs(best))
        improved = ok & (value < best)
        best_params = jax.tree_util.tree_map(lambda p, b: jnp.where(improved, p, b), params, best_params)
        best = jnp.where(improved, value, best)
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, old)  # noqa: E731
        return (keep(new_params, params), keep(new_state, state), ok, best, best_params), value

    @eqx.filter_jit
    def run_chunk(carry, length_marker):
        return jax.lax.scan(step, carry, None, length=length_marker.shape[0])

    dtype = jax.eval_shape(objective, params).dtype
    carry = (params, optimizer.init(params), jnp.array(True), jnp.array(jnp.inf, dtype), params)
    per_chunk = _chunk_length(int(steps), chunks)
    history, done, start = [], 0, time.perf_counter()
    with progress_bar(int(steps), description, enabled=progress) as advance:
        while done < steps:
            size = min(per_chunk, int(steps) - done)
            carry, values = run_chunk(carry, jnp.zeros(size))
            history.append(np.asarray(values))
            done += size
            advance(size, loss=f"{float(carry[3]):.3e}")
            if not bool(carry[2]):
                break
    seconds = time.perf_counter() - start
    losses = np.concatenate(history)
    trained = eqx.combine(carry[4], static)
    diverged = not bool(carry[2])
    if diverged:
        bad = int(np.argmax(~np.isfinite(losses))) if not np.all(np.isfinite(losses)) else len(losses) - 1
        kept = (
            f"the parameters with the lowest loss ({float(carry[3]):.3e})"
            if np.isfinite(float(carry[3]))
            else "the starting parameters"
        )
        message = (
            f"L-BFGS stopped at step {bad}: the loss or its gradient became non-finite or blew up; "
            f"returning {kept}."
        )
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    else:
        message = f"L-BFGS: {done} steps in {seconds:.2f} s, loss {float(carry[3]):.3e}"
    return FitResult(trained, losses, done, seconds, diverged, message)


def fit_adam_then_lbfgs(
    model,
    loss_fn: LossFn,
    data,
    *,
    key: PRNGKeyArray,
    adam_epochs: int,
    lbfgs_steps: int,
    learning_rate: float = 1e-3,
    memory_size: int = 50,
    progress: bool = True,
    description: str = "fit",
    refine: Callable[[Any, Any], Any] | None = None,
) -> tuple[FitResult, FitResult]:
    """The usual PINN schedule: full-batch Adam for ``adam_epochs``, then :func:`fit_lbfgs` from its
    result for ``lbfgs_steps``. Returns both :class:`FitResult` s (the second holds the model).

    ``refine(model, data) -> data`` runs between the two phases, e.g. to add residual-based
    adaptive collocation points (:func:`physbias.pde.residual_adaptive_points`)."""
    k_adam, k_lbfgs = jax.random.split(key)
    adam = fit(
        model,
        loss_fn,
        data,
        key=k_adam,
        epochs=adam_epochs,
        optimizer=optax.adam(learning_rate),
        progress=progress,
        description=f"{description}: adam",
    )
    if refine is not None:
        data = refine(adam.model, data)
    lbfgs = fit_lbfgs(
        adam.model,
        loss_fn,
        data,
        key=k_lbfgs,
        steps=lbfgs_steps,
        memory_size=memory_size,
        progress=progress,
        description=f"{description}: l-bfgs",
    )
    return adam, lbfgs
