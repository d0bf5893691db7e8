"""Where a dynamics model's training step spends its time, from XLA's own profile.

    python benchmarks/step_profile.py [--models LNN "Neural ODE"] [--batch 2048] [--width 128] [--top 12]

For each model of `benchmarks/dynamics_step.py` (its models, sizes and Adam step), one jitted
Adam step of `derivative_loss` is traced 20 times with `jax.profiler.trace`. The events of XLA's CPU worker
threads are summed per operation and divided by the number of steps and threads. Each model
prints two tables:
- its time by kind: matrix products that XLA hands to its YNNPACK library (`ynn_fusion`), other
  matrix products (`dot`), layout changes (fusions named `copy` or `transpose`, which XLA inserts so
  that a product reads its operands in the order it wants), and the rest (elementwise fusions, such
  as the activation's derivatives, and reductions);
- the wall time per step without the tracer (best of 3 x 20 steps), and the share of it the worker
  threads were busy while traced (the rest is waiting between operations; the tracer's own
  overhead counts as work, so the share is an upper bound);
- its `--top` operations, each with the instruction XLA compiled, to see which array it writes.

This is the profile issue #16 asks for: what to change is read from it, not guessed.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import re
import sys
import tempfile
import time

import jax

from physbias.report import environment, print_table

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from dynamics_step import adam_step, benchmark_models  # noqa: E402

STEPS = 20


def kind(name: str) -> str:
    if name.startswith("ynn"):
        return "matrix product (YNNPACK)"
    if name.startswith("dot"):
        return "matrix product (other)"
    if "copy" in name or "transpose" in name:
        return "layout change (copy / transpose)"
    return "elementwise and reductions"


def profile(model, data, top: int):
    step, params, state = adam_step(model, data)
    compiled = jax.jit(step).lower(params, state).compile()
    jax.block_until_ready(compiled(params, state))
    wall = float("inf")  # untraced: the tracer adds its own time to every operation
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(STEPS):
            out = compiled(params, state)
        jax.block_until_ready(out)
        wall = min(wall, (time.perf_counter() - start) / STEPS * 1e3)
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            for _ in range(STEPS):
                out = compiled(params, state)
            jax.block_until_ready(out)
        trace = next(pathlib.Path(folder).rglob("*.xplane.pb"))
        data = jax.profiler.ProfileData.from_file(str(trace))
    per_op, threads = collections.defaultdict(float), set()
    for plane in data.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLAEigen"):
                continue
            for event in line.events:
                if "ThunkExecutor" in event.name or "Await" in event.name:
                    continue
                threads.add(line.name)
                per_op[event.name] += event.duration_ns
    scale = 1e-6 / STEPS / max(len(threads), 1)
    by_kind = collections.defaultdict(float)
    for name, ns in per_op.items():
        by_kind[kind(name)] += ns * scale
    hlo = compiled.as_text()
    rows = []
    for name, ns in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]:
        match = re.search(rf"%{re.escape(name)} = (\S+)", hlo)
        source = re.search(rf"%{re.escape(name)} = .*?op_name=\"([^\"]+)\"", hlo)
        rows.append(
            {
                "operation": name,
                "ms / step": ns * scale,
                "writes": match.group(1) if match else "",
                "from": (source.group(1)[-70:] if source else ""),
            }
        )
    return dict(sorted(by_kind.items(), key=lambda kv: -kv[1])), rows, len(threads), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--models", nargs="*", default=None)
    args = parser.parse_args()
    if args.batch < 1 or args.width < 1 or args.top < 1:
        parser.error("--batch, --width and --top must be positive")
    models = benchmark_models(args.batch, args.width)
    unknown = set(args.models or ()) - set(models)
    if unknown:
        parser.error(f"unknown --models {sorted(unknown)}; choose from {list(models)}")
    device = environment()["device"]
    for name in args.models or models:
        by_kind, rows, threads, wall = profile(*models[name], args.top)
        total = sum(by_kind.values())
        print_table(
            [{"kind": k, "ms / step": v, "share": v / total} for k, v in by_kind.items()],
            title=f"{name}: batch {args.batch}, width {args.width}: {total:.2f} ms of work per step and "
            f"thread ({threads} threads) in {wall:.2f} ms of wall time per step (untraced), "
            f"busy {total / wall:.0%}; {device}",
        )
        print_table(rows, title=f"{name}: the {args.top} most expensive operations")


if __name__ == "__main__":
    main()
