"""Conserved quantities and the symmetries they generate (Noether's theorem in phase space).

An observable ``C(x)`` on canonical states ``x = (q, p)`` generates the one-parameter group of
transformations ``Phi_C^tau`` that flows ``x`` along ``dx/dtau = J grad C(x)``, ``J = [[0, I], [-I, 0]]``.
Noether: ``C`` is conserved along the trajectories of ``H`` exactly when ``H o Phi_C^tau = H`` for all
``tau`` (the Poisson bracket ``{C, H}`` vanishes). Learning ``C`` therefore learns a symmetry of ``H``.

For a quadratic ``C(x) = x^T A x / 2 + b^T x + c`` (``A`` symmetric) the flow is affine and exact,

.. math:: \\begin{bmatrix}\\Phi^\\tau(x) \\\\ 1\\end{bmatrix}
          = \\exp\\Big(\\tau \\begin{bmatrix} J A & J b \\\\ 0 & 0 \\end{bmatrix}\\Big)
            \\begin{bmatrix} x \\\\ 1 \\end{bmatrix},

and ``K`` quantities act together through ``expm(s * sum_k tau_k G_k)`` (``s`` a fixed scale, ``pi``
by default, so that ``A = I`` with ``tau in [-1, 1]`` sweeps the full rotation group of the harmonic
oscillator). A general ``C`` (:class:`NeuralConservedQuantities`) is flowed by a fixed-step RK4 solve.

Reference: van der Ouderaa, van der Wilk & de Haan, "Noether's razor: learning conserved quantities",
NeurIPS 2024 (seed 003).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from .._activations import softplus


def symplectic_form(state_size: int, dtype=jnp.float32) -> Float[Array, "d d"]:
    """``J = [[0, I_n], [-I_n, 0]]`` for states ``x = (q, p)`` of size ``2 n``.

    Example:
        >>> symplectic_form(2).tolist()
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    _check_state_size(state_size, "symplectic_form")
    n = state_size // 2
    eye, zero = jnp.eye(n, dtype=dtype), jnp.zeros((n, n), dtype)
    return jnp.block([[zero, eye], [-eye, zero]])


def _check_state_size(state_size, owner: str) -> None:
    if not isinstance(state_size, (int, np.integer)) or state_size < 2 or state_size % 2:
        raise ValueError(
            f"{owner}: `state_size` must be an even integer 2n >= 2 (canonical (q, p)), got {state_size!r}"
        )


def _check_count(n, name: str, owner: str) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{owner}: `{name}` must be a positive integer, got {n!r}")


def quadratic_generator(
    quadratic: Float[Array, "d d"], linear: Float[Array, " d"]
) -> Float[Array, "d+1 d+1"]:
    """``G = [[J A, J b], [0, 0]]`` with ``A = (W + W^T) / 2``: the affine generator of the flow of
    ``C(x) = x^T A x / 2 + b^T x`` (``W = quadratic``, ``b = linear``)."""
    d = linear.shape[-1]
    j = symplectic_form(d, linear.dtype)
    a = 0.5 * (quadratic + quadratic.T)
    top = jnp.concatenate([j @ a, (j @ linear)[:, None]], axis=1)
    return jnp.concatenate([top, jnp.zeros((1, d + 1), linear.dtype)], axis=0)


def sample_flow_times(key: PRNGKeyArray, n_samples: int, n_quantities: int, dtype=jnp.float32) -> Array:
    """``(n_samples, K)`` flow times: ``U[-1, 1]`` for ``K = 1``, uniform in the unit ball for
    ``K > 1`` (Noether's razor's symmetrisation measure)."""
    _check_count(n_samples, "n_samples", "sample_flow_times")
    _check_count(n_quantities, "n_quantities", "sample_flow_times")
    if n_quantities == 1:
        return jax.random.uniform(key, (n_samples, 1), dtype, -1.0, 1.0)
    k_dir, k_rad = jax.random.split(key)
    direction = jax.random.normal(k_dir, (n_samples, n_quantities), dtype)
    direction = direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    radius = jax.random.uniform(k_rad, (n_samples, 1), dtype) ** (1.0 / n_quantities)
    return direction * radius


def orbit_flow_times(quantities: QuadraticConservedQuantities, n_samples: int, *, tol: float = 1e-6) -> Array:
    """``(n_samples, 1)`` evenly spaced flow times over one full orbit of a single quadratic
    conserved quantity, or over its learned extent ``[-1, 1)`` when the orbit does not close.

    When the generator's linear part ``J A`` has purely imaginary eigenvalues ``+-i omega_j`` (``A``
    definite: a compact, rotation-like symmetry) and the flow closes after ``2 pi / omega``
    (one frequency, as for the harmonic oscillator's ``q^2 + p^2``), the times
    ``tau_s = (2 s / S - 1) pi / (scale omega)`` make the average over them the average over the
    cyclic group ``C_S`` of that rotation: a deterministic quadrature of the full symmetry, where
    random times (:func:`sample_flow_times`) give a Monte-Carlo estimate of a partial one. Otherwise
    (several frequencies, real eigenvalues: a non-compact symmetry such as a translation) the times
    are the grid ``2 s / S - 1`` of the symmetrisation measure's support.
    """
    if not isinstance(quantities, QuadraticConservedQuantities) or quantities.n_quantities != 1:
        raise ValueError(
            "orbit_flow_times: `quantities` must be one QuadraticConservedQuantities (n_quantities=1), got "
            f"{type(quantities).__name__}"
        )
    _check_count(n_samples, "n_samples", "orbit_flow_times")
    d = quantities.state_size
    grid = -1.0 + 2.0 * np.arange(n_samples) / n_samples
    linear = np.asarray(quantities.generators()[0, :d, :d], np.float64)
    eig = np.linalg.eigvals(linear)
    omega = np.abs(eig.imag)
    size = max(float(np.max(np.abs(eig))), 1e-300)
    closes = (
        np.all(np.abs(eig.real) <= tol * size)
        and np.min(omega) > tol * size
        and np.ptp(omega) <= tol * size + 1e-3 * np.max(omega)
    )
    if closes:
        grid = grid * math.pi / (quantities.scale * float(np.max(omega)))
    return jnp.asarray(grid[:, None], quantities.quadratic.dtype)


class AbstractConservedQuantities(eqx.Module):
    """``K`` observables ``C_k(x)`` on canonical states of size ``state_size`` and the flow
    ``Phi^tau`` of ``sum_k tau_k C_k`` for time ``scale``."""

    state_size: eqx.AbstractVar[int]
    n_quantities: eqx.AbstractVar[int]
    scale: eqx.AbstractVar[float]

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"]) -> Float[Array, " K"]:
        """The ``K`` values ``C_k(x)``."""

    @abc.abstractmethod
    def flow(self, x: Float[Array, " d"], tau: Float[Array, " K"]) -> Float[Array, " d"]:
        """``Phi^tau(x)``: ``x`` flowed along ``J grad sum_k tau_k C_k`` for time ``scale``."""

    def field(self, x: Float[Array, " d"], tau: Float[Array, " K"]) -> Float[Array, " d"]:
        """``J grad_x sum_k tau_k C_k(x)``: the generator of the flow, as a vector field."""
        grad = jax.grad(lambda y: jnp.dot(tau, self(y)))(x)
        n = self.state_size // 2
        return jnp.concatenate([grad[n:], -grad[:n]])


def ode_flow(quantities: AbstractConservedQuantities, x: Array, tau: Array, steps: int = 16) -> Array:
    """``Phi^tau(x)`` of any conserved quantities by ``steps`` RK4 steps over time ``scale``
    (4th order; differentiable; ``C`` itself is conserved to the RK4 error)."""
    h = quantities.scale / steps

    def rk4(y, _):
        f = lambda z: quantities.field(z, tau)
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        return y + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4), None

    return jax.lax.scan(rk4, x, None, length=steps)[0]


class QuadraticConservedQuantities(AbstractConservedQuantities):
    """``C_k(x) = x^T A_k x / 2 + b_k^T x + c_k`` with ``A_k = (W_k + W_k^T) / 2``; the flow is exact
    (:func:`jax.scipy.linalg.expm` of the affine generators, finite gradients at ``W = b = 0``).

    Args:
        state_size: ``2 n`` (canonical ``(q, p)``).
        n_quantities: ``K``.
        key: PRNG key for the initial coefficients (normal with std ``init_std``; ``init_std=0``
            starts at ``C = 0``, the identity flow).
        quadratic, linear: fixed coefficients ``(K, d, d)`` and ``(K, d)`` instead (e.g. a known
            symmetry, :func:`unitary_algebra`); ``key`` is then unused.
        scale: flow time for ``|tau| = 1`` (``pi``: ``A = I`` sweeps the full circle).
    """

    quadratic: Float[Array, "K d d"]
    linear: Float[Array, "K d"]
    offset: Float[Array, " K"]
    state_size: int = eqx.field(static=True)
    n_quantities: int = eqx.field(static=True)
    scale: float = eqx.field(static=True)

    def __init__(
        self,
        state_size: int,
        n_quantities: int = 1,
        *,
        key: PRNGKeyArray | None = None,
        init_std: float = 0.0,
        quadratic=None,
        linear=None,
        scale: float = math.pi,
    ):
        _check_state_size(state_size, "QuadraticConservedQuantities")
        _check_count(n_quantities, "n_quantities", "QuadraticConservedQuantities")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"QuadraticConservedQuantities: `scale` must be positive, got {scale!r}")
        d, k = state_size, n_quantities
        if quadratic is None and linear is None:
            if init_std < 0:
                raise ValueError(f"QuadraticConservedQuantities: `init_std` must be >= 0, got {init_std}")
            if init_std > 0 and key is None:
                raise ValueError("QuadraticConservedQuantities: `key` is required when `init_std` > 0")
            k1, k2 = jax.random.split(key) if key is not None else (None, None)
            quadratic = init_std * jax.random.normal(k1, (k, d, d)) if init_std > 0 else jnp.zeros((k, d, d))
            linear = init_std * jax.random.normal(k2, (k, d)) if init_std > 0 else jnp.zeros((k, d))
        # `float`: float32, or float64 under jax.enable_x64
        quadratic = jnp.zeros((k, d, d)) if quadratic is None else jnp.asarray(quadratic, float)
        linear = jnp.zeros((k, d)) if linear is None else jnp.asarray(linear, float)
        if quadratic.shape != (k, d, d) or linear.shape != (k, d):
            raise ValueError(
                f"QuadraticConservedQuantities: need `quadratic` of shape {(k, d, d)} and `linear` of "
                f"shape {(k, d)}, got {quadratic.shape} and {linear.shape}"
            )
        if not (bool(jnp.all(jnp.isfinite(quadratic))) and bool(jnp.all(jnp.isfinite(linear)))):
            raise ValueError("QuadraticConservedQuantities: `quadratic` and `linear` must be finite")
        self.quadratic, self.linear = quadratic, linear
        self.offset = jnp.zeros((k,), quadratic.dtype)
        self.state_size, self.n_quantities, self.scale = int(d), int(k), float(scale)

    def matrices(self) -> Float[Array, "K d d"]:
        """The symmetric ``A_k``."""
        return 0.5 * (self.quadratic + jnp.swapaxes(self.quadratic, 1, 2))

    def generators(self) -> Float[Array, "K d+1 d+1"]:
        """The affine generators ``G_k = [[J A_k, J b_k], [0, 0]]``."""
        return jax.vmap(quadratic_generator)(self.quadratic, self.linear)

    def __call__(self, x):
        a = self.matrices()
        return 0.5 * jnp.einsum("i,kij,j->k", x, a, x) + self.linear @ x + self.offset

    def flow_matrix(self, tau: Float[Array, " K"]) -> Float[Array, "d+1 d+1"]:
        """``expm(scale * sum_k tau_k G_k)``, the affine map ``[x; 1] -> [Phi^tau(x); 1]``."""
        return jax.scipy.linalg.expm(self.scale * jnp.einsum("k,kij->ij", tau, self.generators()))

    def flow(self, x, tau):
        m = self.flow_matrix(tau)
        d = self.state_size
        return m[:d, :d] @ x + m[:d, d]


class NeuralConservedQuantities(AbstractConservedQuantities):
    """``C(x) = MLP(x)`` with ``K`` outputs: any smooth observable; its flow is an RK4 solve of
    ``ode_steps`` steps (:func:`ode_flow`)."""

    net: eqx.nn.MLP
    state_size: int = eqx.field(static=True)
    n_quantities: int = eqx.field(static=True)
    scale: float = eqx.field(static=True)
    ode_steps: int = eqx.field(static=True)

    def __init__(
        self,
        state_size: int,
        n_quantities: int = 1,
        width: int = 32,
        depth: int = 2,
        *,
        key: PRNGKeyArray,
        activation=softplus,
        scale: float = 1.0,
        ode_steps: int = 16,
    ):
        _check_state_size(state_size, "NeuralConservedQuantities")
        _check_count(n_quantities, "n_quantities", "NeuralConservedQuantities")
        _check_count(ode_steps, "ode_steps", "NeuralConservedQuantities")
        self.net = eqx.nn.MLP(state_size, n_quantities, width, depth, activation=activation, key=key)
        self.state_size, self.n_quantities = int(state_size), int(n_quantities)
        self.scale, self.ode_steps = float(scale), int(ode_steps)

    def __call__(self, x):
        return self.net(x)

    def flow(self, x, tau):
        return ode_flow(self, x, tau, self.ode_steps)
