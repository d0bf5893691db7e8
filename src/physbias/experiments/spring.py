"""``physbias run spring``: the four biases side by side on the nonlinear spring of seed 001.

``F = k1 x + k2 x^3`` is odd. Noisy samples cover only ``x`` in ``train_range`` (mostly positive);
each bias is judged inside that range, on its mirror image, outside it, and by the oddness error
``max |f(x) + f(-x)|``.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..bias import Augmentation, OddFunction, Parity, PhysicsResidual, SymmetryPenalty, describe
from ..data import Dataset
from ..losses import supervised_loss
from ..metrics import oddness_error, rmse
from ..report import Figure, Panel, Result, series
from ..systems import LinearSpring, SpringForm, sample_spring, spring_force
from ._config import ExperimentConfig, interval, nonnegative, positive
from ._registry import Experiment
from ._runner import Variant, compare


@dataclasses.dataclass(frozen=True)
class SpringConfig(ExperimentConfig):
    QUICK = {"epochs": 800}
    FULL = {"epochs": 6000, "n_train": 400}

    n_train: int = positive(200)
    noise: float = nonnegative(0.05)
    k1: float = 1.0
    k2: float = 2.0
    k_star: float = 1.0
    train_range: tuple[float, float] = interval((-0.25, 1.0))
    test_limit: float = positive(1.5)
    width: int = positive(32)
    depth: int = positive(2)
    epochs: int = positive(3000)
    learning_rate: float = positive(3e-3)
    penalty_weight: float = nonnegative(1.0)
    # The two-constant known form is an ill-conditioned linear fit (x and x^3 are correlated on
    # the range): it takes a larger Adam step than the networks.
    form_learning_rate: float = positive(0.03)

    def check(self):
        if self.test_limit <= max(abs(v) for v in self.train_range):
            raise ValueError("config `test_limit` must exceed the training range")


def _variants(config: SpringConfig, train: Dataset, key, k_aug):
    def mlp(k):
        return eqx.nn.MLP(1, "scalar", config.width, config.depth, activation=jnp.tanh, key=k)

    parity = Parity(odd=True)
    aug = Augmentation(parity)
    pen = SymmetryPenalty(parity, config.penalty_weight)
    odd = OddFunction(mlp(key))
    phys = PhysicsResidual(LinearSpring(config.k_star), mlp(key))
    phys_odd = PhysicsResidual(LinearSpring(config.k_star), OddFunction(mlp(key)))
    plain = mlp(key)
    lr = config.learning_rate

    def variant(name, model, kind, loss=None, data=train, learning_rate=lr):
        return Variant(
            name,
            model,
            loss or supervised_loss(),
            data,
            {"bias": name, "kind": kind},
            learning_rate=learning_rate,
        )

    return [
        variant("none", plain, describe(plain)),
        variant("observation", plain, describe(aug), data=aug(train, key=k_aug)),
        variant("learning", plain, describe(pen), loss=supervised_loss(pen)),
        variant("inductive", odd, describe(odd)),
        variant("physics", phys, describe(phys)),
        variant("physics+inductive", phys_odd, "physics + inductive (hard)"),
        variant(
            "physics (known form)",
            PhysicsResidual(SpringForm()),
            "physics (hard)",
            learning_rate=config.form_learning_rate,
        ),
    ]


def run(config: SpringConfig, *, seed: int = 0, progress: bool = True) -> Result:
    k_data, k_model, k_fit, k_aug = jax.random.split(jax.random.key(seed), 4)
    x, f = sample_spring(
        k_data, config.n_train, *config.train_range, k1=config.k1, k2=config.k2, noise=config.noise
    )
    train = Dataset(x, f, name="spring")
    lo, hi = config.train_range
    lim = config.test_limit
    regions = {
        "inside": np.linspace(lo, hi, 400),
        "mirror": np.linspace(-hi, -lo, 400) if lo > -hi else np.linspace(-hi, lo, 400),
        "outside": np.concatenate([np.linspace(-lim, -hi, 200), np.linspace(max(hi, -lo), lim, 200)]),
    }
    grid = np.linspace(-lim, lim, 601)
    truth = lambda xs: spring_force(jnp.asarray(xs), config.k1, config.k2)

    def evaluate(variant: Variant, fit) -> dict:
        predict = jax.jit(jax.vmap(fit.model))
        row = {
            f"rmse_{region}": rmse(predict(jnp.asarray(xs)[:, None]), truth(xs))
            for region, xs in regions.items()
        }
        row["oddness_error"] = oddness_error(fit.model, jnp.asarray(grid)[:, None])
        known = getattr(fit.model, "known", None)
        row["k1"] = float(known.k1) if isinstance(known, SpringForm) else ""
        row["k2"] = float(known.k2) if isinstance(known, SpringForm) else ""
        return row

    comparison = compare(
        _variants(config, train, k_model, k_aug), evaluate, key=k_fit, epochs=config.epochs, progress=progress
    )
    curves = [
        series("truth", grid, truth(grid), style="reference"),
        series("train data", x[:, 0], f, style="scatter"),
    ]
    curves += [
        series(name, grid, jax.vmap(r.model)(jnp.asarray(grid)[:, None]))
        for name, r in comparison.fits.items()
    ]
    fig = Figure(
        "spring_fits",
        "Nonlinear spring F = k1 x + k2 x^3: learned force",
        [Panel(f"training range {config.train_range}", "x", "F", curves)],
        1,
    )
    notes = [
        f"rmse against the noise-free force; inside = {config.train_range}, mirror = its reflection, "
        f"outside = up to |x| = {lim}; oddness_error = max |f(x) + f(-x)| on [-{lim}, {lim}].",
        f"physics bias: F = k* x + f_hat(x) with k* = {config.k_star}; 'physics (known form)' fits "
        f"k1, k2 of k1 x + k2 x^3 (truth {config.k1}, {config.k2}).",
    ]
    return Result("spring", dataclasses.asdict(config), comparison.rows, figures=[fig], notes=notes)


EXPERIMENT = Experiment(
    "spring",
    "Seed 001's nonlinear spring F = k1 x + k2 x^3: the four biases side by side, with oddness error.",
    SpringConfig,
    run,
)
