"""``physbias run invariance-learning``: how much rotation invariance the data support, learned by
the Laplace evidence without validation data (M19; Immer, van der Ouderaa et al. 2022, LILA).

LILA's illustrative task: two classes whose label depends on the radius only, observed on arcs
spanning 120 degrees (and a variant spanning 360). An MLP 2-50-2 (tanh) is wrapped in
:class:`~physbias.bias.LearnedInvariance` (averaged over ``S`` rotations by ``[-eta, eta]``) and
trained for 500 full-batch epochs: Adam 0.1 on the weights, and every epoch one step on the prior
precision and on ``eta`` up the gradient of the full-GGN Laplace evidence (LILA's setting: ``eta``
by Adam ``0.01 pi`` with cosine decay, twice LILA's rate). The plain MLP is trained the same way
(prior precision only). Reference: on the 120-degree arcs ``eta`` reaches about 60 degrees within 500 steps.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..bias import AFFINE_2D, LearnedInvariance, extent_degrees, rotate_images
from ..data import load_digit_images
from ..marglik import invariance_fit
from ..metrics import accuracy
from ..report import Figure, Panel, Result, series
from ..systems import rotation_arcs
from ._config import ExperimentConfig, nonnegative, positive
from ._registry import Experiment


@dataclasses.dataclass(frozen=True)
class InvarianceLearningConfig(ExperimentConfig):
    """LILA's illustrative example: 200 points, noise 0.06, MLP 2-50-2 tanh, 500 epochs."""

    QUICK = {"n_samples": 16, "digit_rotations": ()}
    FULL = {"n_samples": 100}

    spans: tuple[float, ...] = positive((120.0, 360.0))
    n_train: int = positive(200)
    n_test: int = positive(2000)
    noise: float = nonnegative(0.06)
    width: int = positive(50)
    epochs: int = positive(500)
    learning_rate: float = positive(0.1)
    hyper_learning_rate: float = positive(0.1)
    extent_learning_rate: float = positive(
        0.01 * np.pi
    )  # LILA: 0.005 pi; at that rate 2 of 3 seeds stall at 90 deg on 360-deg arcs
    extent_inits_degrees: tuple[float, ...] = positive((3.0, 135.0))
    n_samples: int = positive(32)
    # The image task: scikit-learn's digits rotated by U[-r, r] degrees, r in digit_rotations.
    digit_rotations: tuple[float, ...] = nonnegative((0.0, 90.0, 180.0))
    digit_train: int = positive(150)
    digit_test: int = positive(500)
    digit_width: int = positive(16)
    digit_epochs: int = positive(250)
    digit_samples: int = positive(8)

    def check(self) -> None:
        if any(s > 360 for s in self.spans):
            raise ValueError(f"`spans` must be angles in (0, 360] degrees, got {self.spans}")


def _accuracy(model, x, labels) -> float:
    return accuracy(eqx.filter_jit(lambda m, x: jax.vmap(m)(x))(model, x), labels)


def _invariant_vs_plain(config, net, make_invariant, data, test, epochs: int, task: str, span: float):
    """Fit ``make_invariant(extent)`` from each start and the plain ``net``, all by their evidence.

    The evidence picks among the starts (the extent's evidence has local optima, e.g. at 90
    degrees for data spanning 360), still without validation data. Returns the restarts, the fits
    (``invariant`` = the best-evidence start, then every start, then ``plain``) and table rows."""
    restarts = {
        init: invariance_fit(
            make_invariant(np.deg2rad(init)),
            data,
            epochs=epochs,
            learning_rate=config.learning_rate,
            hyper_learning_rate=config.hyper_learning_rate,
            extent_learning_rate=config.extent_learning_rate,
            extent_learning_rate_final=config.extent_learning_rate / 500,
        )
        for init in config.extent_inits_degrees
    }
    best = max(restarts, key=lambda k: restarts[k].log_evidence[-1])
    fits = {"invariant": restarts[best]} | {f"invariant (from {k:g} deg)": v for k, v in restarts.items()}
    fits["plain"] = invariance_fit(
        net,
        data,
        hyperparameters=None,
        epochs=epochs,
        learning_rate=config.learning_rate,
        hyper_learning_rate=config.hyper_learning_rate,
    )
    rows = [
        {
            "task": task,
            "data_span_deg": span,
            "model": name,
            "learned_extent_deg": float(np.abs(extent_degrees(r.model))[0]) if name != "plain" else 0.0,
            "log_evidence": float(r.log_evidence[-1]),
            "prior_precision": r.prior_precision,
            "train_accuracy": _accuracy(r.model, *data),
            "test_accuracy": _accuracy(r.model, *test),
            "final_map_loss": float(r.losses[-1]),
            "seconds": round(r.seconds, 2),
        }
        for name, r in fits.items()
    ]
    return restarts, fits, rows


def _rotated_digits(images, labels, rng, r_degrees):
    angles = np.deg2rad(rng.uniform(-r_degrees, r_degrees, len(images))).astype(np.float32)
    return rotate_images(jnp.asarray(images), jnp.asarray(angles)), jnp.asarray(labels)


def _digits(config: InvarianceLearningConfig, seed: int, table: list, panels: list) -> None:
    """The image task: the learned rotation extent should grow with the rotation in the data."""
    images, labels = load_digit_images()
    for i, r in enumerate(config.digit_rotations):
        rng = np.random.default_rng([seed, 100 + i])
        order = rng.permutation(len(images))
        train_idx, test_idx = (
            order[: config.digit_train],
            order[config.digit_train : config.digit_train + config.digit_test],
        )
        x, y = _rotated_digits(images[train_idx], labels[train_idx], rng, r)
        x_test, y_test = _rotated_digits(images[test_idx], labels[test_idx], rng, r)
        net = eqx.nn.Sequential(
            [
                eqx.nn.Lambda(jnp.ravel),
                eqx.nn.MLP(
                    64,
                    10,
                    config.digit_width,
                    1,
                    activation=jnp.tanh,
                    key=jax.random.fold_in(jax.random.key(seed), 100 + i),
                ),
            ]
        )
        restarts, _, rows = _invariant_vs_plain(
            config,
            net,
            lambda extent, net=net: LearnedInvariance(
                net,
                AFFINE_2D[2:3],
                extent=extent,
                n_samples=config.digit_samples,
                images=True,
            ),
            (x, y),
            (x_test, y_test),
            config.digit_epochs,
            f"digits rotated +-{r:g} deg",
            2 * r,
        )
        table.extend(rows)
        steps = np.arange(config.digit_epochs + 1)
        panels.append(
            Panel(
                f"digits rotated +-{r:g} deg",
                "epoch",
                "learned extent eta (deg)",
                [
                    series(
                        f"eta from {k:g} deg",
                        steps,
                        np.abs(v.extents[:, 0]) * 180 / np.pi,
                    )
                    for k, v in restarts.items()
                ]
                + [series("data rotation r", [0, config.digit_epochs], [r, r])],
            )
        )


def run(config: InvarianceLearningConfig, *, seed: int = 0, progress: bool = True) -> Result:
    table, panels_extent, panels_evidence, panels_data = [], [], [], []
    for i, span in enumerate(config.spans):
        rng = np.random.default_rng([seed, i])
        x, labels = (jnp.asarray(a) for a in rotation_arcs(rng, config.n_train, span, config.noise))
        x_test, labels_test = (jnp.asarray(a) for a in rotation_arcs(rng, config.n_test, span, config.noise))
        mlp = eqx.nn.MLP(
            2,
            2,
            config.width,
            1,
            activation=jnp.tanh,
            key=jax.random.fold_in(jax.random.key(seed), i),
        )
        restarts, fits, rows = _invariant_vs_plain(
            config,
            mlp,
            lambda extent, mlp=mlp: LearnedInvariance(mlp, extent=extent, n_samples=config.n_samples),
            (x, labels),
            (x_test, labels_test),
            config.epochs,
            f"arcs {span:g} deg",
            span,
        )
        table.extend(rows)
        steps = np.arange(config.epochs + 1)
        panels_extent.append(
            Panel(
                f"arcs spanning {span:g} deg",
                "epoch",
                "learned extent eta (deg)",
                [
                    *(
                        series(
                            f"eta from {i:g} deg",
                            steps,
                            np.abs(r.extents[:, 0]) * 180 / np.pi,
                        )
                        for i, r in restarts.items()
                    ),
                    series("half the span", [0, config.epochs], [span / 2, span / 2]),
                ],
            )
        )
        panels_evidence.append(
            Panel(
                f"arcs spanning {span:g} deg",
                "epoch",
                "-log evidence",
                [series(name, steps[1:], -r.log_evidence) for name, r in fits.items() if name != "invariant"],
                logy=True,
            )
        )
        panels_data.append(
            Panel(
                f"training data ({span:g} deg)",
                "x1",
                "x2",
                [
                    series(
                        f"class {c}",
                        x[labels == c, 0],
                        x[labels == c, 1],
                        style="scatter",
                    )
                    for c in (0, 1)
                ],
            )
        )
    panels_digits: list = []
    _digits(config, seed, table, panels_digits)
    figures = [
        Figure(
            "extent",
            "Rotation extent learned by the Laplace evidence",
            panels_extent,
            columns=len(config.spans),
        ),
        Figure(
            "evidence",
            "Negative log evidence during training",
            panels_evidence,
            columns=len(config.spans),
        ),
        Figure("data", "Training data", panels_data, columns=len(config.spans)),
    ]
    if panels_digits:
        figures.append(
            Figure(
                "digits_extent",
                "Digits: rotation extent learned by the evidence",
                panels_digits,
                columns=len(panels_digits),
            )
        )
    notes = [
        "learned_extent_deg: |eta| in degrees; the invariant model averages its MLP over rotations in "
        "[-eta, eta] (S = n_samples, midpoint rule). Reference (LILA, 120 degree arcs): about 60 degrees.",
        f"'invariant' is the restart (initial extents {config.extent_inits_degrees} deg) with the highest "
        "evidence: on 360-degree arcs the extent's evidence has a local optimum at 90 degrees (a network "
        "averaged over a half turn can already be invariant) that a start from 3 degrees stops at.",
        "Both models: weights by Adam, prior precision (and eta) by the full-GGN Laplace evidence "
        "every epoch; "
        "test accuracy on fresh points from the same arcs.",
        "digits: scikit-learn's 8x8 digits, each rotated by U[-r, r] (bilinear), an MLP 64-16-10 tanh "
        "averaged "
        "over rotations of the image in [-eta, eta]; the extent should follow r. Test images are held-out "
        "digits rotated the same way.",
    ]
    return Result(
        "invariance-learning",
        dataclasses.asdict(config),
        table,
        figures=figures,
        notes=notes,
    )


EXPERIMENT = Experiment(
    "invariance-learning",
    "LILA's illustrative example: the rotation invariance of a classifier learned by its Laplace "
    "evidence (arcs spanning 120 and 360 degrees), against the plain MLP.",
    InvarianceLearningConfig,
    run,
)
