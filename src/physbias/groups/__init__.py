"""Groups as data, representations and the equivariant-basis solver (M11, M12)."""

from .basis import cache_dir, constraint_matrix, equivariant_basis
from .groups import (
    GROUPS,
    SO,
    SU,
    Z2,
    C,
    D,
    Group,
    Lorentz,
    O,
    S,
    SO13p,
    Sp,
    U,
    direct_product,
    finite_elements,
    get_group,
)
from .measure import equivariance_error, lie_derivative
from .representations import Rep, Scalar, T, V

__all__ = [
    "C",
    "D",
    "GROUPS",
    "Group",
    "Lorentz",
    "O",
    "Rep",
    "S",
    "SO",
    "SO13p",
    "SU",
    "Scalar",
    "Sp",
    "T",
    "U",
    "V",
    "Z2",
    "cache_dir",
    "constraint_matrix",
    "direct_product",
    "equivariance_error",
    "equivariant_basis",
    "finite_elements",
    "get_group",
    "lie_derivative",
]
