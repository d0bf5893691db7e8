"""``physbias run hamiltonian-flow``: the neural Hamiltonian flow (Toth et al. 2019) on 2-D
densities with known log-density, against a standard flow at about the same parameter count
(M9; seed 000).

For each density (8-Gaussian ring, banana, two moons — the last exact by quadrature) the data are
standardised (the fixed affine map's log-determinant is added back, so every NLL is in the
original units) and both flows are trained by the same :func:`physbias.fit` loop, optimiser and
number of steps:

- ``hamiltonian-flow``: ``blocks`` x ``steps`` leapfrog steps of learned separable Hamiltonians;
  trained on the ELBO, evaluated by the importance-weighted bound with ``importance_samples``
  momenta (an upper bound on its NLL);
- ``realnvp``: flowjax's affine coupling flow (Dinh et al. 2017), exact NLL — when the optional
  ``flowjax`` package is installed (``pip install -e '.[bench]'``); otherwise its rows are
  skipped with a note.

``gap`` = test NLL - exact NLL (the entropy of the density, estimated on the same test samples).
The structure is checked on the trained flow: ``max |log det J|`` of the symplectic core by
autodiff and the round-trip error ``|inverse(forward(s)) - s|``, in float32 and again in float64.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..flows import HamiltonianFlow, elbo_loss
from ..metrics import parameter_count
from ..report import Figure, Panel, Result, series
from ..systems import DENSITIES
from ..train import fit
from ._config import ExperimentConfig, one_of, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class HamiltonianFlowConfig(ExperimentConfig):
    """Ring, banana, moons; 4 blocks x 4 leapfrog steps, MLPs 32 x 2; 7800 steps of batch 512."""

    QUICK = {
        "densities": ("gaussian-ring",),
        "train_samples": 16_384,
        "test_samples": 1000,
        "epochs": 8,
        "blocks": 2,
        "steps": 2,
        "importance_samples": 16,
        "baseline_layers": 4,
    }
    FULL = {"epochs": 100}

    densities: tuple[str, ...] = one_of(("gaussian-ring", "banana", "two-moons"), tuple(DENSITIES))
    train_samples: int = positive(100_000)
    test_samples: int = positive(5000)
    epochs: int = positive(40)
    batch_size: int = positive(512)
    learning_rate: float = positive(2e-3)
    blocks: int = positive(4)
    steps: int = positive(4)
    step_size: float = positive(0.2)
    width: int = positive(32)
    depth: int = positive(2)
    encoder_width: int = positive(64)
    importance_samples: int = positive(64)
    baseline: str = one_of("realnvp", ("realnvp", "none"))
    baseline_layers: int = positive(8)
    baseline_width: int = positive(40)
    plot_samples: int = positive(2000)

    def check(self) -> None:
        if self.batch_size > self.train_samples:
            raise ValueError(
                f"config `batch_size` ({self.batch_size}) must not exceed `train_samples` "
                f"({self.train_samples})"
            )


def _optimizer(learning_rate: float, steps: int) -> optax.GradientTransformation:
    # Warm-up, cosine decay and clipping: the ELBO's gradient through second derivatives is spiky
    # early on (the published port without them failed on a 2-D Gaussian).
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, min(200, steps // 10), steps, learning_rate * 1e-2
    )
    return optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))


def _train(config, model, loss, data, key, progress: bool, description: str):
    """Both flows: the same fit loop, optimiser, steps and batch."""
    total = config.epochs * (config.train_samples // config.batch_size)
    return fit(
        model,
        loss,
        (data,),
        key=key,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=_optimizer(config.learning_rate, total),
        progress=progress,
        description=description,
    )


def _batched(fn, *arrays, size: int = 1000):
    starts = range(0, len(arrays[0]), size)
    return np.concatenate([np.asarray(fn(*(a[i : i + size] for a in arrays))) for i in starts])


def _structure_checks(flow: HamiltonianFlow, s: jax.Array) -> dict:
    """``max |log det d core / ds|`` by autodiff and the round-trip error, on states ``s``."""

    @eqx.filter_jit
    def checks(flow, s):
        _, log_det = jnp.linalg.slogdet(jax.vmap(jax.jacfwd(flow.core))(s))
        back = jax.vmap(flow.inverse)(jax.vmap(flow.forward)(s))
        return jnp.max(jnp.abs(log_det)), jnp.max(jnp.abs(back - s))

    log_det, round_trip = checks(flow, s)
    return {"max_abs_log_det": float(log_det), "round_trip_error": float(round_trip)}


def _hamiltonian_flow(config, data, test, key, progress: bool, name: str):
    k_model, k_fit, k_eval, k_sample, k_check = jax.random.split(key, 5)
    flow = HamiltonianFlow(
        2,
        blocks=config.blocks,
        steps=config.steps,
        step_size=config.step_size,
        width=config.width,
        depth=config.depth,
        encoder_width=config.encoder_width,
        key=k_model,
    )
    result = _train(config, flow, elbo_loss(), data, k_fit, progress, f"hamiltonian flow ({name})")
    flow = result.model
    start = time.perf_counter()
    m = config.importance_samples
    iw = eqx.filter_jit(lambda f, x, k: jax.vmap(lambda q, kk: f.log_prob(q, kk, m))(x, k))
    elbo = eqx.filter_jit(lambda f, x, k: jax.vmap(f.log_weight)(x, k))
    keys = jax.random.split(k_eval, len(test))
    log_p = _batched(lambda x, k: iw(flow, x, k), test, keys)
    log_w = _batched(lambda x, k: elbo(flow, x, k), test, keys)
    eval_seconds = time.perf_counter() - start
    s = jax.random.normal(k_check, (256, 4))
    f32 = _structure_checks(flow, s)
    with jax.enable_x64(True):
        to64 = lambda x: x.astype(jnp.float64) if eqx.is_inexact_array(x) else x
        f64 = _structure_checks(jax.tree_util.tree_map(to64, flow), to64(s))
    samples = np.asarray(eqx.filter_jit(lambda f, k: f.sample(k, config.plot_samples))(flow, k_sample))
    row = {
        "nll": float(-np.mean(log_p)),
        "elbo_nll": float(-np.mean(log_w)),
        "params": parameter_count(flow),
        "train_seconds": round(result.seconds, 2),
        "ms_per_step": 1e3 * result.seconds / max(1, len(result.losses)),
        "eval_seconds": round(eval_seconds, 2),
        "max_abs_log_det_f32": f32["max_abs_log_det"],
        "round_trip_f32": f32["round_trip_error"],
        "max_abs_log_det_f64": f64["max_abs_log_det"],
        "round_trip_f64": f64["round_trip_error"],
        "step_sizes": ", ".join(f"{v:.3f}" for v in np.exp(np.asarray(flow.log_step_sizes))),
    }
    return row, samples, result


def _realnvp(config, data, test, key, progress: bool, name: str):
    import paramax
    from flowjax.bijections import Affine
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow

    k_model, k_fit, k_sample = jax.random.split(key, 3)
    flow = coupling_flow(
        k_model,
        base_dist=Normal(jnp.zeros(2)),
        transformer=Affine(),
        flow_layers=config.baseline_layers,
        nn_width=config.baseline_width,
        nn_depth=config.depth,
    )
    # paramax.unwrap applies flowjax's parameter constraints; its non-trainable leaves get zero gradient.
    loss = lambda f, batch, key: -jnp.mean(paramax.unwrap(f).log_prob(batch[0]))
    result = _train(config, flow, loss, data, k_fit, progress, f"realnvp ({name})")
    flow = paramax.unwrap(result.model)
    log_p = np.asarray(eqx.filter_jit(lambda f, x: f.log_prob(x))(flow, test))
    samples = np.asarray(eqx.filter_jit(lambda f, k: f.sample(k, (config.plot_samples,)))(flow, k_sample))
    row = {
        "nll": float(-np.mean(log_p)),
        "params": parameter_count(result.model),
        "train_seconds": round(result.seconds, 2),
        "ms_per_step": 1e3 * result.seconds / max(1, len(result.losses)),
    }
    return row, samples, result


def run(config: HamiltonianFlowConfig, *, seed: int = 0, progress: bool = True) -> Result:
    have_flowjax = importlib.util.find_spec("flowjax") is not None
    baseline = config.baseline == "realnvp" and have_flowjax
    table, panels = [], []
    key = jax.random.key(seed)
    for d, name in enumerate(config.densities):
        density = DENSITIES[name]()
        k_train, k_test, k_nhf, k_base = jax.random.split(jax.random.fold_in(key, d), 4)
        raw = density.sample(k_train, config.train_samples)
        raw_test = density.sample(k_test, config.test_samples)
        mean, std = jnp.mean(raw, 0), jnp.std(raw, 0)
        data, test = (raw - mean[None]) / std[None], (raw_test - mean[None]) / std[None]
        # log p_x(x) = log p_z((x - mean) / std) - sum(log std)
        log_std = float(jnp.sum(jnp.log(std)))
        exact = float(-jnp.mean(density.log_prob(raw_test)))
        models = [("hamiltonian-flow", _hamiltonian_flow)] + ([("realnvp", _realnvp)] if baseline else [])
        curves = [series("data", *np.asarray(raw_test[: config.plot_samples]).T, "scatter")]
        for model_name, train in models:
            model_key = k_base if model_name == "realnvp" else k_nhf
            row, samples, result = train(config, data, test, model_key, progress, name)
            row["nll"] += log_std
            if "elbo_nll" in row:
                row["elbo_nll"] += log_std
            nll = row.pop("nll")
            table.append(
                {
                    "density": name,
                    "model": model_name,
                    "nll": nll,
                    "exact_nll": exact,
                    "gap": nll - exact,
                    "steps": len(result.losses),
                    "seconds_per_epoch": result.seconds / max(1, result.epochs),
                    **row,
                }
            )
            samples = np.asarray(samples) * np.asarray(std) + np.asarray(mean)  # back to data units
            curves.append(series(model_name, *samples.T, "scatter"))
            if progress:
                print(
                    f"hamiltonian-flow: {name}, {model_name}: NLL {table[-1]['nll']:.3f} vs exact "
                    f"{exact:.3f} (gap {table[-1]['gap']:+.3f}) in {row['train_seconds']:.0f} s",
                    flush=True,
                )
        panels.append(Panel(f"{name}: samples", "x1", "x2", curves))
    notes = [
        "nll: the Hamiltonian flow's importance-weighted bound (an upper bound on its true NLL) with "
        f"{config.importance_samples} momenta; RealNVP's exact NLL. exact_nll: -mean log p(x) of the density "
        f"on the same {config.test_samples} test samples. Both models: the same fit loop, Adam with warm-up, "
        "cosine decay and clipping, the same steps and batch.",
        "max_abs_log_det: |log det| of the symplectic core's Jacobian by autodiff on 256 random states (0 in "
        "exact arithmetic); round_trip: max |inverse(forward(s)) - s|. A trained map is ill-conditioned, so "
        "float32 rounding shows; float64 shows the map itself.",
    ]
    if config.baseline == "realnvp" and not have_flowjax:
        notes.append("flowjax is not installed (pip install -e '.[bench]'): the RealNVP rows were skipped.")
    return Result(
        "hamiltonian-flow",
        dataclasses.asdict(config),
        table,
        figures=[Figure("samples", "Neural Hamiltonian flow vs RealNVP", panels, columns=len(panels))],
        notes=notes,
    )


EXPERIMENT = Experiment(
    "hamiltonian-flow",
    "The volume-preserving neural Hamiltonian flow (leapfrog blocks, log det = 0) on 2-D densities with "
    "known log-density, importance-weighted NLL vs the exact one, against flowjax's RealNVP when installed.",
    HamiltonianFlowConfig,
    run,
)
