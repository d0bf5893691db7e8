"""Ground-floor ODE numerics shared by the simulators (``systems``) and the learned dynamics
(``dynamics``): step validation and the adaptive reference solver."""

from __future__ import annotations

import math
from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

Field = Callable[[Array], Array]


def check_step(dt, steps) -> None:
    """Raise ``ValueError`` unless ``dt`` is a positive finite number and ``steps`` a positive int."""
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"`dt` must be a positive number, got {dt!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer, got {steps!r}")


def solve_adaptive(
    field: Field,
    z0: Float[Array, " d"],
    ts: Float[Array, " T"],
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    max_steps: int = 1_000_000,
) -> Float[Array, "T d"]:
    """States at times ``ts`` (``ts[0]`` is the time of ``z0``) by an adaptive 8th-order
    Dormand-Prince solver (Diffrax ``Dopri8`` with a PID step-size controller)."""
    import diffrax

    ts = jnp.asarray(ts)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: field(y)),
        diffrax.Dopri8(),
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=jnp.asarray(z0),
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys
