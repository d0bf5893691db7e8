"""The symbolic search for conserved quantities (seed 002, App. C)."""

import jax
import numpy as np
import pytest

from physbias.dynamics import (
    OneStepPredictor,
    conservation_ratio,
    enumerate_formulas,
    enumerate_terms,
    fit_constant,
    search_conserved_quantities,
)
from physbias.systems import MassSpring, Pendulum, canonical_trajectories

PENDULUM_UNITS = {"q": (0, 0, 0), "p": (1, 2, -1)}  # q an angle, p an angular momentum
SPRING_UNITS = {"q": (0, 1, 0), "p": (1, 1, -1)}


def _trajectories(system, n=12, points=45, seed=0, radius=(1.3, 2.3)):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (n, 2))
    x0 = x0 / np.linalg.norm(x0, axis=1, keepdims=True) * rng.uniform(*radius, (n, 1))
    return canonical_trajectories(system, x0, 3.0 / (points - 1), points - 1)[0]


def test_search_recovers_the_pendulum_hamiltonian_on_exact_data():
    trajs = _trajectories(Pendulum(mass=0.5, length=1.0, gravity=6.0))
    predictor = OneStepPredictor(2, 3 / 44, width=16, key=jax.random.key(1))
    res = search_conserved_quantities(PENDULUM_UNITS, trajs, predictor, max_terms=10)
    assert 40 <= len(res.candidates) <= 60
    assert res.best.template() == "p^2 + c*cos(q)", res.best.formula()
    assert -3.05 <= res.best.c <= -2.95
    assert res.n_passed_threshold >= 1
    for method in ("ols", "tls"):  # without noise every fit agrees
        c = fit_constant(trajs[..., 1] ** 2, np.cos(trajs[..., 0]), method)
        assert res.best.c == pytest.approx(c, abs=1e-6)


def test_errors_in_variables_fit_is_unbiased_under_noise_where_least_squares_shrinks():
    trajs = _trajectories(Pendulum(mass=0.5, length=1.0, gravity=6.0), n=25, seed=3)
    noisy = trajs + 0.1 * np.random.default_rng(4).standard_normal(trajs.shape)
    t1, t2 = noisy[..., 1] ** 2, np.cos(noisy[..., 0])
    assert abs(fit_constant(t1, t2, "deming") + 3.0) < 0.05
    assert abs(fit_constant(t1, t2, "ols") + 3.0) > 0.05  # attenuated by the noise in cos q


def test_grammar_respects_units():
    pendulum = [str(t) for t in enumerate_terms(PENDULUM_UNITS, 2, 30)]
    spring = [str(t) for t in enumerate_terms(SPRING_UNITS, 2, 30)]
    assert "cos(q)" in pendulum and "cos(q)" not in spring  # a length has no cosine
    assert not any("sin(p)" in t or "cos(p)" in t for t in pendulum + spring)
    formulas = enumerate_formulas(enumerate_terms(SPRING_UNITS, 2, 10), SPRING_UNITS)
    assert "q^2 + c*p^2" in {f.template() for f in formulas}


def test_conservation_ratio_separates_conserved_from_not():
    trajs = _trajectories(MassSpring(mass=0.5, k1=2.0), radius=(0.1, 1.0))
    energy = trajs[..., 0] ** 2 + trajs[..., 1] ** 2
    assert conservation_ratio(energy)[1] < 1e-8
    assert conservation_ratio(trajs[..., 0] ** 2)[1] > 1e-2


def test_search_refuses_bad_input():
    trajs = _trajectories(Pendulum(mass=0.5, length=1.0, gravity=6.0), n=2)
    with pytest.raises(ValueError, match="empty"):
        search_conserved_quantities({}, trajs)
    with pytest.raises(ValueError, match="shape"):
        search_conserved_quantities(PENDULUM_UNITS, trajs[0])
    with pytest.raises(ValueError, match="shape"):
        search_conserved_quantities(PENDULUM_UNITS, trajs[..., :1])
    bad = trajs.copy()
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        search_conserved_quantities(PENDULUM_UNITS, bad)
    with pytest.raises(ValueError, match="method"):
        fit_constant(trajs[..., 0], trajs[..., 1], "lasso")
