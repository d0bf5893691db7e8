"""Cost of one Laplace-evidence evaluation (curvature at the parameters + log evidence), full GGN
against KFAC, for MLPs from 1e3 to 1e6 parameters.

    python benchmarks/evidence.py [--n-data 1000] [--sizes 1e3,1e4,1e5,1e6] [--full-max 2e4]

Each case runs in a fresh process (so its peak resident memory is its own): an MLP 100 -> w -> w ->
10 (tanh, float32) with ``w`` chosen for the parameter count, 10-class classification on
``--n-data`` random inputs, ``physbias.evidence.laplace(...).log_evidence(1.0)``. Seconds are the
median of 3 warm calls (compilation excluded, reported apart). The machine's float32 matrix-product
rate is measured in the same run; ``GFLOP-equivalent`` is seconds x that rate (only ratios compare
across machines). The log-log slope of KFAC time against parameters over 1e4..1e6 is printed last.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

CASE = r"""
import json, resource, sys, time, statistics
import equinox as eqx, jax, jax.numpy as jnp
from physbias.evidence import laplace
width, curvature, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
model = eqx.nn.MLP(100, 10, width, 2, activation=jnp.tanh, key=jax.random.key(0))
x = jax.random.normal(jax.random.key(1), (n, 100))
y = jax.random.randint(jax.random.key(2), (n,), 0, 10)
params = sum(a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
def once():
    value = laplace(model, (x, y), likelihood="classification", curvature=curvature).log_evidence(1.0)
    return float(jax.block_until_ready(value))
t = time.perf_counter(); value = once(); first = time.perf_counter() - t
times = []
for _ in range(3):
    t = time.perf_counter(); once(); times.append(time.perf_counter() - t)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB -> MB on Linux
print(json.dumps({"params": int(params), "seconds": statistics.median(times), "first_call": first,
                  "peak_mb": peak, "log_evidence": value}))
"""


def _width_for(params: float) -> int:
    # P = 100 w + w + w^2 + w + 10 w + 10 = w^2 + 112 w + 10
    return max(2, int(round((-112 + math.sqrt(112**2 + 4 * (params - 10))) / 2)))


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    best = min(_timed(lambda: f(a).block_until_ready()) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-data", type=int, default=1000)
    parser.add_argument("--sizes", default="1e3,1e4,1e5,1e6")
    parser.add_argument(
        "--full-max", type=float, default=2e4, help="largest parameter count for the full GGN"
    )
    args = parser.parse_args()
    from physbias.report import environment, print_table

    rate = matmul_gflops()
    rows = []
    for size in (float(s) for s in args.sizes.split(",")):
        width = _width_for(size)
        for curvature in ("full", "kfac"):
            row = {"target_params": f"{size:.0e}", "curvature": curvature, "width": width}
            blank = dict.fromkeys(("params", "seconds", "first_call_s", "peak_MB", "GFLOP_equivalent"), "")
            if curvature == "full" and size > args.full_max:
                rows.append(row | blank | {"note": f"skipped: P^2 = {size**2 * 4 / 1e9:.0f} GB"})
                continue
            out = subprocess.run(
                [sys.executable, "-c", CASE, str(width), curvature, str(args.n_data)],
                capture_output=True,
                text=True,
                env=os.environ | {"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
            )
            if out.returncode != 0:
                rows.append(row | blank | {"note": "failed: " + out.stderr.strip().splitlines()[-1][:80]})
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append(
                row
                | {
                    "params": r["params"],
                    "seconds": round(r["seconds"], 4),
                    "first_call_s": round(r["first_call"], 2),
                    "peak_MB": round(r["peak_mb"]),
                    "GFLOP_equivalent": round(r["seconds"] * rate, 1),
                    "note": "",
                }
            )
    print_table(rows, title=f"Laplace evidence, {args.n_data} examples, 10 classes (float32)")
    kfac = [
        (r["params"], r["seconds"])
        for r in rows
        if r["curvature"] == "kfac" and r["params"] and r["params"] >= 5e3
    ]
    if len(kfac) >= 2:
        p, t = np.log([k[0] for k in kfac]), np.log([k[1] for k in kfac])
        print(f"KFAC log-log slope of time against parameters (>= 1e4): {np.polyfit(p, t, 1)[0]:.2f}")
    env = environment()
    print(
        f"matmul rate {rate:.0f} GFLOP/s (float32, 2048^2); jax {env['jax']}, {env['device']}, "
        f"{os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
