"""``physbias run integrators``: energy error vs time and global error vs step size for Euler,
RK4, leapfrog and Yoshida-4 on a pendulum and a Kepler orbit (float64).

Orders of convergence are measured as the slope of log(error at ``t_conv``) against log(dt),
the reference being an adaptive 8th-order solution at tolerance 1e-13. Energy behaviour is
measured over a long horizon: symplectic methods keep a bounded energy error, the others drift.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from ..dynamics import RK4, Euler, Leapfrog, Yoshida4, rollout, solve_adaptive
from ..metrics import convergence_order, energy_drift
from ..report import Figure, Panel, Result, series
from ..systems import Kepler, Pendulum
from ._config import ExperimentConfig, positive
from ._registry import Experiment

METHODS = {"euler": Euler(), "rk4": RK4(), "leapfrog": Leapfrog(), "yoshida4": Yoshida4()}
FIELD_EVALS = {"euler": 1, "rk4": 4, "leapfrog": 3, "yoshida4": 9}


@dataclasses.dataclass(frozen=True)
class IntegratorsConfig(ExperimentConfig):
    QUICK = {"periods": 20, "convergence_levels": 5}
    FULL = {"periods": 1000}

    pendulum_amplitude: float = positive(1.5)
    kepler_eccentricity: float = 0.5
    dt_pendulum: float = positive(0.05)
    dt_kepler: float = positive(0.01)
    periods: int = positive(200)
    convergence_levels: int = positive(6)

    def check(self):
        if not 0 < self.pendulum_amplitude < np.pi:
            raise ValueError(f"config `pendulum_amplitude` must be in (0, pi), got {self.pendulum_amplitude}")
        if not 0 <= self.kepler_eccentricity < 0.9:
            raise ValueError(
                f"config `kepler_eccentricity` must be in [0, 0.9), got {self.kepler_eccentricity}"
            )


def _cases(config):
    e = config.kepler_eccentricity
    pendulum = Pendulum(mass=1.0, length=1.0, gravity=9.81)
    kepler = Kepler(GM=1.0, eccentricity=(e, e))
    z_pend = jnp.array([config.pendulum_amplitude, 0.0])
    r = 1.0 - e
    z_kep = jnp.array([r, 0.0, 0.0, np.sqrt(2.0 / r - 1.0)])
    # Periods: Kepler 2 pi (a = 1, GM = 1); pendulum from the reference solution's first return.
    return {
        "pendulum": (pendulum, z_pend, config.dt_pendulum, pendulum.period(config.pendulum_amplitude)),
        "kepler": (kepler, z_kep, config.dt_kepler, 2 * np.pi),
    }


def run(config: IntegratorsConfig, *, seed: int = 0, progress: bool = True) -> Result:
    del seed, progress  # deterministic and short per step
    start = time.perf_counter()
    table, figures = [], []
    with jax.enable_x64(True):
        for name, (system, z0, dt, period) in _cases(config).items():
            z0 = jnp.asarray(z0, jnp.float64)
            t_conv = period
            ref = solve_adaptive(system.field, z0, jnp.array([0.0, t_conv]), rtol=1e-13, atol=1e-13)[-1]
            steps = int(round(config.periods * period / dt))
            energy_curves, conv_curves = [], []
            for method_name, method in METHODS.items():
                # Convergence: global error at one period for dt, dt/2, dt/4, ...
                dts, errs = [], []
                for level in range(config.convergence_levels):
                    n = int(round(t_conv / dt)) * 2**level
                    solve = jax.jit(
                        lambda z, f=system.field, h=t_conv / n, n=n, m=method: rollout(f, z, h, n, m)
                    )
                    dts.append(t_conv / n)
                    errs.append(float(jnp.linalg.norm(solve(z0)[-1] - ref)))
                order = convergence_order(dts, errs)
                # Long horizon at the base step.
                t0 = time.perf_counter()
                solve = jax.jit(lambda z, f=system.field, n=steps, h=dt, m=method: rollout(f, z, h, n, m))
                traj = solve(z0)
                traj.block_until_ready()
                seconds = time.perf_counter() - t0
                drift = np.asarray(energy_drift(system.energy, traj))
                tenth = max(1, len(drift) // 10)
                finite = np.isfinite(drift)
                table.append(
                    {
                        "system": name,
                        "integrator": method_name,
                        "symplectic": method.symplectic,
                        "order_expected": method.order,
                        "order_measured": order,
                        "field_evals_per_step": FIELD_EVALS[method_name],
                        "dt": dt,
                        "steps": steps,
                        "energy_error_max": float(np.max(drift)) if finite.all() else float("inf"),
                        "energy_error_final": float(drift[-1]),
                        "energy_error_growth": float(
                            np.max(drift[-tenth:]) / max(np.max(drift[1 : tenth + 1]), 1e-300)
                        ),
                        "rollout_seconds": seconds,
                    }
                )
                t = dt * np.arange(len(drift))
                energy_curves.append(series(method_name, t, np.maximum(drift, 1e-17)))
                conv_curves.append(series(method_name, dts, errs))
            figures.append(
                Figure(
                    f"energy_{name}",
                    f"{name}: relative energy error vs time (dt={dt})",
                    [Panel(name, "time", "|E(t) - E(0)| / |E(0)|", energy_curves, logy=True)],
                    1,
                )
            )
            figures.append(
                Figure(
                    f"convergence_{name}",
                    f"{name}: global error after one period vs dt",
                    [Panel(name, "dt", "|z(T) - z_ref(T)|", conv_curves, logx=True, logy=True)],
                    1,
                )
            )
    notes = [
        "float64 throughout; reference = adaptive Dopri8 at rtol = atol = 1e-13.",
        "energy_error_growth = max energy error over the last tenth / over the first tenth of the run: "
        "about 1 for a bounded error, >> 1 for a drift.",
        f"pendulum amplitude {config.pendulum_amplitude} rad; Kepler eccentricity "
        f"{config.kepler_eccentricity}; {config.periods} periods; orders fitted where 1e-11 < error < 1e-2.",
    ]
    return Result(
        "integrators", dataclasses.asdict(config), table, time.perf_counter() - start, figures, notes
    )


EXPERIMENT = Experiment(
    "integrators",
    "Energy error vs time and global error vs step size for Euler, RK4, leapfrog and Yoshida-4 "
    "on a pendulum and a Kepler orbit; measured orders of convergence.",
    IntegratorsConfig,
    run,
)
