"""Two-dimensional densities with known log-density, the usual test bed of generative models.

Each is an ``equinox.Module`` with ``sample(key, n) -> (n, 2)`` and ``log_prob(x) -> (n,)``
(``x`` of shape ``(n, 2)``), so that a model's negative log-likelihood on fresh samples can be
compared with the exact one, ``-E_p[log p(x)]`` (the entropy, estimated on the same samples).

- :class:`GaussianRing`: ``K`` isotropic Gaussians of standard deviation ``std`` with equal
  weights, centred on a circle of radius ``radius``; ``log p = logsumexp_k log N(x; c_k, std^2 I)
  - log K``.
- :class:`Banana`: ``x1 ~ N(0, 1)``, ``x2 | x1 ~ N(b (x1^2 - 1), s^2)``: a Gaussian sheared by a
  volume-preserving map, ``log p = log N(x1; 0, 1) + log N(x2; b (x1^2 - 1), s^2)``.
- :class:`TwoMoons`: scikit-learn's two moons with a uniform arc parameter: a point of an arc,
  ``(cos t, sin t)`` or ``(1 - cos t, 1/2 - sin t)`` with ``t ~ U(0, pi)``, plus ``N(0, noise^2 I)``.
  Its density is the arcs smoothed by the noise,
  ``p(x) = 1/2 sum_arcs 1/pi int_0^pi N(x; c(t), noise^2 I) dt``, computed by Gauss-Legendre
  quadrature in ``t`` (``nodes`` points; a reference to 1e-6 nats at the default).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray

_LOG_2PI = math.log(2.0 * math.pi)


def _gaussian_log_density(x: Array, centres: Array, std) -> Array:
    """``log N(x_n; c_k, std^2 I)`` for every sample and centre, ``(n, k)`` (2-D)."""
    d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, -1)
    return -0.5 * d2 / std**2 - 2.0 * jnp.log(std) - _LOG_2PI


def _check_samples(x) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"`x` must have shape (n, 2), got {x.shape}")
    return x


def _check_count(n) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"`n` must be a positive integer, got {n!r}")


class GaussianRing(eqx.Module):
    """``modes`` Gaussians on a circle ("8 Gaussians" at the defaults)."""

    modes: int = eqx.field(static=True, default=8)
    radius: float = eqx.field(static=True, default=2.0)
    std: float = eqx.field(static=True, default=0.2)

    def __check_init__(self):
        if not isinstance(self.modes, int) or self.modes < 1:
            raise ValueError(f"`modes` must be a positive integer, got {self.modes!r}")
        if not (self.radius >= 0 and self.std > 0):
            raise ValueError(f"`radius` must be >= 0 and `std` > 0, got {self.radius}, {self.std}")

    @property
    def centres(self) -> Array:
        angle = 2.0 * jnp.pi * jnp.arange(self.modes, dtype=jnp.float32) / self.modes
        return self.radius * jnp.stack([jnp.cos(angle), jnp.sin(angle)], -1)

    def sample(self, key: PRNGKeyArray, n: int) -> Array:
        _check_count(n)
        k_mode, k_noise = jax.random.split(key)
        mode = jax.random.randint(k_mode, (n,), 0, self.modes)
        return self.centres[mode] + self.std * jax.random.normal(k_noise, (n, 2))

    def log_prob(self, x: Array) -> Array:
        log_n = _gaussian_log_density(_check_samples(x), self.centres, self.std)
        return jax.nn.logsumexp(log_n, axis=-1) - math.log(self.modes)


class Banana(eqx.Module):
    """A Gaussian bent into a parabola: ``x2 = bend (x1^2 - 1) + width z``."""

    bend: float = eqx.field(static=True, default=1.0)
    width: float = eqx.field(static=True, default=0.5)

    def __check_init__(self):
        if not self.width > 0:
            raise ValueError(f"`width` must be positive, got {self.width!r}")

    def sample(self, key: PRNGKeyArray, n: int) -> Array:
        _check_count(n)
        x1, z = jax.random.normal(key, (2, n))
        return jnp.stack([x1, self.bend * (x1**2 - 1.0) + self.width * z], -1)

    def log_prob(self, x: Array) -> Array:
        x = _check_samples(x)
        r = (x[:, 1] - self.bend * (x[:, 0] ** 2 - 1.0)) / self.width
        return -0.5 * x[:, 0] ** 2 - 0.5 * r**2 - math.log(self.width) - _LOG_2PI


class TwoMoons(eqx.Module):
    """Two interleaved half circles with Gaussian noise; density by quadrature over the arcs."""

    noise: float = eqx.field(static=True, default=0.1)
    nodes: int = eqx.field(static=True, default=256)

    def __check_init__(self):
        if not self.noise > 0:
            raise ValueError(f"`noise` must be positive, got {self.noise!r}")
        if not isinstance(self.nodes, int) or self.nodes < 2:
            raise ValueError(f"`nodes` must be an integer >= 2, got {self.nodes!r}")

    @staticmethod
    def arcs(t: Array) -> Array:
        """The two arcs at parameters ``t``: ``(2, len(t), 2)``."""
        upper = jnp.stack([jnp.cos(t), jnp.sin(t)], -1)
        lower = jnp.stack([1.0 - jnp.cos(t), 0.5 - jnp.sin(t)], -1)
        return jnp.stack([upper, lower])

    def sample(self, key: PRNGKeyArray, n: int) -> Array:
        _check_count(n)
        k_arc, k_t, k_noise = jax.random.split(key, 3)
        arc = jax.random.bernoulli(k_arc, 0.5, (n,)).astype(jnp.int32)
        t = jnp.pi * jax.random.uniform(k_t, (n,))
        points = self.arcs(t)[arc, jnp.arange(n)]
        return points + self.noise * jax.random.normal(k_noise, (n, 2))

    def log_prob(self, x: Array) -> Array:
        x = _check_samples(x)
        nodes, weights = np.polynomial.legendre.leggauss(self.nodes)
        t = jnp.asarray(np.pi * (nodes + 1.0) / 2.0, x.dtype)
        # (1/pi) int_0^pi f dt = 1/2 sum_i w_i f(t_i) on Gauss-Legendre nodes of [-1, 1].
        log_w = jnp.asarray(np.log(weights / 2.0), x.dtype)
        centres = self.arcs(t).reshape(-1, 2)
        log_n = _gaussian_log_density(x, centres, self.noise) + jnp.tile(log_w, 2)[None, :]
        return jax.nn.logsumexp(log_n, axis=-1) - math.log(2.0)


DENSITIES = {"gaussian-ring": GaussianRing, "banana": Banana, "two-moons": TwoMoons}
"""The 2-D densities by name."""
