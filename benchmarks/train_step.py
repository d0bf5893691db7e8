"""Training throughput of the triangle MLP against the machine's float32 matrix-product rate.

    python benchmarks/train_step.py [--repeats 3]

Prints a table: for each training set size, ms per Adam step, steps/s, GFLOP/s and the ratio to the
best square float32 matmul rate measured in the same run. The step is physbias's own `fit`
(full batch, steps fused with lax.scan); compile time is excluded by differencing two runs with
the same chunk length.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from physbias import Dataset, fit, supervised_loss
from physbias.report import environment, print_table


def matmul_gflops(n: int, repeats: int) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(5):
            f(a, b).block_until_ready()
        best = min(best, (time.perf_counter() - t) / 5)
    return 2 * n**3 / best / 1e9


def mlp_step_flops(n: int, sizes: list[int]) -> float:
    """Forward 2 N sum(in*out); backward twice that, less the input gradient of the first layer."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    fwd = 2 * n * sum(i * o for i, o in pairs)
    return 3 * fwd - 2 * n * pairs[0][0] * pairs[0][1]


def train_rate(n: int, width: int, depth: int, steps: int, repeats: int) -> float:
    """Seconds per training step of fit() at full batch ``n`` (compile excluded)."""
    key = jax.random.key(0)
    x = jax.random.uniform(key, (n, 3), minval=0.2, maxval=1.0)
    data = Dataset(x, jnp.sum(x, axis=1))
    model = eqx.nn.MLP(3, "scalar", width, depth, activation=jax.nn.relu, key=key)
    chunk = 50

    def timed(epochs):
        t = time.perf_counter()
        fit(model, supervised_loss(), data, key=key, epochs=epochs, chunks=epochs // chunk, progress=False)
        return time.perf_counter() - t

    best = float("inf")
    for _ in range(repeats):
        best = min(best, (timed(chunk + steps) - timed(chunk)) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=500)
    args = parser.parse_args()

    mm = {n: matmul_gflops(n, args.repeats) for n in (512, 1024, 2048)}
    peak = max(mm.values())
    rows = [{"what": f"matmul {n}x{n} f32", "GFLOP/s": g, "ratio_to_matmul": g / peak} for n, g in mm.items()]
    width, depth = 128, 3
    sizes = [3] + [width] * depth + [1]
    for n in (4000, 28000):
        sec = train_rate(n, width, depth, args.steps, args.repeats)
        g = mlp_step_flops(n, sizes) / sec / 1e9
        rows.append(
            {
                "what": f"train step MLP 3-128x3-1, batch {n}",
                "ms_per_step": sec * 1e3,
                "steps_per_s": 1 / sec,
                "GFLOP/s": g,
                "ratio_to_matmul": g / peak,
            }
        )
    env = environment()
    print_table(rows, title=f"train_step ({env['device']}, jax {env['jax']}, {env['processor']})")


if __name__ == "__main__":
    main()
