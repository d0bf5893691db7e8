"""Simulated systems and tasks with known ground truth (no downloads)."""

from .constraints import (
    DistanceConstraints,
    constrained_hamiltonian_field,
    constrained_lagrangian_field,
    constraint_violation,
    project_onto_constraints,
)
from .gyroscope import Gyroscope
from .mechanics import (
    AbstractMechanicalSystem,
    CartesianChainPendulum,
    ChainPendulum,
    CoupledOscillators,
    Kepler,
    MassSpring,
    NBody2D,
    Pendulum,
    euler_lagrange_acceleration,
    sample_initial_states,
    simulate,
)
from .registry import SYSTEMS, get_system
from .rotations import random_rotations, rotated_clouds
from .spring import SpringForm, sample_spring, spring_force
from .triangle import HeronForm, heron_area, sample_triangles

__all__ = [
    "SYSTEMS",
    "get_system",
    "AbstractMechanicalSystem",
    "CartesianChainPendulum",
    "DistanceConstraints",
    "constrained_hamiltonian_field",
    "constrained_lagrangian_field",
    "constraint_violation",
    "project_onto_constraints",
    "ChainPendulum",
    "CoupledOscillators",
    "Gyroscope",
    "Kepler",
    "MassSpring",
    "NBody2D",
    "Pendulum",
    "euler_lagrange_acceleration",
    "sample_initial_states",
    "simulate",
    "HeronForm",
    "SpringForm",
    "heron_area",
    "random_rotations",
    "rotated_clouds",
    "sample_spring",
    "sample_triangles",
    "spring_force",
]
