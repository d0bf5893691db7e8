"""Training throughput of dynamics models (HNN, LNN, Neural ODE, 2nd-order NODE, CHNN, CLNN)
against the machine's float32 matrix-product rate, in one run.

    python benchmarks/dynamics_step.py [--batch 2048] [--width 128] [--models LNN CLNN]

Each model is trained with `physbias.fit` on time derivatives of a 4-dimensional state (double
pendulum size; CHNN/CLNN: the same double pendulum in Cartesian coordinates, 8 numbers), full
batch, compile time excluded by differencing two runs with the same chunk
length. FLOPs per step are counted by XLA (`cost_analysis`) on the compiled step.

Two references in the same run, at the same sizes and on the same batch:
- an un-fused JAX loop: the same loss and Adam, one jitted step per Python call (the usual
  hand-written loop), for every model;
- when PyTorch is installed (`pip install torch==2.13.0`, CPU), the original designs in plain
  PyTorch eager (`benchmarks/torch_reference.py`: Neural ODE, HNN as in Greydanus et al., LNN as
  in Cranmer et al.).
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from physbias import Dataset, fit
from physbias.dynamics import (
    ConstrainedHamiltonianNN,
    ConstrainedLagrangianNN,
    HamiltonianNN,
    LagrangianNN,
    NeuralODE,
    SecondOrderNODE,
    derivative_loss,
)
from physbias.report import environment, print_table
from physbias.systems import CartesianChainPendulum, sample_initial_states

_spec = importlib.util.spec_from_file_location(
    "train_step", pathlib.Path(__file__).with_name("train_step.py")
)
_train_step = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_step)
matmul_gflops = _train_step.matmul_gflops
sys.path.insert(0, str(pathlib.Path(__file__).parent))
import torch_reference  # noqa: E402


def adam_step(model, data):
    """``(step, params, state)``: one full-batch Adam step of ``derivative_loss`` on ``data`` as a
    function ``step(params, state) -> (params, state, loss)``, and its starting arguments (the
    hand-written step that `fit` fuses; also used by `step_profile.py`)."""
    opt = optax.adam(1e-3)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    loss = derivative_loss()
    batch = data.as_tuple()

    def step(params, state):
        value, grads = jax.value_and_grad(lambda p: loss(eqx.combine(p, static), batch, None))(params)
        updates, state = opt.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, value

    return step, params, opt.init(params)


def benchmark_models(batch: int, width: int) -> dict:
    """``name -> (model, data)`` for the six dynamics models at double-pendulum size (CHNN/CLNN:
    the same pendulum in Cartesian coordinates, valid states so the constraints are solvable)."""
    key = jax.random.key(0)
    z = jax.random.normal(key, (batch, 4))
    data = Dataset(z, jnp.roll(z, 1, axis=1))
    chain = CartesianChainPendulum()
    zc = sample_initial_states(chain, key, batch)
    cartesian = Dataset(zc, jnp.roll(zc, 1, axis=1))
    return {
        "Neural ODE": (NeuralODE(4, width, 2, key=key), data),
        "2nd-order NODE": (SecondOrderNODE(4, width, 2, key=key), data),
        "HNN": (HamiltonianNN(4, width, 2, key=key), data),
        "LNN": (LagrangianNN(4, width, 2, key=key), data),
        "CHNN": (ConstrainedHamiltonianNN(chain.constraints, width, 2, key=key), cartesian),
        "CLNN": (ConstrainedLagrangianNN(chain.constraints, width, 2, key=key), cartesian),
    }


def step_flops(model, data) -> float:
    """FLOPs of one Adam step as counted by XLA's cost analysis."""
    step, params, state = adam_step(model, data)
    compiled = jax.jit(step).lower(params, state).compile()
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def seconds_per_step(model, data, steps: int, repeats: int) -> float:
    chunk = 20

    def timed(epochs):
        t = time.perf_counter()
        fit(
            model,
            derivative_loss(),
            data,
            key=jax.random.key(0),
            epochs=epochs,
            chunks=epochs // chunk,
            progress=False,
        )
        return time.perf_counter() - t

    return min((timed(chunk + steps) - timed(chunk)) / steps for _ in range(repeats))


def unfused_seconds_per_step(model, data, steps: int, repeats: int) -> float:
    """The same Adam step, jitted once and called from a Python loop (no ``lax.scan``)."""
    step, params, state = adam_step(model, data)
    step = jax.jit(step)
    params, state, value = step(params, state)
    jax.block_until_ready(value)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            params, state, value = step(params, state)
            float(value)  # a loop that logs its loss waits for every step
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=None, help="a subset of the models by name")
    args = parser.parse_args()

    peak = max(matmul_gflops(n, args.repeats) for n in (1024, 2048))
    models = benchmark_models(args.batch, args.width)
    unknown = set(args.models or ()) - set(models)
    if unknown:
        parser.error(f"unknown --models {sorted(unknown)}; choose from {list(models)}")
    torch_models = {"Neural ODE": "NODE", "HNN": "HNN", "LNN": "LNN"} if torch_reference.available() else {}
    rows = [{"model": "matmul f32 (best of 1024, 2048)", "GFLOP/s": peak, "ratio_to_matmul": 1.0}]
    for name, (model, data) in models.items():
        if args.models and name not in args.models:
            continue
        sec = seconds_per_step(model, data, args.steps, args.repeats)
        flops = step_flops(model, data)
        unfused = unfused_seconds_per_step(model, data, max(20, args.steps // 4), args.repeats)
        row = {
            "model": f"{name}, batch {args.batch}, 2x{args.width} softplus",
            "ms_per_step": sec * 1e3,
            "steps_per_s": 1 / sec,
            "GFLOP_per_step": flops / 1e9,
            "GFLOP/s": flops / sec / 1e9,
            "ratio_to_matmul": flops / sec / 1e9 / peak,
            "unfused_jax_ms": unfused * 1e3,
            "speedup_vs_unfused": unfused / sec,
        }
        if name in torch_models:
            z, target = (jax.device_get(a) for a in data.as_tuple())
            torch_sec = torch_reference.seconds_per_step(
                torch_models[name], z, target, args.width, max(10, args.steps // 10), args.repeats
            )
            row["torch_eager_ms"] = torch_sec * 1e3
            row["speedup_vs_torch"] = torch_sec / sec
        rows.append(row)
    env = environment()
    torch_note = "PyTorch eager as reference" if torch_models else "PyTorch not installed: no eager reference"
    print_table(rows, title=f"dynamics_step ({env['device']}, jax {env['jax']}; {torch_note})")


if __name__ == "__main__":
    main()
