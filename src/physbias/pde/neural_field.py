"""The Neural IVP ansatz (Finzi et al. 2023, Section 5): an MLP on sinusoidal features, multiplied by
a factor that vanishes on the walls of ``[-1, 1]^d``, so the Dirichlet condition ``u = 0`` holds
exactly (a hard bias) while the time evolution only moves the parameters.

.. math:: u_\\theta(x) = \\mathrm{MLP}_\\theta(\\gamma(x)) \\prod_i (1 - x_i^2), \\qquad
          \\gamma(x) = s \\big[\\sin(w_k x_i), \\cos(w_k x_i)\\big]_{k, i} / w_k^{\\alpha},
          \\quad w_k = \\tfrac{\\pi}{2} 2^k.

The ``1 / w_k^alpha`` damping keeps the high frequencies available without making the initial
function rough (Tancik et al. 2020's Fourier features, with a decaying spectrum).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class SinusoidalEmbedding(eqx.Module):
    """``gamma(x)``: ``(d,) -> (2 K d,)`` with ``K = len(frequencies)``."""

    frequencies: tuple[float, ...] = eqx.field(static=True)
    scale: float = eqx.field(static=True)
    decay: float = eqx.field(static=True)

    def __init__(self, octaves: int = 6, scale: float = 6.0, decay: float = 1.0):
        if not isinstance(octaves, int) or octaves < 1:
            raise ValueError(f"`octaves` must be a positive integer, got {octaves!r}")
        self.frequencies = tuple(jnp.pi / 2 * 2.0**k for k in range(octaves))
        self.scale, self.decay = float(scale), float(decay)

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " f"]:
        w = jnp.asarray(self.frequencies, x.dtype)
        phase = w[:, None] * x[None]  # (K, d)
        amplitude = (self.scale / w**self.decay)[:, None]
        return jnp.concatenate([(amplitude * jnp.sin(phase)).ravel(), (amplitude * jnp.cos(phase)).ravel()])


class DirichletField(eqx.Module):
    """``u(x) = MLP(gamma(x)) prod_i (1 - x_i^2)``: exactly zero on the walls of ``[-1, 1]^d``.

    Args:
        dim: ``d``.
        key: initialisation.
        width, depth: the MLP's hidden width and number of hidden layers (swish activations).
        octaves, scale, decay: the embedding (:class:`SinusoidalEmbedding`).
        dtype: the parameters' dtype (default: JAX's default float; float64 needs x64 enabled).
    """

    embedding: SinusoidalEmbedding
    mlp: eqx.nn.MLP
    dim: int = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        key: PRNGKeyArray,
        width: int = 64,
        depth: int = 3,
        octaves: int = 6,
        scale: float = 6.0,
        decay: float = 1.0,
        dtype=None,
    ):
        for name, value in (("dim", dim), ("width", width), ("depth", depth)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        self.dim = dim
        self.embedding = SinusoidalEmbedding(octaves, scale, decay)
        self.mlp = eqx.nn.MLP(
            2 * octaves * dim, "scalar", width, depth, activation=jax.nn.swish, key=key, dtype=dtype
        )

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        return self.mlp(self.embedding(x)) * jnp.prod(1 - x**2)
