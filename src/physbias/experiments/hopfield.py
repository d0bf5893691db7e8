"""``physbias run hopfield``: associative memory in classical and modern Hopfield networks (M10;
seed 000).

**Classical.** For each load ``alpha = P / N`` a random set of ``P`` bipolar patterns is stored in
Hebbian couplings; a stored pattern with a fraction ``corruption`` of its signs flipped is the
probe, and the dynamics (asynchronous, and synchronous for comparison) run until a sweep changes
nothing. A retrieval succeeds when the final overlap with the pattern is at least
``success_overlap``. Expected: near-perfect retrieval below the capacity ``alpha_c ~ 0.138``, a
collapse above it (Amit, Gutfreund & Sompolinsky 1985).

**Modern.** ``P`` random bipolar patterns in dimension ``d``; one update
``xi <- X softmax(beta X^T xi)`` from a corrupted pattern. Exact retrieval: the result equals the
stored pattern to ``exact_tolerance`` in every component. Large ``beta`` separates the pattern from
the others even for ``P = 10^5`` in ``d = 128`` (exponential capacity); small ``beta`` averages
patterns (Ramsauer et al. 2021).
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..report import Figure, Panel, Result, series
from ..statphys import CLASSICAL_CAPACITY, HopfieldNetwork, ModernHopfield, corrupt, overlap
from ._config import ExperimentConfig, fraction, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class HopfieldConfig(ExperimentConfig):
    """N = 500, loads 0.05-0.25, 100 probes per load; modern: d = 128, P up to 10^5, beta 0.05-2."""

    QUICK = {
        "neurons": 200,
        "pattern_sets": 2,
        "probes": 10,
        "modern_patterns": (100, 1000, 10_000),
        "modern_probes": 50,
    }
    FULL = {"pattern_sets": 10, "modern_patterns": (100, 1000, 10_000, 100_000, 300_000)}

    neurons: int = positive(500)
    loads: tuple[float, ...] = positive((0.05, 0.08, 0.10, 0.12, 0.138, 0.15, 0.18, 0.20, 0.25))
    pattern_sets: int = positive(5)
    probes: int = positive(20)
    corruption: float = fraction(0.1)
    success_overlap: float = fraction(0.95)
    sweeps: int = positive(30)
    modern_dim: int = positive(128)
    modern_patterns: tuple[int, ...] = positive((100, 1000, 10_000, 100_000))
    betas: tuple[float, ...] = positive((0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.0))
    modern_probes: int = positive(100)
    exact_tolerance: float = positive(1e-3)

    def check(self) -> None:
        if self.neurons < 10:
            raise ValueError(f"config `neurons` must be at least 10, got {self.neurons}")
        if any(round(a * self.neurons) < 1 for a in self.loads):
            raise ValueError(f"config `loads` must each store at least one pattern in {self.neurons} neurons")


def _bipolar(key, shape) -> jax.Array:
    return jnp.where(jax.random.bernoulli(key, 0.5, shape), 1.0, -1.0)


@eqx.filter_jit
def _classical_trials(couplings, patterns, key, corruption: float, sweeps: int, mode: str):
    """Final overlaps of ``patterns`` ``(probes, N)`` retrieved from corrupted copies."""
    net = HopfieldNetwork(couplings)
    k_corrupt, k_run = jax.random.split(key)
    probes = jax.vmap(lambda p, k: corrupt(p, k, corruption))(
        patterns, jax.random.split(k_corrupt, len(patterns))
    )
    states, ran = jax.vmap(lambda p, k: net.retrieve(p, k, sweeps=sweeps, mode=mode))(
        probes, jax.random.split(k_run, len(patterns))
    )
    return overlap(states, patterns), ran


def _classical(config: HopfieldConfig, key, progress: bool) -> list[dict]:
    rows = []
    for a, load in enumerate(config.loads):
        count = round(load * config.neurons)
        results = {"asynchronous": ([], []), "synchronous": ([], [])}
        start = time.perf_counter()
        for s in range(config.pattern_sets):
            k_patterns, k_pick, k_trial = jax.random.split(jax.random.fold_in(key, a * 1000 + s), 3)
            patterns = _bipolar(k_patterns, (count, config.neurons))
            net = HopfieldNetwork.from_patterns(patterns, capacity_warning=False)
            picked = patterns[jax.random.randint(k_pick, (config.probes,), 0, count)]
            for mode, (overlaps, sweeps) in results.items():
                m, ran = _classical_trials(
                    net.couplings, picked, k_trial, config.corruption, config.sweeps, mode
                )
                overlaps.append(np.asarray(m))
                sweeps.append(np.asarray(ran))
        seconds = time.perf_counter() - start
        for mode, (overlaps, sweeps) in results.items():
            m = np.concatenate(overlaps)
            rows.append(
                {
                    "network": "classical",
                    "dynamics": mode,
                    "N": config.neurons,
                    "alpha": load,
                    "P": count,
                    "trials": m.size,
                    "success": float(np.mean(m >= config.success_overlap)),
                    "mean_overlap": float(np.mean(m)),
                    "mean_sweeps": float(np.mean(np.concatenate(sweeps))),
                    "seconds": round(seconds, 3),
                }
            )
        if progress:
            row = rows[-2]
            print(
                f"hopfield: alpha = {load:.3f}: {100 * row['success']:.0f}% retrieved "
                f"(asynchronous, mean overlap {row['mean_overlap']:.3f})",
                flush=True,
            )
    return rows


@eqx.filter_jit
def _modern_trial(patterns, picked, key, beta, corruption: float, tolerance: float):
    net = ModernHopfield(patterns, beta)
    targets = patterns[picked]
    probes = jax.vmap(lambda p, k: corrupt(p, k, corruption))(targets, jax.random.split(key, len(picked)))
    retrieved = net.update(probes)
    error = jnp.max(jnp.abs(retrieved - targets), axis=-1)
    return error < tolerance, overlap(jnp.sign(retrieved), targets), error


def _modern(config: HopfieldConfig, key, progress: bool) -> list[dict]:
    rows = []
    for count in config.modern_patterns:
        k_patterns, k_pick, k_trial = jax.random.split(jax.random.fold_in(key, count), 3)
        patterns = _bipolar(k_patterns, (count, config.modern_dim))
        picked = jax.random.randint(k_pick, (config.modern_probes,), 0, count)
        for beta in config.betas:
            start = time.perf_counter()
            exact, signs, error = _modern_trial(
                patterns, picked, k_trial, jnp.asarray(beta), config.corruption, config.exact_tolerance
            )
            exact = np.asarray(exact)
            rows.append(
                {
                    "network": "modern",
                    "dynamics": "one update",
                    "d": config.modern_dim,
                    "P": count,
                    "beta": beta,
                    "trials": exact.size,
                    "success": float(np.mean(exact)),
                    "mean_overlap": float(np.mean(np.asarray(signs))),
                    "median_max_error": float(np.median(np.asarray(error))),
                    "seconds": round(time.perf_counter() - start, 3),
                }
            )
        if progress:
            best = max(rows[-len(config.betas) :], key=lambda r: r["success"])
            print(
                f"hopfield: modern, P = {count}: exact retrieval {100 * best['success']:.0f}% "
                f"at beta = {best['beta']}",
                flush=True,
            )
    return rows


def run(config: HopfieldConfig, *, seed: int = 0, progress: bool = True) -> Result:
    key = jax.random.key(seed)
    classical = _classical(config, jax.random.fold_in(key, 0), progress)
    modern = _modern(config, jax.random.fold_in(key, 1), progress)
    panels = []
    for name, label in (("success", "retrieval success"), ("mean_overlap", "mean final overlap")):
        curves = [
            series(
                mode,
                [r["alpha"] for r in classical if r["dynamics"] == mode],
                [r[name] for r in classical if r["dynamics"] == mode],
            )
            for mode in ("asynchronous", "synchronous")
        ]
        curves.append(
            series(f"alpha_c = {CLASSICAL_CAPACITY}", [CLASSICAL_CAPACITY] * 2, [0.0, 1.0], "reference")
        )
        panels.append(Panel(f"classical, N = {config.neurons}: {label}", "load alpha = P/N", name, curves))
    panels.append(
        Panel(
            f"modern, d = {config.modern_dim}: exact retrieval in one update",
            "beta",
            "success",
            [
                series(
                    f"P = {count}",
                    [r["beta"] for r in modern if r["P"] == count],
                    [r["success"] for r in modern if r["P"] == count],
                )
                for count in config.modern_patterns
            ],
            logx=True,
        )
    )
    notes = [
        f"Classical: probes are stored patterns with {config.corruption:.0%} of their signs flipped; "
        f"success is a final overlap >= {config.success_overlap}; {config.pattern_sets} pattern sets x "
        f"{config.probes} probes per load; dynamics run until a sweep changes nothing (at most "
        f"{config.sweeps} sweeps).",
        f"Modern: success is max |xi_new - xi^mu| < {config.exact_tolerance} after one update from a probe "
        f"with {config.corruption:.0%} of its signs flipped; mean_overlap is that of sign(xi_new).",
    ]
    return Result(
        "hopfield",
        dataclasses.asdict(config),
        classical + modern,
        figures=[Figure("retrieval", "Hopfield networks: retrieval", panels, columns=3)],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "hopfield",
    "Hopfield networks: retrieval success vs load alpha = P/N for the classical (Hebbian) network, and "
    "vs the number of patterns and beta for the modern (continuous) one.",
    HopfieldConfig,
    run,
)
