"""The experiment registry: one module per named experiment, each only composition of the library.

An experiment is a config dataclass (with ``quick()`` and ``full()`` presets) and a
``run(config, *, seed, progress) -> Result`` function.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..report import Result


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    config_type: type
    run: Callable[..., Result]

    def make_config(self, preset: str = "default"):
        """``preset`` is ``"default"``, ``"quick"`` (under a minute) or ``"full"`` (seed sizes)."""
        if preset == "default":
            return self.config_type()
        if preset in ("quick", "full"):
            return getattr(self.config_type, preset)()
        raise ValueError(f"unknown preset {preset!r}; expected 'default', 'quick' or 'full'")


def _registry() -> dict[str, Experiment]:
    from . import (
        chain_pendulum,
        emlp_synthetic,
        energy,
        friction,
        gcnn_digits,
        integrators,
        rotation,
        rpp,
        spring,
        triangle,
    )

    modules = (
        triangle,
        spring,
        rotation,
        integrators,
        energy,
        friction,
        chain_pendulum,
        emlp_synthetic,
        rpp,
        gcnn_digits,
    )
    return {m.EXPERIMENT.name: m.EXPERIMENT for m in modules}


EXPERIMENTS: dict[str, Experiment] = _registry()


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``KeyError`` listing the valid names otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise KeyError(
            f"unknown experiment {name!r}; valid names: {', '.join(sorted(EXPERIMENTS))}"
        ) from None


__all__ = ["EXPERIMENTS", "Experiment", "get_experiment"]
