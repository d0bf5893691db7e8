"""The gyroscope: a heavy symmetric top with a fixed tip, in Euler angles.

``q = (theta, phi, psi)``: nutation (tilt of the symmetry axis from the upward vertical),
precession about the vertical, spin about the symmetry axis. With moments of inertia ``I1`` (about
the tip, perpendicular to the axis) and ``I3`` (about the axis), mass ``m`` and centre of mass at
``l`` from the tip (Goldstein, Classical Mechanics, section 5.7):

.. math:: L = \\tfrac{I_1}{2}(\\dot\\theta^2 + \\dot\\phi^2\\sin^2\\theta)
          + \\tfrac{I_3}{2}(\\dot\\psi + \\dot\\phi\\cos\\theta)^2 - m g l\\cos\\theta.

``phi`` and ``psi`` are cyclic, so ``p_phi``, ``p_psi = I3 omega3`` and the energy are conserved.
The Euler-angle chart is singular at ``theta = 0, pi`` (the Hessian in ``qdot`` loses rank);
``sample_initial`` stays away from it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .mechanics import AbstractMechanicalSystem, _positive


class Gyroscope(AbstractMechanicalSystem):
    """Heavy symmetric top; state ``(theta, phi, psi, thetadot, phidot, psidot)``.

    ``sample_initial``: tilt uniform in ``tilt``, a fast spin ``psidot`` uniform in ``spin``, and
    small random nutation and precession rates (``rate`` scale).
    """

    I1: float = 1.0
    I3: float = 0.5
    mass: float = 1.0
    length: float = 1.0
    gravity: float = 9.81
    tilt: tuple[float, float] = (0.3, 1.2)
    spin: tuple[float, float] = (10.0, 20.0)
    rate: float = 0.5

    def __check_init__(self):
        _positive(
            "Gyroscope", I1=self.I1, I3=self.I3, mass=self.mass, length=self.length, gravity=self.gravity
        )
        lo, hi = self.tilt
        if not 0 < lo <= hi < jnp.pi:
            raise ValueError(f"Gyroscope: `tilt` must satisfy 0 < low <= high < pi, got {self.tilt}")

    @property
    def n_dof(self):
        return 3

    def lagrangian(self, q, qdot):
        theta = q[0]
        dtheta, dphi, dpsi = qdot[0], qdot[1], qdot[2]
        kinetic = 0.5 * self.I1 * (dtheta**2 + (dphi * jnp.sin(theta)) ** 2)
        kinetic = kinetic + 0.5 * self.I3 * (dpsi + dphi * jnp.cos(theta)) ** 2
        return kinetic - self.mass * self.gravity * self.length * jnp.cos(theta)

    def sample_initial(self, key):
        k_tilt, k_angles, k_spin, k_rates = jax.random.split(key, 4)
        theta = jax.random.uniform(k_tilt, minval=self.tilt[0], maxval=self.tilt[1])
        phi, psi = jax.random.uniform(k_angles, (2,), maxval=2 * jnp.pi)
        spin = jax.random.uniform(k_spin, minval=self.spin[0], maxval=self.spin[1])
        dtheta, dphi = self.rate * jax.random.normal(k_rates, (2,))
        return jnp.stack([theta, phi, psi, dtheta, dphi, spin])

    def symmetry_axis(self, q):
        """Unit vector of the top's symmetry axis, ``(sin theta sin phi, -sin theta cos phi,
        cos theta)``."""
        theta, phi = q[..., 0], q[..., 1]
        return jnp.stack([jnp.sin(theta) * jnp.sin(phi), -jnp.sin(theta) * jnp.cos(phi), jnp.cos(theta)], -1)
