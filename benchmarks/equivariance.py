"""Equivariance error of freshly initialised EMLPs on many groups, against a plain MLP.

    python benchmarks/equivariance.py [--width 96] [--depth 2]

Error: max over 8 sampled elements of ||F(gX) - g F(X)||_F / (||F(gX)||_F + ||g F(X)||_F) on 64
random inputs, float32 evaluation (physbias.groups.equivariance_error). Also the build time
(basis solves from a cold on-disk cache) and the parameter count.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import equinox as eqx
import jax
import numpy as np

from physbias.groups import SO, Lorentz, O, S, Scalar, Sp, T, V, equivariance_error
from physbias.nn import EMLP
from physbias.report import print_table

CASES = [
    ("SO(3)", SO(3), 2 * V, Scalar),
    ("O(5)", O(5), 2 * V, Scalar),
    ("O(3)", O(3), 5 * Scalar + 5 * V, T(2)),
    ("O(1,3)", Lorentz(), 4 * V, Scalar),
    ("Sp(2)", Sp(2), 2 * V, V),
    ("S(5)", S(5), V + T(2), V),
    ("SO(3)xS(2)", SO(3) * S(2), V, V + Scalar),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--depth", type=int, default=2)
    args = parser.parse_args()
    os.environ["PHYSBIAS_CACHE_DIR"] = tempfile.mkdtemp()
    rows = []
    for label, G, rin, rout in CASES:
        t = time.perf_counter()
        model = EMLP(rin, rout, G, args.width, args.depth, key=jax.random.key(0))
        build = time.perf_counter() - t
        n_in, n_out = rin.size(G), rout.size(G)
        mlp = eqx.nn.MLP(n_in, n_out, args.width, args.depth, activation=jax.nn.silu, key=jax.random.key(0))
        x = np.random.default_rng(0).standard_normal((64, n_in))
        rows.append(
            {
                "group": label,
                "rep_in": repr(rin),
                "rep_out": repr(rout),
                "params": sum(
                    a.size for a in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
                ),
                "build_s": build,
                "emlp_error": equivariance_error(model, rin, rout, G, x),
                "mlp_error": equivariance_error(mlp, rin, rout, G, x),
            }
        )
    print_table(rows, title=f"EMLP equivariance error (float32), width {args.width}, depth {args.depth}")


if __name__ == "__main__":
    main()
