"""``physbias run neural-ivp``: initial value problems solved by evolving a network's parameters,
``M(theta) theta_dot = F(theta)`` (M17; Finzi, Potapczynski, Choptuik & Wilson 2023).

Advection and heat in 1-D and 2-D on ``[-1, 1]^d`` with exact solutions (``physbias.pde.IVPS``), a
~10k-parameter sinusoidal-embedding MLP with the zero Dirichlet boundary built in
(``DirichletField``), Monte-Carlo points per right-hand side, matrix-free ``M v``, Nyström-
preconditioned CG (Lineax) and an adaptive Bosh3 solver (Diffrax), in float64 by default (as the
reference runs its CG; see ``physbias.pde.nystrom`` on float32). Reported: the relative L2 error
against the exact solution at every save time, the conditioning proxy (preconditioned CG steps) and
the wall time per unit of simulated time; then the same problem with restarts (a fresh network
refitted whenever the proxy passes ``restart_cg_steps``) against none.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..metrics import parameter_count
from ..pde import IVPS, DirichletField, NeuralIVPSettings, get_ivp, neural_ivp
from ..report import Figure, Panel, Result, series
from ._config import ExperimentConfig, one_of, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class NeuralIVPConfig(ExperimentConfig):
    """MLP 24-64x3-1 (swish; 9985 parameters in 2-D), 4096 points per evaluation, rank-100 Nyström,
    damping 1e-7 lambda_1, CG to 1e-6, Bosh3 at rtol 1e-3, float64; saves every 0.1 up to 0.5."""

    QUICK = {
        "problems": ("heat-1d",),
        "width": 16,
        "depth": 2,
        "points": 512,
        "rank": 16,
        "fit_steps": 1500,
        "t_end": 0.2,
        "restart_problem": "heat-1d",
        "restart_cg_steps": 2,
    }

    problems: tuple[str, ...] = one_of(tuple(IVPS), tuple(IVPS))
    width: int = positive(64)
    depth: int = positive(3)
    octaves: int = positive(6)
    points: int = positive(4096)
    damping: float = positive(1e-7)
    rank: int = positive(100)
    cg_rtol: float = positive(1e-6)
    cg_max_steps: int = positive(300)
    rtol: float = positive(1e-3)
    fit_steps: int = positive(10_000)
    fit_learning_rate: float = positive(3e-3)
    fit_batch: int = positive(2048)
    save_every: float = positive(0.1)
    t_end: float = positive(0.5)
    restart_problem: str = one_of("advection-2d", tuple(IVPS) + ("none",))
    restart_cg_steps: int = positive(60)
    dtype: str = one_of("float64", ("float32", "float64"))
    grid: int = positive(100)

    def check(self) -> None:
        if self.save_every > self.t_end:
            raise ValueError(
                f"config `save_every` ({self.save_every}) must not exceed `t_end` ({self.t_end})"
            )


def _grid(dim: int, n: int, dtype) -> jnp.ndarray:
    """``n^d`` (1-D: ``4 n``) evaluation points on ``[-1, 1]^d``."""
    axis = np.linspace(-1, 1, 4 * n if dim == 1 else n)
    mesh = np.stack(np.meshgrid(*[axis] * dim, indexing="ij"), -1).reshape(-1, dim)
    return jnp.asarray(mesh, dtype)


@eqx.filter_jit
def _values(field, points):
    return jax.vmap(field)(points)


def _solve(name: str, config: NeuralIVPConfig, seed: int, restarts: bool):
    ivp = get_ivp(name)
    dtype = jnp.float64 if config.dtype == "float64" else jnp.float32

    def new_field(key):
        return DirichletField(ivp.dim, key, config.width, config.depth, config.octaves, dtype=dtype)

    settings = NeuralIVPSettings(
        points=config.points,
        damping=config.damping,
        rank=config.rank,
        cg_rtol=config.cg_rtol,
        cg_max_steps=config.cg_max_steps,
        rtol=config.rtol,
        atol=config.rtol / 10,
    )
    key = jax.random.fold_in(jax.random.key(seed), list(IVPS).index(name))
    k_net, k_run = jax.random.split(key)
    save_times = np.arange(1, round(config.t_end / config.save_every) + 1) * config.save_every
    start = time.perf_counter()
    result = neural_ivp(
        ivp,
        new_field(k_net),
        k_run,
        save_times,
        settings,
        restart_cg_steps=config.restart_cg_steps if restarts else None,
        new_field=new_field,
        fit_steps=config.fit_steps,
        fit_learning_rate=config.fit_learning_rate,
        fit_batch=config.fit_batch,
    )
    total = time.perf_counter() - start
    grid = _grid(ivp.dim, config.grid, dtype)
    errors = []
    for t, field in zip(result.times, result.fields, strict=True):
        exact = np.asarray(jax.vmap(lambda x, t=t: ivp.exact(x, t))(grid))
        pred = np.asarray(_values(field, grid))
        errors.append(float(np.linalg.norm(pred - exact) / np.linalg.norm(exact)))
    # Steady-state speed: the segments after the first (which includes compilation), without
    # restarts' refits.
    steady = result.segment_seconds[1:] or result.segment_seconds
    per_unit = sum(steady) / (len(steady) * config.save_every) if steady else float("nan")
    rows = [
        {
            "problem": name,
            "restarts": restarts,
            "t": round(float(t), 6),
            "relative_l2": err,
            "cg_steps": int(cg),
            "tangent_residual": float(res),
            "spectrum_spread": float(cond),
            "restarted_here": bool(any(abs(r - t) < 1e-9 for r in result.restarts)),
            "parameters": parameter_count(result.fields[0]),
            "ode_steps": result.ode_steps[0] + result.ode_steps[1],
            "restart_count": len(result.restarts),
            "evolve_seconds": round(result.seconds, 1),
            "seconds_per_unit_time": round(per_unit, 1),
            "total_seconds": round(total, 1),
            "failed": result.failed,
        }
        for t, err, cg, res, cond in zip(
            result.times, errors, result.cg_steps, result.residual, result.condition, strict=True
        )
    ]
    return rows, result, grid


def run(config: NeuralIVPConfig, *, seed: int = 0, progress: bool = True) -> Result:
    with jax.enable_x64(config.dtype == "float64"):
        return _run(config, seed, progress)


def _run(config: NeuralIVPConfig, seed: int, progress: bool) -> Result:
    table, error_series, cg_series, slices = [], [], [], []
    runs = [(name, False) for name in config.problems]
    if config.restart_problem != "none":
        runs.append((config.restart_problem, True))
        if config.restart_problem not in config.problems:
            runs.append((config.restart_problem, False))
    for name, restarts in runs:
        if progress:
            print(f"neural-ivp: {name}{' with restarts' if restarts else ''} ...", flush=True)
        rows, result, grid = _solve(name, config, seed, restarts)
        table.extend(rows)
        label = f"{name}{' (restarts)' if restarts else ''}"
        t = np.array([r["t"] for r in rows])
        error_series.append(series(label, t, np.array([r["relative_l2"] for r in rows])))
        if name == config.restart_problem:
            cg_series.append(series(label, t, np.array([r["cg_steps"] for r in rows], float)))
        if not restarts:
            ivp = get_ivp(name)
            # The diagonal x_1 = ... = x_d through the box, at the last save time.
            s = jnp.linspace(-1, 1, 201, dtype=grid.dtype)
            line = jnp.stack([s] * ivp.dim, 1)
            t_last = float(result.times[-1])
            exact = np.asarray(jax.vmap(lambda x, ivp=ivp, t=t_last: ivp.exact(x, t))(line))
            slices.append(
                Panel(
                    f"{name}, t = {t_last:g} (diagonal)",
                    "s",
                    "u",
                    [
                        series("exact", np.asarray(s), exact, style="reference"),
                        series("neural IVP", np.asarray(s), np.asarray(_values(result.fields[-1], line))),
                    ],
                )
            )
    panels = [Panel("relative L2 error", "t", "relative L2", error_series, logy=True)]
    if cg_series:
        panels.append(Panel("conditioning proxy: CG steps", "t", "CG steps", cg_series))
    notes = [
        "relative_l2: against the exact solution on a 100^d grid (1-D: 400 points) at each save time; t = 0 "
        "is the least-squares fit of the initial condition.",
        "cg_steps: preconditioned CG iterations to reach the tolerance at that time (fixed damping, rank and "
        "tolerance), the conditioning proxy; tangent_residual: |J theta_dot - L u| / |L u|, how well the "
        "network's tangent space holds the PDE's time derivative.",
        f"restarts: a fresh network refitted to the current solution whenever cg_steps > "
        f"{config.restart_cg_steps} at a save time.",
    ]
    return Result(
        "neural-ivp",
        dataclasses.asdict(config),
        table,
        figures=[
            Figure("errors", "Neural IVP: error and conditioning over time", panels, columns=len(panels)),
            Figure("slices", "Neural IVP: solutions at the last save time", slices, columns=len(slices)),
        ],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "neural-ivp",
    "Neural IVP (Finzi et al. 2023): advection and heat in 1-D and 2-D by evolving a network's parameters "
    "(matrix-free M v, Nystrom-preconditioned CG, adaptive steps), with and without restarts.",
    NeuralIVPConfig,
    run,
)
