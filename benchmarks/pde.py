"""PDE throughput against the machine's float32 matrix-product rate, in one run (issue #13).

    python benchmarks/pde.py [--points 4096] [--repeats 3]

Table 1: Burgers PINN residual evaluations per second (Raissi's 2-20x8-1 tanh network, the residual
``u_t + u u_x - nu u_xx`` by forward-mode derivatives, vmapped over the points; value only, and
value plus the gradient of the mean squared residual, as one training step needs).

Table 2: the Neural IVP product ``M v = J^T (J v) / N`` (N points in 2-D; one linearisation, then
JVP and transposed JVP) against the parameter count of the ``DirichletField`` (depth 3, widths 16 to
256), float32; ``us_per_kparam`` is flat when the cost is linear in the parameters. FLOPs of one
product are counted by XLA (``cost_analysis``). Times are best-of-``repeats`` means, compilation
excluded.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import time

import equinox as eqx
import jax
import jax.numpy as jnp

from physbias.metrics import parameter_count
from physbias.pde import RAISSI_VISCOSITY, Box, DirichletField, burgers_residual, flatten_field, gram_operator
from physbias.report import environment, print_table

_spec = importlib.util.spec_from_file_location(
    "train_step", pathlib.Path(__file__).with_name("train_step.py")
)
_train_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_step)
matmul_gflops = _train_step.matmul_gflops


def best_time(f, args, repeats: int, inner: int = 5) -> float:
    jax.block_until_ready(f(*args))
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            jax.block_until_ready(f(*args))
        best = min(best, (time.perf_counter() - t) / inner)
    return best


def flops_of(f, args) -> float:
    cost = f.lower(*args).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def burgers_rows(points: int, repeats: int, peak: float) -> list[dict]:
    net = eqx.nn.MLP(2, "scalar", 20, 8, activation=jnp.tanh, key=jax.random.key(0))
    z = Box((-1.0, 0.0), (1.0, 1.0)).latin_hypercube(jax.random.key(1), points)
    params, static = eqx.partition(net, eqx.is_inexact_array)

    def residuals(p, z):
        u = eqx.combine(p, static)
        return jax.vmap(lambda zi: burgers_residual(u, zi, RAISSI_VISCOSITY))(z)

    value = jax.jit(residuals)
    grad = jax.jit(jax.value_and_grad(lambda p, z: jnp.mean(residuals(p, z) ** 2)))
    rows = []
    for name, f in (("residual", value), ("residual + gradient", grad)):
        sec = best_time(f, (params, z), repeats)
        flops = flops_of(f, (params, z))
        rows.append(
            {
                "case": f"Burgers PINN {name}, {points} points",
                "ms": sec * 1e3,
                "residuals_per_s": points / sec,
                "GFLOP/s": flops / sec / 1e9,
                "ratio_to_matmul": flops / sec / 1e9 / peak,
            }
        )
    return rows


def gram_rows(points: int, repeats: int, peak: float) -> list[dict]:
    x = jax.random.uniform(jax.random.key(2), (points, 2), minval=-1.0, maxval=1.0)
    rows = []
    for width in (16, 32, 64, 128, 256):
        field = DirichletField(2, jax.random.key(0), width=width, depth=3)
        theta, rebuild = flatten_field(field)
        v = jax.random.normal(jax.random.key(3), theta.shape)

        @jax.jit
        def matvec(theta, v, rebuild=rebuild):
            # One product with its own linearisation (an upper bound per product).
            return gram_operator(rebuild, theta, x)[2](v)

        @jax.jit
        def product_only(theta, vs, rebuild=rebuild):
            # 8 products on one linearisation, as CG uses it: the per-product cost.
            return jax.lax.map(gram_operator(rebuild, theta, x)[2], vs)

        vs = jax.random.normal(jax.random.key(4), (8, *theta.shape))
        sec_single = best_time(matvec, (theta, v), repeats)
        sec_batch = best_time(product_only, (theta, vs), repeats)
        lin = best_time(jax.jit(lambda th, r=rebuild: jax.vmap(r(th))(x)), (theta,), repeats)
        per_product = max(sec_batch - lin, 1e-9) / 8  # linearisation (about one forward pass) removed
        flops = flops_of(product_only, (theta, vs)) / 8
        p = parameter_count(field)
        rows.append(
            {
                "case": f"Neural IVP M v, width {width}, {points} points",
                "parameters": p,
                "ms": per_product * 1e3,
                "ms_incl_linearize": sec_single * 1e3,
                "us_per_kparam": per_product * 1e6 / (p / 1e3),
                "GFLOP/s": flops / per_product / 1e9,
                "ratio_to_matmul": flops / per_product / 1e9 / peak,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    peak = max(matmul_gflops(n, args.repeats) for n in (1024, 2048))
    env = environment()
    head = [{"case": "matmul f32 (best of 1024, 2048)", "GFLOP/s": peak, "ratio_to_matmul": 1.0}]
    print_table(head + burgers_rows(args.points, args.repeats, peak), title=f"pde: PINN ({env['device']})")
    print_table(gram_rows(args.points, args.repeats, peak), title=f"pde: Neural IVP M v, jax {env['jax']}")


if __name__ == "__main__":
    main()
