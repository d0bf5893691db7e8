"""The experiment runner (physbias.experiments): compare, configs with declared constraints,
overrides, presets, prepare / execute and the command line a run records.

References: rows and losses are compared with fits made here by hand (same data, key, epochs);
the recorded command is run again through the CLI and must reproduce the table exactly (apart
from wall-clock seconds: the same float32 computation on the same machine is deterministic).
"""

from __future__ import annotations

import dataclasses
import json
import shlex

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import physbias as pb
from physbias.cli import main
from physbias.experiments import RunSpec, Variant, compare, execute, prepare
from physbias.experiments._config import (
    ExperimentConfig,
    apply_overrides,
    fraction,
    interval,
    nonnegative,
    one_of,
    parse_overrides,
    positive,
)

# --- compare -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy():
    x = jax.random.normal(jax.random.key(0), (32, 2))
    data = pb.Dataset(x, x[:, 0] - 0.5 * x[:, 1])
    model = eqx.nn.MLP(2, "scalar", 4, 1, key=jax.random.key(1))
    return data, model


def evaluate(variant, fit):
    data = variant.data
    pred = jax.vmap(fit.model)(data.inputs)
    return {
        "seen": variant.name,
        "mse": float(jnp.mean((pred - data.targets) ** 2)),
        "steps": len(fit.losses),
    }


def test_compare_rows_are_labels_then_metrics_then_time_in_order(toy):
    data, model = toy
    key = jax.random.key(2)
    variants = (  # a generator: each variant is built just before it is fitted
        Variant(name, model, pb.supervised_loss(), data, {"bias": name, "kind": kind}, batch_size=8)
        for name, kind in (("second", "b"), ("first", "a"))
    )
    comparison = compare(variants, evaluate, key=key, epochs=3, progress=False)
    assert [list(r) for r in comparison.rows] == [
        ["bias", "kind", "seen", "mse", "steps", "train_seconds", "diverged"]
    ] * 2
    assert [r["bias"] for r in comparison.rows] == [r["seen"] for r in comparison.rows] == ["second", "first"]
    assert list(comparison.fits) == ["second", "first"]
    # the row holds the fit of that variant: same as fitting by hand with the shared key
    by_hand = pb.fit(model, pb.supervised_loss(), data, key=key, epochs=3, batch_size=8, progress=False)
    np.testing.assert_array_equal(comparison.fits["first"].losses, by_hand.losses)
    row = comparison.rows[1]
    assert row["steps"] == 12  # 3 epochs x 32 // 8 minibatches
    assert row["train_seconds"] == comparison.fits["first"].seconds > 0 and row["diverged"] is False
    pred = jax.vmap(by_hand.model)(data.inputs)
    np.testing.assert_allclose(row["mse"], float(jnp.mean((pred - data.targets) ** 2)), rtol=1e-6)


def test_shared_key_makes_twins_identical_and_a_variant_key_or_epochs_change_them(toy):
    data, model = toy
    make = lambda name, **kw: Variant(name, model, pb.supervised_loss(), data, batch_size=8, **kw)
    comparison = compare(
        [make("a"), make("twin"), make("own key", key=jax.random.key(99)), make("longer", epochs=5)],
        evaluate,
        key=jax.random.key(3),
        epochs=3,
        progress=False,
    )
    losses = {name: fit.losses for name, fit in comparison.fits.items()}
    np.testing.assert_array_equal(losses["a"], losses["twin"])
    assert losses["own key"].shape == losses["a"].shape and not np.array_equal(losses["own key"], losses["a"])
    assert len(losses["longer"]) == 20 and len(losses["a"]) == 12
    np.testing.assert_array_equal(losses["longer"][:12], losses["a"])  # same key: same first 3 epochs


def test_compare_with_two_workers_gives_the_same_rows_in_order(toy):
    data, model = toy
    make = lambda name, **kw: Variant(
        name, model, pb.supervised_loss(), data, {"bias": name}, batch_size=8, **kw
    )
    variants = lambda: [make("a"), make("own key", key=jax.random.key(99)), make("longer", epochs=5)]
    one = compare(variants(), evaluate, key=jax.random.key(3), epochs=3, progress=False)
    two = compare(variants(), evaluate, key=jax.random.key(3), epochs=3, progress=False, workers=2)
    assert list(two.fits) == list(one.fits) == ["a", "own key", "longer"]
    for a, b in zip(one.rows, two.rows, strict=True):
        assert list(a) == list(b)
        assert {k: v for k, v in a.items() if k != "train_seconds"} == {
            k: v for k, v in b.items() if k != "train_seconds"
        }
    for name in one.fits:
        np.testing.assert_array_equal(one.fits[name].losses, two.fits[name].losses)
    with pytest.raises(ValueError, match="workers"):
        compare(variants(), evaluate, key=jax.random.key(3), epochs=3, progress=False, workers=0)
    v = make("same")
    with pytest.raises(ValueError, match="'same'"):
        compare([v, v], evaluate, key=jax.random.key(0), epochs=1, progress=False, workers=2)


def test_compare_rejects_duplicate_names(toy):
    data, model = toy
    v = Variant("same", model, pb.supervised_loss(), data)
    with pytest.raises(ValueError, match="'same'"):
        compare([v, v], evaluate, key=jax.random.key(0), epochs=1, progress=False)


# --- configs -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ToyConfig(ExperimentConfig):
    QUICK = {"epochs": 5}
    FULL = {"epochs": 500, "sizes": (64, 64)}

    epochs: int = positive(50)
    sizes: tuple[int, ...] = positive((32, 32))
    noise: float = nonnegative(0.1)
    holdout: float = fraction(0.2)
    train_range: tuple[float, float] = interval((-1.0, 1.0))
    scale_range: tuple[float, float] = interval((0.5, 2.0), positive=True)
    activation: str = one_of("tanh", ("tanh", "relu"))
    models: tuple[str, ...] = one_of(("mlp",), ("mlp", "emlp"))
    learning_rate: float = 1e-3
    shuffle: bool = True

    def check(self):
        if self.train_range[1] > 10 * self.epochs:
            raise ValueError("config `train_range` must end below 10 * `epochs`")


@pytest.mark.parametrize(
    "field, bad",
    [
        ("epochs", 0),
        ("epochs", -1),
        ("sizes", (32, 0)),
        ("noise", -0.1),
        ("holdout", 0.0),
        ("holdout", 1.0),
        ("holdout", 1.5),
        ("train_range", (1.0, 1.0)),
        ("train_range", (2.0, 1.0)),
        ("train_range", (0.0, 1.0, 2.0)),
        ("scale_range", (0.0, 1.0)),
        ("scale_range", (-1.0, 1.0)),
        ("activation", "gelu"),
        ("models", ()),
        ("models", ("mlp", "cnn")),
        ("learning_rate", float("nan")),
        ("learning_rate", float("inf")),
        ("noise", float("inf")),
    ],
)
def test_each_constraint_rejects_a_bad_value_naming_the_field(field, bad):
    with pytest.raises(ValueError, match=f"`{field}`"):
        ToyConfig(**{field: bad})


@pytest.mark.parametrize(
    "field, good",
    [
        ("epochs", 1),
        ("sizes", (1,)),
        ("noise", 0.0),
        ("holdout", 0.999),
        ("train_range", (-5.0, -4.0)),
        ("scale_range", (0.1, 0.2)),
        ("activation", "relu"),
        ("models", ("emlp", "mlp")),
        ("learning_rate", -1.0),  # no constraint declared: any finite number
    ],
)
def test_each_constraint_accepts_a_good_value(field, good):
    assert getattr(ToyConfig(**{field: good}), field) == good


def test_relations_between_fields_are_checked():
    with pytest.raises(ValueError, match="`train_range`"):
        ToyConfig(epochs=1, train_range=(0.0, 20.0))


def test_presets_apply():
    assert ToyConfig.preset() == ToyConfig() and ToyConfig().epochs == 50
    quick, full = ToyConfig.preset("quick"), ToyConfig.preset("full")
    assert quick == ToyConfig.quick() == ToyConfig(epochs=5)
    assert full == ToyConfig.full() == ToyConfig(epochs=500, sizes=(64, 64))
    with pytest.raises(ValueError, match="preset"):
        ToyConfig.preset("huge")


def test_apply_overrides_parses_each_type_and_validates():
    config = ToyConfig()
    new = apply_overrides(
        config,
        {
            "epochs": "7",
            "noise": "0.5",
            "shuffle": "false",
            "sizes": "8,16,4",
            "train_range": "-2, 3",
            "activation": "relu",
            "models": "emlp,mlp",
            "learning_rate": "1e-2",
        },
    )
    assert new.epochs == 7 and type(new.epochs) is int
    assert new.noise == 0.5 and type(new.noise) is float
    assert new.shuffle is False and apply_overrides(config, {"shuffle": "1"}).shuffle is True
    assert new.sizes == (8, 16, 4) and all(type(v) is int for v in new.sizes)
    assert new.train_range == (-2.0, 3.0) and all(type(v) is float for v in new.train_range)
    assert new.activation == "relu" and new.models == ("emlp", "mlp") and new.learning_rate == 0.01
    assert config == ToyConfig()  # the original is untouched
    with pytest.raises(ValueError, match="unknown config field 'epoch'"):
        apply_overrides(config, {"epoch": "3"})
    for field, text in (("epochs", "many"), ("epochs", "2.5"), ("shuffle", "yes"), ("sizes", "8,x")):
        with pytest.raises(ValueError, match=f"`{field}` expects"):
            apply_overrides(config, {field: text})
    for field, text in (("epochs", "0"), ("holdout", "1"), ("activation", "gelu"), ("noise", "nan")):
        with pytest.raises(ValueError, match=f"`{field}`"):
            apply_overrides(config, {field: text})


def test_parse_overrides():
    assert parse_overrides(["a=1", " b = x=y ", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    for bad in ("a", "=1", " =1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_overrides([bad])


# --- runs --------------------------------------------------------------------------------------


def strip_seconds(rows):
    def plain(v):
        return float(v) if isinstance(v, (float, np.floating)) else v

    return [{k: plain(v) for k, v in r.items() if k != "train_seconds"} for r in rows]


def test_recorded_command_repeats_the_run_through_the_cli(tmp_path, capsys):
    overrides = {"epochs": "3", "train_range": "-0.3, 1.0"}  # a value with a space: shlex quotes it
    spec = prepare("spring", seed=1, preset="quick", overrides=overrides)
    assert spec == RunSpec("spring", 1, "quick", tuple(overrides.items()))
    assert spec.command == "physbias run spring --seed 1 --quick --set epochs=3 --set 'train_range=-0.3, 1.0'"
    direct = execute(spec, progress=False, verbose=False)
    assert list(tmp_path.iterdir()) == []  # no out: nothing written
    argv = shlex.split(spec.command)
    assert argv[0] == "physbias"
    out = tmp_path / "again"
    assert main([*argv[1:], "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    doc = json.loads((out / "results.json").read_text())
    assert doc["command"] == spec.command and doc["seed"] == 1 and doc["preset"] == "quick"
    assert doc["overrides"] == overrides and doc["config"]["train_range"] == [-0.3, 1.0]
    assert len(doc["table"]) == len(direct.table) == 7
    assert strip_seconds(doc["table"]) == strip_seconds(direct.table)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"seed": -1}, ValueError, "--seed"),
        ({"seed": 1.5}, ValueError, "--seed"),
        ({"seed": True}, ValueError, "--seed"),
        ({"preset": "huge"}, ValueError, "preset"),
        ({"overrides": {"epochs": "0"}}, ValueError, "`epochs`"),
        ({"overrides": {"epochs": "many"}}, ValueError, "`epochs`"),
        ({"overrides": {"bogus": "1"}}, ValueError, "unknown config field"),
        ({"out": "a_file"}, ValueError, "--out"),
        ({"out": "a_file/below"}, ValueError, "--out"),
        ({"out": "done"}, ValueError, "--overwrite"),
    ],
)
def test_prepare_raises_before_writing_anything(kwargs, error, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(error, match=match):
        prepare("spring", **{"preset": "quick", **kwargs})
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_prepare_accepts_a_good_run_and_creates_nothing(tmp_path):
    with pytest.raises(KeyError, match="valid names"):
        prepare("no-such-experiment")
    spec = prepare("spring", seed=2, overrides={"epochs": "4"}, out=tmp_path / "new" / "run")
    assert spec.out == str(tmp_path / "new" / "run") and spec.config().epochs == 4
    assert spec.command == "physbias run spring --seed 2 --set epochs=4"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "results.json").write_text("{}")
    assert prepare("spring", out=tmp_path / "done", overwrite=True).out == str(tmp_path / "done")
