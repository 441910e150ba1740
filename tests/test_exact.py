"""The paper's theorems, exactly: enumerate every sample, weight by its probability, compare.

Theorem 3.1 (E[ST] = first-order target), Theorem 3.2 (E[ReinMax] = second-order target),
Remark 4.1 (E[phi_D / pi_D * ST] = first-order target with baseline phi), Remark 4.2 (the
second-order target without baseline is the same vector), and unbiasedness of REINFORCE and
RLOO, all in float64 at tau = 1 through the public estimator functions (``sample=``). The
targets in ``reinmax.theory.exact`` are themselves checked against the definitions written out as
plain double sums, and the true gradient against autograd through softmax and finite
differences, so that no test compares the package only with itself.
"""
import functools
import itertools

import pytest
import torch

import reinmax
from reinmax import exact
from conftest import random_logits, random_nonlinear_f, random_quadratic_f

EXACT = 1e-10          # float64 agreement required of identities that hold exactly
CASES = [(m, n) for n in (2, 3, 5, 8) for m in (1,)] + [(2, 3), (3, 2), (2, 5), (3, 3)]


def _case(m, n, seed):
    shape = (n,) if m == 1 else (m, n)
    return random_logits(shape, seed, scale=1.5), random_nonlinear_f(m, n, seed + 100)


def max_error(a, b):
    return (a - b).abs().max().item()


# ---------------------------------------------------------------- definitions, written out
def definitions_by_double_sum(f, theta):
    """eq. 2 / Def. 3.1 / Def. 3.2 for one variable, as the paper prints them: double sums over
    i, j with d pi_i / d theta = pi_i (I_i - pi). Independent of reinmax.theory.exact's vectorisation."""
    n = theta.shape[0]
    pi = torch.softmax(theta, -1)
    eye = torch.eye(n, dtype=theta.dtype)
    vertices = eye.clone().requires_grad_(True)
    values = f(vertices)
    (g,) = torch.autograd.grad(values.sum(), vertices)       # g[j] = df/dD at I_j
    values = values.detach()
    true = torch.zeros(n, dtype=theta.dtype)
    first = torch.zeros(n, dtype=theta.dtype)
    second = torch.zeros(n, dtype=theta.dtype)
    for i in range(n):
        dpi_i = pi[i] * (eye[i] - pi)
        true += values[i] * dpi_i                                                  # eq. 2
        for j in range(n):
            first += pi[j] * (g[j] @ (eye[i] - eye[j])) * dpi_i                    # Def. 3.1
            second += pi[j] / 2 * ((g[j] + g[i]) @ (eye[i] - eye[j])) * dpi_i      # Def. 3.2
    return true, first, second


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_targets_match_the_definitions_written_as_double_sums(n):
    theta, f = _case(1, n, seed=n)
    true, first, second = definitions_by_double_sum(f, theta)
    assert max_error(exact.exact_gradient(f, theta), true) < EXACT
    assert max_error(exact.first_order_target(f, theta), first) < EXACT
    assert max_error(exact.second_order_target(f, theta), second) < EXACT


def expected_loss_by_autograd(f, theta):
    """E[f(D)] = sum_c prod_v softmax(theta_v)[c_v] f(c), differentiable in theta."""
    m, n = theta.reshape(-1, theta.shape[-1]).shape
    probs = torch.softmax(theta.reshape(m, n), -1)
    configs = torch.tensor(list(itertools.product(range(n), repeat=m)))
    weights = probs[torch.arange(m), configs].prod(-1)
    onehots = torch.nn.functional.one_hot(configs, n).to(theta.dtype).reshape((-1,) + theta.shape)
    return (weights * f(onehots)).sum()


@pytest.mark.parametrize("m,n", CASES)
def test_exact_gradient_equals_autograd_through_softmax(m, n):
    theta, f = _case(m, n, seed=7 * m + n)
    leaf = theta.clone().requires_grad_(True)
    (reference,) = torch.autograd.grad(expected_loss_by_autograd(f, leaf), leaf)
    assert max_error(exact.exact_gradient(f, theta), reference) < EXACT
    assert abs(exact.expected_loss(f, theta).item()
               - expected_loss_by_autograd(f, theta).item()) < EXACT


def test_exact_gradient_equals_central_finite_differences():
    theta, f = _case(2, 3, seed=11)
    step = 1e-6
    numeric = torch.zeros_like(theta)
    for k in itertools.product(*map(range, theta.shape)):
        bump = torch.zeros_like(theta)
        bump[k] = step
        numeric[k] = (exact.expected_loss(f, theta + bump)
                      - exact.expected_loss(f, theta - bump)) / (2 * step)
    assert max_error(exact.exact_gradient(f, theta), numeric) < 1e-7


# ------------------------------------------------------------------------- Theorems 3.1, 3.2
@pytest.mark.parametrize("m,n", CASES)
def test_theorem_3_1_expected_st_is_the_first_order_target(m, n):
    theta, f = _case(m, n, seed=13 * m + n)
    expected = exact.expected_estimate(reinmax.st, f, theta)
    assert max_error(expected, exact.first_order_target(f, theta)) < EXACT


@pytest.mark.parametrize("m,n", CASES)
def test_theorem_3_2_expected_reinmax_is_the_second_order_target(m, n):
    theta, f = _case(m, n, seed=17 * m + n)
    expected = exact.expected_estimate(reinmax.reinmax, f, theta)
    assert max_error(expected, exact.second_order_target(f, theta)) < EXACT


def reinmax_without_st_term(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None):
    """A deliberately wrong ReinMax: 2 * grad at (pi + D)/2 but without the -1/2 ST term."""
    y_hard, y_soft = reinmax.st(logits, tau, sample=sample, generator=generator)
    midpoint = (0.5 * (y_hard.detach() + torch.softmax(logits, -1))).log()
    # Gradient of softmax at the midpoint, as Algorithm 2 line 4 writes it, times 2.
    surrogate = 2 * torch.softmax((midpoint - logits).detach() + logits, -1)
    return y_hard.detach() + surrogate - surrogate.detach(), y_soft


@pytest.mark.parametrize("n", [3, 5])
def test_a_wrong_estimator_fails_the_theorem_test(n):
    """The exactness test has teeth: a plausible but wrong ReinMax, and ST compared with the
    second-order target, miss by far more than the tolerance."""
    theta, f = _case(1, n, seed=19 + n)
    target = exact.second_order_target(f, theta)
    assert max_error(exact.expected_estimate(reinmax_without_st_term, f, theta), target) > 1e-2
    assert max_error(exact.expected_estimate(reinmax.st, f, theta), target) > 1e-2


def test_heun_is_exact_for_quadratic_f_and_euler_is_not():
    """Numerical-analysis sanity of the targets: the trapezoid rule integrates a linear gradient
    exactly, so the second-order target is the true gradient for quadratic f; forward Euler is
    not."""
    theta = random_logits((2, 4), seed=3, scale=1.5)
    f = random_quadratic_f(2, 4, seed=4)
    true = exact.exact_gradient(f, theta)
    assert max_error(exact.second_order_target(f, theta), true) < EXACT
    assert max_error(exact.expected_estimate(reinmax.reinmax, f, theta), true) < EXACT
    assert max_error(exact.first_order_target(f, theta), true) > 1e-2


def test_first_order_is_exact_for_linear_f():
    theta = random_logits((5,), seed=8)
    a = torch.randn(5, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    f = lambda D: D @ a
    true = exact.exact_gradient(f, theta)
    assert max_error(exact.expected_estimate(reinmax.st, f, theta), true) < EXACT


# ------------------------------------------------------------------------- Remarks 4.1, 4.2
def weighted_st(phi):
    """(phi_D / pi_D) * ST, built from st and a per-sample weight (Remark 4.1)."""
    def estimator(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None):
        y_hard, y_soft = reinmax.st(logits, tau, sample=sample, generator=generator)
        weight = (phi / torch.softmax(logits, -1).detach() * y_hard.detach()).sum(-1, keepdim=True)
        return y_hard.detach() + weight * (y_hard - y_hard.detach()), y_soft
    return estimator


def heun_with_baseline(phi):
    """Heun's rule with baseline phi as a single-sample estimator (the derivation of book/04_baselines.md
    generalised from 1/n to any phi): 1/2 (g[d] - phi.g)(D - pi) + 1/2 (phi_D / pi_D) ST."""
    def estimator(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None):
        y_hard, y_soft = reinmax.st(logits, tau, sample=sample, generator=generator)
        D = y_hard.detach()
        log_p = (torch.log_softmax(logits, -1) * D).sum(-1, keepdim=True)
        weight = (phi / torch.softmax(logits, -1).detach() * D).sum(-1, keepdim=True)
        st_half = 0.5 * weight * (y_hard - D)
        # Its gradient is 1/2 (g . (D - phi)) d log pi_D / d theta = 1/2 (g[d] - phi.g)(D - pi).
        score_half = 0.5 * (D - phi) * (log_p - log_p.detach())
        return D + st_half + score_half, y_soft
    return estimator


def random_distribution(m, n, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(m, n, generator=generator, dtype=torch.float64), -1)


@pytest.mark.parametrize("m,n", [(1, 3), (1, 5), (2, 4)])
def test_remark_4_1_weighted_st_is_the_first_order_target_with_baseline(m, n):
    theta, f = _case(m, n, seed=23 * m + n)
    phi = random_distribution(m, n, seed=n).reshape(theta.shape)
    expected = exact.expected_estimate(weighted_st(phi), f, theta)
    target = exact.first_order_target(f, theta, baseline=phi)
    assert max_error(expected, target) < EXACT
    # ... and the baseline matters: this is not the plain first-order target.
    assert max_error(target, exact.first_order_target(f, theta)) > 1e-3


@pytest.mark.parametrize("m,n", [(1, 3), (1, 5), (2, 4)])
def test_heun_with_any_baseline_matches_the_second_order_target_with_it(m, n):
    theta, f = _case(m, n, seed=29 * m + n)
    phi = random_distribution(m, n, seed=n + 1).reshape(theta.shape)
    expected = exact.expected_estimate(heun_with_baseline(phi), f, theta)
    assert max_error(expected, exact.second_order_target(f, theta, baseline=phi)) < EXACT


@pytest.mark.parametrize("m,n", [(1, 2), (1, 3), (1, 5), (1, 8), (2, 3)])
def test_reinmax_uniform_baseline_is_heun_with_the_uniform_baseline(m, n):
    theta, f = _case(m, n, seed=31 * m + n)
    expected = exact.expected_estimate(reinmax.reinmax_uniform_baseline, f, theta)
    target = exact.second_order_target(f, theta, baseline="uniform")
    assert max_error(expected, target) < EXACT
    uniform = torch.full(theta.shape, 1.0 / n, dtype=theta.dtype)
    assert max_error(target, exact.second_order_target(f, theta, baseline=uniform)) < EXACT


def test_authors_uniform_baseline_variant_is_not_the_heun_target():
    """book/appendix/mnist_vae.md: the authors' script computes a different estimator; its expectation misses
    the uniform-baseline Heun target (by 0.29 on entries of size 0.35 in their n = 5 case)."""
    theta, f = _case(1, 5, seed=37)
    target = exact.second_order_target(f, theta, baseline="uniform")
    authors = exact.expected_estimate(reinmax.reinmax_uniform_baseline_authors, f, theta)
    assert max_error(authors, target) > 0.01


@pytest.mark.parametrize("m,n", CASES)
def test_remark_4_2_second_order_without_baseline_is_the_same_target(m, n):
    theta, f = _case(m, n, seed=41 * m + n)
    without = exact.second_order_target_without_baseline(f, theta)
    assert max_error(without, exact.second_order_target(f, theta)) < EXACT
    assert max_error(without, exact.expected_estimate(reinmax.reinmax, f, theta)) < EXACT


def test_remark_4_2_formula_written_out():
    """grad_k = pi_k sum_i pi_i 1/2 (g_i + g_k).(I_k - I_i), as the paper prints it."""
    theta, f = _case(1, 5, seed=43)
    pi = torch.softmax(theta, -1)
    eye = torch.eye(5, dtype=theta.dtype).requires_grad_(True)
    (g,) = torch.autograd.grad(f(eye).sum(), eye)
    eye = eye.detach()
    formula = torch.stack([pi[k] * sum(pi[i] * 0.5 * (g[i] + g[k]) @ (eye[k] - eye[i])
                                       for i in range(5)) for k in range(5)])
    assert max_error(exact.second_order_target_without_baseline(f, theta), formula) < EXACT


# ------------------------------------------------------------------ GST, by enumeration
@pytest.mark.parametrize("gap", [1.0, "p"])
def test_expected_gst_is_a_weighted_sum_of_per_sample_gradients(gap):
    """expected_estimate works for GST (its correction depends only on the sample): compare with
    an explicit loop over the n samples."""
    theta, f = _case(1, 4, seed=47)
    pi = torch.softmax(theta, -1)
    loop = torch.zeros_like(theta)
    for d in range(4):
        leaf = theta.clone().requires_grad_(True)
        y, _ = reinmax.gst(leaf, sample=torch.tensor(d), gap=gap)
        (grad,) = torch.autograd.grad(f(y[None]).sum(), leaf)
        loop += pi[d] * grad
    assert max_error(exact.expected_estimate(reinmax.gst, f, theta, gap=gap), loop) < EXACT


# --------------------------------------------------------- REINFORCE and RLOO are unbiased
@pytest.mark.parametrize("m,n", [(1, 3), (1, 5), (2, 3)])
@pytest.mark.parametrize("baseline", [None, 0.7])
def test_expected_reinforce_is_the_true_gradient(m, n, baseline):
    theta, f = _case(m, n, seed=53 * m + n)
    configs = exact.configurations(m, n)
    probs = torch.softmax(theta.reshape(m, n), -1)
    weights = probs[torch.arange(m), configs].prod(-1)
    rows = theta.expand((len(configs),) + theta.shape).clone().requires_grad_(True)
    sample = configs.reshape((len(configs),) + theta.shape[:-1])
    surrogate, values = reinmax.reinforce(rows, f, sample=sample, baseline=baseline, batch_dims=1)
    assert surrogate.shape == values.shape == (len(configs),)
    (grad,) = torch.autograd.grad((weights * surrogate).sum(), rows)
    assert max_error(grad.sum(0), exact.exact_gradient(f, theta)) < EXACT


@pytest.mark.parametrize("n,K", [(3, 2), (4, 3)])
def test_expected_rloo_is_the_true_gradient(n, K):
    """Enumerate all n^K tuples of K draws of one variable."""
    theta, f = _case(1, n, seed=59 + n)
    tuples = exact.configurations(K, n)                                 # (n^K, K)
    weights = torch.softmax(theta, -1)[tuples].prod(-1)
    rows = theta.expand(len(tuples), n).clone().requires_grad_(True)
    f_rows = lambda D: f(D.reshape(-1, n)).reshape(D.shape[:-1])       # one value per draw
    surrogate, values = reinmax.rloo(rows, f_rows, num_samples=K, sample=tuples.T)
    assert surrogate.shape == (K, len(tuples))
    (grad,) = torch.autograd.grad((weights * surrogate.mean(0)).sum(), rows)
    assert max_error(grad.sum(0), exact.exact_gradient(f, theta)) < EXACT


def test_rloo_with_one_sample_per_draw_differs_from_reinforce_per_draw():
    """RLOO's baseline is the mean of the other draws: check one fixed pair by hand."""
    theta, f = _case(1, 3, seed=61)
    leaf = theta.clone().requires_grad_(True)
    sample = torch.tensor([0, 2])
    surrogate, values = reinmax.rloo(leaf, lambda D: f(D), num_samples=2, sample=sample)
    (grad,) = torch.autograd.grad(surrogate.mean(), leaf)
    f0, f2 = values.detach()
    pi = torch.softmax(theta, -1)
    score = lambda d: torch.nn.functional.one_hot(torch.tensor(d), 3).to(pi.dtype) - pi
    by_hand = 0.5 * ((f0 - f2) * score(0) + (f2 - f0) * score(2))
    assert max_error(grad, by_hand) < EXACT


# --------------------------------------------------------------------------- input errors
def test_enumeration_above_the_cap_is_a_clear_error():
    with pytest.raises(ValueError, match=r"enumerating 8\^3 = 512 configurations exceeds max_configurations=100"):
        exact.exact_gradient(lambda D: D.sum((1, 2)), torch.zeros(3, 8, dtype=torch.float64),
                             max_configurations=100)


def test_f_that_returns_no_tensor_is_a_clear_error():
    with pytest.raises(TypeError, match=r"f must return a tensor of 3 values; got float"):
        exact.exact_gradient(lambda D: 1.0, torch.zeros(3, dtype=torch.float64))


def test_f_with_the_wrong_output_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"f must return one value per configuration, shape \(4,\); got \(4, 4\)"):
        exact.exact_gradient(lambda D: D, torch.zeros(4, dtype=torch.float64))


@pytest.mark.parametrize("baseline,match", [
    ("ones", r"baseline must be None \(E\[f\(D\)\]\), 'uniform' or a tensor; got 'ones'"),
    (torch.tensor([0.5, 0.6, -0.1]), r"baseline .*got tensor\(\[ 0.5000,  0.6000, -0.1000\]"),
    (torch.tensor([0.2, 0.2, 0.2]), r"baseline .* distribution .*sums to 0.6"),
    (torch.tensor([0.5, 0.5]), r"baseline phi must have 3 entries per variable.*got shape \(2,\)"),
])
def test_bad_baseline_is_a_clear_error(baseline, match):
    theta, f = _case(1, 3, seed=1)
    with pytest.raises(ValueError, match=match):
        exact.first_order_target(f, theta, baseline=baseline)


@pytest.mark.parametrize("logits,error,match", [
    (torch.zeros(3, dtype=torch.long), TypeError, r"logits must be a floating-point torch.Tensor; got .*int64"),
    (torch.zeros(2, 2, 2), ValueError, r"logits must have shape \(n,\) or \(m, n\) with n >= 1; got \(2, 2, 2\)"),
    (torch.tensor([0.0, float("inf")]), ValueError, r"exact computations need finite logits; got tensor\(\[0., inf\]"),
])
def test_bad_logits_for_enumeration_are_clear_errors(logits, error, match):
    with pytest.raises(error, match=match):
        exact.exact_gradient(lambda D: D.sum(-1), logits)


def test_monte_carlo_estimate_of_st_is_within_standard_errors_of_its_exact_mean():
    theta, f = _case(1, 3, seed=67)
    mean, stderr = exact.monte_carlo_estimate(reinmax.st, f, theta, samples=20000,
                                              generator=torch.Generator().manual_seed(0))
    exact_mean = exact.expected_estimate(reinmax.st, f, theta)
    # 5 standard errors per coordinate: a false alarm has probability < 1e-5 per coordinate.
    assert ((mean - exact_mean).abs() <= 5 * stderr + 1e-12).all()
    assert (stderr > 0).all()


def test_random_problem_is_seeded_and_smooth():
    """The notebooks' test problems: the same generator seed gives the same problem, and f is
    not quadratic (Heun is exact on quadratics, so a quadratic f would prove nothing)."""
    first = exact.random_problem((2, 3), torch.Generator().manual_seed(5))
    second = exact.random_problem((2, 3), torch.Generator().manual_seed(5))
    assert torch.equal(first[0], second[0])
    D = torch.nn.functional.one_hot(torch.tensor([[0, 2], [1, 1]]), 3).double()
    assert torch.equal(first[1](D), second[1](D)) and first[1](D).shape == (2,)
    logits, f = exact.random_problem(4, torch.Generator().manual_seed(6))
    assert logits.shape == (4,)
    gap = (exact.second_order_target(f, logits) - exact.exact_gradient(f, logits)).abs().max()
    assert gap > 1e-6


def test_parameter_checks_name_the_parameter():
    from reinmax.reporting.params import is_int, require
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    require(True, "n", 3, "anything")
    with pytest.raises(ValueError, match=r"parameter n=0 is not allowed: an integer >= 1"):
        require(False, "n", 0, "an integer >= 1")


# ------------------------------------------- enumeration refuses estimators that draw noise
NOISY = {
    "STGS": lambda: reinmax.stgs,
    "GR-MCK by name": lambda: reinmax.get_estimator("GR-MCK", K=10),
    "partial of STGS": lambda: functools.partial(reinmax.stgs, hard=True),
    "partial of gumbel_rao": lambda: functools.partial(reinmax.gumbel_rao, K=5),
}


@pytest.mark.parametrize("case", list(NOISY))
def test_registered_noisy_estimators_are_refused_pointing_to_monte_carlo(case):
    """STGS given a sample still draws Gumbel noise: enumeration used to return a random number."""
    from reinmax import bias
    theta, f = _case(1, 3, seed=71)
    estimator = NOISY[case]()
    for compute in (exact.expected_estimate, exact.per_sample_estimates, bias.exact_moments):
        with pytest.raises(ValueError, match=r"draws noise beyond the sample .*monte_carlo_estimate"):
            compute(estimator, f, theta)
    with pytest.raises(ValueError, match=r"registered as drawing noise beyond the sample with these "
                                         r"options \(draws_noise=True\); got draws_noise=False"):
        exact.expected_estimate(estimator, f, theta, draws_noise=False)


def test_registered_estimators_without_noise_are_accepted_as_looked_up():
    theta, f = _case(1, 3, seed=72)
    gst = exact.expected_estimate(reinmax.gst, f, theta, gap=1.0)
    assert torch.equal(exact.expected_estimate(reinmax.get_estimator("GST-1.0"), f, theta), gst)
    assert torch.equal(exact.expected_estimate(functools.partial(reinmax.gst, gap=1.0), f, theta), gst)
    exact.expected_estimate(reinmax.get_estimator("GST-p"), f, theta)
    # GR-MCK's K -> inf limit by quadrature (two categories) draws no noise given the sample
    theta2, f2 = _case(1, 2, seed=75)
    quadrature = exact.expected_estimate(reinmax.gumbel_rao, f2, theta2, K="quadrature")
    assert torch.equal(exact.expected_estimate(reinmax.get_estimator("GR-MCK", K="quadrature"), f2,
                                               theta2), quadrature)
    with pytest.raises(ValueError, match=r"GR-MCK draws noise beyond the sample \(the registry says "
                                         r"draws_noise=True, except with K='quadrature'\)"):
        exact.expected_estimate(reinmax.gumbel_rao, f2, theta2, K=1000)


def _noisy_own(logits, tau=1.0, *, sample=None, generator=None):
    """A user's STGS wrapper that the registry does not know."""
    return reinmax.stgs(logits, tau, sample=sample, generator=generator)


def _noisy_global(logits, tau=1.0, *, sample=None):
    """Draws from the global stream (takes no generator)."""
    return reinmax.stgs(logits, tau, sample=sample)


def _own_st(logits, tau=1.0, *, sample=None):
    return reinmax.st(logits, tau, sample=sample)


def test_own_functions_are_checked_empirically_or_vouched_for():
    theta, f = _case(2, 3, seed=73)
    for noisy in (_noisy_own, _noisy_global):
        with pytest.raises(ValueError, match=r"gave different estimates for the same samples from two "
                                             r"different random streams.*monte_carlo_estimate"):
            exact.expected_estimate(noisy, f, theta)
    with pytest.raises(ValueError, match=r"draws noise beyond the sample \(draws_noise=True\)"):
        exact.expected_estimate(_own_st, f, theta, draws_noise=True)
    state = torch.get_rng_state()
    checked = exact.expected_estimate(_own_st, f, theta)          # passes the empirical check
    assert torch.equal(torch.get_rng_state(), state)              # the caller's stream untouched
    assert torch.equal(checked, exact.expected_estimate(reinmax.st, f, theta))
    assert torch.equal(exact.expected_estimate(_own_st, f, theta, draws_noise=False), checked)
    with pytest.raises(TypeError, match=r"draws_noise must be True, False or None; got draws_noise=1"):
        exact.expected_estimate(_own_st, f, theta, draws_noise=1)


class _NoisyModule(torch.nn.Module):
    """A factory-built estimator (a module) that draws noise beyond the sample."""

    def forward(self, logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None):
        return reinmax.stgs(logits, tau, sample=sample, generator=generator)


def _noisy_factory():
    return _NoisyModule()


def test_factory_built_estimators_are_judged_by_their_entry():
    from reinmax import registry
    theta, f = _case(1, 3, seed=74)
    for factory in (_NoisyModule, _noisy_factory):    # a class, and a plain function
        registry.register(registry.EstimatorSpec(name="Noisy-toy", family="straight-through",
                                                 factory=factory, draws_noise=True))
        try:
            built = reinmax.get_estimator("Noisy-toy")
            assert registry.spec_of(built).name == "Noisy-toy"
            with pytest.raises(ValueError, match=r"Noisy-toy draws noise beyond the sample"):
                exact.expected_estimate(built, f, theta)
        finally:
            registry.unregister("Noisy-toy")
