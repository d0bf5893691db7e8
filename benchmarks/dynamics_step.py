"""Training throughput of dynamics models (HNN, LNN, Neural ODE, 2nd-order NODE, CHNN, CLNN)
against the machine's float32 matrix-product rate, in one run.

    python benchmarks/dynamics_step.py [--batch 2048] [--width 128] [--models LNN CLNN]

Each model is trained with `physbias.fit` on time derivatives of a 4-dimensional state (double
pendulum size; CHNN/CLNN: the same double pendulum in Cartesian coordinates, 8 numbers), full
batch. `fit` times each compiled chunk of 20 steps; the first chunk, which compiles, is left out
and the median of the others is the step time (`ms_per_step`). `scan_ms` is the same step in a bare
`lax.scan`, without `fit`'s bookkeeping. FLOPs per step are counted by XLA (`cost_analysis`) on the
compiled step.

The matrix-product rate of this shared machine drifts with its load, so it is measured before
every model and each ratio is taken to the best rate of the run.

Against an older physbias (a same-run comparison of the code before and after a change), run this
script with ``PYTHONPATH=<old checkout>/src``: an older `fit` that does not time its chunks is
reported by its `scan_ms`.

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


def seconds_per_step(model, data, steps: int, repeats: int) -> float | None:
    """Seconds per full-batch Adam step of `fit`, compilation left out: `fit` times each compiled
    chunk (20 steps), and the first (which compiles) is dropped; the median of the later chunks,
    best of ``repeats`` fits. None when the installed `fit` does not time its chunks (an older
    physbias, run for a same-run comparison: its ``scan`` column still compares)."""
    chunk = 20
    best = float("inf")
    for _ in range(repeats):
        result = fit(
            model,
            derivative_loss(),
            data,
            key=jax.random.key(0),
            epochs=chunk * (1 + max(1, steps // chunk)),
            chunks=1 + max(1, steps // chunk),
            progress=False,
        )
        if not hasattr(result, "seconds_per_epoch"):
            return None
        best = min(best, result.seconds_per_epoch)
    return best


def scan_seconds_per_step(model, data, steps: int, repeats: int) -> float:
    """The same Adam step in a bare ``lax.scan`` of ``steps`` steps (no `fit` bookkeeping), one
    compiled call, best of ``repeats`` after a warm-up call."""
    step, params, state = adam_step(model, data)

    def body(carry, _):
        params, state, value = step(*carry)
        return (params, state), value

    run = jax.jit(lambda params, state: jax.lax.scan(body, (params, state), None, length=steps))
    jax.block_until_ready(run(params, state))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run(params, state))
        best = min(best, (time.perf_counter() - start) / steps)
    return best


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

    # The matmul rate drifts with this shared machine's load: it is measured again before every
    # model, and every ratio is taken to the best rate seen in the run (the strictest reference).
    rates = [max(matmul_gflops(n, args.repeats) for n in (1024, 2048))]
    models = benchmark_models(args.batch, args.width)
    unknown = set(args.models or ()) - set(models)
    if unknown:
        parser.error(f"unknown --models {sorted(unknown)}; choose from {list(models)}")
    torch_models = {"Neural ODE": "NODE", "HNN": "HNN", "LNN": "LNN"} if torch_reference.available() else {}
    rows = []
    for name, (model, data) in models.items():
        if args.models and name not in args.models:
            continue
        rates.append(max(matmul_gflops(n, args.repeats) for n in (1024, 2048)))
        fitted = seconds_per_step(model, data, args.steps, args.repeats)
        scan = scan_seconds_per_step(model, data, args.steps, args.repeats)
        sec = fitted if fitted is not None else scan
        flops = step_flops(model, data)
        unfused = unfused_seconds_per_step(model, data, max(20, args.steps // 4), args.repeats)
        row = {
            "model": f"{name}, batch {args.batch}, 2x{args.width} softplus",
            "ms_per_step": sec * 1e3,
            "steps_per_s": 1 / sec,
            "GFLOP_per_step": flops / 1e9,
            "GFLOP/s": flops / sec / 1e9,
            "scan_ms": scan * 1e3,
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
    peak = max(rates)
    for row in rows:
        row["ratio_to_matmul"] = row["GFLOP/s"] / peak
        row["steps_per_s_per_matmul_GFLOP/s"] = row["steps_per_s"] / peak
    rows.insert(
        0,
        {
            "model": f"matmul f32 (best of 1024, 2048; {min(rates):.0f}-{peak:.0f} over the run)",
            "GFLOP/s": peak,
            "ratio_to_matmul": 1.0,
        },
    )
    env = environment()
    torch_note = "PyTorch eager as reference" if torch_models else "PyTorch not installed: no eager reference"
    print_table(rows, title=f"dynamics_step ({env['device']}, jax {env['jax']}; {torch_note})")


if __name__ == "__main__":
    main()
