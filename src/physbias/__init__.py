"""physbias: physics-informed inductive biases for deep learning (JAX + Equinox + Optax).

The public API, re-exported; see the README for a tour.
"""

from . import bias, dynamics, experiments, metrics, nn, systems
from ._version import __version__
from .bias import (
    AbstractSymmetry,
    Augmentation,
    Canonicalized,
    EvenFunction,
    OddFunction,
    Parity,
    Permutation,
    PhysicsResidual,
    Scaling,
    Symmetrized,
    SymmetryPenalty,
    Transformations,
)
from .data import Dataset, TrajectoryDataset
from .losses import mean_squared_error, supervised_loss
from .report import Result, write_results
from .train import FitResult, fit

__all__ = [
    "AbstractSymmetry",
    "Augmentation",
    "Canonicalized",
    "Dataset",
    "EvenFunction",
    "FitResult",
    "OddFunction",
    "Parity",
    "Permutation",
    "PhysicsResidual",
    "Result",
    "Scaling",
    "SymmetryPenalty",
    "Symmetrized",
    "Transformations",
    "TrajectoryDataset",
    "__version__",
    "bias",
    "dynamics",
    "experiments",
    "fit",
    "mean_squared_error",
    "metrics",
    "nn",
    "supervised_loss",
    "systems",
    "write_results",
]
