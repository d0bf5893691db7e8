"""The four ways to impose a bias (seed 001), for any model and any symmetry.

==============  =========================  =====================================  ======
kind            how                        physbias                               hard?
==============  =========================  =====================================  ======
observation     augment the data           :class:`Augmentation`                  soft
learning        penalty in the loss        :class:`SymmetryPenalty`               soft
inductive       architecture               :class:`Symmetrized`,                  hard
                                           :class:`Canonicalized`,
                                           :class:`OddFunction`, :class:`EvenFunction`
                                           (:class:`RelaxedSymmetrized`: soft)
physics         known model + residual     :class:`PhysicsResidual`               hard
==============  =========================  =====================================  ======
"""

from .augment import Augmentation, AugmentedLoss
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
    """``"inductive (hard)"``-style label of a bias object, or ``"none"`` for a plain model."""
    kind = getattr(bias, "kind", None)
    if kind is None:
        return "none"
    return f"{kind} ({'hard' if bias.hard else 'soft'})"


__all__ = [
    "ImageSymmetry",
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
    "Scaling",
    "SymmetryPenalty",
    "Symmetrized",
    "Transformations",
    "describe",
]
