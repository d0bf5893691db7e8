"""A Hamiltonian network averaged over the flows of conserved quantities (Noether's razor).

.. math:: H_{sym}(x) = \\frac1S \\sum_{s=1}^S F_\\theta(\\Phi^{\\tau_s}(x)), \\qquad
          \\dot x = J \\nabla H_{sym}(x),

with ``Phi`` the flow of the (learned or fixed) conserved quantities
(:class:`~physbias.dynamics.AbstractConservedQuantities`) and ``tau_s`` drawn from the
symmetrisation measure (:func:`~physbias.dynamics.sample_flow_times`). By Noether's theorem every
``C_k`` is then (up to the Monte-Carlo error of the average) conserved by the learned dynamics.

Reference: van der Ouderaa, van der Wilk & de Haan, NeurIPS 2024, Sec. 3 (seed 003).
"""

from __future__ import annotations

from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .conserved import AbstractConservedQuantities, _check_count, sample_flow_times
from .models import AbstractDynamics


class SymmetrizedHamiltonianNN(AbstractDynamics):
    """``H_sym = mean_s F(Phi^{tau_s}(x))`` and Hamilton's equations ``x' = J grad H_sym``.

    Args:
        conserved: the conserved quantities whose flows ``H`` is averaged over (their
            ``state_size`` is the model's).
        width, depth: the MLP ``F_theta: R^d -> R``.
        n_samples: ``S``, flow times in the average.
        key: PRNG key for ``F`` and the first flow times.
        activation: of ``F`` (Noether's razor: ELU).

    ``flow_times`` are data, not parameters (they are held by ``stop_gradient``): draw fresh ones
    every step with :meth:`with_flow_times`.
    """

    net: Any
    conserved: AbstractConservedQuantities
    flow_times: Float[Array, "S K"]
    state_size: int = eqx.field(static=True)
    coordinates: ClassVar[str] = "canonical"

    def __init__(
        self,
        conserved: AbstractConservedQuantities,
        width: int = 200,
        depth: int = 2,
        n_samples: int = 32,
        *,
        key: PRNGKeyArray,
        activation=jax.nn.elu,
    ):
        if not isinstance(conserved, AbstractConservedQuantities):
            raise TypeError(
                "SymmetrizedHamiltonianNN: `conserved` must be an AbstractConservedQuantities "
                f"(e.g. QuadraticConservedQuantities), got {type(conserved).__name__}"
            )
        _check_count(n_samples, "n_samples", "SymmetrizedHamiltonianNN")
        k_net, k_tau = jax.random.split(key)
        self.state_size = conserved.state_size
        self.conserved = conserved
        self.net = eqx.nn.MLP(conserved.state_size, "scalar", width, depth, activation=activation, key=k_net)
        self.flow_times = sample_flow_times(k_tau, n_samples, conserved.n_quantities)

    def with_flow_times(self, key: PRNGKeyArray) -> SymmetrizedHamiltonianNN:
        """The same model with ``S`` fresh flow times."""
        taus = sample_flow_times(key, *self.flow_times.shape, dtype=self.flow_times.dtype)
        return eqx.tree_at(lambda m: m.flow_times, self, taus)

    def hamiltonian(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        taus = jax.lax.stop_gradient(self.flow_times)
        return jnp.mean(jax.vmap(lambda tau: self.net(self.conserved.flow(x, tau)))(taus))

    def __call__(self, x):
        grad = jax.grad(self.hamiltonian)(x)
        n = self.state_size // 2
        return jnp.concatenate([grad[n:], -grad[:n]])
