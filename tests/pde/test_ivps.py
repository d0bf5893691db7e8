"""Built-in initial value problems (physbias.pde.ivps): the exact solutions satisfy their PDE
(time derivative by forward mode against the operator), vanish on the walls, and bad problems are
refused."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.pde import IVPS, Advection, Heat, get_ivp


@pytest.mark.parametrize("name", list(IVPS))
def test_exact_solutions_satisfy_their_pde_and_the_walls(name):
    ivp = get_ivp(name)
    with jax.enable_x64(True):
        x = jax.random.uniform(jax.random.key(0), (50, ivp.dim), jnp.float64, -1.0, 1.0)
        for t in (0.0, 0.2, ivp.t_end):
            u_t = jax.vmap(lambda xi, t=t: jax.jvp(lambda s: ivp.exact(xi, s), (t,), (1.0,))[1])(x)
            rhs = jax.vmap(lambda xi, t=t: ivp.rhs(lambda y: ivp.exact(y, t), xi))(x)
            np.testing.assert_allclose(u_t, rhs, atol=1e-10 * max(1.0, float(jnp.max(jnp.abs(rhs)))))
            walls = jnp.concatenate([x.at[:, 0].set(-1.0), x.at[:, -1].set(1.0)])
            assert float(jnp.max(jnp.abs(jax.vmap(lambda xi, t=t: ivp.exact(xi, t))(walls)))) < 1e-6
        assert float(jnp.max(jnp.abs(jax.vmap(ivp.initial)(x)))) > 0.1


def test_heat_decays_at_its_analytic_rate():
    heat = Heat(modes=(1, 2), diffusivity=0.1)
    x = jnp.array([0.1, 0.3])
    rate = 0.1 * np.pi**2 * 5 / 4
    np.testing.assert_allclose(heat.exact(x, 1.0) / heat.exact(x, 0.0), np.exp(-rate), rtol=1e-5)


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Advection((0.8,), (0.5,), 0.15), "stay inside"),
        (lambda: Advection((0.8, 0.8), (0.0,), 0.1), "same non-zero length"),
        (lambda: Advection((0.8,), (0.0,), -0.1), "width"),
        (lambda: Heat(modes=(0,)), "modes"),
        (lambda: Heat(modes=(1,), diffusivity=0.0), "diffusivity"),
        (lambda: get_ivp("wave-3d"), "unknown PDE 'wave-3d'"),
    ],
)
def test_bad_problems_are_refused(build, match):
    with pytest.raises(ValueError, match=match):
        build()
