"""The equivariant MLP (Finzi, Welling & Wilson 2021; seed 004) on physbias' basis solver.

Every layer maps representation ``rep_in`` to ``rep_out`` of a matrix group ``G`` and commutes
with it: ``f(rho_in(g) x) = rho_out(g) f(x)``.

- :class:`EquivariantLinear`: ``W = sum_k c_k Q_k`` with ``Q_k`` the equivariant basis of
  ``rep_in >> rep_out``, solved block by block: the input and output are split into *types*
  (copies of one atom such as ``V`` or ``V⊗V``); each (out type, in type) pair has its basis
  ``Q`` of shape ``(n_out, n_in, r)`` and coefficients ``c`` of shape ``(m_out, m_in, r)``. The
  bias lives in the invariant subspace of ``rep_out``.
- :class:`TensorProductBilinear`: products ``x_a^i ⊗ x_b^i`` of matching copies of two types
  (total tensor rank at most ``max_rank``) fed through an :class:`EquivariantLinear`. This is
  where the network meets invariants such as ``|x|^2`` and tensors such as ``x x^T``; the gates
  alone never see them.
- :class:`GatedNonlinearity`: scalars go through ``swish``; every other copy is multiplied by
  ``sigmoid`` of its own gate scalar, which the preceding linear layer produces (:func:`gated`).
- :class:`EMLP`: ``depth`` blocks ``x -> gate(L(x) + B(L(x)))`` and a final linear layer.

The bases are constants of the model (NumPy, not trained, not in the pytree's leaves): a layer is
rebuilt from its reps, and ``equinox.tree_serialise_leaves`` stores only the coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ..groups.basis import equivariant_basis, expand
from ..groups.groups import Group, require_group
from ..groups.representations import ProductRep, Rep, Scalar, SumRep, V


class Constant:
    """A NumPy array kept out of the trainable pytree (hashed by identity, so jit caches per
    model)."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = np.asarray(array)

    def __repr__(self):
        return f"Constant(shape={self.array.shape})"


def _rank(atom: Rep) -> int:
    if atom == Scalar:
        return 0
    return len(atom.reps) if isinstance(atom, ProductRep) else 1


class Layout:
    """A rep split into types: ``types[j] = (atom, positions (m_j, n_j))`` in first-seen order;
    ``perm`` gathers a vector into type order (each type's copies contiguous)."""

    def __init__(self, rep: Rep, G: Group):
        groups: dict[str, list] = {}
        atoms: dict[str, Rep] = {}
        for atom, pos in expand(rep, G):
            groups.setdefault(repr(atom), []).append(pos)
            atoms[repr(atom)] = atom
        self.rep, self.size = rep, rep.size(G)
        self.types = [(atoms[k], np.stack(v)) for k, v in groups.items()]
        self.perm = np.concatenate([p.reshape(-1) for _, p in self.types]) if self.types else np.zeros(0, int)
        self.inverse = np.argsort(self.perm)

    def split(self, x: Array) -> list[Array]:
        """``x`` (size,) into one ``(m_j, n_j)`` array per type."""
        return [x[pos] for _, pos in self.types]


def _check_rep(rep, name: str) -> Rep:
    if not isinstance(rep, Rep):
        raise TypeError(f"`{name}` must be a Rep (e.g. 2 * V + Scalar), got {type(rep).__name__}")
    return rep


def _check_input(x: Array, size: int, rep: Rep, G: Group) -> None:
    if x.shape != (size,):
        raise ValueError(f"input must have shape ({size},) for rep {rep!r} of {G}, got {x.shape}")


class EquivariantLinear(eqx.Module):
    """``y = W x + b`` with ``W`` in the span of the equivariant basis of ``rep_in >> rep_out``.

    Input ``(rep_in.size(G),)``, output ``(rep_out.size(G),)``. Coefficients start at
    ``N(0, n_out / fan_in)`` so that a unit-variance input gives a unit-variance output.
    """

    weights: list[Array]
    biases: list[Array]
    rep_in: Rep = eqx.field(static=True)
    rep_out: Rep = eqx.field(static=True)
    G: Group = eqx.field(static=True)
    _blocks: tuple = eqx.field(static=True)  # (out type j, in type i, Constant basis (n_o, n_i, r))
    _bias_bases: tuple = eqx.field(static=True)  # per out type: Constant (n_o, r_b) or None
    _layouts: tuple = eqx.field(static=True)

    def __init__(self, rep_in: Rep, rep_out: Rep, G: Group, *, key: PRNGKeyArray, use_bias: bool = True):
        G = require_group(G)
        self.rep_in, self.rep_out, self.G = _check_rep(rep_in, "rep_in"), _check_rep(rep_out, "rep_out"), G
        lin, lout = Layout(rep_in, G), Layout(rep_out, G)
        blocks, shapes, stds, biases, bias_bases = [], [], [], [], []
        for j, (atom_o, pos_o) in enumerate(lout.types):
            found = []
            for i, (atom_i, pos_i) in enumerate(lin.types):
                Q = equivariant_basis(atom_i >> atom_o, G)
                if Q.shape[1]:
                    n_o, n_i = pos_o.shape[1], pos_i.shape[1]
                    found.append((i, Constant(Q.reshape(n_o, n_i, -1)), pos_i.shape[0]))
            fan_in = sum(m_i * q.array.shape[2] for _, q, m_i in found)
            for i, q, m_i in found:
                blocks.append((j, i, q))
                shapes.append((pos_o.shape[0], m_i, q.array.shape[2]))
                stds.append(math.sqrt(pos_o.shape[1] / fan_in))
            Qb = equivariant_basis(atom_o, G) if use_bias else np.zeros((pos_o.shape[1], 0))
            if Qb.shape[1]:
                biases.append(jnp.asarray(np.zeros((pos_o.shape[0], Qb.shape[1]), np.float32)))
                bias_bases.append(Constant(Qb))
            else:
                bias_bases.append(None)
        # One draw for all blocks: a jax.random call per shape would compile once per shape.
        sizes = [math.prod(s) for s in shapes]
        noise = np.asarray(jax.random.normal(key, (sum(sizes),)))  # NumPy slicing: nothing to compile
        offsets = np.cumsum([0] + sizes)
        weights = [
            jnp.asarray(std * noise[a:b].reshape(shape))
            for std, shape, a, b in zip(stds, shapes, offsets[:-1], offsets[1:], strict=True)
        ]
        self.weights, self.biases = weights, biases
        self._blocks, self._bias_bases = tuple(blocks), tuple(bias_bases)
        self._layouts = (lin, lout)

    def __call__(self, x: Float[Array, " size_in"]) -> Float[Array, " size_out"]:
        lin, lout = self._layouts
        _check_input(x, lin.size, self.rep_in, self.G)
        parts = lin.split(x)
        outs = [jnp.zeros(pos.shape, x.dtype) for _, pos in lout.types]
        for (j, i, q), c in zip(self._blocks, self.weights, strict=True):
            Q = jnp.asarray(q.array, x.dtype)
            # W_ji[o, a, i, b] = sum_r c[o, i, r] Q[a, b, r]; apply to the (m_i, n_i) input copies.
            outs[j] = outs[j] + jnp.einsum("oir,abr,ib->oa", c.astype(x.dtype), Q, parts[i])
        biases = iter(self.biases)
        for j, qb in enumerate(self._bias_bases):
            if qb is not None:
                outs[j] = outs[j] + next(biases).astype(x.dtype) @ jnp.asarray(qb.array, x.dtype).T
        flat = jnp.concatenate([o.reshape(-1) for o in outs]) if outs else jnp.zeros(0, x.dtype)
        return flat[lout.inverse]

    def hyperparameters(self) -> dict:
        """The keyword arguments that (with a ``key``) rebuild this layer (see :func:`physbias.save`)."""
        return {"rep_in": self.rep_in, "rep_out": self.rep_out, "G": self.G, "use_bias": bool(self.biases)}

    def weight_matrix(self) -> Float[Array, "size_out size_in"]:
        """The dense ``W`` (for inspection and tests)."""
        return jax.vmap(lambda e: self(e) - self(jnp.zeros_like(e)), out_axes=1)(
            jnp.eye(self._layouts[0].size)
        )


def gated(rep: Rep, G: Group) -> Rep:
    """``rep`` plus one gate scalar per non-scalar copy (the output rep of a gated block)."""
    n_gates = sum(pos.shape[0] for atom, pos in Layout(rep, G).types if atom != Scalar)
    return rep + n_gates * Scalar if n_gates else rep


class GatedNonlinearity(eqx.Module):
    """``gated(rep) -> rep``: scalars ``s -> s sigmoid(s)``; a non-scalar copy ``v -> v sigmoid(gate)``.

    The gates are the last ``n_gates`` entries of the input, one per non-scalar copy in layout
    order. Equivariant because the gates are invariant.
    """

    rep: Rep = eqx.field(static=True)
    G: Group = eqx.field(static=True)
    _gate_index: Constant = eqx.field(static=True)
    _size: int = eqx.field(static=True)

    def __init__(self, rep: Rep, G: Group):
        G = require_group(G)
        layout = Layout(_check_rep(rep, "rep"), G)
        size = layout.size
        gate_index = np.arange(size)  # scalars gate themselves (swish)
        g = size
        for atom, pos in layout.types:
            if atom != Scalar:
                for copy in pos:
                    gate_index[copy] = g
                    g += 1
        self.rep, self.G, self._size, self._gate_index = rep, G, size, Constant(gate_index)

    def hyperparameters(self) -> dict:
        """The arguments that rebuild this layer (see :func:`physbias.save`)."""
        return {"rep": self.rep, "G": self.G}

    def __call__(self, x: Array) -> Array:
        return x[: self._size] * jax.nn.sigmoid(x[self._gate_index.array])


class TensorProductBilinear(eqx.Module):
    """``x -> L(concat_i x_a^i ⊗ y_b^i)`` with ``y = x + M x``: products of copies of types ``a <= b``
    whose tensor ranks sum to at most ``max_rank`` (``max_copies`` copies per pair), mapped to
    ``rep_out`` by an :class:`EquivariantLinear` (no bias). Input ``rep_in``, output ``rep_out``.

    ``M`` (an :class:`EquivariantLinear` ``rep_in -> rep_in``, learned) mixes the copies before the
    product, as EMLP's bilinear layer does: ``x^i ⊗ y^i = x^i ⊗ x^i + sum_k m_ik x^i ⊗ x^k`` contains products
    of *different* copies, whose antisymmetric parts carry everything a group without reflections
    allows beyond its orthogonal cousin (SO(3): the cross product ``x^i × x^k`` and, one block
    later, the pseudo-scalar ``det``). Without ``M`` the products ``x^i ⊗ x^i`` are symmetric and
    an SO(3) network is silently an O(3) network. (The residual form keeps the plain products:
    with ``y = M x`` alone, O5Synthetic's test MSE was 0.048 against 0.0078 with it.)

    Scalars take part: ``s^i s^i`` (polynomials), ``s^i v^i`` (e.g. a mass times ``r r^T``) and
    ``v^i ⊗ v^i`` (invariants ``|v|^2`` and rank-2 tensors). The output is multiplied by
    ``scale`` (0.1, as in EMLP): stacked products are polynomials of high degree, and at full
    scale training on Inertia diverged (train MSE 16x the target variance vs 0.006 at 0.1)."""

    linear: EquivariantLinear | None
    mix: EquivariantLinear | None
    _pairs: tuple = eqx.field(static=True)  # (positions a (c, n_a), positions b (c, n_b))
    rep_in: Rep = eqx.field(static=True)
    rep_out: Rep = eqx.field(static=True)
    G: Group = eqx.field(static=True)
    _size_out: int = eqx.field(static=True)
    scale: float = eqx.field(static=True)
    max_rank: int = eqx.field(static=True)
    max_copies: int = eqx.field(static=True)

    def __init__(
        self,
        rep_in: Rep,
        rep_out: Rep,
        G: Group,
        *,
        key: PRNGKeyArray,
        max_rank: int = 2,
        max_copies: int = 32,
        scale: float = 0.1,
    ):
        G = require_group(G)
        layout = Layout(_check_rep(rep_in, "rep_in"), G)
        # Copies are taken in order, so a gated rep's own scalars come before its gates.
        types = layout.types
        pairs, atoms = [], []
        for ia, (a, pa) in enumerate(types):
            for b, pb in types[ia:]:
                if _rank(a) + _rank(b) > max_rank:
                    continue
                c = min(len(pa), len(pb), max_copies)
                pairs.append((Constant(pa[:c]), Constant(pb[:c])))
                atoms.append(c * ProductRep((a, b)))
        self._pairs, self.rep_out, self._size_out = tuple(pairs), rep_out, rep_out.size(G)
        self.rep_in, self.G, self.scale = rep_in, G, float(scale)
        self.max_rank, self.max_copies = int(max_rank), int(max_copies)
        k_linear, k_mix = jax.random.split(key)
        self.linear = (
            EquivariantLinear(SumRep(tuple(atoms)), rep_out, G, key=k_linear, use_bias=False)
            if atoms
            else None
        )
        self.mix = EquivariantLinear(rep_in, rep_in, G, key=k_mix, use_bias=False) if atoms else None

    def hyperparameters(self) -> dict:
        """The keyword arguments that (with a ``key``) rebuild this layer (see :func:`physbias.save`)."""
        return {
            "rep_in": self.rep_in,
            "rep_out": self.rep_out,
            "G": self.G,
            "max_rank": self.max_rank,
            "max_copies": self.max_copies,
            "scale": self.scale,
        }

    def __call__(self, x: Array) -> Array:
        if self.linear is None:
            return jnp.zeros(self._size_out, x.dtype)
        y = x + self.mix(x)  # the plain products x^i ⊗ x^i plus the mixed ones
        feats = [jnp.einsum("ca,cb->cab", x[pa.array], y[pb.array]).reshape(-1) for pa, pb in self._pairs]
        return self.scale * self.linear(jnp.concatenate(feats))


def uniform_rep(width: int, G: Group, max_rank: int = 2) -> Rep:
    """A hidden rep of about ``width`` dimensions spread evenly over tensor ranks ``0..max_rank``:
    ``width // (max_rank + 1) // d**k`` copies of ``T(k)`` (at least one each), as in EMLP."""
    if width <= 0 or max_rank < 0:
        raise ValueError(f"`width` must be positive and `max_rank` >= 0, got {width}, {max_rank}")
    share = width // (max_rank + 1)
    rep: Rep = max(1, share) * Scalar
    for k in range(1, max_rank + 1):
        rep = rep + max(1, share // G.d**k) * (V**k)
    return rep


class EMLPBlock(eqx.Module):
    """``x -> gate(L(x) + B(L(x)))`` with ``L: rep_in -> gated(rep_out)`` and ``B`` bilinear."""

    linear: EquivariantLinear
    bilinear: TensorProductBilinear
    nonlinearity: GatedNonlinearity
    max_rank: int = eqx.field(static=True)

    def __init__(self, rep_in: Rep, rep_out: Rep, G: Group, *, key: PRNGKeyArray, max_rank: int = 2):
        self.max_rank = int(max_rank)
        k1, k2 = jax.random.split(key)
        g_out = gated(rep_out, G)
        self.linear = EquivariantLinear(rep_in, g_out, G, key=k1)
        self.bilinear = TensorProductBilinear(g_out, g_out, G, key=k2, max_rank=max_rank)
        self.nonlinearity = GatedNonlinearity(rep_out, G)

    def hyperparameters(self) -> dict:
        """The keyword arguments that (with a ``key``) rebuild this block (see :func:`physbias.save`)."""
        return {
            "rep_in": self.linear.rep_in,
            "rep_out": self.nonlinearity.rep,
            "G": self.linear.G,
            "max_rank": self.max_rank,
        }

    def __call__(self, x: Array) -> Array:
        h = self.linear(x)
        return self.nonlinearity(h + self.bilinear(h))


class EMLP(eqx.Module):
    """Equivariant MLP ``rep_in -> rep_out`` for the group ``G``.

    Args:
        rep_in, rep_out: representations (e.g. ``2 * V``, ``Scalar``, ``T(2)``).
        G: the group.
        width: hidden size; the hidden rep is :func:`uniform_rep` (or pass ``hidden``).
        depth: number of gated blocks.
        key: PRNG key.
        max_rank: highest tensor rank in the hidden rep and the bilinear products.
        hidden: an explicit hidden rep (overrides ``width``).

    Input ``(rep_in.size(G),)``; output ``(rep_out.size(G),)``. Use ``jax.vmap`` for batches.
    """

    blocks: list[EMLPBlock]
    head: EquivariantLinear
    rep_in: Rep = eqx.field(static=True)
    rep_out: Rep = eqx.field(static=True)
    G: Group = eqx.field(static=True)
    hidden: Rep = eqx.field(static=True)
    max_rank: int = eqx.field(static=True)

    def __init__(
        self,
        rep_in: Rep,
        rep_out: Rep,
        G: Group,
        width: int = 384,
        depth: int = 3,
        *,
        key: PRNGKeyArray,
        max_rank: int = 2,
        hidden: Rep | None = None,
    ):
        G = require_group(G)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"`depth` must be a positive integer, got {depth!r}")
        hidden = uniform_rep(width, G, max_rank) if hidden is None else _check_rep(hidden, "hidden")
        keys = jax.random.split(key, depth + 1)
        reps: Sequence[Rep] = [rep_in] + [hidden] * depth
        self.blocks = [
            EMLPBlock(a, b, G, key=k, max_rank=max_rank)
            for a, b, k in zip(reps[:-1], reps[1:], keys[:-1], strict=True)
        ]
        self.head = EquivariantLinear(hidden, rep_out, G, key=keys[-1])
        self.rep_in, self.rep_out, self.G = rep_in, rep_out, G
        self.hidden, self.max_rank = hidden, int(max_rank)

    def hyperparameters(self) -> dict:
        """The keyword arguments that (with a ``key``) rebuild this network (see :func:`physbias.save`)."""
        return {
            "rep_in": self.rep_in,
            "rep_out": self.rep_out,
            "G": self.G,
            "depth": len(self.blocks),
            "max_rank": self.max_rank,
            "hidden": self.hidden,
        }

    def __call__(self, x: Float[Array, " size_in"]) -> Float[Array, " size_out"]:
        _check_input(x, self.rep_in.size(self.G), self.rep_in, self.G)
        for block in self.blocks:
            x = block(x)
        return self.head(x)


class InvariantScalar(eqx.Module):
    """An :class:`EMLP` to ``Scalar`` returning a 0-d array (what a Hamiltonian must be)."""

    net: EMLP

    def __call__(self, x: Array) -> Float[Array, ""]:
        return self.net(x)[0]


def hamiltonian_emlp(
    rep_q: Rep, G: Group, width: int = 128, depth: int = 2, *, key: PRNGKeyArray, max_rank: int = 2
):
    """A :class:`~physbias.dynamics.HamiltonianNN` whose ``H(q, p)`` is an EMLP invariant of ``G``.

    The state is ``(q, p)`` with ``q`` in ``rep_q`` and ``p`` in its dual ``rep_q.T`` (equal to
    ``rep_q`` for orthogonal groups), so ``H`` is invariant under the induced symplectic action
    and the learned flow is ``G``-equivariant: ``Phi_t(g q, g^{-T} p) = (g q_t, g^{-T} p_t)``.
    """
    from ..dynamics.models import HamiltonianNN

    rep_state = rep_q + rep_q.T
    H = InvariantScalar(EMLP(rep_state, Scalar, G, width, depth, key=key, max_rank=max_rank))
    return HamiltonianNN(rep_state.size(G), hamiltonian=H, key=key)
