"""Ground-floor derivatives of a scalar MLP: its value, gradient and exact Hessian along a few
directions from one forward and one backward pass, for the Lagrangian networks.

A Lagrangian network needs ``L``, ``dL/dz`` and ``V H V^T`` for ``n + 1`` directions ``V`` (the mass
matrix and the mixed term of the Euler-Lagrange equations). Forward-over-reverse autodiff gets them
from ``n + 1`` tangents of the backward pass: each tangent costs a forward and a backward product
per hidden layer. For an MLP the Hessian has a closed form that needs only the forward tangents:
with pre-activations ``a_l = W_l h_{l-1} + b_l``, ``h_l = sigma(a_l)``, ``h_0 = z`` and the backward
vectors ``g_l = df/dh_l``,

    H = sum_l J_l^T diag(sigma''(a_l) * g_l) J_l  (+ the output activation's term),

where ``J_l = da_l/dz``: every layer is linear but for its elementwise activation, so the Hessian
is the sum of the activations' curvatures seen through each layer's input Jacobian. ``J_l V^T`` is
the forward tangent of ``a_l`` along ``V``; the backward tangents are never formed. For two hidden
layers that is 5 products of the hidden width per example instead of 8.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _elementwise_derivatives(activation, a: Array) -> tuple[Array, Array, Array]:
    """``(sigma(a), sigma'(a), sigma''(a))`` of an elementwise activation."""
    ones = jnp.ones_like(a)

    def first(u):
        return jax.jvp(activation, (u,), (ones,))

    (value, slope), (_, curvature) = jax.jvp(first, (a,), (ones,))
    return value, slope, curvature


def supports_mlp_curvature(net) -> bool:
    """Whether :func:`mlp_curvature` applies to ``net``: an ``equinox.nn.MLP`` with a scalar output,
    at least one hidden layer, no ``scan`` over its layers and activations without parameters
    (applied elementwise, as ``equinox.nn.MLP`` does)."""
    return (
        isinstance(net, eqx.nn.MLP)
        and net.out_size == "scalar"
        and net.depth >= 1
        and not getattr(net, "scan", False)
        and not any(
            eqx.is_array(x) for x in jax.tree_util.tree_leaves((net.activation, net.final_activation))
        )
    )


def mlp_curvature(
    net: eqx.nn.MLP, z: Float[Array, " d"], directions: Float[Array, "k d"]
) -> tuple[Float[Array, ""], Float[Array, " d"], Float[Array, "k k"]]:
    """``(f(z), df/dz, V H V^T)`` of a scalar MLP ``f = net`` with ``H = d^2f/dz^2`` and the rows of
    ``V = directions``, exact (to float rounding, the same numbers as autodiff), from one forward
    pass with ``k`` tangents and one backward pass:

        V H V^T = sum_l T_l diag(sigma''(a_l) * g_l) T_l^T + f_out'' t t^T,

    ``T_l = V J_l^T`` the forward tangents of layer ``l``'s pre-activations (``k x width``),
    ``g_l = df/dh_l`` the backward vectors, ``t`` the tangents of the output's pre-activation.

    Args:
        net: an MLP accepted by :func:`supports_mlp_curvature` (raises ``ValueError`` otherwise).
        z: the input, shape ``(d,)``.
        directions: ``k`` directions, shape ``(k, d)``.
    """
    if not supports_mlp_curvature(net):
        raise ValueError(
            "mlp_curvature: `net` must be an equinox.nn.MLP with a scalar output, at least one hidden "
            "layer, scan=False and parameter-free activations"
        )
    if z.ndim != 1 or directions.ndim != 2 or directions.shape[1] != z.shape[0]:
        raise ValueError(
            f"mlp_curvature: `z` must have shape (d,) and `directions` shape (k, d); got {z.shape} and "
            f"{directions.shape}"
        )
    *hidden, last = net.layers
    h, tangent = z, directions
    stack = []
    for layer in hidden:
        a = layer(h)
        pre_tangent = tangent @ layer.weight.T  # (k, width): V J_l^T
        h, slope, curvature = _elementwise_derivatives(net.activation, a)
        stack.append((layer.weight, pre_tangent, slope, curvature))
        tangent = pre_tangent * slope[None, :]
    out = last(h)  # shape (): the scalar output layer
    weight = last.weight[0]  # its weight has one row
    out_tangent = tangent @ weight
    value, out_slope, out_curvature = _elementwise_derivatives(net.final_activation, out)
    g = out_slope * weight  # df/dh of the last hidden layer
    quadratic = out_curvature * jnp.outer(out_tangent, out_tangent)
    for w, pre_tangent, slope, curvature in reversed(stack):
        # k x k from k x width: elementwise and a reduction, since under vmap XLA's CPU backend
        # runs a batch of tiny products one at a time.
        weighted = pre_tangent * (curvature * g)[None, :]
        quadratic = quadratic + jnp.sum(weighted[:, None, :] * pre_tangent[None, :, :], axis=-1)
        g = (g * slope) @ w
    return value, g, quadratic
