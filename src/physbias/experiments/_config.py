"""Experiment configs: frozen dataclasses with size presets and validated overrides."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

# Config fields that must be > 0 when present (numbers of things, rates, ranges).
_POSITIVE_HINTS = (
    "epochs",
    "learning_rate",
    "n_",
    "width",
    "depth",
    "steps",
    "dt",
    "periods",
    "convergence_levels",
    "substeps",
    "links",
)


def validate_config(config) -> None:
    """Raise ``ValueError`` for a non-positive size, count or learning rate, or a NaN/inf value."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
            value = min(value)  # a tuple of counts (e.g. chain lengths) is checked by its smallest
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            raise ValueError(f"config `{f.name}` must be finite, got {value!r}")
        positive = any(f.name.startswith(h) or f.name.endswith("_" + h) for h in _POSITIVE_HINTS)
        if positive and value <= 0:
            raise ValueError(f"config `{f.name}` must be positive, got {value!r}")


def apply_overrides(config, overrides: dict[str, str]):
    """A copy of ``config`` with ``{"field": "text value"}`` parsed to each field's type."""
    fields = {f.name: f for f in dataclasses.fields(config)}
    changes: dict[str, Any] = {}
    for name, text in overrides.items():
        if name not in fields:
            raise ValueError(f"unknown config field {name!r}; valid fields: {', '.join(sorted(fields))}")
        current = getattr(config, name)
        try:
            if isinstance(current, bool):
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value: Any = text.lower() in ("true", "1")
            elif isinstance(current, int):
                value = int(text)
            elif isinstance(current, float):
                value = float(text)
            elif isinstance(current, tuple):
                value = tuple(type(current[0])(v) for v in text.split(","))
            else:
                value = text
        except ValueError:
            raise ValueError(f"config `{name}` expects a {type(current).__name__}, got {text!r}") from None
        changes[name] = value
    new = dataclasses.replace(config, **changes)
    validate_config(new)
    return new
