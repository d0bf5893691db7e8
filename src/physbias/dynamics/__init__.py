"""Dynamics: learned vector fields, integrators and rollouts."""

from .constrained import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from .integrators import (
    INTEGRATORS,
    RK4,
    AbstractIntegrator,
    Euler,
    ImplicitMidpoint,
    Leapfrog,
    Yoshida4,
    get_integrator,
    rollout,
    solve_adaptive,
)
from .losses import derivative_loss, rollout_loss
from .models import (
    AbstractDynamics,
    DeepLagrangianNN,
    HamiltonianNN,
    LagrangianNN,
    NeuralODE,
    SecondOrderNODE,
)
from .specs import MODELS, build_model

__all__ = [
    "MODELS",
    "build_model",
    "INTEGRATORS",
    "RK4",
    "AbstractDynamics",
    "AbstractIntegrator",
    "ConstrainedHamiltonianNN",
    "ConstrainedLagrangianNN",
    "DeepLagrangianNN",
    "Euler",
    "HamiltonianNN",
    "ImplicitMidpoint",
    "LagrangianNN",
    "Leapfrog",
    "NeuralODE",
    "SecondOrderNODE",
    "Yoshida4",
    "derivative_loss",
    "get_integrator",
    "rollout_loss",
    "rollout",
    "solve_adaptive",
]
