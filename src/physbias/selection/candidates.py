"""Candidate biases for :mod:`physbias.selection`: what ``physbias select`` can compare, by name.

Regression (inputs -> outputs), for an input ``layout`` of ``n_groups`` groups of ``group_size``
numbers (``"3x2"``: three points in the plane; default: every input its own group):

===================  ==========================================================  ===========
name                 model                                                       applies
===================  ==========================================================  ===========
``none``             a plain MLP                                                 always
``parity-even``      ``f(-x) = f(x)``: group average over ``{x, -x}``            always
``parity-odd``       ``f(-x) = -f(x)``                                           always
``permutation``      invariant under permuting the groups: average over S(n)     ``n >= 2``
                     (sorting, :class:`~physbias.bias.Canonicalized`, for n > 4)
``rotation``         invariant under rotating every group alike, SO(2)/SO(3):    size 2 or 3,
                     an MLP of the invariants (:class:`~physbias.bias.RotationInvariant`)  one output
``scaling:DEGREE``   ``f(s x) = s^DEGREE f(x)``, ``s > 0``: canonicalised        named only
                     by ``|x|``
===================  ==========================================================  ===========

Appending ``:soft`` gives the soft version: for a finite group the half-way interpolation
``(1 - 1/2) f + 1/2 f_G`` (:class:`~physbias.bias.RelaxedSymmetrized`, seed 003); for rotations a
:class:`~physbias.bias.LearnedInvariance` whose extent is learned by the evidence.

Dynamics (trajectories): ``node`` (Neural ODE), ``node2`` (second-order NODE, any acceleration
``a(q, qdot)``: damping allowed), ``hnn`` (Hamiltonian network: energy conserved), ``noether``
(Noether's razor: a Hamiltonian network averaged over the flow of a learned quadratic conserved
quantity, :class:`~physbias.dynamics.SymmetrizedHamiltonianNN`), ``lnn`` (Lagrangian network,
states ``(q, qdot)``).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

from .._activations import softplus
from ..bias import (
    Canonicalized,
    LearnedInvariance,
    Parity,
    Permutation,
    RelaxedSymmetrized,
    RotationInvariant,
    Scaling,
    Symmetrized,
    rotation_invariant_count,
)
from ..dynamics import QuadraticConservedQuantities, SymmetrizedHamiltonianNN, build_model

REGRESSION_NAMES = ("none", "parity-even", "parity-odd", "permutation", "rotation", "scaling:DEGREE")
DYNAMICS_NAMES = ("node", "node2", "hnn", "noether", "lnn")
# Energy-conserving dynamics models (no dissipation is representable).
CONSERVATIVE = {"node": False, "node2": False, "hnn": True, "noether": True, "lnn": True}
NOETHER_SAMPLES = 8  # flow times in the symmetrised Hamiltonian's average
SOFT_STRENGTH = 0.5
PERMUTATION_AVERAGE_MAX = 4  # S(4) has 24 elements; more groups are sorted instead


@dataclasses.dataclass(frozen=True)
class Layout:
    """The input layout: ``n_groups`` groups of ``group_size`` consecutive inputs."""

    n_groups: int
    group_size: int

    @property
    def size(self) -> int:
        return self.n_groups * self.group_size

    @classmethod
    def parse(cls, text: str | None, n_inputs: int) -> Layout:
        """``"NxM"`` (N groups of M inputs), or None for ``n_inputs`` groups of one."""
        if text is None:
            return cls(n_inputs, 1)
        try:
            n, m = (int(v) for v in str(text).lower().split("x"))
        except ValueError:
            raise ValueError(
                f"--layout must look like NxM (e.g. 3x2: three 2-D vectors), got {text!r}"
            ) from None
        if n < 1 or m < 1:
            raise ValueError(f"--layout NxM needs positive N and M, got {text!r}")
        if n * m != n_inputs:
            raise ValueError(f"--layout {text} describes {n * m} inputs but the data have {n_inputs}")
        return cls(n, m)

    def __str__(self) -> str:
        return f"{self.n_groups}x{self.group_size}"


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One candidate bias: ``name`` (as typed), ``base`` (the name without ``:soft`` or degree),
    ``strength`` (``"none"``, ``"hard"`` or ``"soft"``) and a parameter (the scaling degree)."""

    name: str
    base: str
    strength: str
    degree: float | None = None

    @property
    def learned_extent(self) -> bool:
        """Trained with its invariance extent as an evidence hyperparameter."""
        return self.base == "rotation" and self.strength == "soft"


def parse_candidate(name: str) -> Candidate:
    """A :class:`Candidate` from its name; ``ValueError`` naming the valid names otherwise."""
    text = str(name).strip()
    soft = text.endswith(":soft")
    core = text[: -len(":soft")] if soft else text
    if core.startswith("scaling:"):
        try:
            degree = float(core.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"candidate {name!r}: scaling needs a numeric degree, e.g. scaling:2") from None
        if not math.isfinite(degree):
            raise ValueError(f"candidate {name!r}: the scaling degree must be finite")
        if soft:
            raise ValueError(f"candidate {name!r}: scaling has no soft version")
        return Candidate(text, "scaling", "hard", degree)
    if core in DYNAMICS_NAMES:
        if soft:
            raise ValueError(f"candidate {name!r}: dynamics candidates have no soft version")
        return Candidate(text, core, "hard" if CONSERVATIVE[core] else "none")
    if core not in ("none", "parity-even", "parity-odd", "permutation", "rotation") or (
        soft and core == "none"
    ):
        raise ValueError(
            f"unknown candidate {name!r}; valid names: {', '.join(REGRESSION_NAMES)} (append :soft for "
            f"the soft version) for regression, {', '.join(DYNAMICS_NAMES)} for dynamics"
        )
    return Candidate(text, core, "none" if core == "none" else "soft" if soft else "hard")


def propose_regression(layout: Layout, n_outputs: int, *, soft: bool = False) -> list[str]:
    """The candidates the library proposes for this layout (hard ones; with ``soft`` their soft
    versions too): none, both parities, permutations of >= 2 groups, rotations of 2-D/3-D groups
    for one output."""
    names = ["none", "parity-even", "parity-odd"]
    if layout.n_groups >= 2:
        names.append("permutation")
    if layout.group_size in (2, 3) and n_outputs == 1:
        names.append("rotation")
    if soft:
        names += [f"{n}:soft" for n in names[1:]]
    return names


def propose_dynamics(state_size: int, coordinates: str) -> list[str]:
    """``node``, and for even state sizes ``node2`` and ``hnn`` (``lnn`` only when named: its
    curvature needs third derivatives; ``noether`` only when named: about a minute a seed on 2
    cores, against 5 s for ``hnn``)."""
    return ["node"] + (["node2", "hnn"] if state_size % 2 == 0 else [])


def check_regression_candidate(candidate: Candidate, layout: Layout, n_outputs: int) -> None:
    """``ValueError`` unless ``candidate`` applies to this layout and output size."""
    if candidate.base in DYNAMICS_NAMES:
        raise ValueError(f"candidate {candidate.name!r} is a dynamics model; use it with --task dynamics")
    if candidate.base == "permutation" and layout.n_groups < 2:
        raise ValueError(
            f"candidate {candidate.name!r} needs at least 2 input groups; the layout is {layout} "
            "(give --layout NxM)"
        )
    if candidate.base == "rotation":
        if layout.group_size not in (2, 3):
            raise ValueError(
                f"candidate {candidate.name!r} rotates 2-D or 3-D input vectors; the layout {layout} has "
                f"groups of {layout.group_size} (give --layout NxM with M = 2 or 3)"
            )
        if n_outputs != 1:
            raise ValueError(
                f"candidate {candidate.name!r} is an invariance of one output; the data have {n_outputs}"
            )


def check_dynamics_candidate(candidate: Candidate, state_size: int, coordinates: str) -> None:
    """``ValueError`` unless ``candidate`` is a dynamics model that fits this state."""
    if candidate.base not in DYNAMICS_NAMES:
        raise ValueError(f"candidate {candidate.name!r} is a regression bias; use it with --task regression")
    if candidate.base != "node" and state_size % 2:
        raise ValueError(f"candidate {candidate.name!r} needs an even state size (q, qdot); got {state_size}")
    if candidate.base == "lnn" and coordinates == "canonical":
        raise ValueError(
            f"candidate {candidate.name!r} needs states (q, qdot), the data are canonical (q, p)"
        )


class _Reshaped(eqx.Module):
    """``model(x.reshape(shape))``: lets a symmetry act on groups of a flat input."""

    model: eqx.Module
    shape: tuple[int, ...] = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        return self.model(jnp.reshape(x, self.shape))


def _mlp(d_in: int, n_outputs: int, width: int, depth: int, key, dtype):
    out = "scalar" if n_outputs == 1 else n_outputs
    return eqx.nn.MLP(d_in, out, width, depth, activation=jnp.tanh, key=key, dtype=dtype)


def rotation_generators(layout: Layout) -> np.ndarray:
    """Generators of a rotation of every group alike, ``(K, d, d)`` block-diagonal: ``K = 1`` for
    2-D groups, 3 (rotations about x, y, z) for 3-D groups."""
    m = layout.group_size
    pairs = [(0, 1)] if m == 2 else [(1, 2), (2, 0), (0, 1)]
    gens = np.zeros((len(pairs), layout.size, layout.size))
    for k, (a, b) in enumerate(pairs):
        for g in range(layout.n_groups):
            gens[k, g * m + b, g * m + a], gens[k, g * m + a, g * m + b] = 1.0, -1.0
    return gens


def build_regression_model(
    candidate: Candidate,
    layout: Layout,
    n_outputs: int,
    *,
    width: int,
    depth: int,
    key: PRNGKeyArray,
    dtype=jnp.float64,
):
    """The model of ``candidate`` on flat inputs ``(layout.size,)`` with ``n_outputs`` outputs."""
    check_regression_candidate(candidate, layout, n_outputs)
    d = layout.size
    base, soft = candidate.base, candidate.strength == "soft"
    if base == "none":
        return _mlp(d, n_outputs, width, depth, key, dtype)
    if base == "rotation":
        if soft:
            return LearnedInvariance(
                _mlp(d, 1, width, depth, key, dtype), rotation_generators(layout), extent=0.1, n_samples=16
            )
        count = rotation_invariant_count(layout.n_groups, layout.group_size)
        return RotationInvariant(_mlp(count, 1, width, depth, key, dtype), layout.n_groups, layout.group_size)
    if base == "scaling":
        return Canonicalized(
            _mlp(d, n_outputs, width, depth, key, dtype), Scaling(degree=candidate.degree, norm="l2")
        )
    if base == "permutation":
        inner = _Reshaped(_mlp(d, n_outputs, width, depth, key, dtype), (d,))
        group = Permutation(layout.n_groups)
        shape = (layout.n_groups, layout.group_size)
        if layout.n_groups > PERMUTATION_AVERAGE_MAX and not soft:
            return _Reshaped(Canonicalized(inner, group), shape)
        wrapped = RelaxedSymmetrized(inner, group, SOFT_STRENGTH) if soft else Symmetrized(inner, group)
        return _Reshaped(wrapped, shape)
    parity = Parity(odd=base == "parity-odd")
    net = _mlp(d, n_outputs, width, depth, key, dtype)
    return RelaxedSymmetrized(net, parity, SOFT_STRENGTH) if soft else Symmetrized(net, parity)


def build_dynamics_model(candidate: Candidate, state_size: int, *, width: int, depth: int, key: PRNGKeyArray):
    """The vector field of a dynamics candidate (:func:`physbias.dynamics.build_model`; for
    ``noether`` the Hamiltonian network's MLP, softplus as in ``hnn``, averaged over the flow of one
    learned quadratic conserved quantity started near zero)."""
    check_dynamics_candidate(candidate, state_size, "any")
    if candidate.base == "noether":
        k_sym, k_net = jax.random.split(key)
        conserved = QuadraticConservedQuantities(state_size, 1, key=k_sym, init_std=0.01)
        return SymmetrizedHamiltonianNN(
            conserved, width, depth, NOETHER_SAMPLES, key=k_net, activation=softplus
        )
    return build_model(
        {"model": candidate.base, "state_size": state_size, "width": width, "depth": depth}, key
    )


def cast(model, dtype):
    """``model`` with every floating-point array in ``dtype``."""
    return jax.tree_util.tree_map(lambda a: a.astype(dtype) if eqx.is_inexact_array(a) else a, model)
