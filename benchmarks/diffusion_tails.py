"""How well a window denoiser's plain samples reproduce the rare tails of Lorenz-63 events.

    python benchmarks/diffusion_tails.py [--network mlp-conv] [--over window] [--n-train 40000]
        [--epochs 200] [--learning-rate 1e-3] [--batch-size 256] [--seed 0] [--samples 16000]
        [--save model.eqx]

Trains the denoiser of ``physbias run diffusion-events`` (same windows, keys, preconditioning,
log-uniform noise on [1e-3, 20], Adam with cosine decay, batch 256) and draws ``--samples`` plain
samples (500 Euler-Maruyama steps, denoised). For each event (upper tail of the window's peak of
``z``, lower tail of the spectral amplitude, both tails of the lobe mean) and each probability
1e-1, 1e-2, 1e-3, it prints log P(E) of the samples minus the Monte-Carlo log P(E) (thresholds on
200 000 simulated windows, probabilities on another 200 000): the error of the *model*, which
twisted SMC measures to within about 0.07 (BENCHMARKS), so no estimator can do better than this.

``--over start`` diffuses the windows' first states instead (with ``--network mlp``) and makes each
sample's window with the simulator's flow map (:class:`physbias.systems.FlowMap`): every sample is
then a trajectory of the ODE, and the table measures how well the model places the starts.

It also prints the model's return map of ``z`` (each local maximum of ``z`` against the next one in
the window, Lorenz's 1963 map) against the data's: the largest next peak in 20 bins of the previous
one, and the 0.99 / 0.999 quantiles of the next peak. The highest peaks of ``z`` come from the
map's cusp, so a rounded cusp is a thin 1e-3 tail.
"""

from __future__ import annotations

import argparse
import io
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from physbias._io import atomic_write_bytes
from physbias.diffusion import Denoiser, WindowMLP, WindowMLPConv, denoising_loss, sample
from physbias.report import check_output_file, environment, print_table
from physbias.systems import WINDOW_STATISTICS, FlowMap, Lorenz63, trajectory_windows
from physbias.train import fit

NETWORKS = {"mlp": WindowMLP, "mlp-conv": WindowMLPConv}
EVENTS = (("peak", "upper"), ("spectral", "lower"), ("lobe", "upper"), ("lobe", "lower"))
PROBABILITIES = (0.1, 0.01, 0.001)


def return_map(windows: np.ndarray) -> np.ndarray:
    """``(m, 2)`` pairs (a local maximum of ``z``, the next one) within each window."""
    z = windows[..., -1]
    peak = (z[:, 1:-1] > z[:, :-2]) & (z[:, 1:-1] > z[:, 2:])
    pairs = []
    for row, is_peak in zip(z, peak, strict=True):
        at = np.flatnonzero(is_peak) + 1
        pairs.extend(zip(row[at[:-1]], row[at[1:]], strict=True))
    return np.asarray(pairs, dtype=np.float64).reshape(-1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", choices=sorted(NETWORKS), default="mlp-conv")
    parser.add_argument("--n-train", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's peak step size")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--over",
        choices=("window", "start"),
        default="window",
        help="diffuse whole windows (the reference), or their first states, windows by the flow map",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=16_000)
    parser.add_argument("--save", default=None, help="write the trained denoiser here (equinox leaves)")
    args = parser.parse_args()
    if not args.learning_rate > 0:
        parser.error("--learning-rate must be positive")
    for name in ("n_train", "epochs", "width", "samples", "batch_size"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.over == "start" and args.network != "mlp":
        parser.error("--over start diffuses 3 numbers per window: use --network mlp")
    if args.samples % 2000:
        parser.error("--samples must be a multiple of 2000")
    if args.save:
        try:  # before any work: a path that cannot be written is refused now, not after training
            check_output_file(args.save)
        except ValueError as error:
            parser.error(str(error).replace("--out", "--save", 1))

    # The keys of physbias.experiments.diffusion_events.run, so the seed's data are the run's.
    k_train, _, k_mc, k_net, k_fit, k_sample, _ = jax.random.split(jax.random.key(args.seed), 7)
    system, shape = Lorenz63(), (30, 3)
    train = trajectory_windows(system, k_train, args.n_train, 30)
    mc = trajectory_windows(system, k_mc, 400_000, 30)
    loc, scale = train.mean(axis=(0, 1)), train.std(axis=(0, 1))
    standardised = jnp.asarray((train - loc) / scale)

    if args.over == "start":
        flow = FlowMap(system, shape[0], loc=loc, scale=scale)
        shape, standardised = (shape[1],), standardised[:, 0]
    denoiser = Denoiser(NETWORKS[args.network](shape, k_net, width=args.width, depth=3))
    steps = args.epochs * (args.n_train // args.batch_size)
    start = time.perf_counter()
    trained = fit(
        denoiser,
        lambda m, batch, k: denoising_loss(m, batch[0], k, sigma_range=(1e-3, 20.0)),
        (standardised,),
        key=k_fit,
        epochs=args.epochs,
        batch_size=args.batch_size,
        optimizer=optax.adam(optax.cosine_decay_schedule(args.learning_rate, steps, 0.05)),
        progress=False,
    )
    train_seconds = time.perf_counter() - start
    denoiser = trained.model
    if args.save:
        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, denoiser)
        atomic_write_bytes(args.save, buffer.getvalue())

    draw = eqx.filter_jit(
        lambda k: sample(
            denoiser.score, k, 2000, shape, sigma_min=1e-3, sigma_max=20.0, steps=500, denoise=True
        )
    )
    start = time.perf_counter()
    chunks = [np.asarray(draw(jax.random.fold_in(k_sample, i))) for i in range(args.samples // 2000)]
    if args.over == "start":
        chunks = [np.asarray(jax.vmap(flow)(jnp.asarray(c))) for c in chunks]
    samples = np.concatenate(chunks) * scale + loc
    sample_seconds = time.perf_counter() - start

    rows = []
    for name, tail in EVENTS:
        statistic = jax.jit(jax.vmap(WINDOW_STATISTICS[name]))
        reference = np.asarray(statistic(jnp.asarray(mc[:200_000])))
        held = np.asarray(statistic(jnp.asarray(mc[200_000:])))
        model = np.asarray(statistic(jnp.asarray(samples)))
        row = {"event": f"{name} ({tail} tail)"}
        for p in PROBABILITIES:
            threshold = np.quantile(reference, 1 - p if tail == "upper" else p)
            inside = (lambda s, t=threshold: s > t) if tail == "upper" else (lambda s, t=threshold: s < t)
            p_model, p_mc = float(np.mean(inside(model))), float(np.mean(inside(held)))
            row[f"log P error at {p:g}"] = math.log(p_model / p_mc) if p_model > 0 else float("-inf")
            row[f"model hits at {p:g}"] = int(np.sum(inside(model)))
        rows.append(row)
    print_table(
        rows,
        title=(
            f"diffusion_tails: {args.network} width {args.width} over {args.over}s, {args.n_train} windows, "
            f"{args.epochs} epochs, batch {args.batch_size}, Adam {args.learning_rate:g} "
            f"({steps} steps, {train_seconds:.0f} s, loss {float(np.asarray(trained.losses)[-1]):.3f}); "
            f"{args.samples} samples in {sample_seconds:.0f} s; z spread {samples[..., 2].std():.3f} "
            f"(data {mc[:50_000, :, 2].std():.3f}); {environment()['device']}"
        ),
    )

    data_map, model_map = return_map(mc[: args.samples]), return_map(samples)
    edges = np.quantile(data_map[:, 0], np.linspace(0, 1, 21))
    table = []
    for label, pairs in (("data", data_map), ("model", model_map)):
        bins = np.clip(np.digitize(pairs[:, 0], edges) - 1, 0, 19)
        highest = [pairs[bins == b, 1].max() if np.any(bins == b) else float("nan") for b in range(20)]
        top = int(np.nanargmax(highest))
        table.append(
            {
                "windows": label,
                "peak pairs": len(pairs),
                "next peak q0.99": float(np.quantile(pairs[:, 1], 0.99)),
                "next peak q0.999": float(np.quantile(pairs[:, 1], 0.999)),
                "highest next peak (cusp bin)": float(highest[top]),
                "cusp bin": f"[{edges[top]:.3f}, {edges[top + 1]:.3f}]",
            }
        )
    print_table(table, title="return map of z (units of the windows: state / 20)")


if __name__ == "__main__":
    main()
