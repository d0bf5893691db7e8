"""Equivariant-basis solve times: physbias (first call and cached reload) against the `emlp`
package in the same run, on the three cases of issue #4.

    python benchmarks/basis_solve.py [--emlp-python /path/to/venv/bin/python] [--repeats 3] [--no-large]

A second table times large solves once each, from a cold cache (issue #10): a direct-product group
``D(6) x S(3)`` on ``T2 -> T2`` (6561 coordinates, split into the factors' blocks), ``SO(5)`` on
``T3 -> T3`` (15625 coordinates, one atom: the matrix-free path), and building an EMLP over
``D(6) x S(3)`` at default width and depth.

`emlp` (mfinzi/equivariant-MLP) is timed when it imports in this environment, or in the
interpreter given by `--emlp-python` (it needs objax; a separate virtual environment keeps it out
of physbias' own). Each emlp case runs in a fresh process, so its in-memory cache is cold; each
physbias first call uses an empty on-disk cache folder. Times are wall-clock medians.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from physbias.groups import SO, D, Lorentz, S, T, V, equivariant_basis
from physbias.groups.basis import _solve_dense
from physbias.report import environment, print_table

CASES = [
    ("SO(3)", "T(2)>>T(1)", lambda: (T(2) >> T(1), SO(3))),
    ("O(1,3)", "T(1)>>T(2,1)", lambda: (T(1) >> T(2, 1), Lorentz())),
    ("S(5)", "10T1+5T2>>3T0+T2", lambda: ((10 * T(1) + 5 * T(2)) >> (3 * T(0) + T(2)), S(5))),
]

# The same three cases in emlp's notation (emlp's Lorentz() is O(1,3) with eta = diag(1,-1,-1,-1)).
EMLP_SNIPPET = """
import json, sys, time
from emlp.reps import T
from emlp.groups import SO, S, Lorentz
case = sys.argv[1]
rep, G = {
    "SO(3)": (T(2) >> T(1), SO(3)),
    "O(1,3)": (T(1) >> T(2, 1), Lorentz()),
    "S(5)": ((10 * T(1) + 5 * T(2)) >> (3 * T(0) + T(2)), S(5)),
}[case]
t = time.perf_counter()
Q = rep(G).equivariant_basis()
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "dim": int(Q.shape[-1])}))
"""


def emlp_python(arg: str | None) -> str | None:
    if arg:
        return arg
    return sys.executable if importlib.util.find_spec("emlp") is not None else None


def time_emlp(python: str, case: str) -> tuple[float, int]:
    out = (
        subprocess.run(
            [python, "-c", EMLP_SNIPPET, case], capture_output=True, text=True, check=True, timeout=600
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    doc = json.loads(out)
    return doc["seconds"], doc["dim"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emlp-python", default=None, help="interpreter with emlp installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-large", dest="large", action="store_false", help="skip the large solves")
    args = parser.parse_args()
    python = emlp_python(args.emlp_python)
    rows = []
    for group, label, make in CASES:
        rep, G = make()
        first, cached = [], []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["PHYSBIAS_CACHE_DIR"] = tmp
                t = time.perf_counter()
                Q = equivariant_basis(rep, G)
                first.append(time.perf_counter() - t)
                t = time.perf_counter()
                Q2 = equivariant_basis(rep, G)
                cached.append(time.perf_counter() - t)
                assert np.array_equal(Q, Q2)
        t = time.perf_counter()
        Qd = _solve_dense(rep, G, 1e-7) if rep.size(G) <= 1000 else None
        dense = time.perf_counter() - t if Qd is not None else float("nan")
        row = {
            "group": group,
            "rep": label,
            "size": rep.size(G),
            "dim": Q.shape[1],
            "physbias_first_s": statistics.median(first),
            "physbias_cached_s": statistics.median(cached),
            "dense_svd_s": dense,
        }
        if python:
            times = [time_emlp(python, group) for _ in range(args.repeats)]
            row["emlp_s"] = statistics.median(t for t, _ in times)
            row["emlp_dim"] = times[0][1]
            row["speedup_first"] = row["emlp_s"] / row["physbias_first_s"]
        rows.append(row)
    env = environment()
    print_table(rows, title=f"equivariant basis solve (jax {env.get('jax')}, {env.get('device', '')})")
    if not python:
        print("emlp is not installed here; pass --emlp-python to time it in the same run")
    if args.large:
        print_table(large_cases(), title="large solves, cold cache (one run each)")


def large_cases() -> list[dict]:
    import warnings

    import jax

    from physbias.groups import constraint_matrix
    from physbias.nn import EMLP

    rows = []
    cases = [("D(6)xS(3)", "T2>>T2", T(2) >> T(2), D(6) * S(3)), ("SO(5)", "T3>>T3", T(3) >> T(3), SO(5))]
    for group, label, rep, G in cases:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            os.environ["PHYSBIAS_CACHE_DIR"] = tmp
            t = time.perf_counter()
            Q = equivariant_basis(rep, G)
            seconds = time.perf_counter() - t
        residual = float(np.abs(constraint_matrix(rep, G) @ Q).max()) if rep.size(G) <= 7000 else float("nan")
        rows.append(
            {
                "case": f"{group} {label}",
                "size": rep.size(G),
                "dim": Q.shape[1],
                "seconds": seconds,
                "max |C Q|": residual,
                "warnings": len(caught),
            }
        )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PHYSBIAS_CACHE_DIR"] = tmp
        t = time.perf_counter()
        EMLP(V, V, D(6) * S(3), key=jax.random.key(0))  # default width 384, depth 3, max_rank 2
        rows.append(
            {
                "case": "EMLP(V, V, D(6)xS(3)) build, defaults",
                "size": 9,
                "dim": "",
                "seconds": time.perf_counter() - t,
                "max |C Q|": "",
                "warnings": "",
            }
        )
    return rows


if __name__ == "__main__":
    main()
