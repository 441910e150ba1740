"""The sympy proofs of chapters 2-5, asserted outside the book (reinmax.theory.symbolic), plus the
numerical helpers those chapters use (reinmax.theory.ode, reinmax.theory.bias).

Each identity is checked as "simplifies to exactly zero"; each proof also has a deliberately wrong
variant that the same check must reject, so that a check that always passes would be caught.
"""
import math

import sympy as sp
import pytest
import torch

import reinmax
from reinmax import bias, exact, ode
from reinmax import symbolic as S

ALL_N = list(range(2, S.max_checked_n + 1))   # 2..6


@pytest.fixture(scope="module")
def models():
    return {n: S.softmax_model(n) for n in ALL_N}


@pytest.mark.parametrize("n", ALL_N)
def test_theorem_3_1_expected_st_is_first_order(models, n):
    m = models[n]
    assert S.is_zero(S.expected_st(m) - S.first_order(m), m)
    # Wrong: ST's expectation is not the second-order target (f's curvature is free).
    assert not S.is_zero(S.expected_st(m) - S.second_order(m), m)


@pytest.mark.parametrize("n", ALL_N)
def test_theorem_3_2_expected_reinmax_is_second_order(models, n):
    m = models[n]
    assert S.is_zero(S.expected_reinmax(m) - S.second_order(m), m)
    # Wrong ReinMax: dropping the 1/2 on the ST term (2 grad_mid - grad_ST) breaks it.
    assert not S.is_zero(S.expected_reinmax(m, coefficients=(2, 1)) - S.second_order(m), m)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_appendix_chains_line_by_line(models, n):
    m = models[n]
    assert all(S.check_chain(S.softmax_jacobian_steps(m), m))
    assert all(S.check_chain(S.theorem_3_1_steps(m), m))
    assert all(S.is_zero(v, m) for v in S.theorem_3_1_facts(m).values())
    for k in range(n):
        assert all(S.check_chain(S.theorem_3_2_steps(m, k), m))
    wrong = S.check_chain(S.theorem_3_2_steps(m, 0, coefficients=(2, 1)), m)
    assert all(wrong[:-1]) and not wrong[-1], "only the link to the wrong ReinMax may fail"


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_remarks_4_1_and_4_2(models, n):
    m = models[n]
    assert all(S.check_chain(S.remark_4_1_steps(m), m))
    assert all(S.check_chain(S.remark_4_2_steps(m), m))
    assert S.is_zero(S.baseline_gradient_identity(m), m)
    # Wrong: without the phi/pi weight, E[ST] is not the phi-baseline approximation.
    phi = S.baseline_symbols(n)
    assert not S.is_zero(S.expected_st(m) - S.first_order(m, phi), m)
    assert not all(S.check_chain(S.remark_4_2_steps(m, coefficients=(2, 1)), m))


@pytest.mark.parametrize("n", [2, 3, 4])
def test_uniform_baseline_estimators(models, n):
    m = models[n]
    target = S.uniform_baseline_heun_target(m)
    assert S.is_zero(S.expected_uniform_baseline(m) - target, m)
    assert not S.is_zero(S.expected_uniform_baseline_authors(m) - target, m)


def test_local_and_global_orders():
    errors = S.taylor_local_errors()
    orders = {rule: S.leading_order(err)[0] for rule, err in errors.items()}
    assert orders == {"euler": 2, "heun": 3, "simpson": 5}
    c = sp.symbols("c_0:9", real=True)
    assert sp.simplify(S.leading_order(errors["heun"])[1] + c[3] / 12) == 0
    assert sp.simplify(S.leading_order(errors["simpson"])[1] + c[5] / 2880) == 0
    h = sp.Symbol("h", positive=True)
    glob = {m: S.leading_order(S.global_error_series(m, 6).removeO(), h)[0] for m in ("euler", "heun", "rk4")}
    assert glob == {"euler": 1, "heun": 2, "rk4": 4}


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n=1"):
        S.softmax_model(1)
    with pytest.raises(ValueError, match="method"):
        S.global_error_series("midpoint")
    with pytest.raises(ValueError, match="rule"):
        ode.gradient_points(3, "trapezoid")
    with pytest.raises(ValueError, match="steps"):
        ode.integrate(lambda t, y: y, 1.0, 0.0, 1.0, 0)


# ------------------------------------------------------------------- numerical helpers
def _f(w):
    return lambda D: torch.nn.functional.softplus((D * w).sum(-1) - 1)


def test_segment_rules_match_exact_targets():
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(5, dtype=torch.float64, generator=gen)
    f = _f(torch.randn(5, dtype=torch.float64, generator=gen))
    assert torch.allclose(ode.segment_rule_target(f, theta, "euler"), exact.first_order_target(f, theta), atol=1e-14)
    assert torch.allclose(ode.segment_rule_target(f, theta, "heun"), exact.second_order_target(f, theta), atol=1e-14)
    # Simpson is closer to the truth than Heun on this smooth f.
    truth = exact.exact_gradient(f, theta)
    assert (bias.relative_bias(ode.segment_rule_target(f, theta, "simpson"), truth)
            < bias.relative_bias(exact.second_order_target(f, theta), truth))
    assert ode.gradient_evaluations(5) == {"euler": 5, "heun": 5, "simpson": 15,
                                           "rk4 (paper's count, n^2 + n)": 30}


def test_integrators_have_their_orders():
    F = lambda t, y: y * math.cos(t)  # noqa: E731  (solution y = exp(sin t))
    exact_value = math.exp(math.sin(2.0))
    steps = [20, 40, 80, 160]
    for method, order in (("euler", 1), ("heun", 2), ("rk4", 4)):
        err = [abs(float(ode.integrate(F, 1.0, 0.0, 2.0, k, method)) - exact_value) for k in steps]
        assert abs(ode.fit_slope([2.0 / k for k in steps], err) - order) < 0.15


def test_exact_moments_match_monte_carlo_free_formula():
    gen = torch.Generator().manual_seed(1)
    theta = torch.randn(4, dtype=torch.float64, generator=gen)
    f = _f(torch.randn(4, dtype=torch.float64, generator=gen))
    mean, var = bias.exact_moments(reinmax.reinmax, f, theta)
    assert torch.allclose(mean, exact.expected_estimate(reinmax.reinmax, f, theta), atol=1e-14)
    p, est = bias.per_sample_estimates(reinmax.reinmax, f, theta)
    second = (p[:, None] * est ** 2).sum(0)
    assert torch.allclose(var, second - mean ** 2, atol=1e-12) and (var >= 0).all()
    with pytest.raises(ValueError, match="zero vector"):
        bias.relative_bias(mean, torch.zeros_like(mean))
