"""Layers and architectures: valid-by-construction outputs, the equivariant MLP and residual
pathway priors, group convolutions for images, sets and graphs."""

from .._activations import softplus, softplus_one_exp
from .._mlp import mlp_curvature, supports_mlp_curvature
from .emlp import (
    EMLP,
    EMLPBlock,
    EquivariantLinear,
    GatedNonlinearity,
    InvariantScalar,
    TensorProductBilinear,
    gated,
    hamiltonian_emlp,
    uniform_rep,
)
from .gcnn import CNN, P4CNN, GroupConv, LiftingConv, group_pool, transform_image
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
from .rpp import ResidualPathway, RPPPrior, flexible_fraction, rpp_emlp, rpp_penalty
from .sets import DeepSets, InteractionNetwork
from .standardized import Standardized

__all__ = [
    "CNN",
    "DeepSets",
    "EMLP",
    "EMLPBlock",
    "EquivariantLinear",
    "GatedNonlinearity",
    "GroupConv",
    "InteractionNetwork",
    "InvariantScalar",
    "LiftingConv",
    "P4CNN",
    "ResidualPathway",
    "RPPPrior",
    "Standardized",
    "TensorProductBilinear",
    "flexible_fraction",
    "gated",
    "group_pool",
    "hamiltonian_emlp",
    "rpp_emlp",
    "rpp_penalty",
    "uniform_rep",
    "ExpMapRotation",
    "GramSchmidtRotation",
    "PositiveOutput",
    "RawMatrix",
    "SPDMatrixOutput",
    "gram_schmidt_rotation",
    "hat",
    "so3_exp",
    "softplus",
    "softplus_one_exp",
    "mlp_curvature",
    "supports_mlp_curvature",
    "transform_image",
]
