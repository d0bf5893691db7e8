"""Differential equations as biases: exact references (more to come: PINNs, Neural IVP)."""

from .references import RAISSI_VISCOSITY, burgers_cole_hopf, laplace_disk_solution, laplace_square_solution

__all__ = ["RAISSI_VISCOSITY", "burgers_cole_hopf", "laplace_disk_solution", "laplace_square_solution"]
