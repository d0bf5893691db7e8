"""Dynamics: learned vector fields, integrators and rollouts."""

from .algebras import (
    describe_quadratic,
    euclidean_algebra_2d,
    generator_cosine,
    generator_singular_values,
    principal_cosines,
    quadratic_of_generator,
    unitary_algebra,
)
from .conserved import (
    AbstractConservedQuantities,
    NeuralConservedQuantities,
    QuadraticConservedQuantities,
    ode_flow,
    quadratic_generator,
    sample_flow_times,
    symplectic_form,
)
from .constrained import ConstrainedHamiltonianNN, ConstrainedLagrangianNN
from .integrators import (
    INTEGRATORS,
    RK4,
    AbstractIntegrator,
    Euler,
    FlowMap,
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
from .symmetrized import SymmetrizedHamiltonianNN

__all__ = [
    "AbstractConservedQuantities",
    "FlowMap",
    "NeuralConservedQuantities",
    "QuadraticConservedQuantities",
    "SymmetrizedHamiltonianNN",
    "describe_quadratic",
    "euclidean_algebra_2d",
    "generator_cosine",
    "generator_singular_values",
    "ode_flow",
    "principal_cosines",
    "quadratic_generator",
    "quadratic_of_generator",
    "sample_flow_times",
    "symplectic_form",
    "unitary_algebra",
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
