"""The neural Hamiltonian flow (Toth et al. 2019, "Hamiltonian Generative Networks", sec. 3.3;
seed 000: "define probability = energy ... conserve total probability").

A normalising flow on the phase space ``s = (q, p)``: ``q`` is the data (``d`` numbers), ``p`` an
auxiliary momentum of the same size. The base density is ``pi = N(0, I_2d)`` and the bijection is
``K`` blocks, block ``k`` running ``steps`` leapfrog steps of size ``eps_k`` of its own learned
separable Hamiltonian

.. math:: H_k(q, p) = K_k(p) + V_k(q), \\qquad K_k(p) = |p|^2 / 2 + \\mathrm{MLP}(p),

(:func:`physbias.dynamics.separable_leapfrog`). Leapfrog is symplectic, so the map preserves volume:
``log |det J| = 0`` exactly and no Jacobian determinant is ever computed — the flow moves
probability like an incompressible fluid, conserving it by Liouville's theorem. The inverse is the
same steps with ``-eps`` in reverse order (exact up to rounding). A learned diagonal affine map on
``s`` (``shift``, ``log_scale``) sits on the data side; its log-determinant is the constant
``sum(log_scale)``, added in closed form (``scale=False`` leaves the whole map volume-preserving).

The data density is the marginal ``p(q) = int p(q, p) dp``, bounded with a Gaussian momentum
encoder ``f(p | q)``:

.. math:: \\log p(q) \\ge E_{p \\sim f(\\cdot|q)}
          [\\log \\pi(\\Phi^{-1}(A^{-1}(q, p))) - \\log|\\det A| - \\log f(p | q)]

(the ELBO, trained with one reparameterised ``p``),

and evaluated by the importance-weighted bound ``log (1/M) sum_m w_m`` (Burda et al. 2016), which
tightens to ``log p(q)`` as ``M`` grows.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._activations import softplus
from ..dynamics import separable_leapfrog

_LOG_2PI = math.log(2.0 * math.pi)


def _standard_normal_log_density(z: Array) -> Array:
    return -0.5 * jnp.sum(z**2, -1) - 0.5 * z.shape[-1] * _LOG_2PI


def _zero_last_layer(mlp: eqx.nn.MLP) -> eqx.nn.MLP:
    # A zero last layer makes the block the free flight p -> p, q -> q + eps p at initialisation.
    last = mlp.layers[-1]
    return eqx.tree_at(
        lambda m: (m.layers[-1].weight, m.layers[-1].bias),
        mlp,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )


class SeparableHamiltonian(eqx.Module):
    """``H(q, p) = |p|^2 / 2 + MLP_K(p) + MLP_V(q)``; both MLPs start at zero output.

    Smooth activations only: training differentiates through ``grad V`` and ``grad K``.
    """

    potential: eqx.nn.MLP
    kinetic: eqx.nn.MLP

    def __init__(self, dim: int, width: int, depth: int, *, key: PRNGKeyArray, activation=softplus):
        k_v, k_k = jax.random.split(key)
        make = lambda k: _zero_last_layer(
            eqx.nn.MLP(dim, "scalar", width, depth, activation=activation, key=k)
        )
        self.potential, self.kinetic = make(k_v), make(k_k)

    def __call__(self, q: Array, p: Array) -> Array:
        return 0.5 * jnp.sum(p**2) + self.kinetic(p) + self.potential(q)

    def potential_gradient(self, q: Array) -> Array:
        return jax.grad(self.potential)(q)

    def kinetic_gradient(self, p: Array) -> Array:
        return p + jax.grad(self.kinetic)(p)


class MomentumEncoder(eqx.Module):
    """``f(p | q) = N(mu(q), diag(sigma(q))^2)``, mean and log-std from one MLP (starting at
    ``N(0, I)``)."""

    net: eqx.nn.MLP
    dim: int = eqx.field(static=True)

    def __init__(self, dim: int, width: int, depth: int, *, key: PRNGKeyArray):
        self.net = _zero_last_layer(eqx.nn.MLP(dim, 2 * dim, width, depth, activation=jax.nn.silu, key=key))
        self.dim = dim

    def sample_and_log_prob(self, q: Array, key: PRNGKeyArray) -> tuple[Array, Array]:
        """A reparameterised ``p ~ f(. | q)`` and ``log f(p | q)``."""
        out = self.net(q)
        mean, log_std = out[: self.dim], out[self.dim :]
        noise = jax.random.normal(key, (self.dim,), q.dtype)
        return mean + jnp.exp(log_std) * noise, _standard_normal_log_density(noise) - jnp.sum(log_std)


class HamiltonianFlow(eqx.Module):
    """The flow of the module docstring on ``dim``-dimensional data. Methods act on one sample
    (``vmap`` them); ``forward`` and ``inverse`` act on the phase-space state ``s = (q, p)``.

    Args:
        dim: the data dimension ``d``.
        blocks: the number ``K`` of Hamiltonians.
        steps: leapfrog steps per block.
        step_size: the initial ``eps`` of every block (learned, kept positive through its log).
        width, depth: the MLPs of ``V`` and ``K``.
        encoder_width, encoder_depth: the momentum encoder's MLP.
        scale: learn the diagonal affine map on the data side (else ``log det = 0`` for the whole map).
        key: initialisation.
    """

    hamiltonians: tuple[SeparableHamiltonian, ...]
    log_step_sizes: Array
    encoder: MomentumEncoder
    shift: Array
    log_scale: Array
    steps: int = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    scale: bool = eqx.field(static=True)

    def __init__(
        self,
        dim: int,
        *,
        blocks: int = 4,
        steps: int = 4,
        step_size: float = 0.2,
        width: int = 32,
        depth: int = 2,
        encoder_width: int = 64,
        encoder_depth: int = 2,
        scale: bool = True,
        key: PRNGKeyArray,
    ):
        for name, value in (("dim", dim), ("blocks", blocks), ("steps", steps), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if not (step_size > 0 and math.isfinite(step_size)):
            raise ValueError(f"`step_size` must be positive, got {step_size!r}")
        keys = jax.random.split(key, blocks + 1)
        self.hamiltonians = tuple(SeparableHamiltonian(dim, width, depth, key=k) for k in keys[:-1])
        self.log_step_sizes = jnp.full((blocks,), math.log(step_size), jnp.float32)
        self.encoder = MomentumEncoder(dim, encoder_width, encoder_depth, key=keys[-1])
        self.shift, self.log_scale = jnp.zeros(2 * dim), jnp.zeros(2 * dim)
        self.steps, self.dim, self.scale = steps, dim, scale

    def _affine(self) -> tuple[Array, Array]:
        if self.scale:
            return self.shift, self.log_scale
        return jnp.zeros_like(self.shift), jnp.zeros_like(self.log_scale)

    def core(self, s: Array) -> Array:
        """The symplectic part ``Phi`` (``log |det| = 0``): every block's leapfrog steps in turn."""
        q, p = s[: self.dim], s[self.dim :]
        for h, log_eps in zip(self.hamiltonians, self.log_step_sizes, strict=True):
            q, p = separable_leapfrog(
                h.kinetic_gradient, h.potential_gradient, q, p, jnp.exp(log_eps), self.steps
            )
        return jnp.concatenate([q, p])

    def core_inverse(self, s: Array) -> Array:
        """``Phi^-1``: the blocks in reverse order, each run backwards in time."""
        q, p = s[: self.dim], s[self.dim :]
        for h, log_eps in zip(self.hamiltonians[::-1], self.log_step_sizes[::-1], strict=True):
            q, p = separable_leapfrog(
                h.kinetic_gradient, h.potential_gradient, q, p, -jnp.exp(log_eps), self.steps
            )
        return jnp.concatenate([q, p])

    def forward(self, s0: Array) -> Array:
        """Base sample ``s0`` ``(2d,)`` -> phase-space point ``A(Phi(s0))``."""
        shift, log_scale = self._affine()
        return shift + jnp.exp(log_scale) * self.core(s0)

    def inverse(self, s: Array) -> Array:
        """Phase-space point ``(q, p)`` -> base point ``Phi^-1(A^-1(s))``."""
        shift, log_scale = self._affine()
        return self.core_inverse((s - shift) * jnp.exp(-log_scale))

    def log_det(self) -> Array:
        """``log |det d forward / d s0|`` — the constant ``sum(log_scale)`` (0 without the affine map)."""
        return jnp.sum(self._affine()[1])

    def log_joint(self, q: Array, p: Array) -> Array:
        """``log p(q, p) = log pi(inverse(q, p)) - log_det``."""
        return _standard_normal_log_density(self.inverse(jnp.concatenate([q, p]))) - self.log_det()

    def log_weight(self, q: Array, key: PRNGKeyArray) -> Array:
        """One importance log-weight ``log p(q, p) - log f(p | q)``, ``p ~ f(. | q)``: the ELBO's
        integrand (its mean over keys is the ELBO)."""
        p, log_f = self.encoder.sample_and_log_prob(q, key)
        return self.log_joint(q, p) - log_f

    def log_prob(self, q: Array, key: PRNGKeyArray, samples: int = 64) -> Array:
        """The importance-weighted lower bound on ``log p(q)`` with ``samples`` momenta."""
        weights = jax.vmap(lambda k: self.log_weight(q, k))(jax.random.split(key, samples))
        return jax.nn.logsumexp(weights) - math.log(samples)

    def sample(self, key: PRNGKeyArray, n: int) -> Array:
        """``n`` data samples ``(n, d)``: push base samples forward and keep ``q``."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"`n` must be a positive integer, got {n!r}")
        s0 = jax.random.normal(key, (n, 2 * self.dim))
        return jax.vmap(self.forward)(s0)[:, : self.dim]


def elbo_loss():
    """``loss_fn(flow, (x,), key) = -mean ELBO`` over the batch (one momentum per sample), for
    :func:`~physbias.train.fit`."""

    def loss_fn(flow: HamiltonianFlow, batch, key):
        (x,) = batch[:1]
        if x.ndim != 2 or x.shape[1] != flow.dim:
            raise ValueError(f"data must have shape (n, {flow.dim}), got {x.shape}")
        return -jnp.mean(jax.vmap(flow.log_weight)(x, jax.random.split(key, x.shape[0])))

    return loss_fn
