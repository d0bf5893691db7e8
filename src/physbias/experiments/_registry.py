"""The experiment registry: a name, a description, a config type and a ``run`` function each."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from ..report import Result


@dataclasses.dataclass(frozen=True)
class Experiment:
    """A named experiment: ``run(config, *, seed, progress) -> Result`` on a ``config_type``
    (an :class:`~physbias.experiments._config.ExperimentConfig`)."""

    name: str
    description: str
    config_type: type
    run: Callable[..., Result]

    def make_config(self, preset: str = "default"):
        """``preset`` is ``"default"``, ``"quick"`` (under a minute) or ``"full"`` (seed sizes)."""
        return self.config_type.preset(preset)


@functools.cache
def experiments() -> dict[str, Experiment]:
    """Every registered experiment by name (imported on first use)."""
    from . import (
        burgers,
        chain_pendulum,
        diffusion_events,
        ebm,
        emlp_synthetic,
        energy,
        evidence_symmetry,
        friction,
        gcnn_digits,
        gp,
        hamiltonian_flow,
        hopfield,
        integrators,
        invariance_learning,
        ising,
        laplace,
        laplace_regression,
        neural_ivp,
        noether_networks,
        noethers_razor,
        pac_bayes,
        rotation,
        rpp,
        select_demo,
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
        evidence_symmetry,
        laplace_regression,
        invariance_learning,
        noethers_razor,
        noether_networks,
        burgers,
        laplace,
        neural_ivp,
        ising,
        hopfield,
        ebm,
        hamiltonian_flow,
        diffusion_events,
        gp,
        pac_bayes,
        select_demo,
    )
    return {m.EXPERIMENT.name: m.EXPERIMENT for m in modules}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``KeyError`` listing the valid names otherwise."""
    registry = experiments()
    try:
        return registry[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; valid names: {', '.join(sorted(registry))}") from None
