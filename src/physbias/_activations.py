"""Ground-floor activations: the smooth activation of the energy, Lagrangian and vector-field
networks, written for XLA's CPU backend.

A dynamics network's training step is a handful of ``2048 x 128`` products and the activation's
elementwise work between them; on the CPU the activation and its derivatives cost as much as the
products (``benchmarks/step_profile.py``). ``jax.nn.softplus`` is ``logaddexp(x, 0)``: its
derivative rule evaluates ``exp`` twice (once for the constant 0), and XLA's ``log1p`` is about
2.5 times the cost of ``log``. :func:`softplus` is the same function to float rounding with one
``exp``, one ``log`` and a derivative by the logistic function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike


def _log1p_small(e: Array) -> Array:
    """``log(1 + e)`` for ``0 <= e <= 1`` to a few ulps, from one ``log``.

    With ``u = fl(1 + e)``, ``log1p(e) = log(u) * e / (u - 1)``: the rounding of ``1 + e`` is
    undone by the exact ``u - 1`` (Goldberg 1991, "What every computer scientist should know
    about floating-point arithmetic", Theorem 4). Where ``u == 1`` (``e`` below half an ulp of 1),
    ``log1p(e) = e`` to rounding.
    """
    u = 1 + e
    d = u - 1
    tiny = d == 0
    return jnp.where(tiny, e, jnp.log(u) * (e / jnp.where(tiny, 1, d)))


def _softplus_given(x: Array, e: Array) -> Array:
    """``softplus(x) = max(x, 0) + log1p(e)`` given ``e = exp(-|x|)``."""
    return jnp.maximum(x, 0) + _log1p_small(e)


@jax.custom_jvp
def softplus(x: ArrayLike) -> Array:
    """``softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))``, elementwise.

    The same function as ``jax.nn.softplus`` to float rounding (relative difference below
    ``3e-7`` in float32 over ``[-40, 40]``, tested), stable for any ``x`` (``exp`` of a
    non-positive number only), with ``inf -> inf``, ``-inf -> 0`` and NaN propagated.

    Derivatives: ``softplus'(x) = sigmoid(x)`` and ``softplus'' = sigmoid (1 - sigmoid)`` through
    ``jax.nn.sigmoid``'s own rule, so Hessians and Hessian-vector products (HNN, LNN) are exact
    to all orders. Measured in a full training step against ``jax.nn.softplus`` (2-core CPU,
    batch 2048, width 128): Neural ODE and second-order NODE 7-8% faster, HNN 13%, CHNN and CLNN
    15-17%, LNN 5% (BENCHMARKS.md, issue #16). :func:`softplus_one_exp` is faster still for a
    network trained by a single reverse pass (the Neural ODEs' default).
    """
    x = jnp.asarray(x)
    return _softplus_given(x, jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return softplus(x), jax.nn.sigmoid(x) * dx


def _exp_minus_abs(x: Array) -> Array:
    # exp(-|x|) written with the branch on x, so that plain autodiff of the derivative below is
    # right at x = 0 too (|x|'s derivative there is 0, which would drop softplus''(0) = 1/4).
    return jnp.exp(jnp.where(x >= 0, -x, x))


@jax.custom_jvp
def softplus_one_exp(x: ArrayLike) -> Array:
    """:func:`softplus` whose value and derivative share one ``exp``: with ``e = exp(-|x|)``,
    ``softplus(x) = max(x, 0) + log1p(e)`` and ``sigmoid(x) = [1 if x >= 0 else e] / (1 + e)``.

    The same function and derivatives to float rounding (tested to third order). A network
    trained by one reverse pass (a Neural ODE's vector field) computes one ``exp`` per element
    fewer: the Neural ODE and second-order NODE steps are 10-13% faster than with
    :func:`softplus`. Energies that the loss differentiates again (HNN, LNN, CHNN, CLNN) are
    faster with :func:`softplus`, whose derivative is XLA's logistic function (the second-order
    pass of this form was 7-13% slower, measured; BENCHMARKS.md, issue #16).
    """
    x = jnp.asarray(x)
    return _softplus_given(x, _exp_minus_abs(x))


@softplus_one_exp.defjvp
def _softplus_one_exp_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    e = _exp_minus_abs(x)
    slope = jnp.where(x >= 0, 1, e) / (1 + e)
    return _softplus_given(x, e), slope * dx
