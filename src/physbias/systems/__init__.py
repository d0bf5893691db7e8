"""Simulated systems and tasks with known ground truth (no downloads)."""

from .base import AbstractSystem
from .chain_coordinates import (
    CHAIN_COORDINATES,
    chain_derivative_dataset,
    from_angle_velocity,
    to_cartesian_velocity,
)
from .chaotic import (
    WINDOW_STATISTICS,
    FitzHughNagumo,
    FlowMap,
    Lorenz63,
    lobe_mean,
    peak_height,
    spectral_amplitude,
    trajectory_windows,
)
from .constraints import (
    DistanceConstraints,
    constrained_hamiltonian_field,
    constrained_lagrangian_field,
    constraint_violation,
    project_onto_constraints,
)
from .densities import DENSITIES, Banana, GaussianRing, TwoMoons
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
    euler_lagrange_solve,
    sample_initial_states,
    simulate,
)
from .registry import SYSTEMS, get_system
from .rotations import random_rotations, rotated_clouds
from .selection_tasks import SELECTION_TASKS, selection_task
from .spring import LinearSpring, SpringForm, sample_spring, spring_force
from .symmetric_tasks import TASKS, SymmetricTask, inertia, rotation_arcs
from .trajectories import (
    COORDINATES,
    canonical_trajectories,
    derivative_dataset,
    energy_function,
    radial_trajectory_split,
    sample_trajectories,
    transition_pairs,
)
from .triangle import HeronForm, heron_area, sample_triangles

__all__ = [
    "SELECTION_TASKS",
    "selection_task",
    "WINDOW_STATISTICS",
    "FlowMap",
    "FitzHughNagumo",
    "lobe_mean",
    "peak_height",
    "spectral_amplitude",
    "Lorenz63",
    "trajectory_windows",
    "DENSITIES",
    "Banana",
    "GaussianRing",
    "TwoMoons",
    "AbstractSystem",
    "TASKS",
    "SymmetricTask",
    "inertia",
    "rotation_arcs",
    "CHAIN_COORDINATES",
    "COORDINATES",
    "chain_derivative_dataset",
    "canonical_trajectories",
    "derivative_dataset",
    "energy_function",
    "radial_trajectory_split",
    "transition_pairs",
    "from_angle_velocity",
    "sample_trajectories",
    "to_cartesian_velocity",
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
    "euler_lagrange_solve",
    "sample_initial_states",
    "simulate",
    "HeronForm",
    "LinearSpring",
    "SpringForm",
    "heron_area",
    "random_rotations",
    "rotated_clouds",
    "sample_spring",
    "sample_triangles",
    "spring_force",
]
