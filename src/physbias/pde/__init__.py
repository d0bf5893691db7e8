"""Differential equations as biases: domains and collocation points, PDE residuals of a field
network (the soft, "learning" bias), hard boundary conditions by construction, exact references; Neural IVP
(evolving a network's parameters in time)."""

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
from .ivps import IVPS, AbstractIVP, Advection, Heat, get_ivp
from .neural_field import DirichletField, SinusoidalEmbedding
from .neural_ivp import (
    FlatField,
    NeuralIVPResult,
    NeuralIVPSettings,
    VelocityStats,
    flatten_field,
    gram_operator,
    neural_ivp,
    parameter_velocity,
    project_field,
)
from .nystrom import NystromApproximation, nystrom_approximation
from .pinn import pinn_loss, residual_adaptive_points
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
    "AbstractIVP",
    "Advection",
    "Box",
    "DirichletField",
    "Disk",
    "FlatField",
    "HardConstraintField",
    "Heat",
    "IVPS",
    "NeuralIVPResult",
    "NeuralIVPSettings",
    "NystromApproximation",
    "RAISSI_VISCOSITY",
    "SinusoidalEmbedding",
    "VelocityStats",
    "burgers_cole_hopf",
    "burgers_distance",
    "burgers_hard_field",
    "burgers_initial",
    "burgers_residual",
    "chebyshev_t",
    "derivative",
    "flatten_field",
    "get_ivp",
    "gram_operator",
    "heat_residual",
    "laplace_disk_hard_field",
    "laplace_disk_solution",
    "laplace_residual",
    "laplace_square_hard_field",
    "laplace_square_solution",
    "neural_ivp",
    "nystrom_approximation",
    "parameter_velocity",
    "pinn_loss",
    "project_field",
    "raissi_condition_points",
    "raissi_grid",
    "residual_adaptive_points",
    "second_derivative",
]
