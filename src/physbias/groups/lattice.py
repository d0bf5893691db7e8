"""The point groups of the square lattice, p4 and p4m, as data (Cohen & Welling 2016).

``p4`` is the 4 rotations by multiples of 90 degrees about a pixel-grid centre, ``p4m`` adds the
mirror images (order 8). They act on images exactly (no interpolation). The element with index
``4 m + r`` (``m`` in {0, 1}, ``r`` in {0, 1, 2, 3}) acts on an image as "mirror ``m`` times
(``jnp.flip`` of the last axis), then rotate ``r`` times (``jnp.rot90`` on the last two axes)"; on
group feature maps ``F`` of shape ``(C, |H|, H, W)`` as ``(u F)[g] = u(F[u^{-1} g])``.

A :class:`LatticeGroup` is accepted wherever a lattice group is (``P4CNN(group=...)``,
``physbias.bias.ImageSymmetry``); the strings ``"p4"`` and ``"p4m"`` name the same groups.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

_GROUPS = ("p4", "p4m")


class LatticeGroup(eqx.Module):
    """A point group of the square lattice: ``LatticeGroup("p4")`` or ``LatticeGroup("p4m")``.

    Example:
        >>> g = LatticeGroup("p4m")
        >>> g.order, g.elements[5]
        (8, (1, 1))
    """

    name: str = eqx.field(static=True)

    def __check_init__(self):
        _check_group(self.name)

    @property
    def order(self) -> int:
        """Number of elements: 4 for p4, 8 for p4m."""
        return 4 if self.name == "p4" else 8

    @property
    def elements(self) -> tuple[tuple[int, int], ...]:
        """The elements ``(m, r)`` in index order ``4 m + r`` (the identity first)."""
        return _tables(self.name)[0]

    @property
    def multiplication_table(self) -> np.ndarray:
        """``mul[a, b]``: the index of the product of elements ``a`` and ``b``."""
        return _tables(self.name)[1]

    @property
    def inverses(self) -> np.ndarray:
        """``inv[a]``: the index of the inverse of element ``a``."""
        return _tables(self.name)[2]

    def act_on_image(self, x: Array, element: int) -> Array:
        """Element ``element`` acting on the last two (spatial) axes of ``x``."""
        return transform_image(x, element, self.name)

    def __repr__(self) -> str:
        return self.name


def lattice_group(group) -> LatticeGroup:
    """``group`` as a :class:`LatticeGroup` (it may be one, or the name ``"p4"`` / ``"p4m"``).

    Raises:
        ValueError: an unknown name; TypeError: any other type.
    """
    if isinstance(group, LatticeGroup):
        return group
    if isinstance(group, str):
        return LatticeGroup(_check_group(group))
    raise TypeError(f"`group` must be 'p4', 'p4m' or a LatticeGroup, got {type(group).__name__}")


def _check_group(group: str) -> str:
    if isinstance(group, LatticeGroup):
        return group.name
    if group not in _GROUPS:
        raise ValueError(f"`group` must be one of {_GROUPS}, got {group!r}")
    return group


def group_order(group) -> int:
    """Number of elements of the point group: 4 for ``"p4"``, 8 for ``"p4m"``."""
    return 4 if _check_group(group) == "p4" else 8


@functools.cache
def _tables(group: str) -> tuple[tuple[tuple[int, int], ...], np.ndarray, np.ndarray]:
    """Elements ``(m, r)``, multiplication table ``mul[a, b] = index(a b)`` and ``inv[a]``.

    ``(m1, r1)(m2, r2) = (m1 xor m2, r1 + (-1)^m1 r2 mod 4)`` because a mirror conjugates a
    rotation into its inverse.
    """
    elements = tuple((m, r) for m in range(group_order(group) // 4) for r in range(4))
    index = {e: i for i, e in enumerate(elements)}
    mul = np.array(
        [[index[(m1 ^ m2, (r1 + (-r2 if m1 else r2)) % 4)] for (m2, r2) in elements] for (m1, r1) in elements]
    )
    identity = index[(0, 0)]
    inv = np.array([int(np.flatnonzero(row == identity)[0]) for row in mul])
    mul.setflags(write=False)
    inv.setflags(write=False)
    return elements, mul, inv


def _check_element(element: int, group: str) -> None:
    n = group_order(group)
    if not isinstance(element, (int, np.integer)) or not 0 <= element < n:
        raise ValueError(f"`element` must be an integer in [0, {n}) for group {group!r}, got {element!r}")


def transform_image(x: Array, element: int, group="p4") -> Array:
    """Act with group element ``element`` (index ``4 m + r``) on the last two (spatial) axes of ``x``.

    Mirror (``jnp.flip`` of the last axis) ``m`` times, then rotate by ``r`` quarter turns.

    Raises:
        ValueError: unknown ``group`` or ``element`` out of range.
    """
    group = _check_group(group)
    _check_element(element, group)
    m, r = _tables(group)[0][element]
    if m:
        x = jnp.flip(x, axis=-1)
    return jnp.rot90(x, r, axes=(-2, -1))


def transform_group_maps(f: Float[Array, "c g h w"], element: int, group="p4") -> Array:
    """The action ``(u f)[g] = u(f[u^{-1} g])`` of ``u = element`` on group maps ``(C, |H|, H, W)``.

    For p4 this is "rotate every map by ``r`` quarter turns and roll the group axis by ``r``".

    Raises:
        ValueError: unknown ``group``, ``element`` out of range or a wrong shape.
    """
    group = _check_group(group)
    n = group_order(group)
    _check_element(element, group)
    _check_shape(f, 4, f"(C, {n}, H, W)", "transform_group_maps", group_axis=n)
    _, mul, inv = _tables(group)
    perm = mul[inv[element]]  # perm[g] = index(u^{-1} g)
    return transform_image(f[:, perm], element, group)


def _check_shape(x, ndim: int, expected: str, who: str, *, group_axis=None):
    shape = getattr(x, "shape", None)
    ok = shape is not None and len(shape) == ndim and (group_axis is None or shape[1] == group_axis)
    if not ok:
        raise ValueError(f"{who}: input must have shape {expected}, got {shape}")
