"""Shared pieces of the symmetry experiments (emlp-synthetic, rpp): standardisation that keeps
equivariance, group augmentation as a loss, training and scoring of a regressor."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..groups.measure import equivariance_error
from ..losses import mean_squared_error
from ..systems.symmetric_tasks import SymmetricTask
from ..train import adam_cosine, fit


class Standardized(eqx.Module):
    """``x -> y_mean + y_scale * net(x / x_scale)``: equivariant whenever ``net`` is, because
    ``x_scale`` is one number per rep copy and ``y_mean`` is invariant (zero otherwise)."""

    net: eqx.Module
    x_scale: jax.Array
    y_mean: jax.Array
    y_scale: float = eqx.field(static=True)

    def __init__(self, net, task: SymmetricTask):
        self.net = net
        self.x_scale = jnp.asarray(task.x_scale, jnp.float32)
        self.y_mean = jnp.asarray(task.y_mean, jnp.float32)
        self.y_scale = float(task.y_scale)

    def __call__(self, x):
        # The scales are constants, not parameters: no gradient reaches them.
        x_scale, y_mean = jax.lax.stop_gradient((self.x_scale, self.y_mean))
        return y_mean + self.y_scale * self.net(x / x_scale)


def element_bank(task: SymmetricTask, rng: np.random.Generator, n: int = 2048):
    """``n`` sampled group elements as ``(rho_in, rho_out)`` stacks (float32) for augmentation."""
    gs = task.G.sample(rng, n)
    rin = np.stack([task.rep_in.rho(task.G, g) for g in gs])
    rout = np.stack([task.rep_out.rho(task.G, g) for g in gs])
    return jnp.asarray(rin, jnp.float32), jnp.asarray(rout, jnp.float32)


def regression_loss(y_scale: float, bank=None, penalty=None):
    """MSE in standardised units (``/ y_scale^2``); with ``bank``, every example is first moved
    by a random element ``(rho_in(g) x, rho_out(g) y)`` (observation bias); ``penalty(model)``
    adds a weight prior (the residual pathway's)."""

    def loss(model, batch, key):
        x, y = batch
        if bank is not None:
            rin, rout = bank
            idx = jax.random.randint(key, (x.shape[0],), 0, rin.shape[0])
            x = jnp.einsum("bij,bj->bi", rin[idx], x)
            y = jnp.einsum("bij,bj->bi", rout[idx], y)
        value = mean_squared_error(jax.vmap(model)(x), y) / y_scale**2
        return value + penalty(model) if penalty is not None else value

    return loss


def train_regressor(
    model,
    task: SymmetricTask,
    idx,
    *,
    key,
    epochs,
    learning_rate,
    batch_size,
    bank=None,
    penalty=None,
    progress=False,
    description="fit",
):
    """Fit ``model`` (already :class:`Standardized`) on ``task`` rows ``idx``."""
    X = jnp.asarray(task.X[idx], jnp.float32)
    Y = jnp.asarray(task.Y[idx], jnp.float32)
    steps = epochs * max(1, len(idx) // batch_size)
    return fit(
        model,
        regression_loss(task.y_scale, bank, penalty),
        (X, Y),
        key=key,
        epochs=epochs,
        optimizer=adam_cosine(learning_rate, steps),
        batch_size=batch_size,
        progress=progress,
        description=description,
    )


def score(model, task: SymmetricTask, idx) -> dict[str, float]:
    """Test MSE (original units, mean over output entries as in EMLP), MSE relative to the
    target variance, and the equivariance error on the test inputs."""
    X = task.X[idx]
    pred = np.asarray(_predict(model, jnp.asarray(X, jnp.float32)), np.float64)
    err = np.mean((pred - task.Y[idx]) ** 2)
    return {
        "test_mse": float(err),
        "test_mse_relative": float(err / np.mean((task.Y[idx] - task.Y[idx].mean(0)) ** 2)),
        "equivariance_error": equivariance_error(
            model, task.rep_in, task.rep_out, task.G, X[:256], n_elements=4
        ),
    }


@eqx.filter_jit
def _predict(model, x):
    return jax.vmap(model)(x)


def n_params(model) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))))
