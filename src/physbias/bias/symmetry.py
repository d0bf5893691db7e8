"""Symmetries described once: a group of transformations of the input with the matching
transformation of the output, ``(x, y) -> (g.x, rho(g) y)``.

Every bias mechanism (augmentation, penalty, symmetrisation, canonicalisation) takes one of these.
A symmetry acts on *one* example (no batch axis); batching is the caller's ``jax.vmap``.

Built-ins:

* :class:`Permutation` ``(n)`` - permute the first axis of ``x``; ``y`` invariant (or permuted too).
* :class:`Parity` - ``x -> -x`` with ``y -> -y`` (odd) or ``y -> y`` (even).
* :class:`Scaling` ``(low, high, degree)`` - ``x -> s x`` with ``y -> s**degree y``, ``s`` in ``(low, high)``.
* :class:`Transformations` - any finite list of user functions.
* ``A * B`` - the direct product (:class:`ProductSymmetry`).
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

Element = Any
"""A group element: a pytree of arrays (a permutation index array, a sign, a scale, ...)."""

_MAX_ELEMENTS = 50_000


class AbstractSymmetry(eqx.Module):
    """Contract for a group ``G`` acting on inputs and outputs.

    Subclasses give ``act_input(g, x)``, ``act_output(g, y)``, ``act_output_inverse(g, y)`` and
    ``sample(key)``. Finite groups also give ``elements()`` (identity first) and set
    ``is_finite = True``. ``canonicalize(x)`` is optional: it returns ``(x_c, g)`` with
    ``act_input(g, x_c) == x`` and ``x_c`` the same for every point of the orbit of ``x``.
    """

    is_finite: ClassVar[bool] = False

    @abc.abstractmethod
    def act_input(self, g: Element, x: Array) -> Array:
        """``g . x`` for one example ``x``."""

    @abc.abstractmethod
    def act_output(self, g: Element, y: Array) -> Array:
        """``rho(g) y`` for one output ``y``."""

    @abc.abstractmethod
    def act_output_inverse(self, g: Element, y: Array) -> Array:
        """``rho(g)^{-1} y``."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray) -> Element:
        """One random element (uniform for finite groups)."""

    def sample_batch(self, key: PRNGKeyArray, n: int) -> Element:
        """``n`` independent random elements stacked along a leading axis."""
        return jax.vmap(self.sample)(jax.random.split(key, n))

    def elements(self) -> Element:
        """All elements stacked along a leading axis, the identity first (finite groups only)."""
        raise TypeError(
            f"{type(self).__name__} is a continuous symmetry and has no finite list of elements; "
            "use sampling (augmentation/penalty) or Canonicalized instead of group averaging"
        )

    def canonicalize(self, x: Array) -> tuple[Array, Element]:
        raise TypeError(f"{type(self).__name__} has no canonicalisation")

    @property
    def order(self) -> int:
        """Number of elements of a finite group."""
        return int(jax.tree_util.tree_leaves(self.elements())[0].shape[0])

    def __mul__(self, other: AbstractSymmetry) -> ProductSymmetry:
        if not isinstance(other, AbstractSymmetry):
            return NotImplemented
        return ProductSymmetry(self, other)

    def check(self, x_example, y_example) -> None:
        """Raise ``ValueError`` unless the transformations keep the shapes of ``x`` and ``y``.

        ``x_example``/``y_example`` are one example each (arrays or ``jax.ShapeDtypeStruct``).
        """
        x = jax.ShapeDtypeStruct(jnp.shape(x_example), jnp.result_type(x_example))
        y = jax.ShapeDtypeStruct(jnp.shape(y_example), jnp.result_type(y_example))
        g = jax.eval_shape(self.sample, jax.random.key(0))
        try:
            gx = jax.eval_shape(self.act_input, g, x)
            gy = jax.eval_shape(self.act_output, g, y)
        except Exception as exc:  # noqa: BLE001 - re-raised with context
            raise ValueError(
                f"{self!r} cannot act on an input of shape {x.shape} and an output of shape {y.shape}: {exc}"
            ) from exc
        if gx.shape != x.shape:
            raise ValueError(
                f"{self!r} maps an input of shape {x.shape} to shape {gx.shape}; a symmetry "
                "transformation must keep the input's shape"
            )
        if gy.shape != y.shape:
            raise ValueError(
                f"{self!r} maps an output of shape {y.shape} to shape {gy.shape}; a symmetry "
                "transformation must keep the output's shape"
            )


def as_symmetry(value, owner: str = "physbias") -> AbstractSymmetry:
    """``value`` as an :class:`AbstractSymmetry`, the one interface every bias mechanism and metric
    accepts.

    A symmetry is returned as it is; a lattice group of :mod:`physbias.groups` (a
    :class:`~physbias.groups.LatticeGroup` or the name ``"p4"``/``"p4m"``) becomes the
    :class:`ImageSymmetry` acting on images with invariant outputs. A matrix
    :class:`~physbias.groups.Group` acts through representations, which must be named:
    ``MatrixSymmetry(G, rep_in, rep_out)``.

    Raises:
        TypeError: naming ``owner`` and what was expected.
    """
    if isinstance(value, AbstractSymmetry):
        return value
    from ..groups import Group, LatticeGroup

    if isinstance(value, LatticeGroup) or (isinstance(value, str) and value in ("p4", "p4m")):
        return ImageSymmetry(value)
    if isinstance(value, Group):
        raise TypeError(
            f"{owner}: the matrix group {value!r} acts through representations; pass "
            f"MatrixSymmetry(G, rep_in, rep_out) to say how it acts on inputs and outputs"
        )
    raise TypeError(
        f"{owner}: expected a symmetry (Permutation, Parity, Scaling, Transformations, MatrixSymmetry, "
        f"ImageSymmetry, a LatticeGroup or 'p4'/'p4m'), got {type(value).__name__}"
    )


def require_symmetry(value, owner: str) -> AbstractSymmetry:
    """:func:`as_symmetry` (kept for the mechanisms' constructors)."""
    return as_symmetry(value, owner)


def non_identity_elements(symmetry: AbstractSymmetry) -> Element:
    """``symmetry.elements()`` without its first (identity) element."""
    return jax.tree_util.tree_map(lambda a: a[1:], symmetry.elements())


class Permutation(AbstractSymmetry):
    """The symmetric group S(n) permuting the first axis of ``x`` (e.g. the edges of a triangle,
    the particles of a system).

    Args:
        n: number of permuted entries.
        equivariant: if True the output's first axis is permuted too; otherwise (default) the
            output is invariant.

    Elements are index arrays ``g`` of shape ``(n,)`` with ``g . x = x[g]``.
    """

    n: int = eqx.field(static=True)
    equivariant: bool = eqx.field(static=True, default=False)
    is_finite: ClassVar[bool] = True

    def __check_init__(self):
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"Permutation: `n` must be a positive integer, got {self.n!r}")

    def act_input(self, g, x):
        return x[g]

    def act_output(self, g, y):
        return y[g] if self.equivariant else y

    def act_output_inverse(self, g, y):
        return y[jnp.argsort(g)] if self.equivariant else y

    def sample(self, key):
        return jax.random.permutation(key, self.n)

    def elements(self):
        if math.factorial(self.n) > _MAX_ELEMENTS:
            raise ValueError(
                f"Permutation({self.n}) has {math.factorial(self.n)} elements, too many to list; "
                "use Canonicalized (sorting) or sampled penalties instead"
            )
        return jnp.asarray(np.array(list(itertools.permutations(range(self.n)))), dtype=jnp.int32)

    def canonicalize(self, x):
        # Sort high to low by the first feature; x = x_c[inverse(order)].
        key = x if x.ndim == 1 else x[:, 0]
        order = jnp.argsort(-key, stable=True)
        return x[order], jnp.argsort(order)


class Parity(AbstractSymmetry):
    """Z2 acting by ``x -> -x`` and ``y -> -y`` (``odd=True``) or ``y -> y`` (``odd=False``).

    Elements are signs ``+1.0`` and ``-1.0``.
    """

    odd: bool = eqx.field(static=True, default=True)
    is_finite: ClassVar[bool] = True

    def act_input(self, g, x):
        return g * x

    def act_output(self, g, y):
        return g * y if self.odd else y

    def act_output_inverse(self, g, y):
        return self.act_output(g, y)  # every element is its own inverse

    def sample(self, key):
        return jnp.where(jax.random.bernoulli(key), 1.0, -1.0)

    def elements(self):
        return jnp.array([1.0, -1.0])

    def canonicalize(self, x):
        # The sign of the first non-zero entry becomes +1.
        flat = jnp.ravel(x)
        first = flat[jnp.argmax(flat != 0)]
        s = jnp.where(first < 0, -1.0, 1.0).astype(x.dtype)
        return s * x, s


class Scaling(AbstractSymmetry):
    """Positive scalings ``x -> s x``, ``y -> s**degree y`` with ``s`` drawn uniformly from
    ``(low, high)`` when sampled (e.g. lengths -> area has ``degree=2``).

    ``canonicalize`` divides by the ``norm`` of ``x`` (``"l1"``: sum of absolute values, which is
    the perimeter for triangle edges; ``"l2"``: Euclidean norm).
    """

    low: float = eqx.field(static=True, default=0.5)
    high: float = eqx.field(static=True, default=2.0)
    degree: float = eqx.field(static=True, default=1.0)
    norm: str = eqx.field(static=True, default="l1")

    def __check_init__(self):
        if not (0 < self.low <= self.high) or not math.isfinite(self.high):
            raise ValueError(f"Scaling: need 0 < low <= high < inf, got low={self.low!r}, high={self.high!r}")
        if self.norm not in ("l1", "l2"):
            raise ValueError(f"Scaling: `norm` must be 'l1' or 'l2', got {self.norm!r}")

    def act_input(self, g, x):
        return g * x

    def act_output(self, g, y):
        return g**self.degree * y

    def act_output_inverse(self, g, y):
        return y / g**self.degree

    def sample(self, key):
        return jax.random.uniform(key, minval=self.low, maxval=self.high)

    def canonicalize(self, x):
        s = jnp.sum(jnp.abs(x)) if self.norm == "l1" else jnp.sqrt(jnp.sum(x * x))
        s = jnp.where(s > 0, s, jnp.ones_like(s))
        return x / s, s


class Transformations(AbstractSymmetry):
    """A finite symmetry given as lists of functions.

    Args:
        inputs: ``[x -> g_i . x]``; the first must be the identity.
        outputs: ``[y -> rho(g_i) y]``; None means the output is invariant.
        output_inverses: ``[y -> rho(g_i)^{-1} y]``; needed for group averaging when ``outputs``
            is given. Defaults to ``outputs`` (every transformation its own inverse).

    Example:
        >>> swap = Transformations(inputs=[lambda x: x, lambda x: x[::-1]])
        >>> swap.order
        2
    """

    inputs: tuple[Callable, ...] = eqx.field(static=True)
    outputs: tuple[Callable, ...] | None = eqx.field(static=True, default=None)
    output_inverses: tuple[Callable, ...] | None = eqx.field(static=True, default=None)
    is_finite: ClassVar[bool] = True

    def __init__(
        self,
        inputs: Sequence[Callable],
        outputs: Sequence[Callable] | None = None,
        output_inverses: Sequence[Callable] | None = None,
    ):
        self.inputs = tuple(inputs)
        self.outputs = None if outputs is None else tuple(outputs)
        self.output_inverses = self.outputs if output_inverses is None else tuple(output_inverses)
        if not self.inputs or not all(callable(f) for f in self.inputs):
            raise ValueError("Transformations: `inputs` must be a non-empty list of functions")
        for name, fns in (("outputs", self.outputs), ("output_inverses", self.output_inverses)):
            if fns is not None and len(fns) != len(self.inputs):
                raise ValueError(
                    f"Transformations: `{name}` has {len(fns)} functions but `inputs` has "
                    f"{len(self.inputs)}; give one per transformation"
                )

    def act_input(self, g, x):
        return jax.lax.switch(g, self.inputs, x)

    def act_output(self, g, y):
        return y if self.outputs is None else jax.lax.switch(g, self.outputs, y)

    def act_output_inverse(self, g, y):
        return y if self.output_inverses is None else jax.lax.switch(g, self.output_inverses, y)

    def sample(self, key):
        return jax.random.randint(key, (), 0, len(self.inputs))

    def sample_batch(self, key, n):
        return jax.random.randint(key, (n,), 0, len(self.inputs))

    def elements(self):
        return jnp.arange(len(self.inputs))

    def check(self, x_example, y_example) -> None:
        x_spec = jax.ShapeDtypeStruct(jnp.shape(x_example), jnp.result_type(x_example))
        y_spec = jax.ShapeDtypeStruct(jnp.shape(y_example), jnp.result_type(y_example))
        for side, fns, spec in (("input", self.inputs, x_spec), ("output", self.outputs, y_spec)):
            for i, fn in enumerate(fns or ()):
                shape = jax.eval_shape(fn, spec).shape
                if shape != spec.shape:
                    raise ValueError(
                        f"Transformations: {side} transformation {i} maps shape {spec.shape} to "
                        f"{shape}; a symmetry transformation must keep the {side}'s shape"
                    )
        # The identity-first convention is checked on a concrete probe of the input's shape, never on
        # the (possibly traced) data: the check then also works inside `jax.jit` and `fit`.
        probe = np.random.default_rng(0).standard_normal(x_spec.shape)
        with jax.ensure_compile_time_eval():
            moved = np.asarray(self.inputs[0](jnp.asarray(probe, jnp.result_type(float))), np.float64)
        if not np.allclose(moved, probe, rtol=1e-5, atol=1e-6):
            raise ValueError("Transformations: the first input transformation must be the identity")


class ProductSymmetry(AbstractSymmetry):
    """The direct product ``A * B``: elements ``(a, b)`` act as ``a . (b . x)``.

    The two actions are assumed to commute (true for permutations, parities and scalings).
    ``canonicalize`` canonicalises with respect to ``A`` first, then ``B`` - e.g.
    ``Permutation(3) * Scaling(...)`` sorts, then normalises.
    """

    first: AbstractSymmetry
    second: AbstractSymmetry

    @property
    def is_finite(self) -> bool:  # type: ignore[override]
        return self.first.is_finite and self.second.is_finite

    def act_input(self, g, x):
        return self.first.act_input(g[0], self.second.act_input(g[1], x))

    def act_output(self, g, y):
        return self.first.act_output(g[0], self.second.act_output(g[1], y))

    def act_output_inverse(self, g, y):
        return self.second.act_output_inverse(g[1], self.first.act_output_inverse(g[0], y))

    def sample(self, key):
        k1, k2 = jax.random.split(key)
        return (self.first.sample(k1), self.second.sample(k2))

    def elements(self):
        a, b = self.first.elements(), self.second.elements()
        na, nb = self.first.order, self.second.order
        rep_a = jax.tree_util.tree_map(lambda t: jnp.repeat(t, nb, axis=0), a)
        rep_b = jax.tree_util.tree_map(lambda t: jnp.tile(t, (na,) + (1,) * (t.ndim - 1)), b)
        return (rep_a, rep_b)

    def canonicalize(self, x):
        x1, ga = self.first.canonicalize(x)
        x2, gb = self.second.canonicalize(x1)
        return x2, (ga, gb)


class MatrixSymmetry(AbstractSymmetry):
    """A matrix group of :mod:`physbias.groups` acting through representations:
    ``x -> rho_in(g) x``, ``y -> rho_out(g) y`` on flat vectors.

    Finite groups (no Lie algebra, e.g. ``C(4)``, ``D(4)``, ``S(5)``) list all their elements, so
    they work with group averaging; continuous ones sample from a bank of ``n_samples`` elements
    drawn with ``seed`` (augmentation and penalties), or from the given ``elements`` (a sequence
    of group elements as ``G.sample`` returns them).

    Example:
        >>> from physbias.groups import S, V, Scalar
        >>> MatrixSymmetry(S(3), V, Scalar).order
        6
    """

    rho_in: Array
    rho_out: Array
    rho_out_inv: Array
    finite: bool = eqx.field(static=True)
    name: str = eqx.field(static=True)

    def __init__(self, G, rep_in, rep_out, *, n_samples: int = 4096, seed: int = 0, elements=None):
        from ..groups.groups import Group, finite_elements
        from ..groups.representations import Rep

        if not isinstance(G, Group):
            raise TypeError(f"MatrixSymmetry: `G` must be a physbias.groups Group, got {type(G).__name__}")
        for label, rep in (("rep_in", rep_in), ("rep_out", rep_out)):
            if not isinstance(rep, Rep):
                raise TypeError(f"MatrixSymmetry: `{label}` must be a Rep, got {type(rep).__name__}")
        self.finite = len(G.lie_algebra) == 0
        if elements is not None:  # a given bank of elements (matrices of G's defining rep)
            gs = list(elements)
            self.finite = False
        else:
            gs = finite_elements(G) if self.finite else G.sample(np.random.default_rng(seed), n_samples)
        rin = np.stack([rep_in.rho(G, g) for g in gs])
        rout = np.stack([rep_out.rho(G, g) for g in gs])
        self.rho_in = jnp.asarray(rin, jnp.float32)
        self.rho_out = jnp.asarray(rout, jnp.float32)
        self.rho_out_inv = jnp.asarray(np.linalg.inv(rout), jnp.float32)
        self.name = f"{G!r}: {rep_in!r} -> {rep_out!r}"

    @property
    def is_finite(self) -> bool:  # type: ignore[override]
        return self.finite

    def act_input(self, g, x):
        return jax.lax.stop_gradient(self.rho_in[g]).astype(x.dtype) @ x  # the input's precision

    def act_output(self, g, y):
        return jax.lax.stop_gradient(self.rho_out[g]).astype(y.dtype) @ y

    def act_output_inverse(self, g, y):
        return jax.lax.stop_gradient(self.rho_out_inv[g]).astype(y.dtype) @ y

    def sample(self, key):
        return jax.random.randint(key, (), 0, self.rho_in.shape[0])

    def sample_batch(self, key, n):
        return jax.random.randint(key, (n,), 0, self.rho_in.shape[0])

    def elements(self):
        if not self.finite:
            return super().elements()
        return jnp.arange(self.rho_in.shape[0])

    def __repr__(self):
        return f"MatrixSymmetry({self.name})"


class ImageSymmetry(AbstractSymmetry):
    """A lattice group (p4 or p4m) acting on images, outputs invariant (e.g. class logits).

    ``g . x`` is element ``g`` of the :class:`~physbias.groups.LatticeGroup` acting on the last two
    (spatial) axes of ``x`` (exact: quarter turns and mirrors permute pixels); ``rho(g) y = y``.

    Example:
        >>> import jax.numpy as jnp
        >>> s = ImageSymmetry("p4")
        >>> s.order, bool(jnp.all(s.act_input(1, jnp.eye(3)[None]) == jnp.rot90(jnp.eye(3))[None]))
        (4, True)
    """

    group: Any
    is_finite: ClassVar[bool] = True

    def __init__(self, group="p4"):
        from ..groups import lattice_group

        self.group = lattice_group(group)

    def act_input(self, g, x):
        from ..groups import transform_image

        name = self.group.name
        branches = [lambda x, e=e: transform_image(x, e, name) for e in range(self.group.order)]
        return jax.lax.switch(g, branches, x)

    def act_output(self, g, y):
        return y

    def act_output_inverse(self, g, y):
        return y

    def sample(self, key):
        return jax.random.randint(key, (), 0, self.group.order)

    def sample_batch(self, key, n):
        return jax.random.randint(key, (n,), 0, self.group.order)

    def elements(self):
        return jnp.arange(self.group.order)

    def __repr__(self):
        return f"ImageSymmetry({self.group.name})"
