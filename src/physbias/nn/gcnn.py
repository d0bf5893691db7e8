"""Group-equivariant convolutions on images for the groups p4 and p4m (seed 000, Cohen & Welling 2016).

A plain convolution is equivariant to translations only. A *group convolution* also sums over the
rotated (and mirrored) copies of its filter, so rotating the input image by 90 degrees rotates the
feature maps and cyclically permutes them along a new *group axis*:

.. math:: [f \\star \\psi](g) = \\sum_{h \\in H} \\sum_{x \\in \\mathbb{Z}^2}
          f(h, x)\\, \\psi(g^{-1} h, g^{-1} x)

Point groups ``H`` (the rotations/mirrors about a pixel-grid centre; they act on grids exactly, and
``|H|`` below is their order, not to be confused with the image height ``H``):

* ``"p4"``: the 4 rotations by multiples of 90 degrees, ``|H| = 4``;
* ``"p4m"``: rotations and mirror images, ``|H| = 8``.

The element with index ``4 m + r`` (``m`` in {0, 1}, ``r`` in {0, 1, 2, 3}) acts on an image as
"mirror ``m`` times (``jnp.flip`` of the last axis), then rotate ``r`` times (``jnp.rot90`` on the last
two axes)"; on group feature maps ``F`` of shape ``(C, |H|, H, W)`` it acts as
``(u F)[g] = u(F[u^{-1} g])`` (for p4: rotate every map and roll the group axis by ``r``).

Shapes (one unbatched example, like ``equinox.nn.Conv2d``; use ``jax.vmap`` for batches):

* :class:`LiftingConv`: image ``(C_in, H, W)`` -> group maps ``(C_out, |H|, H, W)``;
* :class:`GroupConv`: group maps ``(C_in, |H|, H, W)`` -> group maps ``(C_out, |H|, H, W)``;
* :func:`group_pool`: group maps ``(C, |H|, H, W)`` -> invariant maps ``(C, H, W)``;
* :class:`P4CNN`, :class:`CNN`: image ``(C_in, H, W)`` -> logits ``(n_classes,)``.

Kernels have odd size, stride 1 and 'SAME' zero padding, so the equivariance is exact (up to
float rounding) for images of any size; there is no strided down-sampling, which would break it.

Reference: T. Cohen and M. Welling, "Group Equivariant Convolutional Networks", ICML 2016.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..groups.lattice import (
    _tables,
    group_order,
    lattice_group,
    transform_group_maps,
    transform_image,
)


def _group_name(group) -> str:
    return lattice_group(group).name


def _check_shape(x, ndim: int, expected: str, who: str, *, channels: int | None = None, group_axis=None):
    shape = getattr(x, "shape", None)
    ok = shape is not None and len(shape) == ndim
    ok = ok and (channels is None or shape[0] == channels) and (group_axis is None or shape[1] == group_axis)
    if not ok:
        raise ValueError(f"{who}: input must have shape {expected}, got {shape}")


def _check_kernel(kernel_size: int) -> None:
    if not isinstance(kernel_size, (int, np.integer)) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"`kernel_size` must be an odd positive integer, got {kernel_size!r}")


def _he_uniform(key: PRNGKeyArray, shape: tuple[int, ...], fan_in: int) -> Array:
    """He initialisation for ReLU networks: uniform with variance ``2 / fan_in`` (He et al., 2015)."""
    lim = math.sqrt(6.0 / fan_in)
    # A flat draw reshaped: XLA compiles the sampler per shape, and 1-D shapes compile fastest.
    return jax.random.uniform(key, (math.prod(shape),), minval=-lim, maxval=lim).reshape(shape)


def correlate2d(x: Float[Array, "c h w"], kernel: Float[Array, "o c kh kw"]) -> Float[Array, "o h w"]:
    """Cross-correlation of one multi-channel image with stride 1 and 'SAME' zero padding.

    .. math:: y_o(p) = \\sum_c \\sum_{d} x_c(p + d)\\, \\psi_{oc}(d), \\qquad d \\in
              [-k_h/2, k_h/2] \\times [-k_w/2, k_w/2]

    Numerically equal to ``jax.lax.conv_general_dilated(x[None], kernel, (1, 1), "SAME")[0]``
    (odd kernels). It is computed as ``kh * kw`` shifted slices and one ``einsum`` because XLA:CPU
    runs ``conv_general_dilated`` inside ``lax.scan`` loops (as :func:`physbias.train.fit` uses)
    about 20 times slower than outside them; slices and a matrix product do not slow down.

    Raises:
        ValueError: wrong ranks, mismatched channels or an even kernel size.
    """
    if x.ndim != 3 or kernel.ndim != 4 or kernel.shape[1] != x.shape[0]:
        raise ValueError(
            f"correlate2d: expected x (C, H, W) and kernel (O, C, kh, kw), got {x.shape} and {kernel.shape}"
        )
    o, c, kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"correlate2d: kernel sizes must be odd for 'SAME' padding, got {(kh, kw)}")
    h, w = x.shape[1:]
    padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2)))
    patches = jnp.stack([padded[:, i : i + h, j : j + w] for i in range(kh) for j in range(kw)], axis=1)
    return jnp.einsum("ckhw,ock->ohw", patches, kernel.reshape(o, c, kh * kw))


class LiftingConv(eqx.Module):
    """Lift an image on Z^2 to feature maps on the group p4 or p4m.

    .. math:: [f \\star \\psi](g) = \\sum_{x \\in \\mathbb{Z}^2} \\sum_k f_k(x)\\, \\psi_k(g^{-1} x)

    One filter per (output, input) channel pair, correlated with the image in each of its ``|H|``
    transformed copies. Equivariance: ``lift(u x) = u lift(x)`` with the group-map action of
    :func:`transform_group_maps`.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd filter size.
        group: ``"p4"``, ``"p4m"`` or a :class:`~physbias.groups.LatticeGroup`.
        use_bias: one bias per output channel, shared over the group axis.
        key: PRNG key (He-uniform weights; biases start at zero).

    Input ``(in_channels, H, W)``; output ``(out_channels, |H|, H, W)``.

    Raises:
        ValueError: unknown ``group``, even ``kernel_size``, or (when called) a wrong input shape.

    Example:
        >>> import jax
        >>> lift = LiftingConv(1, 2, 3, group="p4", key=jax.random.key(0))
        >>> lift(jax.numpy.ones((1, 8, 8))).shape
        (2, 4, 8, 8)
    """

    weight: Float[Array, "o i k k"]
    bias: Float[Array, "o 1 1 1"] | None
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    group: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        group: str = "p4",
        use_bias: bool = True,
        key: PRNGKeyArray,
    ):
        group = _group_name(group)
        _check_kernel(kernel_size)
        fan_in = in_channels * kernel_size**2
        self.weight = _he_uniform(key, (out_channels, in_channels, kernel_size, kernel_size), fan_in)
        self.bias = jnp.zeros((out_channels, 1, 1, 1)) if use_bias else None
        self.in_channels, self.out_channels, self.group = in_channels, out_channels, group

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, "o g h w"]:
        _check_shape(x, 3, f"({self.in_channels}, H, W)", "LiftingConv", channels=self.in_channels)
        n = group_order(self.group)
        # Filters psi(g^{-1} x) for every g, stacked as output channels (o, g).
        kernel = jnp.stack([transform_image(self.weight, g, self.group) for g in range(n)], axis=1)
        out = correlate2d(x, kernel.reshape(self.out_channels * n, *kernel.shape[2:]))
        out = out.reshape(self.out_channels, n, *out.shape[1:])
        return out if self.bias is None else out + self.bias


class GroupConv(eqx.Module):
    """Group convolution from feature maps on p4 (or p4m) to feature maps on the same group.

    .. math:: [f \\star \\psi](g) = \\sum_{h \\in H} \\sum_{x \\in \\mathbb{Z}^2} \\sum_k
              f_k(h, x)\\, \\psi_k(g^{-1} h, g^{-1} x)

    For each output element ``g`` the filter ``psi`` of shape ``(C_out, C_in, |H|, k, k)`` is
    spatially transformed by ``g`` *and* re-indexed along its group axis (``h -> g^{-1} h``: a cyclic
    shift for the rotations of p4; for p4m mirrors also swap the two cosets). All ``|H|`` filters
    become one ordinary convolution with ``C_in |H|`` input and ``C_out |H|`` output channels.

    Args:
        in_channels, out_channels: channel counts (per group element).
        kernel_size: odd filter size.
        group: ``"p4"``, ``"p4m"`` or a :class:`~physbias.groups.LatticeGroup`.
        use_bias: one bias per output channel, shared over the group axis.
        key: PRNG key (He-uniform weights with fan-in ``in_channels |H| k^2``; biases start at zero).

    Input ``(in_channels, |H|, H, W)``; output ``(out_channels, |H|, H, W)``.

    Raises:
        ValueError: unknown ``group``, even ``kernel_size``, or (when called) a wrong input shape.

    Example:
        >>> import jax
        >>> conv = GroupConv(2, 3, 3, group="p4m", key=jax.random.key(0))
        >>> conv(jax.numpy.ones((2, 8, 5, 5))).shape
        (3, 8, 5, 5)
    """

    weight: Float[Array, "o i g k k"]
    bias: Float[Array, "o 1 1 1"] | None
    in_channels: int = eqx.field(static=True)
    out_channels: int = eqx.field(static=True)
    group: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        group: str = "p4",
        use_bias: bool = True,
        key: PRNGKeyArray,
    ):
        group = _group_name(group)
        n = group_order(group)
        _check_kernel(kernel_size)
        fan_in = in_channels * n * kernel_size**2
        shape = (out_channels, in_channels, n, kernel_size, kernel_size)
        self.weight = _he_uniform(key, shape, fan_in)
        self.bias = jnp.zeros((out_channels, 1, 1, 1)) if use_bias else None
        self.in_channels, self.out_channels, self.group = in_channels, out_channels, group

    def __call__(self, x: Float[Array, "c g h w"]) -> Float[Array, "o g h w"]:
        n = group_order(self.group)
        expected = f"({self.in_channels}, {n}, H, W)"
        _check_shape(x, 4, expected, "GroupConv", channels=self.in_channels, group_axis=n)
        _, mul, inv = _tables(self.group)
        # Output g uses psi(g^{-1} h, g^{-1} x): permute the filter's group axis, then transform space.
        filters = [transform_image(self.weight[:, :, mul[inv[g]]], g, self.group) for g in range(n)]
        kernel = jnp.stack(filters, axis=1)  # (o, g_out, i, h_in, k, k)
        kernel = kernel.reshape(self.out_channels * n, self.in_channels * n, *kernel.shape[-2:])
        out = correlate2d(x.reshape(self.in_channels * n, *x.shape[2:]), kernel)
        out = out.reshape(self.out_channels, n, *out.shape[1:])
        return out if self.bias is None else out + self.bias


def group_pool(x: Float[Array, "c g h w"], mode: str = "max") -> Float[Array, "c h w"]:
    """Pool group maps over the group axis: the result transforms like an image (invariant channels).

    ``max`` or ``mean`` over ``g`` of ``x[:, g]``; since the group action only permutes that axis
    (and moves pixels), pooled maps satisfy ``pool(u f) = u(pool(f))``.

    Raises:
        ValueError: ``x`` not of shape ``(C, |H|, H, W)`` or unknown ``mode``.
    """
    _check_shape(x, 4, "(C, |H|, H, W)", "group_pool")
    if mode == "max":
        return jnp.max(x, axis=1)
    if mode == "mean":
        return jnp.mean(x, axis=1)
    raise ValueError(f"`mode` must be 'max' or 'mean', got {mode!r}")


class P4CNN(eqx.Module):
    """Image classifier exactly invariant to 90-degree rotations (and mirrors for ``group="p4m"``).

    Lifting convolution -> ReLU -> ``depth`` x (:class:`GroupConv` -> ReLU) -> :func:`group_pool`
    -> global spatial mean -> linear head. Every layer before the pooling is equivariant and both
    poolings are invariant, so ``model(u x) == model(x)`` for every group element ``u``.

    Args:
        in_channels: image channels.
        n_classes: number of logits.
        width: channels per group element of every hidden layer.
        depth: number of group convolutions after the lifting layer (>= 0).
        kernel_size: odd filter size.
        group: ``"p4"``, ``"p4m"`` or a :class:`~physbias.groups.LatticeGroup`.
        pool: group pooling, ``"max"`` or ``"mean"``.
        key: PRNG key.

    Input ``(in_channels, H, W)``; output ``(n_classes,)``.

    Raises:
        ValueError: unknown ``group`` or ``pool``, bad sizes, or (when called) a wrong input shape.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> model = P4CNN(1, 10, width=4, depth=1, key=jax.random.key(0))
        >>> x = jax.random.normal(jax.random.key(1), (1, 8, 8))
        >>> bool(jnp.allclose(model(x), model(jnp.rot90(x, 1, axes=(-2, -1))), atol=1e-5))
        True
    """

    lift: LiftingConv
    convs: tuple[GroupConv, ...]
    head: eqx.nn.Linear
    pool: str = eqx.field(static=True)

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        width: int = 8,
        depth: int = 2,
        kernel_size: int = 3,
        *,
        group: str = "p4",
        pool: str = "max",
        key: PRNGKeyArray,
    ):
        group = _group_name(group)
        _check_sizes(in_channels=in_channels, n_classes=n_classes, width=width, depth=depth)
        if pool not in ("max", "mean"):
            raise ValueError(f"`pool` must be 'max' or 'mean', got {pool!r}")
        keys = jax.random.split(key, depth + 2)
        self.lift = LiftingConv(in_channels, width, kernel_size, group=group, key=keys[0])
        self.convs = tuple(GroupConv(width, width, kernel_size, group=group, key=k) for k in keys[1:-1])
        self.head = eqx.nn.Linear(width, n_classes, key=keys[-1])
        self.pool = pool

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, " n_classes"]:
        h = jax.nn.relu(self.lift(x))
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        features = jnp.mean(group_pool(h, self.pool), axis=(-2, -1))
        return self.head(features)


class Conv2d(eqx.Module):
    """Plain 2-D convolution layer (cross-correlation, stride 1, 'SAME' padding) via :func:`correlate2d`.

    Like ``equinox.nn.Conv2d(..., padding="SAME")``, but fast inside ``lax.scan`` training loops on
    CPU; initialised like the group layers (He-uniform weights, zero bias).
    Input ``(in_channels, H, W)``; output ``(out_channels, H, W)``.

    Raises:
        ValueError: even ``kernel_size`` or (when called) a wrong input shape.
    """

    weight: Float[Array, "o i k k"]
    bias: Float[Array, "o 1 1"] | None
    in_channels: int = eqx.field(static=True)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, *, use_bias: bool = True, key
    ):
        _check_kernel(kernel_size)
        fan_in = in_channels * kernel_size**2
        self.weight = _he_uniform(key, (out_channels, in_channels, kernel_size, kernel_size), fan_in)
        self.bias = jnp.zeros((out_channels, 1, 1)) if use_bias else None
        self.in_channels = in_channels

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, "o h w"]:
        _check_shape(x, 3, f"({self.in_channels}, H, W)", "Conv2d", channels=self.in_channels)
        out = correlate2d(x, self.weight)
        return out if self.bias is None else out + self.bias


class CNN(eqx.Module):
    """Plain convolutional classifier with the same layout as :class:`P4CNN` (the baseline).

    ``depth + 1`` x (:class:`Conv2d` -> ReLU) -> global spatial mean -> linear head. Equivariant to
    translations only, so not invariant to rotations. With ``width = 2 w`` it has about the
    parameters of a p4 :class:`P4CNN` of width ``w`` (a p4 filter has 4 times the entries of a
    plain one; a plain layer of twice the width has 4 times the channel pairs).

    Input ``(in_channels, H, W)``; output ``(n_classes,)``.

    Raises:
        ValueError: bad sizes, even ``kernel_size`` or (when called) a wrong input shape.

    Example:
        >>> import jax
        >>> CNN(1, 10, width=8, depth=1, key=jax.random.key(0))(jax.numpy.ones((1, 8, 8))).shape
        (10,)
    """

    convs: tuple[Conv2d, ...]
    head: eqx.nn.Linear

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        width: int = 16,
        depth: int = 2,
        kernel_size: int = 3,
        *,
        key: PRNGKeyArray,
    ):
        _check_sizes(in_channels=in_channels, n_classes=n_classes, width=width, depth=depth)
        keys = jax.random.split(key, depth + 2)
        sizes = [in_channels] + [width] * (depth + 1)
        self.convs = tuple(
            Conv2d(a, b, kernel_size, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys[:-1], strict=True)
        )
        self.head = eqx.nn.Linear(width, n_classes, key=keys[-1])

    def __call__(self, x: Float[Array, "c h w"]) -> Float[Array, " n_classes"]:
        h = x
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        return self.head(jnp.mean(h, axis=(-2, -1)))


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        low = 0 if name == "depth" else 1
        if not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}, got {value!r}")


__all__ = [
    "CNN",
    "Conv2d",
    "GroupConv",
    "LiftingConv",
    "P4CNN",
    "correlate2d",
    "group_order",
    "group_pool",
    "transform_group_maps",
    "transform_image",
]
