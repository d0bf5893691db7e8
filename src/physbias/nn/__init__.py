"""Layers and architectures."""

from .outputs import (
    ExpMapRotation,
    GramSchmidtRotation,
    PositiveOutput,
    RawMatrix,
    SPDMatrixOutput,
    gram_schmidt_rotation,
    hat,
    so3_exp,
)

__all__ = [
    "ExpMapRotation",
    "GramSchmidtRotation",
    "PositiveOutput",
    "RawMatrix",
    "SPDMatrixOutput",
    "gram_schmidt_rotation",
    "hat",
    "so3_exp",
]
