"""``physbias run ising``: the 2-D Ising model by checkerboard Metropolis against Onsager's exact
solution, and the critical temperature from the crossing of Binder cumulants (M10; seed 000).

For each lattice side ``L`` all temperatures run together (one vmapped ``lax.scan``) from the ordered
state; after burn-in, ``<|m|>``, ``u = <E>/N``, the specific heat, the susceptibility and the Binder
cumulant ``U = 1 - <m^4>/(3<m^2>^2)`` are averaged over the sweeps. ``U_L(T)`` curves of different
``L`` cross near ``T_c = 2/ln(1 + sqrt 2)``; the crossing is found by linear interpolation.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from ..report import Figure, Panel, Result, series
from ..statphys import (
    ONSAGER_CRITICAL_TEMPERATURE,
    IsingChain,
    IsingModel,
    binder_crossing,
    metropolis,
    observables,
    onsager_energy,
    onsager_magnetisation,
)
from ._config import ExperimentConfig, nonnegative, positive
from ._registry import Experiment

DEFAULT_TEMPERATURES = (1.5, 1.75, 2.0, 2.1, 2.2, 2.24, 2.27, 2.3, 2.34, 2.4, 2.5, 2.75, 3.0, 3.5)


@dataclasses.dataclass(frozen=True)
class IsingConfig(ExperimentConfig):
    """L = 8, 16, 32; 14 temperatures from 1.5 to 3.5 (dense near T_c); 20 000 sweeps after 2000."""

    QUICK = {
        "sizes": (8, 16),
        "sweeps": 4000,
        "burn_in": 400,
        "temperatures": (1.5, 2.0, 2.2, 2.27, 2.35, 2.5, 3.0),
    }
    FULL = {"sizes": (8, 16, 32, 64), "sweeps": 100_000, "burn_in": 10_000}

    sizes: tuple[int, ...] = positive((8, 16, 32))
    temperatures: tuple[float, ...] = positive(DEFAULT_TEMPERATURES)
    sweeps: int = positive(20_000)
    burn_in: int = nonnegative(2000)

    def check(self) -> None:
        if any(s % 2 or s < 2 for s in self.sizes):
            raise ValueError(f"config `sizes` must be even integers >= 2, got {self.sizes}")
        if list(self.temperatures) != sorted(set(self.temperatures)):
            raise ValueError(f"config `temperatures` must be increasing, got {self.temperatures}")


def run(config: IsingConfig, *, seed: int = 0, progress: bool = True) -> Result:
    temps = np.asarray(config.temperatures, np.float64)
    exact_m, exact_u = onsager_magnetisation(temps), onsager_energy(temps)
    table, curves = [], {"m": [], "u": [], "c": [], "binder": []}
    binders = {}
    for size in config.sizes:
        model = IsingModel(size, 2)
        start = time.perf_counter()
        chains = metropolis(
            model, jax.random.fold_in(jax.random.key(seed), size), temps, config.sweeps, config.burn_in
        )
        jax.block_until_ready(chains)
        seconds = time.perf_counter() - start
        flips = model.sites * (config.sweeps + config.burn_in) * len(temps)
        rows = []
        for i, t in enumerate(temps):
            obs = observables(IsingChain(*(x[i] for x in chains)), model, float(t))
            rows.append(
                {
                    "L": size,
                    "T": float(t),
                    "abs_m": obs.abs_magnetisation,
                    "abs_m_onsager": float(exact_m[i]),
                    "abs_m_error": obs.abs_magnetisation - float(exact_m[i]),
                    "u": obs.energy,
                    "u_onsager": float(exact_u[i]),
                    "u_error": obs.energy - float(exact_u[i]),
                    "specific_heat": obs.specific_heat,
                    "susceptibility": obs.susceptibility,
                    "binder": obs.binder,
                    "seconds": round(seconds, 2),
                    "spin_flips_per_s": flips / seconds,
                }
            )
        table.extend(rows)
        binders[size] = np.array([r["binder"] for r in rows])
        for name, key in (("m", "abs_m"), ("u", "u"), ("c", "specific_heat"), ("binder", "binder")):
            curves[name].append(series(f"L = {size}", temps, np.array([r[key] for r in rows])))
        if progress:
            print(f"ising: L = {size} done in {seconds:.1f} s", flush=True)
    sizes = sorted(config.sizes)
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        crossing = binder_crossing(temps, binders[a], binders[b])
        table.append(
            {
                "L": f"{a} x {b}",
                "T": crossing,
                "binder_crossing_minus_tc": crossing - ONSAGER_CRITICAL_TEMPERATURE,
            }
        )
    fine = np.linspace(temps[0], temps[-1], 400)
    panels = [
        Panel(
            "<|m|>",
            "T",
            "<|m|>",
            curves["m"] + [series("Onsager (L = inf)", fine, onsager_magnetisation(fine), style="reference")],
        ),
        Panel(
            "energy per spin",
            "T",
            "u",
            curves["u"] + [series("Onsager (L = inf)", fine, onsager_energy(fine), style="reference")],
        ),
        Panel("specific heat", "T", "c", curves["c"]),
        Panel("Binder cumulant", "T", "U", curves["binder"]),
    ]
    notes = [
        f"T_c = 2/ln(1 + sqrt 2) = {ONSAGER_CRITICAL_TEMPERATURE:.5f}; Onsager values are for the infinite "
        "lattice, so finite L deviates near T_c (above it, <|m|> ~ L^-1 instead of 0).",
        "binder_crossing_minus_tc: where U_L and U_2L cross, linearly interpolated on the temperature grid.",
        f"{config.sweeps} sweeps after {config.burn_in} burn-in sweeps from the ordered state, per "
        "temperature.",
    ]
    return Result(
        "ising",
        dataclasses.asdict(config),
        table,
        figures=[Figure("observables", "2-D Ising: Metropolis vs Onsager", panels, columns=4)],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "ising",
    "The 2-D Ising model by checkerboard Metropolis: <|m|>, energy, specific heat and Binder cumulants vs T "
    "for several L, against Onsager's exact solution and T_c.",
    IsingConfig,
    run,
)
