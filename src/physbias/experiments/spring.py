"""``physbias run spring``: the four biases side by side on the nonlinear spring of seed 001.

``F = k1 x + k2 x^3`` is odd. Noisy samples cover only ``x`` in ``train_range`` (mostly positive);
each bias is judged inside that range, on its mirror image, outside it, and by the oddness error
``max |f(x) + f(-x)|``.
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..bias import (
    Augmentation,
    OddFunction,
    Parity,
    PhysicsResidual,
    SymmetryPenalty,
    describe,
)
from ..data import Dataset
from ..losses import supervised_loss
from ..metrics import oddness_error, rmse
from ..report import Figure, Panel, Result, series
from ..systems.spring import SpringForm, sample_spring, spring_force
from ..train import fit
from . import Experiment
from ._config import validate_config


@dataclasses.dataclass(frozen=True)
class SpringConfig:
    n_train: int = 200
    noise: float = 0.05
    k1: float = 1.0
    k2: float = 2.0
    k_star: float = 1.0
    train_range: tuple[float, float] = (-0.25, 1.0)
    test_limit: float = 1.5
    width: int = 32
    depth: int = 2
    epochs: int = 3000
    learning_rate: float = 3e-3
    penalty_weight: float = 1.0
    # The two-constant known form is an ill-conditioned linear fit (x and x^3 are correlated on
    # the range): it takes a larger Adam step than the networks.
    form_learning_rate: float = 0.03

    def __post_init__(self):
        validate_config(self)
        lo, hi = self.train_range
        if not lo < hi:
            raise ValueError(f"config `train_range` must satisfy low < high, got {(lo, hi)}")
        if self.test_limit <= max(abs(lo), abs(hi)):
            raise ValueError("config `test_limit` must exceed the training range")

    @classmethod
    def quick(cls) -> SpringConfig:
        return cls(epochs=800)

    @classmethod
    def full(cls) -> SpringConfig:
        return cls(epochs=6000, n_train=400)


class LinearSpring(eqx.Module):
    """The known baseline ``F = k* x`` of the physics bias (a constant, not trained)."""

    k_star: float = eqx.field(static=True)

    def __call__(self, x):
        return self.k_star * x[0]


def _variants(config: SpringConfig, key):
    def mlp(k):
        return eqx.nn.MLP(1, "scalar", config.width, config.depth, activation=jnp.tanh, key=k)

    parity = Parity(odd=True)
    aug = Augmentation(parity)
    pen = SymmetryPenalty(parity, config.penalty_weight)
    odd = OddFunction(mlp(key))
    phys = PhysicsResidual(LinearSpring(config.k_star), mlp(key))
    phys_odd = PhysicsResidual(LinearSpring(config.k_star), OddFunction(mlp(key)))
    plain = mlp(key)
    lr, form_lr = config.learning_rate, config.form_learning_rate
    return [
        ("none", plain, None, (), describe(plain), lr),
        ("observation", plain, aug, (), describe(aug), lr),
        ("learning", plain, None, (pen,), describe(pen), lr),
        ("inductive", odd, None, (), describe(odd), lr),
        ("physics", phys, None, (), describe(phys), lr),
        ("physics+inductive", phys_odd, None, (), "physics + inductive (hard)", lr),
        ("physics (known form)", PhysicsResidual(SpringForm()), None, (), "physics (hard)", form_lr),
    ]


def run(config: SpringConfig, *, seed: int = 0, progress: bool = True) -> Result:
    start = time.perf_counter()
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

    table, curves = (
        [],
        [
            series("truth", grid, truth(grid), style="reference"),
            series("train data", x[:, 0], f, style="scatter"),
        ],
    )
    for name, model, aug, penalties, label, lr in _variants(config, k_model):
        data = aug(train, key=k_aug) if aug is not None else train
        result = fit(
            model,
            supervised_loss(*penalties),
            data,
            key=k_fit,
            epochs=config.epochs,
            learning_rate=lr,
            progress=progress,
            description=name,
        )
        predict = jax.jit(jax.vmap(result.model))
        row = {"bias": name, "kind": label}
        for region, xs in regions.items():
            row[f"rmse_{region}"] = rmse(predict(jnp.asarray(xs)[:, None]), truth(xs))
        row["oddness_error"] = oddness_error(result.model, jnp.asarray(grid)[:, None])
        row["train_seconds"] = result.seconds
        known = getattr(result.model, "known", None)
        row["k1"] = float(known.k1) if isinstance(known, SpringForm) else ""
        row["k2"] = float(known.k2) if isinstance(known, SpringForm) else ""
        table.append(row)
        curves.append(series(name, grid, predict(jnp.asarray(grid)[:, None])))

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
    return Result("spring", dataclasses.asdict(config), table, time.perf_counter() - start, [fig], notes)


EXPERIMENT = Experiment(
    "spring",
    "Seed 001's nonlinear spring F = k1 x + k2 x^3: the four biases side by side, with oddness error.",
    SpringConfig,
    run,
)
