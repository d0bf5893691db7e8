"""physbias: physics-informed inductive biases for deep learning (JAX + Equinox + Optax).

The public API, re-exported; see the README for a tour.
"""

import importlib

from ._version import __version__

# The public API is imported lazily (PEP 562): `import physbias` and the command line stay fast
# (the CLI validates its arguments before JAX is imported), and `physbias.fit` etc. load on use.
_LAZY = {
    "bias": None,
    "dynamics": None,
    "experiments": None,
    "metrics": None,
    "nn": None,
    "systems": None,
    "AbstractSymmetry": "bias",
    "Augmentation": "bias",
    "Canonicalized": "bias",
    "EvenFunction": "bias",
    "OddFunction": "bias",
    "Parity": "bias",
    "Permutation": "bias",
    "PhysicsResidual": "bias",
    "Scaling": "bias",
    "Symmetrized": "bias",
    "SymmetryPenalty": "bias",
    "Transformations": "bias",
    "Dataset": "data",
    "TrajectoryDataset": "data",
    "mean_squared_error": "losses",
    "supervised_loss": "losses",
    "Result": "report",
    "write_results": "report",
    "load": "serialization",
    "load_metadata": "serialization",
    "save": "serialization",
    "FitResult": "train",
    "fit": "train",
    "fit_lbfgs": "train",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'physbias' has no attribute {name!r}")
    module = importlib.import_module(f".{_LAZY[name] or name}", __name__)
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


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
    "fit_lbfgs",
    "load",
    "load_metadata",
    "mean_squared_error",
    "metrics",
    "nn",
    "save",
    "supervised_loss",
    "systems",
    "write_results",
]
