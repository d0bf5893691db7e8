"""PAC-Bayes bounds against direct evaluation of their formulas and against the reference's search."""

import math

import numpy as np
import pytest
from scipy import optimize

from physbias.bounds import (
    catoni_bound,
    catoni_bound_at,
    error_bound,
    mcallester_bound,
    optimized_catoni_bound,
    optimized_catoni_objective,
    pac_bayes_bounds,
)

# (train error, KL in nats, n): small and large KL, zero error, a vacuous-ish case.
CASES = [(0.1, 10.0, 1000), (0.05, 554.5, 1500), (0.0, 50.0, 60000), (0.3, 3000.0, 50000), (0.02, 1e4, 60000)]


def _catoni_formula(e, kl, n, lam, delta):
    # Written with exp (not expm1) and the exponent multiplied out, independently of the library.
    return (1.0 - math.exp(-lam * e / n - (kl + math.log(1.0 / delta)) / n)) / (1.0 - math.exp(-lam / n))


def _lotfi_objective(g, e, kl, n, alpha, delta):
    lam = math.exp(g)
    q = e + (1.0 + alpha) / lam * (kl - math.log(delta) + 2.0 * math.log(2.0 + g / math.log(1.0 + alpha)))
    return (1.0 - math.exp(-lam / n * q)) / (1.0 - math.exp(-lam / n))


def test_catoni_at_fixed_lambda_by_hand():
    # a = 0.1, q = 0.1 + (10 + ln 20) / 100 = 0.22995732; (1 - e^{-a q}) / (1 - e^{-a}) by hand:
    # 1 - e^{-0.022995732} = 0.0227333..., 1 - e^{-0.1} = 0.0951626...
    assert catoni_bound_at(0.1, 10.0, 1000, 100.0) == pytest.approx(0.0227333 / 0.0951626, rel=1e-5)
    for e, kl, n in CASES:
        for lam in (1.0, 37.0, float(n), 10.0 * n):
            assert catoni_bound_at(e, kl, n, lam, 0.05) == pytest.approx(
                _catoni_formula(e, kl, n, lam, 0.05), rel=1e-10
            )


def test_optimized_objective_is_the_formula():
    for e, kl, n in CASES:
        for g in (0.0, 1.0, math.log(n), math.log(n) + 3.0):
            got = optimized_catoni_objective(g, e, kl, n, 1e-4, 0.05)
            assert got == pytest.approx(_lotfi_objective(g, e, kl, n, 1e-4, 0.05), rel=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_optimized_bound_matches_the_reference_search(case):
    # The reference runs Brent's method from the bracket (0, 4 + ln n) on the same objective.
    e, kl, n = case
    ref = optimize.minimize_scalar(
        lambda g: _lotfi_objective(g, e, kl, n, 1e-4, 0.05), (0.0, 4.0 + math.log(n))
    )
    assert optimized_catoni_bound(e, kl, n) == pytest.approx(ref.fun, rel=1e-8, abs=1e-12)
    ref_cat = optimize.minimize_scalar(lambda lam: _catoni_formula(e, kl, n, lam, 0.05), (1.0, 100.0))
    assert catoni_bound(e, kl, n) == pytest.approx(ref_cat.fun, rel=1e-8, abs=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_minimised_bounds_lie_below_every_grid_point_and_in_unit_interval(case):
    e, kl, n = case
    opt, cat = optimized_catoni_bound(e, kl, n), catoni_bound(e, kl, n)
    grid = np.linspace(0.0, math.log(n) + 12.0, 301)
    assert all(opt <= _lotfi_objective(g, e, kl, n, 1e-4, 0.05) + 1e-15 for g in grid)
    assert all(cat <= catoni_bound_at(e, kl, n, math.exp(g)) + 1e-15 for g in grid)
    assert e <= cat <= opt <= 1.0  # the union bound over lambda costs something; never below the train error
    assert opt > 0.0


def test_mcallester_formula():
    # 0.1 + sqrt((10 + ln 20 + ln 1000) / 1999) by hand: sqrt(19.903487 / 1999) = 0.0997834
    assert mcallester_bound(0.1, 10.0, 1000) == pytest.approx(0.1997834, abs=1e-7)
    for e, kl, n in CASES:
        expected = e + math.sqrt((kl + math.log(1 / 0.05) + math.log(n)) / (2 * n - 1))
        assert mcallester_bound(e, kl, n, 0.05) == pytest.approx(expected, rel=1e-12)


def test_bounds_grow_with_kl_and_shrink_with_n():
    assert optimized_catoni_bound(0.05, 100.0, 1500) < optimized_catoni_bound(0.05, 200.0, 1500)
    assert optimized_catoni_bound(0.05, 100.0, 3000) < optimized_catoni_bound(0.05, 100.0, 1500)


def test_entry_point_converts_bits_and_picks_like_the_reference():
    b = pac_bayes_bounds(0.05, 1500, 800.0)
    kl = 800.0 * math.log(2.0)
    assert b.kl_nats == pytest.approx(kl, rel=1e-15)
    assert b.optimized == optimized_catoni_bound(0.05, kl, 1500)
    assert b.catoni == catoni_bound(0.05, kl, 1500)
    assert b.mcallester == mcallester_bound(0.05, kl, 1500)
    assert b.error_bound == b.optimized == error_bound(0.05, 1500, 800.0)
    high = pac_bayes_bounds(0.6, 1500, 800.0)  # train accuracy below 1/2: Catoni, as the reference
    assert high.error_bound == high.catoni


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"train_error": -0.1}, "train_error"),
        ({"train_error": 1.5}, "train_error"),
        ({"train_error": float("nan")}, "train_error"),
        ({"n": 0}, "n"),
        ({"n": -5}, "n"),
        ({"kl_bits": -1.0}, "kl_bits"),
        ({"kl_bits": float("inf")}, "kl_bits"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
    ],
)
def test_bad_input_raises_before_work(kwargs, match):
    args = {"train_error": 0.1, "n": 100, "kl_bits": 10.0, "delta": 0.05} | kwargs
    with pytest.raises(ValueError, match=match):
        pac_bayes_bounds(**args)


def test_bad_input_of_each_bound():
    with pytest.raises(TypeError, match="n"):
        catoni_bound(0.1, 1.0, 100.0)  # n must be an integer
    with pytest.raises(ValueError, match="lam"):
        catoni_bound_at(0.1, 1.0, 100, 0.0)
    with pytest.raises(ValueError, match="alpha"):
        optimized_catoni_bound(0.1, 1.0, 100, alpha=-1.0)
    with pytest.raises(ValueError, match="kl"):
        mcallester_bound(0.1, -1.0, 100)
    with pytest.raises(ValueError, match="delta"):
        mcallester_bound(0.1, 1.0, 100, delta=2.0)
