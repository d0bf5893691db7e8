"""Save/load of library models (``physbias.save`` / ``physbias.load``): file size, header size and
wall-clock seconds, for models at their default sizes.

    python benchmarks/serialization.py [--repeats 3]

``load (fresh process)`` runs ``physbias.load`` in a new interpreter (imports excluded), with the
on-disk basis cache the save left behind, so it is what a user's script pays to get a trained
EMLP back; ``load`` is the same call repeated in this process. Every loaded model is checked to
give the saved model's outputs bit for bit.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import physbias
from physbias.dynamics import HamiltonianNN, LagrangianNN
from physbias.groups import SO, Scalar, V
from physbias.nn import CNN, EMLP, P4CNN, InteractionNetwork
from physbias.report import environment, print_table

CASES = {
    "EMLP(2V→V, SO(3)) w384 d3": (lambda k: EMLP(2 * V, V, SO(3), key=k), (6,)),
    "EMLP(4V→Scalar, SO(3)) w384 d3": (lambda k: EMLP(4 * V, Scalar, SO(3), key=k), (12,)),
    "HamiltonianNN(4) w128 d2": (lambda k: HamiltonianNN(4, key=k), (4,)),
    "LagrangianNN(4) w128 d2": (lambda k: LagrangianNN(4, key=k), (4,)),
    "P4CNN(1→10) w8 d2": (lambda k: P4CNN(1, 10, key=k), (1, 8, 8)),
    "CNN(1→10) w16 d2": (lambda k: CNN(1, 10, key=k), (1, 8, 8)),
    "InteractionNetwork(4→2) w64": (lambda k: InteractionNetwork(4, 2, key=k), (5, 4)),
}

FRESH = """
import sys, time
import physbias.serialization, physbias.nn, physbias.dynamics  # imports are not timed
t = time.perf_counter(); physbias.load(sys.argv[1]); print(time.perf_counter() - t)
"""


def _time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for i, (name, (make, shape)) in enumerate(CASES.items()):
            model = make(jax.random.key(i))
            path = Path(folder) / f"m{i}.eqx"
            t_save, _ = _time(lambda m=model, p=path: physbias.save(m, p), args.repeats)
            t_load, loaded = _time(lambda p=path: physbias.load(p), args.repeats)
            fresh = subprocess.run(
                [sys.executable, "-c", FRESH, str(path)], capture_output=True, text=True, check=True
            )
            x = jax.random.normal(jax.random.key(99), shape)
            same = bool(
                jnp.all(
                    eqx.filter_jit(lambda m, x: m(x))(loaded, x)
                    == eqx.filter_jit(lambda m, x: m(x))(model, x)
                )
            )
            header = len(path.read_bytes().partition(b"\n")[0])
            n_params = sum(
                int(np.size(a)) for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array))
            )
            rows.append(
                {
                    "model": name,
                    "parameters": n_params,
                    "file_kB": round(path.stat().st_size / 1e3, 1),
                    "header_kB": round(header / 1e3, 1),
                    "save_s": round(t_save, 4),
                    "load_s": round(t_load, 4),
                    "load_fresh_process_s": round(float(fresh.stdout.strip()), 3),
                    "outputs_identical": same,
                }
            )
    print_table(rows, title="physbias.save / physbias.load")
    env = environment()
    print(
        f"jax {env['jax']}, equinox {env['equinox']}, {env['device']}, {os.cpu_count()} cores; "
        f"median of {args.repeats}"
    )


if __name__ == "__main__":
    main()
