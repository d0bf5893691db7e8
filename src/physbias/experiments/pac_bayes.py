"""``physbias run pac-bayes``: compression PAC-Bayes error bounds on the digits (M23; seed 004).

Lotfi et al. (NeurIPS 2022) bound the error of a network by how short a message describes it.
For each architecture (a plain CNN and a p4 group-equivariant CNN of matched size, Cohen &
Welling 2016) and each subspace dimension ``d``:

1. train ``w`` in ``theta = theta_0 + P w`` (:class:`~physbias.bounds.Subspace`, a Kronecker
   projector with orthonormal columns; ``theta_0`` and ``P`` come from the run's seed, fixed before
   the data are seen) by Adam with Gaussian noise on ``w`` and a small L2 penalty (both make the
   minimum flat, so that quantisation costs little accuracy);
2. for each codebook size ``L``: a k-means codebook on ``w`` (levels rounded to float16) and
   second-order rounding of ``w`` to it with the Gauss-Newton matrix of the training loss
   (:func:`~physbias.bounds.second_order_round`, GPTQ-style: the entries not yet rounded
   compensate); for the ``L`` with the lowest bound, a short straight-through fine-tuning of
   ``w`` and the codebook (:class:`~physbias.bounds.QuantizedSubspace`), kept if it lowers the
   bound;
3. the message: the symbols by adaptive arithmetic coding (Krichevsky-Trofimov frequencies, so no
   counts are sent; ``coder="arithmetic"`` sends them, ``ceil(log2 d) L`` more bits, as the
   reference does) ``+ 16 L`` bits for the codebook, prefix-free
   ``ell + 2 log2 ell``, plus ``log2(K)`` bits for choosing among the ``K`` configurations of the
   run (a union bound, so that every row's bound, and hence the best one, holds at once);
4. the bounds at ``delta``: the optimised Catoni-type bound of Lotfi et al., Catoni's (``lambda``
   chosen without paying for it, as the reference does) and McAllester's, with the train error of
   the quantised model on all ``n_train`` examples. Each row keeps the ``L`` with the lowest bound.

Any message may be chosen after seeing the data (the prior is over messages); only what the
decoder must know besides the message (architecture, ``d``, ``L``) is paid for by the union bound.

Data: scikit-learn's 8x8 digits (``load_digits``, bundled), a fixed train/test split.
"""

from __future__ import annotations

import dataclasses
import math
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..bounds import (
    CODERS,
    ORDERS,
    PROJECTORS,
    QuantizedSubspace,
    Subspace,
    gauss_newton,
    kmeans_codebook,
    message_length,
    pac_bayes_bounds,
    round_codebook,
    second_order_round,
)
from ..data import load_digit_images
from ..losses import cross_entropy_loss
from ..nn import CNN, P4CNN
from ..report import Figure, Panel, Result, series
from ..train import adam_cosine, fit, only
from ._config import ExperimentConfig, fraction, nonnegative, one_of, positive
from ._registry import Experiment

ARCHITECTURES = ("CNN", "p4-CNN")
_N_DIGITS = 1797  # images in sklearn.datasets.load_digits
_SPLIT_SEED = 20221124  # fixed train/test split, independent of the run's seed


@dataclasses.dataclass(frozen=True)
class PacBayesConfig(ExperimentConfig):
    """1697 train / 100 test digits; d in {50, 100, 250, 500}; CNN vs p4-CNN; L in {3, ..., 11}."""

    QUICK = {
        "n_train": 600,
        "n_test": 200,
        "dims": (100,),
        "width": 4,
        "depth": 1,
        "epochs": 20,
        "levels": (5, 7),
        "quant_epochs": 2,
        "curvature_samples": 200,
    }
    FULL = {
        "dims": (50, 100, 150, 250, 500, 1000),
        "epochs": 200,
        "levels": (3, 4, 5, 7, 11, 15),
        "quant_epochs": 20,
        "curvature_samples": 1600,
    }

    n_train: int = positive(1697)
    n_test: int = positive(100)
    dims: tuple[int, ...] = positive((50, 100, 250, 500))
    architectures: tuple[str, ...] = one_of(ARCHITECTURES, ARCHITECTURES)
    width: int = positive(8)
    depth: int = positive(2)
    projector: str = one_of("kronecker", PROJECTORS)
    epochs: int = positive(100)
    batch_size: int = positive(100)
    learning_rate: float = positive(0.1)
    weight_noise: float = nonnegative(0.1)
    weight_decay: float = nonnegative(3e-5)
    levels: tuple[int, ...] = positive((3, 4, 5, 7, 11))
    damping: float = nonnegative(0.1)
    curvature_samples: int = positive(300)
    quant_epochs: int = nonnegative(5)
    quant_learning_rate: float = positive(1e-3)
    delta: float = fraction(0.05)
    coder: str = one_of("adaptive", CODERS)

    def check(self) -> None:
        if self.n_train + self.n_test > _N_DIGITS:
            raise ValueError(
                f"config `n_train` + `n_test` must be at most {_N_DIGITS} (the digits data set), "
                f"got {self.n_train} + {self.n_test}"
            )
        for name in ("dims", "levels"):
            if any(not isinstance(v, int) for v in getattr(self, name)):
                raise ValueError(f"config `{name}` must hold integers, got {getattr(self, name)!r}")
        if max(self.levels) > min(self.dims):
            raise ValueError(f"config `levels` must not exceed the smallest of `dims`, got {self.levels}")
        if self.batch_size > self.n_train:
            raise ValueError(f"config `batch_size` must be at most `n_train`, got {self.batch_size}")


def _build(name: str, config: PacBayesConfig, key) -> eqx.Module:
    """The two architectures at matched size (as in ``gcnn-digits``): a p4 filter has 4 copies,
    so the plain CNN gets twice the width (4 times the channel pairs)."""
    if name == "CNN":
        return CNN(1, 10, 2 * config.width, config.depth, key=key)
    return P4CNN(1, 10, config.width, config.depth, group="p4", key=key)


def _noisy_subspace_loss(noise: float, decay: float):
    """Cross-entropy at ``w + noise * eps`` (``eps ~ N(0, I)``, fresh each step) plus
    ``decay * ||w||^2``: seeks minima that stay good under a perturbation of ``w``."""
    cross_entropy = cross_entropy_loss()

    def loss(model: Subspace, batch, key):
        w = model.w + noise * jax.random.normal(key, model.w.shape, model.w.dtype)
        return cross_entropy(eqx.tree_at(lambda s: s.w, model, w), batch, key) + decay * jnp.sum(model.w**2)

    return loss


@eqx.filter_jit
def _predict(model, x) -> jax.Array:
    return jnp.argmax(jax.vmap(model)(x), axis=-1)


def _errors(model, train, test) -> tuple[float, float]:
    """Train and test error rates, from one compiled prediction over both sets."""
    predicted = np.asarray(_predict(model, jnp.concatenate([train[0], test[0]])))
    n = train[0].shape[0]
    return float(np.mean(predicted[:n] != np.asarray(train[1]))), float(
        np.mean(predicted[n:] != np.asarray(test[1]))
    )


def _fine_tune(quantized: QuantizedSubspace, config: PacBayesConfig, data, key) -> QuantizedSubspace:
    """Straight-through fine-tuning of ``w`` and the codebook; levels rounded to float16."""
    steps = config.quant_epochs * (config.n_train // config.batch_size)
    optimizer = only(
        adam_cosine(config.quant_learning_rate, steps), quantized, lambda q: (q.subspace.w, q.codebook)
    )
    tuned = fit(
        quantized,
        cross_entropy_loss(),
        data,
        key=key,
        epochs=config.quant_epochs,
        optimizer=optimizer,
        batch_size=config.batch_size,
        progress=False,
    ).model
    return QuantizedSubspace(tuned.subspace, round_codebook(tuned.codebook))


def _evaluate(quantized: QuantizedSubspace, config: PacBayesConfig, train, test, extra_bits) -> dict:
    """Errors, message length and bounds of the quantised model (exactly what the message codes)."""
    coded = quantized.dequantized()
    train_error, test_error = _errors(coded, train, test)
    message = message_length(np.asarray(quantized.symbols()), quantized.levels, coder=config.coder)
    kl_bits = message.prefix_free_bits + extra_bits
    bounds = pac_bayes_bounds(train_error, config.n_train, kl_bits, config.delta)
    return {
        "levels": quantized.levels,
        "train_error": train_error,
        "test_error": test_error,
        "symbol_bits": message.symbol_bits,
        "message_bits": message.message_bits,
        "prefix_free_bits": message.prefix_free_bits,
        "kl_bits": kl_bits,
        "kl_nats": bounds.kl_nats,
        "bound": bounds.optimized,
        "bound_catoni": bounds.catoni,
        "bound_mcallester": bounds.mcallester,
    }


def _row(name, subspace: Subspace, config, train, test, extra_bits, key) -> dict:
    """Train, quantise at every ``L``, code and bound one (architecture, d); keep the best ``L``."""
    start = time.perf_counter()
    k_fit, k_tune = jax.random.split(key)
    steps = config.epochs * (config.n_train // config.batch_size)
    # A short warm-up: full-size first steps in w can silence the ReLUs of the group convolutions.
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, max(1, steps // 20), steps)
    trained = fit(
        subspace,
        _noisy_subspace_loss(config.weight_noise, config.weight_decay),
        train,
        key=k_fit,
        epochs=config.epochs,
        optimizer=only(optax.adam(schedule), subspace, lambda s: s.w),
        batch_size=config.batch_size,
        progress=False,
    ).model
    float_errors = _errors(trained, train, test)
    # The rounding only needs the curvature's shape: a subset of the inputs estimates it well enough.
    curvature = gauss_newton(trained, train[0][: config.curvature_samples])
    candidates = []
    for levels in config.levels:
        codebook = round_codebook(kmeans_codebook(trained.w, levels))
        for order in ORDERS:  # both are messages of the same kind: keeping the better one is free
            symbols = second_order_round(trained.w, codebook, curvature, damping=config.damping, order=order)
            rounded = eqx.tree_at(lambda s: s.w, trained, codebook[symbols])
            quantized = QuantizedSubspace(rounded, codebook)
            candidates.append((_evaluate(quantized, config, train, test, extra_bits), quantized))
    best, quantized = min(candidates, key=lambda c: c[0]["bound"])
    tuned, fine_tuned = best, False
    if config.quant_epochs > 0:  # 0: no fine-tuning
        tuned = _evaluate(_fine_tune(quantized, config, train, k_tune), config, train, test, extra_bits)
        fine_tuned = tuned["bound"] < best["bound"]
    row = {
        "architecture": name,
        "d": subspace.dim,
        "params": subspace.num_params,
        "train_error_float": float_errors[0],
        "test_error_float": float_errors[1],
        **(tuned if fine_tuned else best),
        "fine_tuned": fine_tuned,
        "best": False,
        "seconds": round(time.perf_counter() - start, 2),
    }
    return row


def run(config: PacBayesConfig, *, seed: int = 0, progress: bool = True) -> Result:
    images, labels = load_digit_images()
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(labels))
    train_idx, test_idx = order[: config.n_train], order[-config.n_test :]
    train = (jnp.asarray(images[train_idx]), jnp.asarray(labels[train_idx]))
    test = (jnp.asarray(images[test_idx]), jnp.asarray(labels[test_idx]))
    key = jax.random.key(seed)
    # The prior: architecture, initialisation and projector from the seed, fixed before the data.
    # Building every subspace first also checks every d against the parameter count before any work.
    models = {}
    for a, name in enumerate(config.architectures):
        net = _build(name, config, jax.random.fold_in(key, a))
        for d in config.dims:
            k_projector = jax.random.fold_in(jax.random.fold_in(key, 1000 + a), d)
            models[name, d] = Subspace(net, d, key=k_projector, projector=config.projector)
    configurations = len(config.architectures) * len(config.dims) * len(config.levels)
    extra_bits = math.log2(configurations)
    rows = []
    for i, ((name, d), model) in enumerate(models.items()):
        row = _row(name, model, config, train, test, extra_bits, jax.random.fold_in(key, 100_000 + i))
        rows.append(row)
        if progress:
            print(
                f"pac-bayes: {name} d = {d}: L = {row['levels']}, train {100 * row['train_error']:.1f}%, "
                f"test {100 * row['test_error']:.1f}%, {row['prefix_free_bits']:.0f} bits, "
                f"bound {100 * row['bound']:.1f}% ({row['seconds']:.0f} s)",
                flush=True,
            )
    best = min(range(len(rows)), key=lambda i: rows[i]["bound"])
    rows[best]["best"] = True
    return Result(
        "pac-bayes",
        dataclasses.asdict(config),
        rows,
        figures=[_figure(rows, config)],
        notes=_notes(config, rows[best], extra_bits),
    )


def _figure(rows: list[dict], config: PacBayesConfig) -> Figure:
    panels = []
    for name in config.architectures:
        mine = sorted((r for r in rows if r["architecture"] == name), key=lambda r: r["d"])
        dims = [r["d"] for r in mine]
        curves = [
            series("error bound (optimised Catoni)", dims, [r["bound"] for r in mine]),
            series("McAllester bound", dims, [r["bound_mcallester"] for r in mine]),
            series("test error (quantised)", dims, [r["test_error"] for r in mine]),
            series("train error (quantised)", dims, [r["train_error"] for r in mine]),
            series("1/2", [dims[0], dims[-1]], [0.5, 0.5], "reference"),
        ]
        panels.append(
            Panel(f"{name}: bound and errors vs d", "subspace dimension d", "error", curves, logx=True)
        )
    bits = [
        series(
            name,
            [r["d"] for r in sorted(rows, key=lambda r: r["d"]) if r["architecture"] == name],
            [r["prefix_free_bits"] for r in sorted(rows, key=lambda r: r["d"]) if r["architecture"] == name],
        )
        for name in config.architectures
    ]
    panels.append(
        Panel("prefix-free message length", "subspace dimension d", "bits", bits, logx=True, logy=True)
    )
    return Figure("pac_bayes", "Compression PAC-Bayes bounds on the digits", panels, columns=3)


def _notes(config: PacBayesConfig, best: dict, extra_bits: float) -> list[str]:
    return [
        f"sklearn load_digits 8x8 images in [0, 1]; fixed split: {config.n_train} train (the bound's n), "
        f"{config.n_test} test. Bounds hold with probability >= {1 - config.delta:.2f} "
        f"(delta = {config.delta}).",
        f"Best bound: {100 * best['bound']:.1f}% ({best['architecture']}, d = {best['d']}, "
        f"L = {best['levels']}; test error {100 * best['test_error']:.1f}%).",
        f"Training in theta = theta_0 + P w ({config.projector} projector, orthonormal columns): Adam "
        f"(5% linear warm-up to {config.learning_rate}, then cosine decay) for {config.epochs} epochs, "
        f"batch {config.batch_size}, "
        f"on the cross-entropy at w + {config.weight_noise} eps plus {config.weight_decay} ||w||^2.",
        f"Quantisation: for each L in {config.levels}, a k-means codebook (float16 levels) and second-order "
        "(GPTQ-style) rounding with the Gauss-Newton matrix of the training loss (on the first "
        f"{config.curvature_samples} training inputs; damping {config.damping}; natural and largest-"
        "curvature-first order, the better kept); "
        f"for the best L, {config.quant_epochs} epochs of straight-through fine-tuning of w and the codebook "
        f"(Adam from {config.quant_learning_rate}), kept when it lowers the bound (column fine_tuned). "
        "train_error/test_error are those of the quantised model (the *_float columns: before).",
        f"KL = (prefix-free message + {extra_bits:.2f} bits) ln 2; the extra bits pay (union bound) for "
        "choosing among all architectures x dims x levels of the run, so every row's bound holds at once. "
        f"Message: {config.coder}-coded symbols + 16 L (codebook) bits"
        + (" + ceil(log2 d) L (counts)" if config.coder != "adaptive" else " (no counts: the coder adapts)")
        + " = ell; "
        "prefix-free: ell + 2 log2 ell.",
        "bound: optimised Catoni-type bound of Lotfi et al. 2022 (alpha = 1e-4, lambda on a geometric grid "
        "paid for by a union bound); bound_catoni: Catoni's bound with lambda minimised without that "
        "payment (optimistic, as in the reference code); bound_mcallester: McAllester's bound.",
        f"Architectures at matched size: CNN of width {2 * config.width}, p4-CNN of width {config.width} "
        f"(x4 group copies), {config.depth} hidden (group) convolutions after the first, global mean "
        "pooling, linear head; the p4-CNN is exactly invariant to 90-degree rotations.",
    ]


EXPERIMENT = Experiment(
    "pac-bayes",
    "Compression PAC-Bayes bounds (Lotfi et al. 2022) on the digits: error bound vs subspace dimension "
    "for a CNN and a p4-equivariant CNN, trained in random subspaces and quantised.",
    PacBayesConfig,
    run,
)
