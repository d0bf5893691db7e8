"""Neural IVP (Finzi, Potapczynski, Choptuik & Wilson 2023, ICLR): solve ``u_t = L[u]`` by evolving
the parameters ``theta`` of a network ``u_theta`` instead of values on a grid.

Minimising ``|| J theta_dot - L[u_theta] ||^2`` over the Monte-Carlo points ``x_n`` gives

.. math:: M(\\theta)\\, \\dot\\theta = F(\\theta), \\qquad
          M = \\tfrac1N \\textstyle\\sum_n J_n^T J_n, \\quad F = \\tfrac1N \\sum_n J_n^T L[u_\\theta](x_n),

with ``J_n = d u_theta(x_n) / d theta`` (a row of the ``N x P`` Jacobian). ``M`` is never formed:
``M v = J^T (J v) / N`` is one JVP (linearised once per right-hand side) and its transpose, so the
cost per product is linear in the number of parameters ``P``. The system ``(M + mu I) v = F`` is
solved by conjugate gradients (``lineax.CG``) preconditioned with a rank-``r`` randomized Nyström
approximation of ``M`` (:mod:`~physbias.pde.nystrom`); the damping ``mu`` is relative to the largest
eigenvalue (``mu = damping * lambda_1``). ``theta(t)`` is integrated by an adaptive Runge-Kutta solver
(``diffrax``), with fresh collocation points at every evaluation (their key is derived from ``t``,
so the right-hand side is a deterministic function of ``(t, theta)``, as an adaptive solver needs).

As ``theta`` moves, ``M`` tends to become ill-conditioned (its spectrum spreads, CG needs more
steps, the solution degrades). A *restart* projects the current solution onto a freshly initialised
network (least squares on fresh points, :func:`project_field`), which resets the conditioning.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import NamedTuple

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Float, PRNGKeyArray

from .nystrom import nystrom_approximation
from .residuals import Field

Rhs = Callable[[Field, Array], Array]
"""``rhs(u, x) -> L[u](x)`` for a field ``u`` and one point ``x`` (e.g. ``AbstractIVP.rhs``)."""


class FlatField(eqx.Module):
    """A field network as a function of its flattened parameter vector: ``flat(theta)(x)``."""

    unravel: Callable = eqx.field(static=True)
    static: eqx.Module = eqx.field(static=True)

    def __call__(self, theta: Float[Array, " p"]) -> eqx.Module:
        return eqx.combine(self.unravel(theta), self.static)


def flatten_field(field: eqx.Module) -> tuple[Float[Array, " p"], FlatField]:
    """``(theta, rebuild)`` with ``rebuild(theta) == field``."""
    params, static = eqx.partition(field, eqx.is_inexact_array)
    theta, unravel = ravel_pytree(params)
    return theta, FlatField(unravel, static)


def _rms_norm(x: Array) -> Array:
    return jnp.sqrt(jnp.mean(x**2))


def _same_layout(a: FlatField, b: FlatField, theta: Array) -> bool:
    try:
        return bool(eqx.tree_equal(a(theta), b(theta)))
    except (ValueError, TypeError):
        return False


def gram_operator(
    rebuild: FlatField, theta: Float[Array, " p"], points: Float[Array, "n d"]
) -> tuple[Array, Callable[[Array], Array], Callable[[Array], Array], Callable[[Array], Array]]:
    """``(u, J v, M v, J^T w)`` at ``theta``: the field's values at ``points`` ``(N,)``, the Jacobian
    product, the matrix-free product with ``M = J^T J / N`` and the transposed Jacobian (divided by
    ``N``), all from one linearisation."""
    n = points.shape[0]
    values, jvp = jax.linearize(lambda th: jax.vmap(rebuild(th))(points), theta)
    vjp = jax.linear_transpose(jvp, theta)

    def transpose(w: Array) -> Array:
        return vjp(w)[0] / n

    return values, jvp, lambda v: transpose(jvp(v)), transpose


class VelocityStats(NamedTuple):
    """Diagnostics of one solve of ``(M + mu I) theta_dot = F``.

    Attributes:
        cg_steps: conjugate-gradient iterations taken: the conditioning proxy that restarts keep
            bounded (at fixed damping, rank and tolerance it grows as ``M``'s spectrum spreads).
        top_eigenvalue: ``lambda_1`` of ``M`` (Nyström estimate).
        condition: ``lambda_1 / lambda_r``, the spread of the top-``r`` spectrum of ``M`` (Nyström).
        damping: ``mu``.
        residual: ``|| J theta_dot - L[u] || / || L[u] ||`` at the points (how well the network's
            tangent space holds the PDE's time derivative).
    """

    cg_steps: Array
    top_eigenvalue: Array
    condition: Array
    damping: Array
    residual: Array


def parameter_velocity(
    rebuild: FlatField,
    theta: Float[Array, " p"],
    rhs: Rhs,
    points: Float[Array, "n d"],
    key: PRNGKeyArray,
    *,
    damping: float = 1e-7,
    rank: int | None = 100,
    cg_rtol: float = 1e-6,
    cg_max_steps: int = 300,
) -> tuple[Float[Array, " p"], VelocityStats]:
    """``theta_dot`` solving ``(M + mu I) theta_dot = F`` at the Monte-Carlo ``points``, by
    preconditioned CG (no preconditioner with ``rank=None``); ``mu = damping * lambda_1(M)``. The
    defaults are :class:`NeuralIVPSettings`'. ``lambda_1`` comes from the Nyström sketch, drawn
    (at rank 8) even without a preconditioner, because the damping is relative to it."""
    p = theta.shape[0]
    _, jvp, matvec, transpose = gram_operator(rebuild, theta, points)
    target = jax.vmap(lambda x: rhs(rebuild(theta), x))(points)
    force = transpose(target)
    nystrom = nystrom_approximation(matvec, p, min(rank or 8, p), key, theta.dtype)
    lam = nystrom.eigenvalues
    mu = damping * lam[0]
    structure = jax.ShapeDtypeStruct((p,), theta.dtype)
    psd = lx.positive_semidefinite_tag
    operator = lx.FunctionLinearOperator(lambda v: matvec(v) + mu * v, structure, psd)
    options = {}
    if rank is not None:
        options["preconditioner"] = lx.FunctionLinearOperator(
            nystrom.inverse_preconditioner(mu), structure, psd
        )
    # Lineax tests |r_i| <= atol + rtol |b_i| for every i (and the same for the last update against
    # theta_dot); with atol = rtol * rms(F) and the rms norm over i this is, to a factor of about 2,
    # the usual relative residual test ||r|| <= rtol ||F||, which a near-zero F_i cannot stall.
    scale = cg_rtol * jnp.sqrt(jnp.mean(force**2))
    solver = lx.CG(rtol=cg_rtol, atol=scale, norm=_rms_norm, max_steps=cg_max_steps)
    solution = lx.linear_solve(operator, force, solver, options=options, throw=False)
    velocity = solution.value
    misfit = jnp.linalg.norm(jvp(velocity) - target) / jnp.maximum(jnp.linalg.norm(target), 1e-30)
    stats = VelocityStats(
        solution.stats["num_steps"], lam[0], lam[0] / jnp.maximum(lam[-1], 1e-30), mu, misfit
    )
    return velocity, stats


def _sample_box(key: PRNGKeyArray, n: int, dim: int, dtype) -> Array:
    return jax.random.uniform(key, (n, dim), dtype, minval=-1.0, maxval=1.0)


def project_field(
    field: eqx.Module,
    target: Callable[[Array], Array],
    key: PRNGKeyArray,
    *,
    steps: int = 2000,
    learning_rate: float = 3e-3,
    batch: int = 2048,
) -> tuple[eqx.Module, Array]:
    """Fit ``field`` to ``target`` on ``[-1, 1]^d`` by Adam (cosine-decayed) on the mean squared
    error at ``batch`` fresh uniform points per step (one ``lax.scan``). Used for the initial
    condition and for restarts. Returns ``(field, relative_rms_error)`` on a final fresh batch."""
    for name, value in (("steps", steps), ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    dim = field.dim
    params, static = eqx.partition(field, eqx.is_inexact_array)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

    def loss(p, x):
        model = eqx.combine(p, static)
        return jnp.mean((jax.vmap(model)(x) - jax.vmap(target)(x)) ** 2)

    def step(carry, k):
        p, state = carry
        value, grads = jax.value_and_grad(loss)(p, _sample_box(k, batch, dim, dtype))
        with jax.numpy_dtype_promotion("standard"):  # optax's schedules mix int steps and floats
            updates, state = optimizer.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), value

    @jax.jit
    def run(p, k):
        k_steps, k_test = jax.random.split(k)
        (p, _), _ = jax.lax.scan(step, (p, optimizer.init(p)), jax.random.split(k_steps, steps))
        x = _sample_box(k_test, 4 * batch, dim, dtype)
        ref = jax.vmap(target)(x)
        err = jnp.sqrt(jnp.mean((jax.vmap(eqx.combine(p, static))(x) - ref) ** 2) / jnp.mean(ref**2))
        return p, err

    params, error = run(params, key)
    return eqx.combine(params, static), error


def _time_key(key: PRNGKeyArray, t: Array) -> PRNGKeyArray:
    # Points depend on (key, t) only: the same stage re-evaluated gives the same right-hand side.
    bits = jax.lax.bitcast_convert_type(jnp.asarray(t, jnp.float32), jnp.int32)
    return jax.random.fold_in(key, bits)


class NeuralIVPSettings(eqx.Module):
    """The solver's knobs. The defaults reach a relative error of 6e-3 at ``t = 0.5`` on the 2-D
    advection benchmark with a 10k-parameter network in float64 (``physbias run neural-ivp``).

    Attributes:
        points: Monte-Carlo points per right-hand-side evaluation.
        damping: ``mu / lambda_1(M)``.
        rank: Nyström preconditioner rank (None: plain CG).
        cg_rtol, cg_max_steps: CG stopping rule.
        rtol, atol: the adaptive step-size controller's tolerances (on ``theta``).
        max_steps: the ODE solver's step budget per segment.
    """

    points: int = eqx.field(static=True, default=4096)
    damping: float = eqx.field(static=True, default=1e-7)
    rank: int | None = eqx.field(static=True, default=100)
    cg_rtol: float = eqx.field(static=True, default=1e-6)
    cg_max_steps: int = eqx.field(static=True, default=300)
    rtol: float = eqx.field(static=True, default=1e-3)
    atol: float = eqx.field(static=True, default=1e-4)
    max_steps: int = eqx.field(static=True, default=500)

    def __check_init__(self):
        for name in ("points", "cg_max_steps", "max_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
        if self.rank is not None and (not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"`rank` must be a positive integer or None, got {self.rank!r}")
        for name in ("damping", "cg_rtol", "rtol", "atol"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"`{name}` must be a positive number, got {value!r}")


def _monte_carlo_velocity(rebuild, theta, rhs, dim: int, key, settings: NeuralIVPSettings):
    """:func:`parameter_velocity` at ``settings.points`` fresh uniform points drawn with ``key``."""
    k_points, k_nystrom = jax.random.split(key)
    points = _sample_box(k_points, settings.points, dim, theta.dtype)
    return parameter_velocity(
        rebuild,
        theta,
        rhs,
        points,
        k_nystrom,
        damping=settings.damping,
        rank=settings.rank,
        cg_rtol=settings.cg_rtol,
        cg_max_steps=settings.cg_max_steps,
    )


def velocity_field(rebuild: FlatField, rhs: Rhs, dim: int, key: PRNGKeyArray, settings: NeuralIVPSettings):
    """``f(t, theta) = theta_dot`` with fresh points per ``t`` (the diffrax vector field)."""

    def f(t, theta, args):
        return _monte_carlo_velocity(rebuild, theta, rhs, dim, _time_key(key, t), settings)[0]

    return f


@eqx.filter_jit
def _integrate(theta, t0, t1, rebuild, rhs, dim, key, settings: NeuralIVPSettings):
    term = diffrax.ODETerm(velocity_field(rebuild, rhs, dim, key, settings))
    solution = diffrax.diffeqsolve(
        term,
        diffrax.Bosh3(),
        t0,
        t1,
        dt0=None,
        y0=theta,
        stepsize_controller=diffrax.PIDController(rtol=settings.rtol, atol=settings.atol),
        max_steps=settings.max_steps,
        throw=False,
    )
    ok = solution.result == diffrax.RESULTS.successful
    return solution.ys[-1], solution.stats["num_accepted_steps"], solution.stats["num_rejected_steps"], ok


@eqx.filter_jit
def _diagnose(theta, rebuild, rhs, dim, key, settings: NeuralIVPSettings):
    return _monte_carlo_velocity(rebuild, theta, rhs, dim, key, settings)[1]


class NeuralIVPResult(NamedTuple):
    """What :func:`neural_ivp` returns (host values).

    Attributes:
        times: the save times ``(T,)``, starting at 0.
        fields: the solution network at each save time.
        cg_steps, condition, top_eigenvalue, residual: :class:`VelocityStats` at each save time
            (before any restart there).
        restarts: the times at which the network was refitted.
        projection_errors: the relative RMS error of each fit (initial condition first).
        ode_steps: accepted and rejected steps of the ODE solver, summed.
        seconds: wall time of the evolution (excluding the initial fit), restarts included.
        segment_seconds: wall time of each segment's ODE solve (the first includes compilation,
            and so does the first after a restart).
        failed: True if a segment's ODE solve did not succeed (step budget or non-finite values);
            the result then stops at the last good save time.
    """

    times: np.ndarray
    fields: list
    cg_steps: np.ndarray
    condition: np.ndarray
    top_eigenvalue: np.ndarray
    residual: np.ndarray
    restarts: list
    projection_errors: list
    ode_steps: tuple[int, int]
    seconds: float
    segment_seconds: list
    failed: bool


def neural_ivp(
    ivp,
    field: eqx.Module,
    key: PRNGKeyArray,
    save_times,
    settings: NeuralIVPSettings | None = None,
    *,
    restart_cg_steps: int | None = None,
    new_field: Callable[[PRNGKeyArray], eqx.Module] | None = None,
    fit_steps: int = 2000,
    fit_learning_rate: float = 3e-3,
    fit_batch: int = 2048,
) -> NeuralIVPResult:
    """Evolve ``field`` (fitted to ``ivp.initial`` first) from ``t = 0`` through ``save_times``.

    Args:
        ivp: an :class:`~physbias.pde.ivps.AbstractIVP` (``dim``, ``initial``, ``rhs``).
        field: an untrained network ``x -> u`` with a ``dim`` attribute (e.g. :class:`DirichletField`).
        key: randomness for the fits, the points and the preconditioner.
        save_times: increasing positive times; the solver stops at each to record diagnostics.
        settings: :class:`NeuralIVPSettings`.
        restart_cg_steps: refit a fresh network (``new_field(key)``) at a save time where the
            conditioning proxy, the number of preconditioned CG steps the solve needs, exceeds
            this; None: never restart.
        new_field: builds the fresh network of a restart.
        fit_steps, fit_learning_rate, fit_batch: the least-squares fits (:func:`project_field`).
    """
    save_times = np.asarray(save_times, np.float64)
    if save_times.ndim != 1 or save_times.size == 0:
        raise ValueError(f"`save_times` must be a non-empty 1-D sequence, got shape {save_times.shape}")
    if not np.all(np.isfinite(save_times)) or save_times[0] <= 0 or np.any(np.diff(save_times) <= 0):
        raise ValueError(f"`save_times` must be finite, positive and increasing, got {save_times}")
    if restart_cg_steps is not None:
        if not isinstance(restart_cg_steps, int) or restart_cg_steps < 1:
            raise ValueError(f"`restart_cg_steps` must be a positive integer, got {restart_cg_steps!r}")
        if new_field is None:
            raise ValueError("`new_field` (a key -> network function) is needed for restarts")
    settings = NeuralIVPSettings() if settings is None else settings
    dim = field.dim
    fit = dict(steps=fit_steps, learning_rate=fit_learning_rate, batch=fit_batch)
    k_fit, key = jax.random.split(key)
    field, error = project_field(field, ivp.initial, k_fit, **fit)
    projection_errors = [float(error)]
    theta, rebuild = flatten_field(field)
    rhs = ivp.rhs
    start = time.perf_counter()
    times, fields, stats, restarts = [0.0], [field], [], []
    accepted = rejected = 0
    segment_seconds = []
    failed = False
    t0 = 0.0
    stats.append(_diagnose(theta, rebuild, rhs, dim, jax.random.fold_in(key, 0), settings))
    for i, t1 in enumerate(save_times, start=1):
        if not np.isfinite(float(stats[-1].residual)):
            # CG broke down (non-finite velocity): every step would be rejected; stop here.
            warnings.warn(
                f"neural_ivp: non-finite parameter velocity at t = {t0:g} (CG breakdown); stopping. In "
                "float32 raise `damping` (about 1e-4) or run in float64.",
                stacklevel=2,
            )
            failed = True
            break
        k_seg = jax.random.fold_in(key, i)
        tick = time.perf_counter()
        # Times as arrays: filter_jit would treat Python floats as static and recompile per segment.
        span = jnp.asarray([t0, t1], theta.dtype)
        theta_new, acc, rej, ok = _integrate(theta, span[0], span[1], rebuild, rhs, dim, k_seg, settings)
        theta_new.block_until_ready()
        segment_seconds.append(time.perf_counter() - tick)
        accepted, rejected = accepted + int(acc), rejected + int(rej)
        if not bool(ok) or not bool(jnp.all(jnp.isfinite(theta_new))):
            failed = True
            break
        theta, t0 = theta_new, float(t1)
        field = rebuild(theta)
        s = _diagnose(theta, rebuild, rhs, dim, jax.random.fold_in(k_seg, 1), settings)
        times.append(t0)
        fields.append(field)
        stats.append(s)
        if restart_cg_steps is not None and int(s.cg_steps) > restart_cg_steps and i < len(save_times):
            k_new, k_refit = jax.random.split(jax.random.fold_in(k_seg, 2))
            field, error = project_field(new_field(k_new), field, k_refit, **fit)
            projection_errors.append(float(error))
            restarts.append(t0)
            theta, fresh = flatten_field(field)
            # Keep the old (hashable, already compiled) rebuild when the layout is unchanged.
            if not _same_layout(fresh, rebuild, theta):
                rebuild = fresh
    host = lambda name: np.asarray([float(getattr(s, name)) for s in stats])  # noqa: E731
    return NeuralIVPResult(
        np.asarray(times),
        fields,
        host("cg_steps"),
        host("condition"),
        host("top_eigenvalue"),
        host("residual"),
        restarts,
        projection_errors,
        (accepted, rejected),
        time.perf_counter() - start,
        segment_seconds,
        failed,
    )
