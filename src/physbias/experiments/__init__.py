"""Named experiments, each only composition of the library, and the runner that executes them.

An experiment is a config (:class:`ExperimentConfig`, constraints declared on its fields, with
``QUICK`` and ``FULL`` presets) and a ``run(config, *, seed, progress) -> Result`` that builds its
:class:`Variant` s and hands them to :func:`compare`. :func:`prepare` validates a run before any
work; :func:`execute` runs it and writes its results folder.
"""

from __future__ import annotations

from ._config import (
    ExperimentConfig,
    apply_overrides,
    fraction,
    interval,
    nonnegative,
    one_of,
    parse_overrides,
    positive,
)
from ._registry import Experiment, experiments, get_experiment
from ._runner import Comparison, RunSpec, Variant, compare, execute, prepare

EXPERIMENTS = experiments()

__all__ = [
    "EXPERIMENTS",
    "Comparison",
    "Experiment",
    "ExperimentConfig",
    "RunSpec",
    "Variant",
    "apply_overrides",
    "compare",
    "execute",
    "experiments",
    "fraction",
    "interval",
    "nonnegative",
    "one_of",
    "positive",
    "get_experiment",
    "parse_overrides",
    "prepare",
]
