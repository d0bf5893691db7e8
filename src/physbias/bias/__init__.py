"""The four ways to impose a bias (seed 001), for any model and any symmetry.

==============  =========================  =====================================  ======
kind            how                        physbias                               hard?
==============  =========================  =====================================  ======
observation     augment the data           :class:`Augmentation`                  soft
learning        penalty in the loss        :class:`SymmetryPenalty`               soft
inductive       architecture               :class:`Symmetrized`,                  hard
                                           :class:`Canonicalized`,
                                           :class:`OddFunction`, :class:`EvenFunction`,
                                           :class:`RotationInvariant`
                                           (:class:`RelaxedSymmetrized`: soft;
                                           :class:`LearnedInvariance`: extent learned)
physics         known model + residual     :class:`PhysicsResidual`               hard
==============  =========================  =====================================  ======
"""

from .augment import Augmentation, AugmentedLoss
from .base import KINDS, AbstractBias
from .invariance import (
    AFFINE_2D,
    ROTATION_2D,
    LearnedInvariance,
    affine_resample,
    extent_degrees,
    rotate_images,
)
from .invariants import RotationInvariant, rotation_invariant_count
from .penalty import SymmetryPenalty
from .residual import PhysicsResidual
from .symmetrize import Canonicalized, EvenFunction, OddFunction, RelaxedSymmetrized, Symmetrized
from .symmetry import (
    AbstractSymmetry,
    ImageSymmetry,
    MatrixSymmetry,
    Parity,
    Permutation,
    ProductSymmetry,
    Scaling,
    Transformations,
    as_symmetry,
)


def describe(bias) -> str:
    """``"inductive (hard)"``-style label of an :class:`AbstractBias`, or ``"none"`` for anything
    else (a plain model)."""
    if not isinstance(bias, AbstractBias):
        return "none"
    return f"{bias.kind} ({'hard' if bias.hard else 'soft'})"


__all__ = [
    "AbstractBias",
    "KINDS",
    "ImageSymmetry",
    "AFFINE_2D",
    "LearnedInvariance",
    "affine_resample",
    "rotate_images",
    "ROTATION_2D",
    "extent_degrees",
    "as_symmetry",
    "AbstractSymmetry",
    "Augmentation",
    "AugmentedLoss",
    "Canonicalized",
    "EvenFunction",
    "MatrixSymmetry",
    "OddFunction",
    "Parity",
    "Permutation",
    "PhysicsResidual",
    "ProductSymmetry",
    "RelaxedSymmetrized",
    "RotationInvariant",
    "rotation_invariant_count",
    "Scaling",
    "SymmetryPenalty",
    "Symmetrized",
    "Transformations",
    "describe",
]
