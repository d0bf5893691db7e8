"""Normalising flows whose bias is energy: the volume-preserving neural Hamiltonian flow."""

from .hamiltonian import HamiltonianFlow, MomentumEncoder, SeparableHamiltonian, elbo_loss

__all__ = ["HamiltonianFlow", "MomentumEncoder", "SeparableHamiltonian", "elbo_loss"]
