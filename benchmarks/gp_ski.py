"""Structured kernel interpolation against the exact GP: seconds per matrix-vector product and per
solve from 1e3 to 1e5 points (1-D, squared-exponential kernel of length scale 1, float32).

    python benchmarks/gp_ski.py [--sizes 1e3,3e3,1e4,3e4,1e5] [--exact-max 4000] [--density 10]

``n`` inputs uniform at ``--density`` points per unit length, noise standard deviation 0.3; the
SKI grid has 5 points per unit (``physbias.gp.SKI``: Keys cubic interpolation, FFT Toeplitz
products, ``lineax.CG`` to tolerance 1e-4). The exact GP (``tinygp``, Cholesky) runs up to
``--exact-max`` points. Seconds are the best of 3 calls after a compiling one. The SKI product's
relative error is against the exact ``(K + sigma^2 I) v`` (all rows up to ``--exact-max``, 500
random rows beyond). The machine's float32 matrix-product rate is measured in the same run; only
ratios compare across machines. The log-log slopes of time against ``n`` are printed last.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


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


def _best(fn, repeats: int = 3) -> float:
    import jax

    jax.block_until_ready(fn())
    return min(_timed(lambda: jax.block_until_ready(fn())) for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1e3,3e3,1e4,3e4,1e5")
    parser.add_argument("--exact-max", type=float, default=4000)
    parser.add_argument("--density", type=float, default=10.0)
    args = parser.parse_args()

    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from physbias.gp import SKI, ExactGP, SquaredExponential
    from physbias.report import environment, print_table

    kernel, noise = SquaredExponential(1.0, 1.0), 0.3
    exact_model = ExactGP(kernel, noise=noise)
    matvec = eqx.filter_jit(lambda ski, v: ski.matvec(v))

    @eqx.filter_jit
    def exact_solve(model, x, y):
        solver = model.gaussian_process(x).solver
        return solver.solve_triangular(solver.solve_triangular(y), transpose=True)

    @eqx.filter_jit
    def exact_product(x, v, rows):
        block = jax.lax.map(lambda r: kernel(r, x) @ v, x[rows].reshape(-1, 50)).reshape(-1)
        return block + noise**2 * v[rows]

    rate = matmul_gflops()
    rows = []
    for n in sorted(int(float(s)) for s in args.sizes.split(",")):
        rng = np.random.default_rng(n)
        span = n / args.density
        x = jnp.asarray(np.sort(rng.uniform(0.0, span, n)), jnp.float32)
        v = jnp.asarray(rng.normal(size=n), jnp.float32)
        ski = SKI(kernel, x, noise_variance=noise**2, num_grid=int(round(5 * span)) + 5)
        row = {"n": n, "grid": ski.num_grid}
        row["ski_matvec_s"] = _best(lambda s=ski, v=v: matvec(s, v))
        row["ski_cg_solve_s"] = _best(lambda s=ski, v=v: s.solve(v))
        row["cg_steps"] = int(ski.solve(v)[1])
        if n <= args.exact_max:
            row["exact_cholesky_s"] = _best(lambda x=x, v=v: exact_solve(exact_model, x, v))
            picked = jnp.arange(n // 50 * 50)
        else:
            row["exact_cholesky_s"] = ""
            picked = jnp.asarray(rng.choice(n, 500, replace=False))
        reference = exact_product(x, v, picked)
        error = jnp.linalg.norm(ski.matvec(v)[picked] - reference) / jnp.linalg.norm(reference)
        row["matvec_rel_error"] = float(error)
        row["solve_GFLOP_equivalent"] = round(row["ski_cg_solve_s"] * rate, 2)
        rows.append(row)
    print_table(
        rows, title=f"SKI vs exact GP, 1-D squared exponential, {args.density:g} points per length scale"
    )

    def slope(key, fewest):
        pts = [(r["n"], r[key]) for r in rows if r[key] != "" and r["n"] >= fewest]
        if len(pts) < 2:
            return float("nan")
        return float(np.polyfit(np.log([p[0] for p in pts]), np.log([p[1] for p in pts]), 1)[0])

    floor = sorted(r["n"] for r in rows)[min(1, len(rows) - 1)]
    print(
        f"log-log slope of time against n (n >= {floor}): SKI matvec {slope('ski_matvec_s', floor):.2f}, "
        f"SKI CG solve {slope('ski_cg_solve_s', floor):.2f}, "
        f"exact Cholesky {slope('exact_cholesky_s', 0):.2f}"
    )
    env = environment()
    print(
        f"matmul rate {rate:.0f} GFLOP/s (float32, 2048^2); jax {env['jax']}, {env['device']}, "
        f"{os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
