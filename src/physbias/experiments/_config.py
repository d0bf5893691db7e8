"""Experiment configs: frozen dataclasses whose constraints are declared on their fields.

A config subclasses :class:`ExperimentConfig` and declares each field with its constraint::

    @dataclasses.dataclass(frozen=True)
    class SpringConfig(ExperimentConfig):
        QUICK = {"epochs": 800}
        epochs: int = positive(3000)
        noise: float = nonnegative(0.05)
        activation: str = one_of("tanh", ("tanh", "relu"))
        train_range: tuple[float, float] = interval((-0.25, 1.0))

Construction checks every declared constraint (and finiteness of every number), then the
config's own :meth:`ExperimentConfig.check` for relations between fields. The ``QUICK`` and
``FULL`` class dictionaries are the presets' overrides of the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

PRESETS = ("default", "quick", "full")


@dataclasses.dataclass(frozen=True)
class Constraint:
    """What a field's value (each element, for a tuple) must satisfy.

    ``kind`` is ``"positive"`` (> 0), ``"nonnegative"`` (>= 0), ``"fraction"`` (in (0, 1)),
    ``"interval"`` (a pair ``low < high``; with ``positive`` also ``0 < low``), ``"one_of"``
    (a value, or every element, from ``choices``) or ``"any"`` (finite numbers only).
    """

    kind: str
    choices: tuple = ()
    positive: bool = False

    def check(self, name: str, value: Any) -> None:
        items = value if isinstance(value, tuple) else (value,)
        if self.kind == "one_of":
            bad = [v for v in items if v not in self.choices]
            if bad or (isinstance(value, tuple) and not value):
                valid = ", ".join(repr(c) for c in self.choices)
                raise ValueError(
                    f"config `{name}` must be {'a non-empty tuple of ' if isinstance(value, tuple) else ''}"
                    f"one of {valid}; got {value!r}"
                )
            return
        if self.kind == "interval":
            if len(items) != 2 or not items[0] < items[1] or (self.positive and not items[0] > 0):
                low = "0 < low < high" if self.positive else "low < high"
                raise ValueError(f"config `{name}` must be a pair (low, high) with {low}, got {value!r}")
            return
        for v in items:
            if self.kind == "positive" and not v > 0:
                raise ValueError(f"config `{name}` must be positive, got {value!r}")
            if self.kind == "nonnegative" and not v >= 0:
                raise ValueError(f"config `{name}` must be >= 0, got {value!r}")
            if self.kind == "fraction" and not 0 < v < 1:
                raise ValueError(f"config `{name}` must be a fraction in (0, 1), got {value!r}")


def _field(default: Any, constraint: Constraint):
    return dataclasses.field(default=default, metadata={"constraint": constraint})


def positive(default: Any):
    """A field whose value (every element of a tuple) must be > 0 (sizes, counts, rates, steps)."""
    return _field(default, Constraint("positive"))


def nonnegative(default: Any):
    """A field whose value (every element of a tuple) must be >= 0 (noise, weights, priors)."""
    return _field(default, Constraint("nonnegative"))


def fraction(default: float):
    """A field in the open interval (0, 1)."""
    return _field(default, Constraint("fraction"))


def interval(default: tuple[float, float], *, positive: bool = False):
    """A pair ``(low, high)`` with ``low < high`` (and ``0 < low`` when ``positive``)."""
    return _field(default, Constraint("interval", positive=positive))


def one_of(default: Any, choices: Sequence):
    """A name (or a tuple of names) from ``choices``."""
    return _field(default, Constraint("one_of", tuple(choices)))


def _numbers(value: Any):
    items = value if isinstance(value, tuple) else (value,)
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def validate_config(config) -> None:
    """Check every field's declared constraint and that every number is finite.

    Raises:
        ValueError: naming the field and the value received.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        for v in _numbers(value):
            if not math.isfinite(v):
                raise ValueError(f"config `{f.name}` must be finite, got {value!r}")
        constraint = f.metadata.get("constraint")
        if constraint is not None:
            constraint.check(f.name, value)


class ExperimentConfig:
    """Base of every experiment's frozen config dataclass: validation and presets.

    Subclasses are ``@dataclasses.dataclass(frozen=True)``; they declare constraints on their
    fields (:func:`positive`, :func:`nonnegative`, :func:`fraction`, :func:`interval`,
    :func:`one_of`), relations between fields in :meth:`check`, and the presets' overrides in
    ``QUICK`` (small sizes, under a minute on 2 cores) and ``FULL`` (the seed's sizes).
    """

    QUICK: ClassVar[dict[str, Any]] = {}
    FULL: ClassVar[dict[str, Any]] = {}

    def __post_init__(self):
        validate_config(self)
        self.check()

    def check(self) -> None:
        """Relations between fields; raise ``ValueError`` naming the fields."""

    @classmethod
    def preset(cls, name: str = "default"):
        """The config of a preset: ``"default"``, ``"quick"`` or ``"full"``."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
        return cls(**{"default": {}, "quick": cls.QUICK, "full": cls.FULL}[name])

    @classmethod
    def quick(cls):
        return cls.preset("quick")

    @classmethod
    def full(cls):
        return cls.preset("full")


def parse_overrides(items: Sequence[str]) -> dict[str, str]:
    """``["key=value", ...]`` (the CLI's ``--set``) to ``{"key": "value"}``.

    Raises:
        ValueError: for an item without ``=`` or without a key.
    """
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value.strip()
    return overrides


def _parse(current: Any, text: str, annotation: Any) -> Any:
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError
        return text.lower() in ("true", "1")
    if isinstance(current, int):
        return int(text)
    if isinstance(current, float):
        return float(text)
    if isinstance(current, tuple):
        if not text:
            return ()
        element = (
            type(current[0])
            if current
            else (float if "float" in str(annotation) else int if "int" in str(annotation) else str)
        )
        return tuple(element(v) for v in text.split(","))
    if current is None:  # an optional number (e.g. dt=None): a float unless the annotation says str
        return None if text.lower() == "none" else (text if "str" in str(annotation) else float(text))
    return text


def apply_overrides(config, overrides: dict[str, str]):
    """A copy of ``config`` with ``{"field": "text value"}`` parsed to each field's type, validated.

    Raises:
        ValueError: for an unknown field, a value that does not parse, or one that breaks a
            constraint.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for name, text in overrides.items():
        if name not in fields:
            raise ValueError(f"unknown config field {name!r}; valid fields: {', '.join(sorted(fields))}")
        current = getattr(config, name)
        try:
            changes[name] = _parse(current, text, fields[name].type)
        except ValueError:
            kind = type(current).__name__ if current is not None else str(fields[name].type)
            raise ValueError(f"config `{name}` expects a {kind}, got {text!r}") from None
    return dataclasses.replace(config, **changes)
