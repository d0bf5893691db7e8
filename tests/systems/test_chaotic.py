import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from physbias._ode import solve_adaptive
from physbias.diffusion import Denoiser, WindowMLP, denoising_loss, sample
from physbias.systems import FitzHughNagumo, FlowMap, Lorenz63, trajectory_windows
from physbias.systems.chaotic import _rk4_step
from physbias.train import fit


def test_lorenz_field_vanishes_at_its_fixed_points():
    sys = Lorenz63()
    c = np.sqrt(sys.beta * (sys.rho - 1.0))
    for z in ([0.0, 0.0, 0.0], [c, c, sys.rho - 1.0], [-c, -c, sys.rho - 1.0]):
        np.testing.assert_allclose(sys.field(jnp.array(z)), 0.0, atol=1e-5)


def test_fitzhugh_nagumo_is_symmetric_under_swapping_the_neurons():
    sys = FitzHughNagumo()
    z = jnp.array([0.3, -0.2, 1.1, 0.4])
    swap = jnp.array([2, 3, 0, 1])
    np.testing.assert_allclose(sys.field(z[swap]), sys.field(z)[swap], rtol=1e-6)


def test_windows_follow_the_adaptive_reference_solution():
    sys = Lorenz63()
    windows = trajectory_windows(sys, jax.random.key(0), 2, 6, dt=0.1, burn_in=0.0, substeps=20)
    assert windows.shape == (2, 6, 3) and windows.dtype == np.float32
    z0 = sys.sample_initial(jax.random.split(jax.random.key(0), 2)[1])
    ts = jnp.arange(6, dtype=jnp.float32) * 0.1
    reference = np.asarray(solve_adaptive(sys.field, z0, ts, rtol=1e-7, atol=1e-7)) / sys.scale
    np.testing.assert_allclose(windows[1], reference, atol=2e-4)


def test_windows_reach_the_attractor_after_burn_in():
    w = trajectory_windows(Lorenz63(), jax.random.key(1), 2048, 30)
    z = w[..., 2] * 20.0
    # The attractor's z: mean 23.5, spread 8.6, peaks of 43-47 (a long burn-in's statistics). A start
    # near the origin is still on its first excursion after 3 time units (spread 1.9, peaks near 30).
    assert 22.0 < z.mean() < 26.0 and 7.0 < z.std() < 10.0
    assert np.quantile(z.max(axis=1), 0.9) > 40.0 and z.max() < 50.0
    assert abs(w[..., 0].mean()) < 0.1  # the two lobes are visited alike


def test_windows_refuse_bad_sizes():
    with pytest.raises(ValueError, match="length"):
        trajectory_windows(Lorenz63(), jax.random.key(0), 3, 0)
    with pytest.raises(ValueError, match="dt"):
        trajectory_windows(Lorenz63(), jax.random.key(0), 3, 4, dt=-0.1)


def test_flow_map_gives_back_each_window_from_its_first_state():
    w = trajectory_windows(Lorenz63(), jax.random.key(2), 512, 30)
    loc, scale = w.mean(axis=(0, 1)), w.std(axis=(0, 1))
    standardised = (w - loc) / scale
    flow = FlowMap(Lorenz63(), 30, loc=loc, scale=scale)
    rebuilt = np.asarray(jax.vmap(flow)(jnp.asarray(standardised[:, 0])))
    error = np.abs(rebuilt - standardised).max(axis=(1, 2))
    # Standardising rounds the start (float32); chaos grows that by ~e^(0.9 * 2.9) over the window.
    assert np.median(error) < 1e-5 and np.quantile(error, 0.99) < 1e-3
    # Without units it is the windows' own map (state / 20).
    np.testing.assert_allclose(jax.vmap(FlowMap(Lorenz63(), 30))(jnp.asarray(w[:4, 0])), w[:4], atol=1e-3)


def test_flow_map_refuses_bad_units_and_sizes():
    with pytest.raises(ValueError, match="length"):
        FlowMap(Lorenz63(), 0)
    with pytest.raises(ValueError, match="dt"):
        FlowMap(Lorenz63(), 5, dt=0.0)
    with pytest.raises(ValueError, match="loc"):
        FlowMap(Lorenz63(), 5, loc=[0.0, 1.0])
    with pytest.raises(ValueError, match="scale"):
        FlowMap(Lorenz63(), 5, scale=[1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="start"):
        FlowMap(Lorenz63(), 5)(jnp.zeros((5, 3)))  # a window, not a state: never broadcast


class _DampedOscillator(eqx.Module):
    """``q' = p``, ``p' = -q - 0.2 p``: linear, so windows of Gaussian starts are Gaussian."""

    scale: float = 1.0
    state_size = 2

    def field(self, z):
        return jnp.stack([z[1], -z[0] - 0.2 * z[1]])


def test_diffused_starts_decoded_by_the_flow_map_fit_the_windows_of_an_ode():
    # What the hard constraint still allows: a diffusion over starts, decoded by FlowMap, learns the
    # data's windows (here N(M mu, M S Mᵀ) for the linear flow M), and every sample is a trajectory.
    flow = FlowMap(_DampedOscillator(), 8, dt=0.3, substeps=3)
    mu, chol = jnp.array([0.5, -0.3]), jnp.array([[0.8, 0.0], [0.3, 0.4]])
    starts = mu[None] + jax.random.normal(jax.random.key(0), (4096, 2)) @ chol.T
    model = Denoiser(WindowMLP((2,), jax.random.key(1), width=64, depth=2))
    trained = fit(
        model,
        lambda m, batch, k: denoising_loss(m, batch[0], k, sigma_range=(1e-3, 10.0)),
        (starts,),
        key=jax.random.key(2),
        epochs=40,
        batch_size=256,
        optimizer=optax.adam(2e-3),
        progress=False,
    )
    drawn = sample(
        trained.model.score, jax.random.key(3), 4000, (2,), sigma_min=1e-3, sigma_max=10.0, steps=200
    )
    windows = np.asarray(jax.vmap(flow)(drawn)).reshape(4000, -1)
    matrix = np.asarray(jax.jacfwd(flow)(jnp.zeros(2))).reshape(16, 2)  # the flow is linear
    np.testing.assert_allclose(windows.mean(axis=0), matrix @ np.asarray(mu), atol=0.08)
    cov = matrix @ np.asarray(chol @ chol.T) @ matrix.T
    np.testing.assert_allclose(np.cov(np.asarray(drawn), rowvar=False), np.asarray(chol @ chol.T), atol=0.1)
    # The flow grows the starts' spread along the window: a 40-epoch model is within 20% there.
    np.testing.assert_allclose(np.cov(windows, rowvar=False), cov, rtol=0.2, atol=0.05)
    # Each window is the oscillator's own path: one RK4 step of 0.1 apart, three per record.
    step = np.asarray(jax.vmap(lambda z: _rk4_step(_DampedOscillator().field, z, 0.1))(drawn[:5]))
    for _ in range(2):
        step = np.asarray(jax.vmap(lambda z: _rk4_step(_DampedOscillator().field, z, 0.1))(jnp.asarray(step)))
    np.testing.assert_allclose(windows.reshape(4000, 8, 2)[:5, 1], step, atol=1e-5)
