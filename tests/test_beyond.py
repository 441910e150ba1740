"""The estimators after ReinMax (reinmax/estimators/quadrature.py, rao.py, redge.py), checked
exactly where mathematics allows and by stated Monte Carlo tolerances elsewhere; each exactness
check also fails on a deliberately broken variant defined here.

* quadrature rules: sympy orders; each estimator's exact mean (enumeration over sample and
  partner) equals its rule's target; the trapezoid member IS ReinMax at tau = 1; the bias falls
  as the predicted power of the step on chapter 5's family; the one-pass shortcut is exact for
  separable f only; the research code's endpoint-only alpha form does not converge (alpha != 1);
* ReinMax-Rao: two categories by quadrature to 1e-9 against an independent integral; more
  categories by a z-test against an independent sampler (rejection) with explicit C x C
  matrices; its bias does not vanish as f becomes smooth (order 0);
* ReinMax-CV (our reading): eta = 0 is ReinMax; averaging over which draw is the forward's gives
  ReinMax exactly (the control has mean zero given D); z-test of the mean; the stored reading's
  bias is detected; the fused control (GR-MCK's kernel) gives the unfused definition's numbers
  from the same random stream, keeps one copy of the draws and refuses a second derivative;
* ReDGE: t_1 = 1 is ST (ReinDGE: ReinMax) to 1e-12; for t_1 < 1 the forward law's total
  variation distance is positive and shrinks as t_1 -> 1.
"""
import math

import numpy as np
import pytest
import torch

import reinmax
from reinmax.estimators import quadrature as Q
from reinmax.estimators import rao, redge, sampling
from reinmax.estimators.categorical import fused_gumbel_control_at, gumbel_rao_kernel
from reinmax.estimators.registry import get_segment_estimator
from reinmax.theory import beyond, exact
from reinmax.theory import quadrature as TQ
from conftest import random_logits, random_nonlinear_f

EXACT = 1e-12
Z = 5.0          # Monte Carlo: a false alarm has probability below 6e-7 per coordinate


def _rows(logits, count):
    return logits[None].expand((count,) + tuple(logits.shape)).clone().requires_grad_(True)


# ------------------------------------------------------------------- quadrature rules
def test_rule_orders_derived_in_sympy():
    orders = {rule: TQ.rule_order(*Q.RULES[rule])["order"] for rule in Q.RULES}
    assert orders == {"euler": 1, "trapezoid": 2, "midpoint": 2, "ralston": 3, "simpson": 4}
    # The two-stage family (nodes 0, alpha): second order for every alpha, third at 2/3 only.
    for alpha in ("1/2", "3/4", "1", "2"):
        assert TQ.rule_order(*TQ.two_stage_rule(alpha))["order"] == 2
    assert TQ.rule_order(*TQ.two_stage_rule("2/3"))["order"] == 3


def test_trapezoid_member_is_reinmax_sample_by_sample_and_in_expectation():
    logits, f = exact.random_problem((2, 3), torch.Generator().manual_seed(1))
    index = exact.configurations(2, 3)
    rows = _rows(logits, len(index))
    surrogate, _ = Q.segment_rule(rows, lambda X: f(X.reshape(-1, 2, 3)).reshape(X.shape[0], -1),
                                  rule="trapezoid", sample=index, batch_dims=1)
    (ours,) = torch.autograd.grad(surrogate.sum(), rows)
    rows = _rows(logits, len(index))
    y, _ = reinmax.reinmax(rows, 1.0, sample=index)
    (theirs,) = torch.autograd.grad(f(y).sum(), rows)
    assert (ours - theirs).abs().max() < EXACT
    mean, _ = TQ.rule_moments(f, logits, "trapezoid")
    assert (mean - exact.expected_estimate(reinmax.reinmax, f, logits)).abs().max() < EXACT
    assert (mean - exact.second_order_target(f, logits)).abs().max() < EXACT


def _partner_ignored(logits, f, *, partner=None, **kwargs):
    """Broken: the partner is replaced by the sample, so interior nodes contribute nothing."""
    return Q.segment_rule(logits, f, partner=kwargs.get("sample"), **kwargs)


@pytest.mark.parametrize("rule", list(Q.RULES))
def test_each_rule_estimator_has_its_rule_target_as_exact_mean(rule):
    """Two variables, three categories, a non-separable f: enumeration over every sample and
    partner. The broken variant (no partner) misses the target for rules with interior nodes."""
    logits = 1.2 * torch.randn(2, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f = random_nonlinear_f(2, 3, seed=3)
    target = TQ.rule_target(f, logits, rule)
    mean, variance = TQ.rule_moments(f, logits, rule)
    assert (mean - target).abs().max() < EXACT and (variance >= 0).all()
    if rule == "euler":
        assert (target - exact.first_order_target(f, logits)).abs().max() < EXACT
    if Q.interior_nodes(rule):
        broken, _ = TQ.rule_moments(f, logits, rule, estimator=_partner_ignored)
        assert (broken - target).abs().max() > 1e-3


def test_one_pass_shortcut_is_exact_for_separable_f_only():
    logits = 1.2 * torch.randn(2, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    separable = exact.random_smooth_f((2, 3), torch.Generator().manual_seed(5))   # a sum over variables
    for rule in ("midpoint", "simpson"):
        mean, _ = TQ.rule_moments(separable, logits, rule, one_pass=True)
        assert (mean - TQ.rule_target(separable, logits, rule)).abs().max() < EXACT
    coupled = random_nonlinear_f(2, 3, seed=6)
    mean, _ = TQ.rule_moments(coupled, logits, "midpoint", one_pass=True)
    assert (mean - TQ.rule_target(coupled, logits, "midpoint")).abs().max() > 1e-3


@pytest.mark.parametrize("rule,order", [("euler", 1), ("trapezoid", 2), ("midpoint", 2),
                                        ("ralston", 3), ("simpson", 4)])
def test_bias_shrinks_as_the_predicted_power_of_the_step(rule, order):
    """Chapter 5's family f_s(D) = g(s w.D): the exact relative bias of each estimator's mean
    falls as s^order (fitted slopes within 0.1 of the sympy order)."""
    _, biases, slopes = TQ.bias_curve(TQ.rule_mean(rule), n=4, instances=2)
    assert all(abs(slope - order) < 0.1 for slope in slopes), slopes


@pytest.mark.parametrize("alpha", [0.5, 2 / 3, 2.0])
def test_research_endpoint_only_alpha_form_does_not_converge_for_alpha_not_1(alpha):
    """The research code's p_alpha form uses gradients at the one-hot sample only: its mean is
    (2 - 1/alpha) J(pi) g for constant g, so the relative bias tends to |1 - 1/alpha| (fitted
    slope 0; its absolute bias falls as s^1). At alpha = 1 it is ReinMax: slope 2."""
    scales, biases, slopes = TQ.bias_curve(lambda f, l: TQ.research_alpha_mean(f, l, alpha), n=4, instances=2)
    assert np.allclose(biases[:, 0], abs(1 - 1 / alpha), rtol=0.01)
    assert all(abs(slope) < 0.05 for slope in slopes)
    _, _, slopes = TQ.bias_curve(lambda f, l: TQ.research_alpha_mean(f, l, 1.0), n=4, instances=2)
    assert all(abs(slope - 2) < 0.1 for slope in slopes)


def test_segment_estimators_bad_input():
    theta = torch.zeros(3, 4)
    f = lambda X: X[..., 0]          # noqa: E731
    with pytest.raises(ValueError, match=r"rule must be one of 'euler', .*; got rule='rk4'"):
        Q.segment_rule(theta, f, rule="rk4")
    with pytest.raises(TypeError, match=r"one_pass must be True or False; got one_pass=1"):
        Q.segment_rule(theta, f, one_pass=1)
    with pytest.raises(ValueError, match=r"f must return one value per point and sample, shape \(2, 3\)"):
        Q.segment_rule(theta, lambda X: X.sum())
    with pytest.raises(ValueError, match=r"allowed 0..3, got min 0, max 4"):
        Q.segment_rule(theta, f, partner=torch.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"Segment-Midpoint fixes rule='midpoint'"):
        get_segment_estimator("Segment-Midpoint", rule="simpson")
    surrogate, values = get_segment_estimator("Segment-Simpson")(theta, f, generator=torch.Generator().manual_seed(0))
    assert surrogate.shape == values.shape == (3,)


def test_segment_estimators_several_variables_per_sample_and_dim():
    """batch_dims=1 with the categories on dim 1: the same estimate as categories last."""
    logits = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    W = torch.randn(12, 12, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    sample = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(9))
    partner = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(10))

    def run(theta, dim):
        leaf = theta.clone().requires_grad_(True)
        f = lambda X: torch.sin((X.movedim(dim + 1, -1).reshape(X.shape[0], 5, 12) @ W).pow(2).sum(-1))  # noqa: E731
        surrogate, _ = Q.segment_rule(leaf, f, rule="ralston", dim=dim, sample=sample,
                                      partner=partner, batch_dims=1)
        return torch.autograd.grad(surrogate.sum(), leaf)[0]
    last = run(logits, 2)
    assert (run(logits.movedim(-1, 1), 1).movedim(1, -1) - last).abs().max() < EXACT


# ------------------------------------------------------------------------ ReinMax-Rao
_GL_X, _GL_W = np.polynomial.legendre.leggauss(40)
_PANELS = np.linspace(-80.0, 0.0, 321)


def _independent_weight(mu, tau, shift=0.0):
    """E[sigma(S/tau) sigma(-S/tau) | Delta < 0], S = Delta + shift, Delta = mu + logistic, by
    composite 40-node Gauss-Legendre in Delta on 320 panels of [-80, 0] (the truncated logistic
    density written out): independent of the package's tanh-sinh rule in the CDF variable."""
    lo, hi = _PANELS[:-1, None], _PANELS[1:, None]
    delta = (0.5 * (_GL_X + 1) * (hi - lo) + lo).ravel()
    w = (0.5 * (hi - lo) * _GL_W).ravel()
    sig = lambda z: 1 / (1 + np.exp(-z))                      # noqa: E731
    density = sig(delta - mu) * sig(-(delta - mu)) / sig(-mu)
    s = delta + shift
    return float(np.sum(w * density * sig(s / tau) * sig(-s / tau)))


def _rao_mean_by_formula(f, theta, tau, weight_of):
    """E_D[2 M(D) g(D) - 1/2 J(pi) g(D)], two categories, one variable."""
    pi = torch.softmax(theta, -1)
    J = torch.diag(pi) - torch.outer(pi, pi)
    mean = torch.zeros(2, dtype=theta.dtype)
    for d in (0, 1):
        D = torch.eye(2, dtype=theta.dtype)[d].requires_grad_(True)
        (g,) = torch.autograd.grad(f(D[None]).sum(), D)
        pivot = torch.log((pi + D.detach()) / 2)
        c = weight_of(float(pivot[1 - d] - pivot[d]), tau) / tau
        M = c * torch.tensor([[1.0, -1.0], [-1.0, 1.0]], dtype=theta.dtype)
        mean += pi[d] * (2 * M @ g - 0.5 * J @ g)
    return mean


@pytest.mark.parametrize("tau", [0.3, 1.0, 2.0])
def test_rao_two_categories_by_quadrature(tau):
    theta = torch.tensor([0.6, -0.9], dtype=torch.float64)
    for mu in (-3.0, -0.4, 0.0, 1.7, 6.0):
        ours = float(rao.two_category_rao_weight(torch.tensor(mu, dtype=torch.float64), tau))
        assert abs(ours - _independent_weight(mu, tau)) < 1e-9, mu
    f = random_nonlinear_f(1, 2, seed=11)
    f1 = lambda D: f(D.reshape(-1, 2))                    # noqa: E731
    mean = beyond.rao_mean(f1, theta, tau)
    assert (mean - _rao_mean_by_formula(f1, theta, tau, _independent_weight)).abs().max() < 1e-9
    # Broken: pivot at theta instead of log((pi + D)/2) gives another mean.
    broken = _rao_mean_by_formula(f1, theta, tau, lambda mu, t: _independent_weight(mu + 0.5, t))
    assert (broken - mean).abs().max() > 1e-3


@pytest.mark.parametrize("broken", [False, True], ids=["ours", "broken"])
def test_rao_quadrature_once_per_distinct_row(broken, monkeypatch):
    """A parameter broadcast over a batch (stride 0, as in polynomial programming) is computed once
    per distinct row and picked per sample: the same gradient as the contiguous copy (every row
    computed for itself), to 1e-12. Broken: the table's lookup swaps the two samples' weights."""
    gen = torch.Generator().manual_seed(21)
    rows = 2.0 * torch.randn(3, 1, 5, 2, generator=gen, dtype=torch.float64)
    sample = torch.randint(0, 2, (3, 7, 5), generator=gen)
    g = torch.randn(3, 7, 5, 2, generator=gen, dtype=torch.float64)

    def grad(logits):
        leaf = logits.detach().requires_grad_(True)
        y, _ = rao.reinmax_rao(leaf, 0.7, sample=sample, R="quadrature")
        return torch.autograd.grad((g * y).sum(), leaf)[0]
    contiguous = grad(rows.expand(3, 7, 5, 2).contiguous()).sum(1)
    if broken:
        monkeypatch.setattr(rao, "_per_sample",
                            lambda index, first, second: torch.where(index == 0, second, first))
    broadcast = grad(rows.expand(3, 7, 5, 2)).sum(1)
    assert ((broadcast - contiguous).abs().max() < EXACT) != broken


def _rao_reference_mean(f, theta, tau, draws, generator):
    """E_D[2 M(D) g - 1/2 J(pi) g] with M(D) by rejection: unconditional Gumbel draws at theta'
    kept where argmax(theta' + G) = D, then explicit C x C Jacobians. Returns mean and stderr."""
    n = theta.shape[0]
    pi = torch.softmax(theta, -1)
    J = torch.diag(pi) - torch.outer(pi, pi)
    mean = torch.zeros(n, dtype=theta.dtype)
    var = torch.zeros(n, dtype=theta.dtype)
    for d in range(n):
        D = torch.eye(n, dtype=theta.dtype)[d].requires_grad_(True)
        (g,) = torch.autograd.grad(f(D[None]).sum(), D)
        pivot = torch.log((pi + D.detach()) / 2)
        G = -torch.log(torch.empty(draws, n, dtype=theta.dtype).exponential_(generator=generator))
        keep = (pivot + G).argmax(-1) == d
        q = torch.softmax((pivot + G[keep]) / tau, -1)
        jac = (torch.diag_embed(q) - q[:, :, None] * q[:, None, :]) / tau        # C x C per draw
        per_draw = 2 * jac @ g
        mean += pi[d] * (per_draw.mean(0) - 0.5 * J @ g)
        var += pi[d] ** 2 * per_draw.var(0) / keep.sum()
    return mean, var.sqrt()


@pytest.mark.slow
def test_rao_mean_with_more_categories_is_the_stated_formula():
    theta = torch.tensor([0.8, -0.4, 0.1], dtype=torch.float64)
    f = random_nonlinear_f(1, 3, seed=12)
    f1 = lambda D: f(D.reshape(-1, 3))                    # noqa: E731
    tau = 0.7
    reference, ref_se = _rao_reference_mean(f1, theta, tau, 400_000, torch.Generator().manual_seed(0))
    mean, se = exact.monte_carlo_estimate(reinmax.get_estimator("ReinMax-Rao", R=16), f1, theta, tau,
                                          samples=40_000, generator=torch.Generator().manual_seed(1))
    assert ((mean - reference).abs() < Z * torch.sqrt(se ** 2 + ref_se ** 2)).all(), (mean, reference)
    # Not ReinMax's mean:
    reinmax_mean = exact.expected_estimate(reinmax.reinmax, f1, theta, tau)
    assert ((mean - reinmax_mean).abs() > Z * se).any()


def test_rao_bias_does_not_vanish_as_f_becomes_smooth():
    """Order 0: on chapter 5's family (two categories, exact) ReinMax-Rao's relative bias
    levels off instead of falling (ReinMax's falls as s^2)."""
    for tau in (1.0, 0.5):
        _, biases, slopes = TQ.bias_curve(lambda f, l: beyond.rao_mean(f, l, tau), n=2, instances=2)
        # levels off (measured: 0.017 to 0.30 at s = 10^-2.5, slopes -0.0 to 0.16), far from
        # the slopes 1 (ST) and 2 (ReinMax) of an estimator whose bias vanishes
        assert all(abs(s) < 0.5 for s in slopes) and (biases[:, 0] > 0.01).all(), (tau, slopes, biases)
    _, _, slopes = TQ.bias_curve(lambda f, l: exact.expected_estimate(reinmax.reinmax, f, l), n=2, instances=2)
    assert all(abs(s - 2) < 0.1 for s in slopes)


def test_rao_bad_input():
    with pytest.raises(ValueError, match=r"R must be a positive integer or 'quadrature'; got R=0"):
        rao.reinmax_rao(torch.zeros(2, 3), R=0)
    with pytest.raises(ValueError, match=r"R='quadrature' needs two categories; got 3"):
        rao.reinmax_rao(torch.zeros(2, 3), R="quadrature")


# ------------------------------------------------------------------------ ReinMax-CV
def _cv_grad(estimator, theta, sample, g, **kwargs):
    leaf = theta.clone().requires_grad_(True)
    y, _ = estimator(leaf, 1.3, sample=sample, **kwargs)
    return torch.autograd.grad((g * y).sum(), leaf)[0]


def _cv_broken(logits, tau, *, sample, exponentials, eta, tau2, R):
    """Broken: draws 1..R conditioned at theta' (the stored code's law) while draw 0 is at theta."""
    index = sample
    D = torch.nn.functional.one_hot(index, logits.shape[-1]).to(logits.dtype)
    y, _ = reinmax.reinmax(logits, tau, sample=index)
    pivot_value = rao.rao_pivot(logits, D)
    first = rao.conditional_gumbels(logits.detach(), index, exponentials[:1])
    rest = rao.conditional_gumbels(pivot_value, index, exponentials[1:])
    pivot = pivot_value + (logits - logits.detach())
    q = torch.softmax((pivot + torch.cat([first, rest])) / tau2, -1)
    control = q[0] - q[1:].mean(0)
    return y - eta * (control - control.detach()), None


def _cv_problem(seed, rows, categories, R):
    """Logits, a sample, an upstream gradient and R + 1 Exp(1) draws per variable (float64)."""
    gen = torch.Generator().manual_seed(seed)
    theta = 1.5 * torch.randn(rows, categories, generator=gen, dtype=torch.float64)
    sample = torch.randint(0, categories, (rows,), generator=gen)
    g = torch.randn(rows, categories, generator=gen, dtype=torch.float64)
    e = torch.empty(R + 1, rows, categories, dtype=torch.float64).exponential_(generator=gen)
    return theta, sample, g, e


@pytest.mark.parametrize("estimator", [rao.reinmax_cv, _cv_broken], ids=["ours", "broken"])
def test_cv_control_has_mean_zero_given_the_sample(estimator):
    """Averaging over which of the R + 1 exchangeable draws plays the forward's part cancels the
    control exactly, so E[ReinMax-CV | D] = ReinMax(D): exact to 1e-12 for our reading; the
    broken variant (two laws) fails."""
    R = 5
    theta, sample, g, e = _cv_problem(13, 6, 4, R)
    rolled = sum(_cv_grad(estimator, theta, sample, g, exponentials=e.roll(k, 0), eta=0.8, tau2=0.5, R=R)
                 for k in range(R + 1)) / (R + 1)
    plain = _cv_grad(reinmax.reinmax, theta, sample, g)
    assert ((rolled - plain).abs().max() < EXACT) == (estimator is rao.reinmax_cv)
    assert (_cv_grad(rao.reinmax_cv, theta, sample, g, eta=0.0) - plain).abs().max() < EXACT


def test_cv_mean_is_reinmax_and_the_stored_reading_is_biased():
    theta = torch.tensor([0.8, -0.4, 0.1], dtype=torch.float64)
    f = random_nonlinear_f(1, 3, seed=14)
    f1 = lambda D: f(D.reshape(-1, 3))                    # noqa: E731
    target = exact.expected_estimate(reinmax.reinmax, f1, theta, 1.0)
    mean, se = exact.monte_carlo_estimate(reinmax.get_estimator("ReinMax-CV", eta=1.0, tau2=0.5, R=8),
                                          f1, theta, 1.0, samples=20_000,
                                          generator=torch.Generator().manual_seed(2))
    assert ((mean - target).abs() < Z * se).all(), (mean, target, se)
    stored = beyond.cv_stored_bias(f1, theta, tau2=0.5, eta=1.0, R=8, samples=20_000)
    assert stored["z"] > Z and stored["relative"] > 0.01, stored


def _cv_reference(logits, tau=1.0, *, dim=-1, sample=None, generator=None, eta=0.5, tau2=1.0,
                  R=100, exponentials=None):
    """ReinMax-CV as written before it was fused (commit 59a8e40, reinmax/estimators/rao.py):
    the R + 1 softmaxes q_k = softmax((theta' + G_k)/tau2) built in autograd, the control
    q_0 - mean q_r passed as (control - control.detach()). The reference for the fused form."""
    theta = logits.movedim(dim, -1)
    with torch.no_grad():
        probs = torch.softmax(theta, -1)
        index, _ = sampling.draw_index_unchecked(probs, theta, sample, generator)
        if exponentials is None:
            e = sampling.exponential((R + 1,) + tuple(theta.shape), theta, generator)
        else:
            e = exponentials.movedim(dim + 1, -1).to(sampling.working_dtype(theta))
    y, soft = reinmax.reinmax(theta, tau, sample=index)
    if eta != 0.0:
        with torch.no_grad():
            noise = rao.conditional_gumbels(theta.detach().to(e.dtype), index, e).to(theta.dtype)
        shift = torch.where(torch.isneginf(theta), torch.zeros_like(theta), theta)
        pivot = rao.rao_pivot(theta, sampling.one_hot(index, theta)).to(theta.dtype)
        q = torch.softmax((pivot + (shift - shift.detach()) + noise) / tau2, -1)
        control = q[0] - q[1:].mean(0)
        y = y - eta * (control - control.detach())
    return y.movedim(-1, dim), soft.movedim(-1, dim)


def _cv_untilted(*args, **kwargs):
    """Broken: the fused control without its tilt, i.e. evaluated at theta instead of theta'."""
    return fused_gumbel_control_at(*args, **dict(kwargs, tilt=None))


CV_CASES = [  # (shape, dim, R, tau, tau2, dtype, how the randomness is given)
    ((7, 5), -1, 20, 1.0, 1.0, torch.float64, "generator"),   # tau2 = 1: the reciprocal branch
    ((3, 4, 6), -1, 9, 1.3, 0.5, torch.float64, "sample"),
    ((6, 3, 4), 1, 12, 0.8, 2.0, torch.float64, "exponentials"),  # categories not last
    ((9, 2), -1, 30, 1.0, 1.0, torch.float64, "generator"),   # two categories (polynomial)
    ((4, 3), 0, 200, 1.0, 0.7, torch.float64, "generator"),   # many blocks of draws
    ((40, 8), -1, 16, 1.0, 1.0, torch.float32, "generator"),
]


def _cv_run(estimator, theta, g, dim, R, tau, tau2, how):
    gen = torch.Generator().manual_seed(31)
    n = theta.shape[dim]
    kwargs = dict(dim=dim, eta=0.7, tau2=tau2, R=R)
    if how == "sample":
        kwargs["sample"] = torch.randint(0, n, theta.movedim(dim, -1).shape[:-1], generator=gen)
    if how == "exponentials":
        kwargs["exponentials"] = torch.empty((R + 1,) + tuple(theta.shape),
                                             dtype=theta.dtype).exponential_(generator=gen)
    leaf = theta.clone().requires_grad_(True)
    y, soft = estimator(leaf, tau, generator=gen, **kwargs)
    (grad,) = torch.autograd.grad((g * y).sum() + (g.flip(dim) * soft).sum(), leaf)
    return y.detach(), grad


@pytest.mark.parametrize("broken", [False, True], ids=["fused", "untilted"])
@pytest.mark.parametrize("shape, dim, R, tau, tau2, dtype, how", CV_CASES)
def test_fused_cv_equals_the_unfused_definition(monkeypatch, shape, dim, R, tau, tau2, dtype, how,
                                                broken):
    """The fused control draws the same numbers from the same generator (or uses the given
    exponentials) and gives the definition's gradient to rounding: 1e-12 in float64, 1e-5
    relative in float32; masked categories get 0. The package's unfused path (taken under
    torch.func, forward mode and compile) equals the reference exactly. The untilted variant
    (noise right, pivot wrong) fails."""
    monkeypatch.setitem(reinmax.estimators.GUMBEL_RAO_KERNEL, "block", 64)   # several blocks
    if broken:
        monkeypatch.setattr(rao, "fused_gumbel_control_at", _cv_untilted)
    theta = (2 * random_logits(shape, seed=32)).to(dtype)
    if shape[dim] > 2 and how != "sample":          # a masked category in every other row
        theta.movedim(dim, -1)[::2, ..., 1] = -math.inf
    g = random_logits(shape, seed=33).to(dtype)
    y_ref, grad_ref = _cv_run(_cv_reference, theta, g, dim, R, tau, tau2, how)
    y, grad = _cv_run(rao.reinmax_cv, theta, g, dim, R, tau, tau2, how)
    assert torch.equal(y, y_ref)                                  # the same sample
    tolerance = EXACT if dtype == torch.float64 else 1e-5 * grad_ref.abs().max().item()
    assert ((grad - grad_ref).abs().max() < tolerance) != broken
    assert (grad[torch.isneginf(theta)] == 0).all()
    with gumbel_rao_kernel(fused=False):
        y_unfused, grad_unfused = _cv_run(rao.reinmax_cv, theta, g, dim, R, tau, tau2, how)
    assert torch.equal(y_unfused, y_ref) and torch.equal(grad_unfused, grad_ref)


def test_fused_cv_keeps_one_copy_of_the_draws_and_is_twice_differentiable():
    """The fused control saves the R + 1 relaxations ((R + 1) * numel numbers) and nothing else
    that size, and leaves them unchanged (a retained graph gives the same gradient twice). Its
    first derivative taken with create_graph=True is the ordinary one, and the second
    derivative through it is the unfused definition's (same noise), to 1e-10."""
    theta = random_logits((10, 3, 6), seed=34).requires_grad_(True)
    g, v = random_logits((10, 3, 6), seed=35), random_logits((10, 3, 6), seed=36)
    R = 40
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y, _ = rao.reinmax_cv(theta, 1.2, R=R, tau2=0.6, generator=torch.Generator().manual_seed(0))
    assert [n for n in saved if n > theta.numel()] == [(R + 1) * theta.numel()], saved
    (first,) = torch.autograd.grad((g * y).sum(), theta, retain_graph=True)
    (again,) = torch.autograd.grad((g * y).sum(), theta, retain_graph=True)
    (graph,) = torch.autograd.grad((g * y).sum(), theta, create_graph=True)
    assert torch.equal(first, again) and (graph.detach() - first).abs().max() < EXACT
    (second,) = torch.autograd.grad((v * graph).sum(), theta)
    y_ref, _ = _cv_reference(theta, 1.2, R=R, tau2=0.6, generator=torch.Generator().manual_seed(0))
    (graph_ref,) = torch.autograd.grad((g * y_ref).sum(), theta, create_graph=True)
    (second_ref,) = torch.autograd.grad((v * graph_ref).sum(), theta)
    assert (second - second_ref).abs().max() < 1e-10 and second.abs().max() > 1e-3


@pytest.mark.parametrize("shift", [0.0, -0.3, -2.5])
def test_shifted_weight_by_an_independent_integral(shift):
    """ReinMax-CV's averaged term at R -> inf (two categories): drawn at theta, evaluated at
    theta' (a shift), by the package's tanh-sinh rule against Gauss-Legendre, to 1e-9."""
    for tau2 in (0.5, 1.0):
        for mu in (-3.0, -0.4, 0.0, 1.7, 6.0):
            ours = float(rao.two_category_rao_weight(torch.tensor(mu, dtype=torch.float64), tau2,
                                                     torch.tensor(shift, dtype=torch.float64)))
            assert abs(ours - _independent_weight(mu, tau2, shift)) < 1e-9, (mu, tau2)


def _cv_quadrature_broken(logits, tau, *, sample, exponentials, eta, tau2, R):
    """Broken: the averaged term's conditional mean taken under the stored code's law (Gumbel
    at theta' given D, i.e. ReinMax-Rao's weight) while the single term is drawn at theta."""
    y, _ = rao.reinmax_cv(logits, tau, sample=sample, exponentials=exponentials, eta=eta,
                          tau2=tau2, R=R)
    with torch.no_grad():
        pi = torch.softmax(logits.detach(), -1)
        first = sample == 0
        pi_d, pi_o = torch.where(first, pi[..., 0], pi[..., 1]), torch.where(first, pi[..., 1], pi[..., 0])
        ours = torch.where(first, rao.two_category_rao_weight(logits[..., 1] - logits[..., 0], tau2,
                                                              (pi[..., 0] / (1 + pi[..., 0])).log()),
                           rao.two_category_rao_weight(logits[..., 0] - logits[..., 1], tau2,
                                                       (pi[..., 1] / (1 + pi[..., 1])).log()))
        stored = rao.two_category_rao_weight(pi_o.log() - torch.log1p(pi_d), tau2)
    return y + rao._two_category_surrogate(logits, (-eta / tau2) * (ours - stored)), None


@pytest.mark.parametrize("estimator", [rao.reinmax_cv, _cv_quadrature_broken], ids=["ours", "broken"])
def test_cv_quadrature_has_reinmax_mean_given_the_sample(estimator):
    """R = 'quadrature': given D the control's mean is zero, so E[ReinMax-CV | D] = ReinMax(D):
    a z-test over 200,000 forward draws per variable (|z| < 5 on every coordinate); the broken
    variant (the stored code's law for the averaged term) is detected."""
    gen = torch.Generator().manual_seed(22)
    theta = 1.5 * torch.randn(4, 2, generator=gen, dtype=torch.float64)
    sample = torch.tensor([0, 1, 1, 0])
    g = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    n = 200_000
    rows = theta[None].expand(n, 4, 2).clone().requires_grad_(True)
    e = torch.empty(1, n, 4, 2, dtype=torch.float64).exponential_(generator=gen)
    y, _ = estimator(rows, 1.3, sample=sample.expand(n, 4), exponentials=e, eta=0.8, tau2=0.5,
                     R="quadrature")
    (grads,) = torch.autograd.grad((g * y).sum(), rows)
    plain = _cv_grad(reinmax.reinmax, theta, sample, g)
    z = (grads.mean(0) - plain).abs() / (grads.std(0) / math.sqrt(n))
    assert (z.max() < Z) == (estimator is rao.reinmax_cv), z


def test_cv_quadrature_is_the_limit_of_many_draws():
    """The same forward draw, R = 20,000 further draws against R = 'quadrature': they agree within
    five standard errors of the R-draw average."""
    R = 20_000
    theta, sample, g, e = _cv_problem(23, 5, 2, R)
    many = _cv_grad(rao.reinmax_cv, theta, sample, g, exponentials=e, eta=0.8, tau2=0.5, R=R)
    limit = _cv_grad(rao.reinmax_cv, theta, sample, g, exponentials=e[:1], eta=0.8, tau2=0.5,
                     R="quadrature")
    # the averaged term's standard error: the single term's spread over the draws / sqrt(R)
    spread = torch.stack([_cv_grad(rao.reinmax_cv, theta, sample, g, exponentials=e[k:k + 1], eta=0.8,
                                   tau2=0.5, R="quadrature") for k in range(1, 201)]).std(0)
    assert ((many - limit).abs() < Z * spread / math.sqrt(R) + 1e-12).all(), (many - limit, spread)


def test_cv_bad_input():
    with pytest.raises(ValueError, match=r"eta must be a finite number; got eta=nan"):
        rao.reinmax_cv(torch.zeros(2, 3), eta=float("nan"))
    with pytest.raises(ValueError, match=r"tau2 must be a positive finite number; got tau2=0"):
        rao.reinmax_cv(torch.zeros(2, 3), tau2=0)
    with pytest.raises(ValueError, match=r"exponentials must be Exp\(1\) draws of shape"):
        rao.reinmax_cv(torch.zeros(2, 3), R=2, exponentials=torch.ones(2, 2, 3))
    with pytest.raises(ValueError, match=r"R must be a positive integer or 'quadrature'; got R=0"):
        rao.reinmax_cv(torch.zeros(2, 3), R=0)
    with pytest.raises(ValueError, match=r"R='quadrature' needs two categories; got 3"):
        rao.reinmax_cv(torch.zeros(2, 3), R="quadrature")
    with pytest.raises(ValueError, match=r"exponentials must be Exp\(1\) draws of shape \(1, \*logits.shape\)"):
        rao.reinmax_cv(torch.zeros(2, 2), R="quadrature", exponentials=torch.ones(3, 2, 2))


# ------------------------------------------------------------------------------ ReDGE
@pytest.mark.parametrize("tau", [1.0, 1.3])
def test_redge_at_t1_one_is_st_and_reindge_is_reinmax(tau):
    logits, f = exact.random_problem((2, 3), torch.Generator().manual_seed(15))
    start = torch.randn(9, 2, 3, generator=torch.Generator().manual_seed(16), dtype=torch.float64)
    for ours, theirs in ((redge.redge, reinmax.st), (redge.reindge, reinmax.reinmax)):
        def fixed_start(logits, tau, sample=None, t_1=1.0):   # no noise once the start is fixed
            return ours(logits, tau, sample=sample, start=start, t_1=t_1)
        _, a = exact.per_sample_estimates(fixed_start, f, logits, tau, draws_noise=False)
        _, b = exact.per_sample_estimates(theirs, f, logits, tau)
        assert (a - b).abs().max() < EXACT
        # the same check fails below t_1 = 1: the sampler moves the last logits
        _, broken = exact.per_sample_estimates(fixed_start, f, logits, tau, draws_noise=False, t_1=0.9)
        assert (broken - b).abs().max() > 1e-3


def test_redge_forward_law_is_biased_below_t1_one():
    theta = torch.tensor([0.8, -0.4, 0.1, -1.0], dtype=torch.float64)
    assert beyond.redge_forward_tv(theta, 3, 1.0)["tv"] < 1e-12
    far = beyond.redge_forward_tv(theta, 3, 0.3, draws=40_000)
    near = beyond.redge_forward_tv(theta, 3, 0.9, draws=40_000)
    assert far["tv"] > Z * far["stderr"] and far["tv"] > near["tv"]
    f = random_nonlinear_f(1, 4, seed=16)
    f1 = lambda D: f(D.reshape(-1, 4))                    # noqa: E731
    st_bias = float((exact.expected_estimate(reinmax.st, f1, theta) - exact.exact_gradient(f1, theta)).norm()
                    / exact.exact_gradient(f1, theta).norm())
    assert abs(beyond.redge_gradient_bias(f1, theta, 3, 1.0, draws=50)["relative"] - st_bias) < 1e-12


def _redge_logits_reference(theta, start, n_steps, t_1):
    """redge_logits with torch's row softmax (the two-category path's reference)."""
    alphas = redge.redge_schedule(n_steps, t_1)
    x = start
    for t in range(n_steps - 1, 1, -1):
        a_t, s_t, a_prev, s_prev = alphas[t], 1 - alphas[t], alphas[t - 1], 1 - alphas[t - 1]
        xhat0 = torch.softmax(theta + (a_t / s_t ** 2) * x, -1)
        x = a_prev * xhat0 + s_prev * (x - a_t * xhat0) / s_t
    return theta + (alphas[1] / (1 - alphas[1]) ** 2) * x


@pytest.mark.parametrize("broken", [False, True], ids=["ours", "broken"])
def test_redge_two_category_softmax_is_the_row_softmax(broken, monkeypatch):
    """Two categories take (sigmoid(-d), sigmoid(d)) for the sampler's softmax: the same
    denoiser logits and gradient as torch's row softmax, to 1e-12 in float64 (a swapped pair fails)."""
    gen = torch.Generator().manual_seed(31)
    theta = 2.0 * torch.randn(6, 2, generator=gen, dtype=torch.float64)
    start = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    g = torch.randn(6, 2, generator=gen, dtype=torch.float64)
    if broken:
        monkeypatch.setattr(redge, "_softmax", lambda x: torch.softmax(x, -1).flip(-1))
    for n_steps in (3, 5):
        ours = theta.clone().requires_grad_(True)
        reference = theta.clone().requires_grad_(True)
        lam = redge.redge_logits(ours, start, n_steps, 0.5)
        lam_ref = _redge_logits_reference(reference, start, n_steps, 0.5)
        (d_ours,) = torch.autograd.grad((g * lam).sum(), ours)
        (d_ref,) = torch.autograd.grad((g * lam_ref).sum(), reference)
        close = (lam - lam_ref).abs().max() < EXACT and (d_ours - d_ref).abs().max() < EXACT
        assert close != broken


def test_redge_bad_input():
    with pytest.raises(ValueError, match=r"t_1 must be a number in \(0, 1\]"):
        redge.redge(torch.zeros(2, 3), t_1=0.0)
    with pytest.raises(ValueError, match=r"n_steps must be an integer >= 2"):
        redge.redge(torch.zeros(2, 3), n_steps=1)
    with pytest.raises(ValueError, match=r"start must be a tensor of the logits' shape \(2, 3\)"):
        redge.redge(torch.zeros(2, 3), start=torch.zeros(3))


def test_redge_package_agrees_when_installed():
    """Optional cross-check with the authors' package (never a dependency): the forward law of
    their sampler and ours agree within Monte Carlo error."""
    package = pytest.importorskip("redge")
    theta = torch.tensor([0.8, -0.4, 0.1, -1.0])
    torch.manual_seed(0)
    y = package.redge(theta.expand(40_000, 4), n_steps=3, t_1=0.3, hard=True)
    y = y[0] if isinstance(y, tuple) else y
    law = y.detach().double().mean(0)
    start = torch.randn(40_000, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = torch.softmax(redge.redge_logits(theta.double().expand(40_000, 4), start, 3, 0.3), -1).mean(0)
    assert ((law - ours).abs() < Z * math.sqrt(0.25 / 40_000) * 2).all()


def test_rule_targets_share_nodes_and_chunks_without_changing_any_target():
    """rule_targets (corner gradients reused for the end nodes, interior nodes in chunks) gives
    each rule's exact mean: three variables, a non-separable f, an odd chunk size."""
    logits = torch.randn(3, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    f = random_nonlinear_f(3, 3, seed=9)
    targets = TQ.rule_targets(f, logits, list(Q.RULES), chunk=7)
    for rule, target in targets.items():
        mean, _ = TQ.rule_moments(f, logits, rule)
        assert (mean - target).abs().max() < EXACT, rule


def test_monte_carlo_moments_agree_with_enumeration():
    """bias.monte_carlo_moments on ReinMax (no noise beyond the sample, so enumeration is exact):
    the mean within Z standard errors, the variance within 10% (20,000 draws)."""
    from reinmax.theory import bias
    logits = torch.randn(2, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    f = random_nonlinear_f(2, 3, seed=11)
    mean, variance = bias.exact_moments(reinmax.reinmax, f, logits)
    mc_mean, mc_variance = bias.monte_carlo_moments(reinmax.reinmax, f, logits, samples=20000, chunk=3000,
                                                    generator=torch.Generator().manual_seed(12))
    assert ((mc_mean - mean).abs() <= Z * (variance / 20000).sqrt() + 1e-12).all()
    assert torch.allclose(mc_variance, variance, rtol=0.1, atol=1e-12)
