"""Symbolic search for conserved quantities to use as Noether losses (seed 002, App. C).

Self-contained (no sympy):

1. :func:`enumerate_terms` builds terms from the variables with a small unit-aware grammar
   ``{x^2, sin, cos, *, +, -}``: ``sin``/``cos`` only of dimensionless arguments, ``+``/``-``
   only of equal units. Terms equal up to an affine map (``a T + b``) at random points are
   deduplicated (numeric fingerprint); constants are dropped.
2. :func:`enumerate_formulas` forms candidates ``T1`` and ``T1 + c T2`` (``c`` a fitted constant
   carrying the units ``[T1]/[T2]``, so every pair is unit-valid), deduplicated by the span of
   ``{T1, T2}`` modulo constants.
3. :func:`fit_constant` fits ``c`` to minimise the variance of the formula along trajectories
   (pooled within-trajectory least squares ``"ols"``, total least squares ``"tls"``, or an
   errors-in-variables ``"deming"`` fit whose noise covariance is estimated from third
   differences along the trajectories).
4. :func:`conservation_ratio` compares that variance with the variance along random sequences
   of shuffled states; the paper keeps a formula when the ratio is ``<= 1/100``. Optionally
   (``denoise``) the variance explained by measurement noise is subtracted first.
5. :func:`search_conserved_quantities` ranks survivors by the loss of single-step tailored
   predictions over the inner learning-rate grid ``10^k, k in {-3, -2.5, ..., 1}`` and returns
   them best first.

Reference: Alet et al., "Noether Networks: meta-learning useful conserved quantities",
NeurIPS 2021, Sec. 4.1 and App. C (there: AI-Feynman's DSL to depth 7, ~4e4 formulas; here a
depth-limited grammar and ~50 candidates).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .tailoring import tailored_task_loss

Units = tuple[int, ...]
"""Exponents over base dimensions, e.g. ``(M, L, T)``: momentum is ``(1, 1, -1)``."""

DEFAULT_LR_GRID = tuple(10.0**k for k in np.arange(-3.0, 1.01, 0.5))

# --------------------------------------------------------------------------------------------
# Expressions
# --------------------------------------------------------------------------------------------

_UNARY = ("square", "sin", "cos")
_BINARY = ("mul", "add", "sub")


@dataclasses.dataclass(frozen=True)
class Term:
    """An expression tree over named variables, with its physical units."""

    op: str  # "var", "square", "sin", "cos", "mul", "add", "sub"
    args: tuple  # (name,) for "var", else sub-terms
    units: Units

    @property
    def size(self) -> int:
        return 1 if self.op == "var" else 1 + sum(a.size for a in self.args)

    @property
    def trig_count(self) -> int:
        own = int(self.op in ("sin", "cos"))
        return own if self.op == "var" else own + sum(a.trig_count for a in self.args)

    def __str__(self) -> str:
        if self.op == "var":
            return self.args[0]
        if self.op in ("sin", "cos"):
            return f"{self.op}({self.args[0]})"
        if self.op == "square":
            a = self.args[0]
            inner = str(a) if a.op in ("var", "sin", "cos") else f"({a})"
            return f"{inner}^2"
        a, b = self.args
        sym = {"mul": "*", "add": " + ", "sub": " - "}[self.op]
        wrap = (lambda t: f"({t})" if t.op in ("add", "sub") else str(t)) if self.op == "mul" else str
        return f"{wrap(a)}{sym}{wrap(b)}" if self.op == "mul" else f"({a}{sym}{b})"

    def evaluate(self, env: Mapping[str, Array]) -> Array:
        """Value of the term, ``env`` mapping variable names to arrays (NumPy or JAX)."""
        if self.op == "var":
            return env[self.args[0]]
        xs = [a.evaluate(env) for a in self.args]
        if self.op == "square":
            return xs[0] * xs[0]
        if self.op == "sin":
            return jnp.sin(xs[0]) if isinstance(xs[0], jax.Array) else np.sin(xs[0])
        if self.op == "cos":
            return jnp.cos(xs[0]) if isinstance(xs[0], jax.Array) else np.cos(xs[0])
        if self.op == "mul":
            return xs[0] * xs[1]
        if self.op == "add":
            return xs[0] + xs[1]
        return xs[0] - xs[1]


def _order_key(t: Term, rank: Mapping[str, int]) -> str:
    """Text of ``t`` with variables replaced by their position (``q`` before ``p``)."""
    if t.op == "var":
        return f"v{rank[t.args[0]]:02d}"
    return t.op + "(" + ",".join(_order_key(a, rank) for a in t.args) + ")"


def _dimensionless(u: Units) -> bool:
    return all(e == 0 for e in u)


def _combine(op: str, a: Term, b: Term | None = None) -> Term | None:
    """Apply ``op`` if the units allow it, else None."""
    if op == "square":
        return Term(op, (a,), tuple(2 * e for e in a.units))
    if op in ("sin", "cos"):
        return Term(op, (a,), a.units) if _dimensionless(a.units) else None
    if op == "mul":
        return Term(op, (a, b), tuple(x + y for x, y in zip(a.units, b.units, strict=False)))
    return Term(op, (a, b), a.units) if a.units == b.units else None  # add / sub


def _fingerprint(values: np.ndarray, tol: float = 1e-6) -> tuple | None:
    """Key identifying ``values`` up to an affine map ``a v + b``; None for a constant."""
    v = values - values.mean()
    norm = np.linalg.norm(v)
    if not np.isfinite(norm) or norm < tol * max(1.0, np.abs(values).max()):
        return None
    v = v / norm
    v = v * np.sign(v[np.argmax(np.abs(v) > 1e-3)])
    return tuple(np.round(v, 5))


def _random_env(variables: Mapping[str, Units], n: int = 64, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(-2.0, 2.0, n) for name in variables}


def enumerate_terms(variables: Mapping[str, Units], max_depth: int = 2, max_terms: int = 10) -> list[Term]:
    """Unit-valid, affinely deduplicated, non-constant terms up to tree depth ``max_depth``,
    simplest first (by size, then number of trig functions, then text); at most ``max_terms``.

    Raises:
        ValueError: no variables, non-positive ``max_depth``/``max_terms``, or an empty grammar.
    """
    if not variables:
        raise ValueError("enumerate_terms: `variables` is empty; give e.g. {'q': (0,0,0), ...}")
    if max_depth < 0 or max_terms < 1:
        raise ValueError(
            f"enumerate_terms: need max_depth >= 0, max_terms >= 1, got {max_depth}, {max_terms}"
        )
    ndim = {len(u) for u in variables.values()}
    if len(ndim) != 1:
        raise ValueError(
            f"enumerate_terms: all units need the same number of base dimensions, got {variables}"
        )
    levels = [[Term("var", (name,), tuple(u)) for name, u in variables.items()]]
    for _ in range(max_depth):
        below = [t for lvl in levels for t in lvl]
        last = levels[-1]
        new = [t for a in last for op in _UNARY if (t := _combine(op, a)) is not None]
        for a, b in itertools.product(below, last):
            for op in _BINARY:
                if (t := _combine(op, a, b)) is not None:
                    new.append(t)
        levels.append(new)
    rank = {name: i for i, name in enumerate(variables)}
    terms = sorted(
        {t for lvl in levels for t in lvl}, key=lambda t: (t.size, t.trig_count, _order_key(t, rank))
    )
    env = _random_env(variables)
    seen, out = set(), []
    for t in terms:
        key = _fingerprint(np.asarray(t.evaluate(env), dtype=np.float64))
        if key is None or key in seen:
            continue
        seen.add(key)
        out.append(t)
        if len(out) == max_terms:
            break
    if not out:
        raise ValueError("enumerate_terms: the grammar produced no non-constant term")
    return out


@dataclasses.dataclass
class Candidate:
    """A candidate conserved quantity ``T1 + c T2`` (``second is None``: ``T1`` alone)."""

    first: int
    second: int | None
    terms: list[Term] = dataclasses.field(repr=False)
    c: float = 0.0
    variance: float = float("nan")
    ratio: float = float("nan")
    val_loss: float = float("nan")
    best_lr: float = float("nan")

    def formula(self, c: float | None = None) -> str:
        c = self.c if c is None else c
        t1 = str(self.terms[self.first])
        if self.second is None:
            return t1
        sign = "-" if c < 0 else "+"
        return f"{t1} {sign} {abs(c):.4g}*{self.terms[self.second]}"

    def template(self) -> str:
        t1 = str(self.terms[self.first])
        return t1 if self.second is None else f"{t1} + c*{self.terms[self.second]}"

    def weights(self) -> np.ndarray:
        """Coefficients over all terms: the formula is ``features(x) @ weights``."""
        w = np.zeros(len(self.terms))
        w[self.first] = 1.0
        if self.second is not None:
            w[self.second] = self.c
        return w


def enumerate_formulas(
    terms: Sequence[Term], variables: Mapping[str, Units], max_candidates: int = 60
) -> list[Candidate]:
    """Single terms and unordered pairs ``T1 + c T2`` (``T1`` the simpler), deduplicated by the
    span of ``{T1, T2}`` modulo constants, simplest first, at most ``max_candidates``."""
    if not terms:
        raise ValueError("enumerate_formulas: `terms` is empty")
    terms = list(terms)
    env = _random_env(variables, seed=1)
    vals = np.stack([np.asarray(t.evaluate(env), np.float64) for t in terms])
    vals = vals - vals.mean(axis=1, keepdims=True)
    cands = [Candidate(i, None, terms) for i in range(len(terms))]
    seen = set()
    pairs = sorted(
        itertools.combinations(range(len(terms)), 2),
        key=lambda ij: (terms[ij[0]].size + terms[ij[1]].size, ij),
    )
    for i, j in pairs:
        qmat, r = np.linalg.qr(vals[[i, j]].T)
        if abs(r[1, 1]) < 1e-8 * abs(r[0, 0]):
            continue
        key = tuple(np.round((qmat @ qmat.T).ravel()[::7], 5))
        if key in seen:
            continue
        seen.add(key)
        cands.append(Candidate(i, j, terms))
    return cands[:max_candidates]


def term_features(terms: Sequence[Term], names: Sequence[str]) -> Callable[[Array], Array]:
    """``x -> (T_1(x), ..., T_K(x))`` for a state ``x`` ordered as ``names``."""
    terms = tuple(terms)
    names = tuple(names)

    def features(x):
        env = {n: x[..., i] for i, n in enumerate(names)}
        return jnp.stack([jnp.broadcast_to(t.evaluate(env), x.shape[:-1]) for t in terms], -1)

    return features


class FormulaEmbedding(eqx.Module):
    """A symbolic conserved quantity ``g(x) = sum_k w_k T_k(x)`` as an embedding (state ``(d,)``
    -> scalar). Its ``weights`` are a leaf, so the same compiled code serves every formula."""

    weights: Float[Array, " K"]
    features: Callable = eqx.field(static=True)

    def __call__(self, x: Float[Array, " d"]) -> Array:
        return self.features(x) @ self.weights


def formula_embedding(cand: Candidate, names: Sequence[str]) -> FormulaEmbedding:
    """The candidate's formula (with its fitted ``c``) as an embedding for :func:`tailor`."""
    return FormulaEmbedding(jnp.asarray(cand.weights(), jnp.float32), term_features(cand.terms, names))


def _centered(values: np.ndarray) -> np.ndarray:
    """Subtract each trajectory's mean; ``values`` has shape ``(n, L)``."""
    return values - values.mean(axis=1, keepdims=True)


def _noise_cov(t1: np.ndarray, t2: np.ndarray, order: int = 3) -> np.ndarray:
    """Noise covariance of ``(T1, T2)`` estimated from ``order``-th differences along time
    (i.i.d. noise: ``Var(Delta^k e) = binom(2k, k) Var(e)``)."""
    d1, d2 = np.diff(t1, order, axis=1).ravel(), np.diff(t2, order, axis=1).ravel()
    scale = float(math.comb(2 * order, order))
    return np.array([[d1 @ d1, d1 @ d2], [d1 @ d2, d2 @ d2]]) / (d1.size * scale)


def fit_constant(t1: np.ndarray, t2: np.ndarray, method: str = "deming") -> float:
    """``c`` minimising the pooled within-trajectory variance of ``T1 + c T2``.

    ``t1``, ``t2``: term values along trajectories, shape ``(n, L)``.

    * ``"ols"``: ``c = -<a, b> / <b, b>`` with ``a, b`` centred per trajectory (errors only in
      ``T1``; noise in ``T2`` shrinks ``|c|``).
    * ``"tls"``: smallest eigenvector of the 2x2 scatter of ``(a, b)`` (equal noise in both).
    * ``"deming"``: generalised eigenproblem ``S v = lambda N v`` with ``N`` the noise covariance
      of ``(T1, T2)`` estimated from third differences (errors-in-variables; falls back to OLS
      when the data look noise-free).
    """
    a, b = _centered(t1).ravel(), _centered(t2).ravel()
    s = np.array([[a @ a, a @ b], [a @ b, b @ b]]) / a.size
    if method == "ols":
        return float(-s[0, 1] / s[1, 1])
    if method == "tls":
        _, vecs = np.linalg.eigh(s)
        v = vecs[:, 0]
    elif method == "deming":
        noise = _noise_cov(t1, t2)
        if np.linalg.eigvalsh(noise)[0] <= 1e-10 * np.trace(s):
            return float(-s[0, 1] / s[1, 1])
        chol = np.linalg.cholesky(noise)
        inv = np.linalg.inv(chol)
        _, vecs = np.linalg.eigh(inv @ s @ inv.T)
        v = inv.T @ vecs[:, 0]
    else:
        raise ValueError(f"fit_constant: `method` must be 'ols', 'tls' or 'deming', got {method!r}")
    return float(v[1] / v[0]) if abs(v[0]) > 1e-12 else float("inf")


def conservation_ratio(values: np.ndarray, key_seed: int = 0, denoise: bool = False) -> tuple[float, float]:
    """``(variance, ratio)``: pooled within-trajectory variance of ``values`` ``(n, L)``, and
    its ratio to the same variance over random sequences of the shuffled states.

    With ``denoise``, the part of the variance explained by i.i.d. measurement noise,
    estimated from third differences along time (``Var(Delta^3 e) = 20 Var(e)``), is
    subtracted first: a truly conserved quantity measured with noise then has ratio ~ 0
    instead of ``noise variance / spread``.
    """
    var = float(np.mean(_centered(values) ** 2))
    rng = np.random.default_rng(key_seed)
    shuffled = rng.permutation(values.ravel()).reshape(values.shape)
    var_rand = float(np.mean(_centered(shuffled) ** 2))
    excess = var
    if denoise:
        d3 = np.diff(values, 3, axis=1)
        excess = max(var - float(np.mean(d3**2)) / 20.0, 0.0)
    return var, excess / var_rand if var_rand > 0 else float("inf")


def _check_trajectories(trajectories, names, owner):
    arr = np.asarray(trajectories)
    if arr.ndim != 3 or arr.shape[1] < 4 or arr.shape[2] != len(names):
        raise ValueError(
            f"{owner}: `trajectories` must have shape (n, L >= 4, {len(names)}) "
            f"for variables {list(names)}, got {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: `trajectories` contain non-finite values")
    return arr.astype(np.float64)


def fit_and_filter(
    candidates: Sequence[Candidate],
    trajectories: np.ndarray,
    names: Sequence[str],
    *,
    method: str = "deming",
    threshold: float = 1e-2,
    min_survivors: int = 0,
    seed: int = 0,
    denoise: bool = False,
) -> list[Candidate]:
    """Fit each candidate's ``c`` on ``trajectories`` ``(n, L, d)`` and keep those whose
    conservation ratio is ``<= threshold`` (or, if fewer than ``min_survivors`` pass, the
    ``min_survivors`` with the lowest ratio). Fills ``c``, ``variance``, ``ratio`` in place."""
    if not candidates:
        raise ValueError("fit_and_filter: `candidates` is empty")
    arr = _check_trajectories(trajectories, names, "fit_and_filter")
    terms = candidates[0].terms
    env = {n: arr[..., i] for i, n in enumerate(names)}
    values = {}
    for cand in candidates:
        for k in (cand.first, cand.second):
            if k is not None and k not in values:
                values[k] = np.broadcast_to(np.asarray(terms[k].evaluate(env)), arr.shape[:2])
        t1 = values[cand.first]
        if cand.second is None:
            cand.c, g = 0.0, t1
        else:
            cand.c = fit_constant(t1, values[cand.second], method)
            g = t1 + cand.c * values[cand.second] if np.isfinite(cand.c) else values[cand.second]
        cand.variance, cand.ratio = conservation_ratio(g, seed, denoise)
    ranked = sorted(candidates, key=lambda c: c.ratio)
    keep = [c for c in ranked if c.ratio <= threshold]
    return keep if len(keep) >= min_survivors else ranked[:min_survivors]


def rank_by_tailoring(
    survivors: Sequence[Candidate],
    predictor: eqx.Module,
    val_trajectories: Float[Array, "n L d"],
    names: Sequence[str],
    lr_grid: Sequence[float] = DEFAULT_LR_GRID,
) -> list[Candidate]:
    """Score each survivor by the task loss of single-inner-step tailored rollouts of
    ``predictor`` over whole validation trajectories, minimised over ``lr_grid``; best first.
    One compiled function serves all formulas (the formula is data)."""
    if not survivors:
        return []
    val = jnp.asarray(_check_trajectories(val_trajectories, names, "rank_by_tailoring"), jnp.float32)
    features = term_features(survivors[0].terms, names)
    lrs = jnp.asarray(lr_grid, jnp.float32)

    @jax.jit
    def score(weights):
        emb = FormulaEmbedding(weights, features)
        return jax.lax.map(lambda lr: tailored_task_loss(predictor, emb, val, lr, 1), lrs)

    for cand in survivors:
        if not np.isfinite(cand.c):
            cand.val_loss = float("inf")
            continue
        losses = np.asarray(score(jnp.asarray(cand.weights(), jnp.float32)))
        losses = np.where(np.isfinite(losses), losses, np.inf)
        k = int(np.argmin(losses))
        cand.val_loss, cand.best_lr = float(losses[k]), float(lr_grid[k])
    return sorted(survivors, key=lambda c: c.val_loss)


@dataclasses.dataclass
class SearchResult:
    """What :func:`search_conserved_quantities` returns: the best candidate, the ranked survivors,
    every candidate (with fitted ``c`` and conservation ratio) and how many passed the threshold."""

    best: Candidate
    ranked: list[Candidate]
    candidates: list[Candidate]
    survivors: list[Candidate]
    n_passed_threshold: int


def search_conserved_quantities(
    variables: Mapping[str, Units],
    trajectories: np.ndarray,
    predictor: eqx.Module | None = None,
    val_trajectories: np.ndarray | None = None,
    *,
    max_depth: int = 2,
    max_terms: int = 10,
    max_candidates: int = 60,
    method: str = "deming",
    threshold: float = 1e-2,
    min_survivors: int = 0,
    denoise: bool = False,
    lr_grid: Sequence[float] = DEFAULT_LR_GRID,
) -> SearchResult:
    """Full search: enumerate, fit ``c``, filter by conservation ratio, rank by tailoring.

    Args:
        variables: name -> units, in the order of the state's components.
        trajectories: ``(n, L, d)`` states for fitting (and, without ``val_trajectories``,
            for ranking).
        predictor: the pretrained one-step model used for ranking; without it survivors are
            ranked by conservation ratio.
        method: how ``c`` is fitted (:func:`fit_constant`); ``"deming"`` is the least biased
            under measurement noise.
        threshold: keep formulas with conservation ratio ``<= threshold`` ([NN]: 1/100).
        min_survivors: if fewer pass, keep this many with the lowest ratio.
        denoise: subtract the noise variance (third differences) before the ratio test; with
            noise std 0.1 no formula passes 1/100 without it.
        lr_grid: inner learning rates tried for each survivor.
    Raises:
        ValueError: empty grammar, wrong shapes, non-finite trajectories, no survivor at all.
    """
    if not variables:
        raise ValueError(
            "search_conserved_quantities: `variables` is empty (empty grammar); give e.g. "
            "{'q': (0, 0, 0), 'p': (1, 2, -1)}"
        )
    names = list(variables)
    arr = _check_trajectories(trajectories, names, "search_conserved_quantities")
    if val_trajectories is not None:
        _check_trajectories(val_trajectories, names, "search_conserved_quantities")
    if threshold <= 0:
        raise ValueError(f"search_conserved_quantities: `threshold` must be > 0, got {threshold}")
    terms = enumerate_terms(variables, max_depth, max_terms)
    cands = enumerate_formulas(terms, variables, max_candidates)
    survivors = fit_and_filter(
        cands, arr, names, method=method, threshold=threshold, min_survivors=min_survivors, denoise=denoise
    )
    n_pass = sum(c.ratio <= threshold for c in cands)
    if not survivors:
        raise ValueError(
            f"search_conserved_quantities: no candidate has a conservation ratio <= {threshold}; best "
            f"is {min(c.ratio for c in cands):.3g}. Use `min_survivors` on noisy data."
        )
    if predictor is None:
        ranked = list(survivors)
    else:
        val = arr if val_trajectories is None else val_trajectories
        ranked = rank_by_tailoring(survivors, predictor, val, names, lr_grid)
    return SearchResult(ranked[0], ranked, cands, survivors, n_pass)
