"""Differential equations as biases: domains and collocation points, PDE residuals of a field
network (the soft, "learning" bias), hard boundary conditions by construction, exact references."""

from .ansatz import (
    HardConstraintField,
    burgers_distance,
    burgers_hard_field,
    burgers_initial,
    chebyshev_t,
    laplace_disk_hard_field,
    laplace_square_hard_field,
)
from .domain import Box, Disk
from .pinn import pinn_loss
from .references import (
    RAISSI_VISCOSITY,
    burgers_cole_hopf,
    laplace_disk_solution,
    laplace_square_solution,
    raissi_condition_points,
    raissi_grid,
)
from .residuals import burgers_residual, derivative, heat_residual, laplace_residual, second_derivative

__all__ = [
    "Box",
    "Disk",
    "HardConstraintField",
    "RAISSI_VISCOSITY",
    "burgers_cole_hopf",
    "burgers_distance",
    "burgers_hard_field",
    "burgers_initial",
    "burgers_residual",
    "chebyshev_t",
    "derivative",
    "heat_residual",
    "laplace_disk_hard_field",
    "laplace_disk_solution",
    "laplace_residual",
    "laplace_square_hard_field",
    "laplace_square_solution",
    "pinn_loss",
    "raissi_condition_points",
    "raissi_grid",
    "second_derivative",
]
