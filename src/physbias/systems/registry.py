"""Named systems for the command line (``physbias simulate --system NAME``)."""

from __future__ import annotations

from .gyroscope import Gyroscope
from .mechanics import (
    AbstractMechanicalSystem,
    ChainPendulum,
    CoupledOscillators,
    Kepler,
    MassSpring,
    NBody2D,
    Pendulum,
)


def _systems() -> dict[str, AbstractMechanicalSystem]:
    return {
        "pendulum": Pendulum(),
        "damped-pendulum": Pendulum(damping=0.3),
        "spring": MassSpring(),
        "nonlinear-spring": MassSpring(k3=1.0),
        "double-pendulum": ChainPendulum(),
        "chain-pendulum-3": ChainPendulum((1.0,) * 3, (1.0,) * 3),
        "chain-pendulum-5": ChainPendulum((1.0,) * 5, (1.0,) * 5),
        "coupled-oscillators": CoupledOscillators(3),
        "2-body": NBody2D((1.0, 1.0)),
        "3-body": NBody2D((1.0, 1.0, 1.0)),
        "kepler": Kepler(),
        "gyroscope": Gyroscope(),
    }


SYSTEMS = _systems()


def get_system(name: str) -> AbstractMechanicalSystem:
    try:
        return SYSTEMS[name]
    except KeyError:
        raise ValueError(f"unknown system {name!r}; valid names: {', '.join(sorted(SYSTEMS))}") from None
