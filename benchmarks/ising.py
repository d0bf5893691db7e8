"""Metropolis spin flips per second: physbias' jitted checkerboard sweep (``lax.scan`` over sweeps)
against a plain NumPy checkerboard implementation of the same update, in the same run (issue #14).

    python benchmarks/ising.py [--sizes 64,128,256,512] [--sweeps 200]

Both propose every site once per sweep (two colours, vectorised), at T = 2.27 from the ordered
state; compilation is excluded (a first call of the same length runs before timing), and each side's
best of ``--repeats`` timings is kept. The float32 matrix-product rate of the machine is printed
for reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import pathlib
import time

import jax
import numpy as np

from physbias.report import environment, print_table
from physbias.statphys import IsingModel, metropolis

_spec = importlib.util.spec_from_file_location(
    "train_step", pathlib.Path(__file__).with_name("train_step.py")
)
_train_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_step)
matmul_gflops = _train_step.matmul_gflops


def numpy_sweeps(spins: np.ndarray, beta: float, sweeps: int, rng: np.random.Generator) -> np.ndarray:
    """The reference: the same checkerboard Metropolis update in NumPy (float32)."""
    colours = np.indices(spins.shape).sum(0) % 2
    for _ in range(sweeps):
        for colour in (0, 1):
            nb = np.roll(spins, 1, 0) + np.roll(spins, -1, 0) + np.roll(spins, 1, 1) + np.roll(spins, -1, 1)
            delta = 2.0 * spins * nb
            accept = rng.random(spins.shape, dtype=np.float32) < np.exp(-beta * delta)
            spins = np.where(accept & (colours == colour), -spins, spins)
    return spins


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,128,256,512")
    parser.add_argument("--sweeps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    peak = max(matmul_gflops(n, 2) for n in (1024, 2048))
    beta = 1 / 2.27
    rows = [{"case": "matmul f32 (best of 1024, 2048)", "GFLOP/s": peak}]
    for size in (int(s) for s in args.sizes.split(",")):
        model = IsingModel(size, 2)
        metropolis(model, jax.random.key(0), 2.27, args.sweeps).energy.block_until_ready()  # compile
        jax_s = numpy_s = math.inf
        numpy_count = max(5, args.sweeps // 10)
        for repeat in range(args.repeats):  # best of a few: the host is shared
            t = time.perf_counter()
            metropolis(model, jax.random.key(1 + repeat), 2.27, args.sweeps).energy.block_until_ready()
            jax_s = min(jax_s, time.perf_counter() - t)
            rng = np.random.default_rng(repeat)
            t = time.perf_counter()
            numpy_sweeps(np.ones((size, size), np.float32), beta, numpy_count, rng)
            numpy_s = min(numpy_s, (time.perf_counter() - t) * args.sweeps / numpy_count)
        flips = size * size * args.sweeps
        rows.append(
            {
                "case": f"L = {size}, {args.sweeps} sweeps",
                "physbias_Mflips_per_s": flips / jax_s / 1e6,
                "numpy_Mflips_per_s": flips / numpy_s / 1e6,
                "speedup": numpy_s / jax_s,
            }
        )
    env = environment()
    print_table(rows, title=f"ising: checkerboard Metropolis ({env['device']}, jax {env['jax']})")


if __name__ == "__main__":
    main()
