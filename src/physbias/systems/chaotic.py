"""Chaotic dynamical systems and windows of their trajectories (the data of event sampling, M22).

``Lorenz63`` (Lorenz 1963) and two diffusively coupled ``FitzHughNagumo`` neurons, both as in the
event-sampling benchmarks of Finzi et al. (ICML 2023, "User-defined event sampling and uncertainty
quantification in diffusion models for physical dynamical systems"): Lorenz with
``(rho, sigma, beta) = (28, 10, 8/3)``, states divided by 20, windows sampled every ``dt = 0.1``
after a burn-in of 3 time units. Being chaotic, a window's statistics, not its exact path, are what
matters; fixed-step RK4 at ``dt / substeps`` is accurate far beyond the sampling error of any
estimate made from these data.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


class Lorenz63(eqx.Module):
    """``x' = s (y - x)``, ``y' = x (r - z) - y``, ``z' = x y - b z``; the state is ``(x, y, z)``.

    ``scale`` divides the observed state (the reference divides by 20 so that the windows are of
    order one).
    """

    rho: float = 28.0
    sigma: float = 10.0
    beta: float = 8.0 / 3.0
    scale: float = 20.0

    state_size = 3

    def field(self, z: Float[Array, " 3"]) -> Float[Array, " 3"]:
        x, y, w = z[0], z[1], z[2]
        return jnp.stack([self.sigma * (y - x), x * (self.rho - w) - y, x * y - self.beta * w])

    def sample_initial(self, key: PRNGKeyArray) -> Float[Array, " 3"]:
        """``scale * N(0, I)``: the reference's start, standard normal in the observed (divided)
        units. A start near the origin instead (``N(0, I)`` in the system's own units) is still on
        the origin's unstable manifold after a burn-in of 3: every window is then nearly the same
        first excursion (``z`` spread 1.9 instead of 8.6, peaks of 30 instead of 43-47)."""
        return self.scale * jax.random.normal(key, (3,))


class FitzHughNagumo(eqx.Module):
    """Two FitzHugh-Nagumo neurons coupled through their voltages (state ``(v1, w1, v2, w2)``):

    ``v_i' = v_i - v_i^3 / 3 - w_i + I + k (v_j - v_i)``, ``w_i' = eps (v_i + a - b w_i)``.
    """

    a: float = 0.7
    b: float = 0.8
    eps: float = 0.08
    current: float = 0.5
    coupling: float = 0.1
    scale: float = 1.0

    state_size = 4

    def field(self, z: Float[Array, " 4"]) -> Float[Array, " 4"]:
        v, w = z[jnp.array([0, 2])], z[jnp.array([1, 3])]
        dv = v - v**3 / 3 - w + self.current + self.coupling * (v[::-1] - v)
        dw = self.eps * (v + self.a - self.b * w)
        return jnp.stack([dv[0], dw[0], dv[1], dw[1]])

    def sample_initial(self, key: PRNGKeyArray) -> Float[Array, " 4"]:
        return 2.0 * jax.random.normal(key, (4,))


def _rk4_step(field, z, h):
    k1 = field(z)
    k2 = field(z + 0.5 * h * k1)
    k3 = field(z + 0.5 * h * k2)
    k4 = field(z + h * k3)
    return z + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def trajectory_windows(
    system,
    key: PRNGKeyArray,
    n: int,
    length: int,
    *,
    dt: float = 0.1,
    burn_in: float = 3.0,
    substeps: int = 10,
) -> np.ndarray:
    """``(n, length, state_size)`` float32 windows of independent trajectories, divided by
    ``system.scale``.

    Each starts from ``system.sample_initial``, runs ``burn_in`` time units, then records ``length``
    states ``dt`` apart; RK4 with step ``dt / substeps`` (float32).
    """
    _check_steps(n=n, length=length, substeps=substeps, dt=dt)
    if not (math.isfinite(burn_in) and burn_in >= 0):
        raise ValueError(f"`burn_in` must be a non-negative number, got {burn_in!r}")
    h = dt / substeps
    burn_steps = round(burn_in / h)

    @jax.jit
    def run(keys):
        z0 = jax.vmap(system.sample_initial)(keys)
        z = jax.vmap(lambda z: _advance(system.field, z, h, burn_steps))(z0)
        return jax.vmap(lambda z: _record(system.field, z, h, substeps, length))(z) / system.scale

    # Chunks bound the memory of very large Monte-Carlo sets.
    keys = jax.random.split(key, n)
    chunk = 16384
    out = [np.asarray(run(keys[i : i + chunk])) for i in range(0, n, chunk)]
    return np.concatenate(out).astype(np.float32)


def _check_steps(*, dt: float, **sizes) -> None:
    """Raise ``ValueError`` naming the first size that is not a positive integer, or a bad ``dt``."""
    for name, value in sizes.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"`dt` must be a positive number, got {dt!r}")


def _advance(field, z, h, steps):
    return jax.lax.fori_loop(0, steps, lambda _, z: _rk4_step(field, z, h), z)


def _record(field, z, h, substeps, length):
    """``(length, d)`` states ``substeps`` RK4 steps of ``h`` apart, the first ``z``."""

    # Checkpointed: a gradient recomputes the substeps between two records instead of storing
    # them, which XLA's CPU backward loop handles poorly (47 ms against 70 ms for 4096 windows of
    # 30 Lorenz records; forward and values unchanged).
    @jax.checkpoint
    def between(z):
        return _advance(field, z, h, substeps)

    def step(z, _):
        return between(z), z

    return jax.lax.scan(step, z, None, length=length)[1]


class FlowMap(eqx.Module):
    """The window a state starts: ``start -> (start, Phi_dt(start), ..., Phi_dt^{length-1}(start))``,
    the trajectory map of :func:`trajectory_windows` (RK4 at ``dt / substeps``), so that every
    window of those data is exactly ``FlowMap(...)(window[0])``.

    States are in the observed units divided by ``system.scale``, and further standardised by
    ``loc`` and ``scale`` (per coordinate) when given: ``x = (state / system.scale - loc) / scale``,
    the units a denoiser sees. Shapes: ``(state_size,) -> (length, state_size)``.

    A model that ends on ``FlowMap(start)`` can only put out trajectories of the system: the hard
    form of "the data obey this ODE" (``physbias run diffusion-events``, by default, diffuses
    starts and decodes windows with it).
    """

    system: eqx.Module
    length: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    substeps: int = eqx.field(static=True)
    loc: tuple[float, ...] | None = eqx.field(static=True)
    scale: tuple[float, ...] | None = eqx.field(static=True)

    def __init__(self, system, length: int, *, dt: float = 0.1, substeps: int = 10, loc=None, scale=None):
        _check_steps(length=length, substeps=substeps, dt=dt)
        self.system, self.length, self.dt, self.substeps = system, length, float(dt), substeps
        size = system.state_size
        # Python floats (static), so that an optimiser never treats the units as parameters.
        for name, value in (("loc", loc), ("scale", scale)):
            if value is not None:
                value = np.asarray(value, dtype=np.float64).reshape(-1)
                if value.shape != (size,) or not np.all(np.isfinite(value)):
                    raise ValueError(
                        f"`{name}` must be {size} finite numbers (one per coordinate), got {value}"
                    )
                if name == "scale" and np.any(value <= 0):
                    raise ValueError(f"`scale` must be positive, got {value}")
                value = tuple(float(v) for v in value)
            setattr(self, name, value)

    def __call__(self, start: Float[Array, " d"]) -> Float[Array, "length d"]:
        size = self.system.state_size
        if start.shape != (size,):
            raise ValueError(f"`start` must be one state of shape ({size},), got {start.shape}")
        loc = jnp.zeros(size, start.dtype) if self.loc is None else jnp.asarray(self.loc, start.dtype)
        scale = jnp.ones(size, start.dtype) if self.scale is None else jnp.asarray(self.scale, start.dtype)
        z = (start * scale + loc) * self.system.scale
        states = _record(self.system.field, z, self.dt / self.substeps, self.substeps, self.length)
        return (states / self.system.scale - loc[None]) / scale[None]


def lobe_mean(window: Float[Array, "T d"]) -> Float[Array, ""]:
    """The time average of the first coordinate: large when a Lorenz trajectory stays on one lobe."""
    return jnp.mean(window[:, 0])


def spectral_amplitude(window: Float[Array, "T d"]) -> Float[Array, ""]:
    """``mean_{k >= 1} |rfft(x_1)|_k / T``: the mean non-constant Fourier amplitude of the first
    coordinate (the reference's Lorenz event is ``0.6 - mean_k |rfft(x_1)|_k``: a quiet window)."""
    return jnp.mean(jnp.abs(jnp.fft.rfft(window[:, 0]))[1:]) / window.shape[0]


def peak_height(window: Float[Array, "T d"]) -> Float[Array, ""]:
    """The largest value of the last coordinate (Lorenz ``z``): an extreme excursion."""
    return jnp.max(window[:, -1])


# Scalar statistics of one window; an event is a threshold on one of them.
WINDOW_STATISTICS = {"lobe": lobe_mean, "spectral": spectral_amplitude, "peak": peak_height}
