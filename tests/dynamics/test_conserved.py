"""Conserved quantities, their flows and generators, the symmetrised HNN and Noether's razor."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from physbias.dynamics import (
    FlowMap,
    HamiltonianNN,
    NeuralConservedQuantities,
    QuadraticConservedQuantities,
    SymmetrizedHamiltonianNN,
    euclidean_algebra_2d,
    generator_cosine,
    generator_singular_values,
    nbody_algebra_2d,
    ode_flow,
    principal_cosines,
    sample_flow_times,
    symplectic_form,
    unitary_algebra,
)
from physbias.marglik import elbo_terms, noether_fit


def _random_quadratic(key, d=4, k=2):
    return QuadraticConservedQuantities(d, k, key=key, init_std=0.5)


def test_quantity_is_invariant_along_its_own_flow():
    with jax.enable_x64(True):  # the flow is exact: C is invariant to rounding (1e-6 relative)
        c = _random_quadratic(jax.random.key(0), d=4, k=1)
        xs = jax.random.normal(jax.random.key(1), (16, 4), jnp.float64)
        for tau in (-0.7, 0.3, 1.0):
            moved = jax.vmap(lambda x, t=tau: c.flow(x, jnp.array([t])))(xs)
            before, after = jax.vmap(c)(xs), jax.vmap(c)(moved)
            scale = 1 + jnp.sum(xs**2, axis=1, keepdims=True) + jnp.sum(moved**2, axis=1, keepdims=True)
            assert np.max(np.abs(after - before) / scale) < 1e-6
            # and the flow moves the states: the test is not trivially met by the identity
            assert np.max(np.abs(moved - xs)) > 0.1


def test_flow_composition_law_and_inverse():
    c = _random_quadratic(jax.random.key(2), d=4, k=1)
    x = jax.random.normal(jax.random.key(3), (4,))
    s, t = jnp.array([0.3]), jnp.array([-0.55])
    np.testing.assert_allclose(c.flow(c.flow(x, t), s), c.flow(x, s + t), atol=2e-5)
    np.testing.assert_allclose(c.flow(c.flow(x, s), -s), x, atol=2e-5)


def test_quadratic_flow_matches_ode_flow_and_rotation():
    # The SHO generator A = I flows (q, p) by a clockwise rotation of angle pi * tau.
    c = QuadraticConservedQuantities(2, 1, quadratic=jnp.eye(2)[None])
    x, tau = jnp.array([1.0, 0.5]), jnp.array([0.25])
    a = math.pi * 0.25
    rotation = jnp.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    np.testing.assert_allclose(c.flow(x, tau), rotation @ x, atol=1e-6)
    np.testing.assert_allclose(ode_flow(c, x, tau, steps=32), c.flow(x, tau), atol=1e-6)
    # with a linear term too (an affine flow): RK4 against the exact exponential
    c2 = _random_quadratic(jax.random.key(4), d=4, k=2)
    y, tau2 = jax.random.normal(jax.random.key(5), (4,)), jnp.array([0.2, -0.1])
    np.testing.assert_allclose(ode_flow(c2, y, tau2, steps=64), c2.flow(y, tau2), atol=1e-4)


def test_generator_and_field_agree():
    c = _random_quadratic(jax.random.key(6), d=4, k=2)
    x, tau = jax.random.normal(jax.random.key(7), (4,)), jnp.array([0.4, -1.1])
    g = jnp.einsum("k,kij->ij", tau, c.generators())
    np.testing.assert_allclose(g[:4, :4] @ x + g[:4, 4], c.field(x, tau), rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(c.generators()[:, 4]) == 0)  # affine: last row zero
    j = symplectic_form(4)
    np.testing.assert_allclose(j @ j, -jnp.eye(4))


def test_expm_gradients_finite_at_zero():
    c = QuadraticConservedQuantities(4, 2)  # W = b = 0: the identity flow
    x = jnp.arange(4.0)

    def loss(c):
        return jnp.sum(c.flow(x, jnp.array([0.3, -0.8])) ** 2)

    grads = eqx.filter_grad(loss)(c)
    for g in (grads.quadratic, grads.linear):
        assert np.all(np.isfinite(g))
    assert np.max(np.abs(grads.linear)) > 0  # a linear term moves the states at first order


def test_flow_times_measure():
    one = sample_flow_times(jax.random.key(0), 1000, 1)
    ball = sample_flow_times(jax.random.key(1), 1000, 3)
    assert one.shape == (1000, 1) and np.all(np.abs(one) <= 1) and np.min(one) < -0.9 < 0.9 < np.max(one)
    r = np.linalg.norm(ball, axis=1)
    assert np.all(r <= 1) and abs(np.mean(r**3) - 0.5) < 0.05  # uniform in the ball: r^3 ~ U[0, 1]


def test_symmetrized_hnn_with_so2_oracle_is_rotation_invariant():
    # H_sym(R x) = H_sym(x) up to the Monte-Carlo error of the average over S rotations.
    oracle = unitary_algebra(1)
    model = SymmetrizedHamiltonianNN(oracle, 32, 2, 512, key=jax.random.key(0))
    plain = HamiltonianNN(2, 32, 2, key=jax.random.key(0), hamiltonian=model.net)
    x = jnp.array([0.8, -0.3])
    h = [float(model.hamiltonian(oracle.flow(x, jnp.array([t])))) for t in (0.0, 0.2, 0.5, 0.9)]
    hp = [float(plain.hamiltonian(oracle.flow(x, jnp.array([t])))) for t in (0.0, 0.2, 0.5, 0.9)]
    assert np.ptp(h) < 0.1 * np.ptp(hp)  # the plain network varies along the circle; H_sym barely
    # Noether: the oracle's quantity is (nearly) conserved by the symmetrised dynamics
    dcdt = jax.grad(lambda y: oracle(y)[0])(x) @ model(x)
    assert abs(float(dcdt)) < 0.1 * float(jnp.linalg.norm(model(x)) * jnp.linalg.norm(x))


def _three_body_energy(x):
    q = x[:6].reshape(3, 2)
    pairs = [(0, 1), (0, 2), (1, 2)]
    return 0.5 * jnp.sum(x[6:] ** 2) - sum(1 / jnp.sqrt(jnp.sum((q[i] - q[j]) ** 2) + 1) for i, j in pairs)


def test_reference_algebras_are_conserved_by_their_hamiltonians():
    for quantities, h in (
        (unitary_algebra(2), lambda x: 0.5 * jnp.sum(x**2)),
        (
            euclidean_algebra_2d(2),
            lambda x: 0.5 * jnp.sum(x[4:] ** 2) - 1 / jnp.sqrt(jnp.sum((x[0:2] - x[2:4]) ** 2) + 1),
        ),
        (nbody_algebra_2d(3), _three_body_energy),
    ):
        x = jax.random.normal(jax.random.key(3), (quantities.state_size,))
        jgrad_h = symplectic_form(quantities.state_size) @ jax.grad(h)(x)
        brackets = jax.jacobian(quantities)(x) @ jgrad_h  # {C_k, H}
        np.testing.assert_allclose(brackets, 0.0, atol=1e-5)
    assert unitary_algebra(3).n_quantities == 9
    # the N-body algebra: 7 independent quantities, SE(2) among them
    nbody = nbody_algebra_2d(2).generators()
    assert np.sum(generator_singular_values(nbody) > 1e-6) == 7
    np.testing.assert_allclose(
        principal_cosines(euclidean_algebra_2d(2).generators(), nbody, rank=3), 1.0, atol=1e-6
    )


def test_singular_values_and_principal_cosines():
    ref = unitary_algebra(2).generators()
    mixing = jax.random.normal(jax.random.key(0), (6, 4))
    learned = jnp.einsum("kr,rij->kij", mixing, ref)  # 6 generators spanning exactly u(2)
    sv = generator_singular_values(learned)
    assert sv[3] > 1e3 * sv[4] + 1e-12
    np.testing.assert_allclose(principal_cosines(learned, ref), 1.0, atol=1e-6)
    other = euclidean_algebra_2d(1).generators()  # acting on a 4-d state too
    assert np.min(principal_cosines(other, ref)) < 0.5
    assert generator_cosine(-3 * ref[0], ref[0]) == pytest.approx(1.0)
    # rank: do the 2 dominant learned directions lie in u(2)? does their span hold ref[0]?
    two = jnp.stack([ref[0] + ref[1], 0.5 * ref[2]])
    np.testing.assert_allclose(principal_cosines(two, ref, rank=2), 1.0, atol=1e-6)
    assert principal_cosines(two, ref[3:4], rank=2)[0] < 1e-6
    assert principal_cosines(two, ref[2:3], rank=2)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="different spaces"):
        principal_cosines(ref, euclidean_algebra_2d(2).generators())


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="state_size"):
        QuadraticConservedQuantities(3, 1)
    with pytest.raises(ValueError, match="n_quantities"):
        QuadraticConservedQuantities(2, 0)
    with pytest.raises(ValueError, match="quadratic"):
        QuadraticConservedQuantities(2, 1, quadratic=jnp.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="finite"):
        QuadraticConservedQuantities(2, 1, quadratic=jnp.full((1, 2, 2), jnp.nan))
    with pytest.raises(ValueError, match="state_size"):
        NeuralConservedQuantities(5, 1, key=jax.random.key(0))
    with pytest.raises(TypeError, match="conserved"):
        SymmetrizedHamiltonianNN(jnp.eye(2), key=jax.random.key(0))
    with pytest.raises(ValueError, match="substeps"):
        FlowMap(HamiltonianNN(2, 8, 1, key=jax.random.key(0)), 0.1, 0)
    model = FlowMap(HamiltonianNN(2, 8, 1, key=jax.random.key(0)), 0.1)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        noether_fit(model, (jnp.ones((5, 3)), jnp.ones((5, 3))), key=jax.random.key(0), epochs=1)
    with pytest.raises(ValueError, match="finite"):
        noether_fit(model, (jnp.full((5, 2), jnp.nan), jnp.ones((5, 2))), key=jax.random.key(0), epochs=1)
    with pytest.raises(ValueError, match="prior_variance"):
        noether_fit(model, (jnp.ones((5, 2)),) * 2, key=jax.random.key(0), epochs=1, prior_variance=-1.0)
    with pytest.raises(TypeError, match="FlowMap"):
        noether_fit(model.dynamics, (jnp.ones((5, 2)),) * 2, key=jax.random.key(0), epochs=1)


def test_neural_quantity_flow_conserves_it():
    c = NeuralConservedQuantities(2, 1, 16, 1, key=jax.random.key(0), ode_steps=32)
    x = jnp.array([0.3, -0.2])
    y = c.flow(x, jnp.array([0.8]))
    assert abs(float(c(y)[0] - c(x)[0])) < 1e-5 and float(jnp.linalg.norm(y - x)) > 1e-3


def _sho_pairs(n_traj, steps, dt, rng, p_scale=0.5, noise=0.0):
    x0 = rng.normal(size=(n_traj, 2)) * np.array([1.0, p_scale])
    t = dt * np.arange(steps + 1)
    # exact SHO solution: rotation of the phase plane
    q = x0[:, :1] * np.cos(t) + x0[:, 1:] * np.sin(t)
    p = -x0[:, :1] * np.sin(t) + x0[:, 1:] * np.cos(t)
    traj = np.stack([q, p], -1)
    x, y = traj[:, :-1].reshape(-1, 2), traj[:, 1:].reshape(-1, 2)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y + noise * rng.normal(size=y.shape), jnp.float32)


@pytest.mark.slow  # a training run of 20-40 s on 2 cores: `pytest -m slow`
def test_noethers_razor_learns_the_sho_rotation():
    """What the constraint allows: the symmetrised model fits the oscillator, and the learned
    generator turns to J (the rotation), by the ELBO alone."""
    rng = np.random.default_rng(0)
    train = _sho_pairs(7, 4, 0.2, rng, noise=math.sqrt(1e-3))
    conserved = QuadraticConservedQuantities(2, 1, key=jax.random.key(1), init_std=0.01)
    model = FlowMap(SymmetrizedHamiltonianNN(conserved, 32, 2, 16, key=jax.random.key(2)), 0.2, 3)  # ~10 s
    result = noether_fit(
        model,
        train,
        key=jax.random.key(3),
        epochs=1200,
        learning_rate=3e-3,
        prior_variance=1.0,
        n_mc=2,
        progress=False,
    )
    g = result.conserved.generators()[0]
    assert generator_cosine(g, unitary_algebra(1).generators()[0]) > 0.95
    terms = elbo_terms(result.posterior, train, jax.random.key(4), n_samples=4, prior_variance=1.0)
    assert math.isfinite(terms["neg_elbo_per_n"]) and terms["nll_per_n"] < 0  # fits below the noise scale


def test_orbit_flow_times_sweep_one_full_orbit_or_the_learned_extent():
    from physbias.dynamics import orbit_flow_times

    with jax.enable_x64(True):
        # C = 0.3 (q^2 + p^2): the flow is a rotation at rate 0.3 * scale; 6 times give the cyclic group C6.
        c = QuadraticConservedQuantities(2, 1, quadratic=0.6 * np.eye(2)[None], linear=np.zeros((1, 2)))
        taus = orbit_flow_times(c, 6)
        angles = np.array([np.arctan2(*np.asarray(c.flow_matrix(t))[[1, 0], [0, 0]]) for t in taus])
        np.testing.assert_allclose(
            np.sort(np.mod(-angles, 2 * np.pi)), 2 * np.pi * np.arange(6) / 6, atol=1e-9
        )
        # A hyperbolic generator (q p) does not close: the grid of the measure's support.
        h = QuadraticConservedQuantities(
            2, 1, quadratic=np.array([[[0.0, 1.0], [1.0, 0.0]]]), linear=np.zeros((1, 2))
        )
        np.testing.assert_allclose(np.asarray(orbit_flow_times(h, 4)).ravel(), [-1.0, -0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="n_quantities=1"):
        orbit_flow_times(QuadraticConservedQuantities(2, 2), 4)
