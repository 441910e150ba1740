"""The straight-through family, one sample at a time and in distribution.

* per-sample gradients equal the paper's formulas computed by hand in float64 (eq. 4, eq. 7
  with temperature, the 1/n-baseline forms of book/04_baselines.md, GST's moved logits);
* the fast functions equal the line-by-line Algorithms 1 and 2 (reinmax/theory/algorithms.py);
* STGS equals torch.nn.functional.gumbel_softmax given the same noise; STGS with a given sample
  and GR-MCK keep STGS's mean (Monte Carlo, tolerances in standard errors); GR-MCK's variance
  falls with K;
* samples follow softmax(logits) (chi-square), masked categories are never drawn;
* shapes, dims, non-contiguous input, four dtypes, generators, torch.func, CUDA.
"""
import math

import pytest
import torch
import torch.nn.functional as F

import reinmax
from reinmax import exact, reference, registry
from reinmax.estimators import sampling
from conftest import random_logits, random_nonlinear_f, requires_cuda

TAUS = [0.5, 1.0, 1.3, 2.0]
EXACT = 1e-12

# Every registered straight-through-family estimator, with a small number of Monte Carlo draws
# where it takes one (GR-MCK's K) to keep tests fast.
SMALL = {"K": 8, "R": 8}
ESTIMATORS = {spec.name: reinmax.get_estimator(spec.name, **{k: v for k, v in SMALL.items()
                                                              if k in spec.options})
              for spec in registry.specs("straight-through")}
NAMES = list(ESTIMATORS)
# Estimators whose backward depends only on the sample (no continuous noise); the registry's
# claim, checked for every entry in tests/test_registry.py.
SAMPLE_ONLY = registry.names("straight-through", sample_only_backward=True)
# Estimators whose forward value is an exact draw from softmax(logits) (all but ReDGE's family,
# whose diffusion sampler approximates it for t_1 < 1); the claim is checked both ways below.
EXACT_SAMPLE = registry.names("straight-through", exact_sample=True)


def jacobian(p):
    """Softmax Jacobian diag(p) - p p^T for one row, written out (eq. 7's bracket)."""
    return torch.diag(p) - torch.outer(p, p)


def one_row_gradient(estimator, theta, d, g, v=None, tau=1.0, **options):
    """d loss / d theta for loss = g . y_hard (+ v . y_soft), one row, sample d."""
    leaf = theta.clone().requires_grad_(True)
    y_hard, y_soft = estimator(leaf, tau, sample=torch.tensor(d), **options)
    # g or v None: the loss does not use that output (autograd then passes no gradient for it).
    loss = (0 if g is None else (g * y_hard).sum()) + (0 if v is None else (v * y_soft).sum())
    (grad,) = torch.autograd.grad(loss, leaf)
    return y_hard.detach(), grad


def rows(n=5, seed=0):
    """A few (theta, upstream gradient g, y_soft gradient v) triples in float64."""
    generator = torch.Generator().manual_seed(seed)
    for _ in range(3):
        yield (2 * torch.randn(n, generator=generator, dtype=torch.float64),
               torch.randn(n, generator=generator, dtype=torch.float64),
               torch.randn(n, generator=generator, dtype=torch.float64))


# ------------------------------------------------------------------- per-sample formulas
# n = 2 and n = 3 have their own fast paths in the package; n = 5 the general one.
@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("tau", TAUS)
def test_reinmax_per_sample_gradient_is_eq_7_with_temperature(tau, n):
    """2 J((pi_tau + D)/2) g - 1/2 J(pi) g, with pi = softmax(theta) at tau = 1 in the ST term
    (Algorithm 2, line 5), plus J(pi) v from y_soft; and each term alone (a loss that uses only
    y_hard or only y_soft)."""
    for theta, g, v in rows(n):
        pi, pi_tau = torch.softmax(theta, -1), torch.softmax(theta / tau, -1)
        for d in range(n):
            D = torch.eye(n, dtype=theta.dtype)[d]
            hard_part = 2 * jacobian((pi_tau + D) / 2) @ g - 0.5 * jacobian(pi) @ g
            y, grad = one_row_gradient(reinmax.reinmax, theta, d, g, v, tau)
            assert torch.equal(y, D)
            assert (grad - hard_part - jacobian(pi) @ v).abs().max() < EXACT
            _, grad = one_row_gradient(reinmax.reinmax, theta, d, g, None, tau)
            assert (grad - hard_part).abs().max() < EXACT
            _, grad = one_row_gradient(reinmax.reinmax, theta, d, None, v, tau)
            assert (grad - jacobian(pi) @ v).abs().max() < EXACT


@pytest.mark.parametrize("n", [2, 3, 5])
@pytest.mark.parametrize("tau", TAUS)
def test_st_per_sample_gradient_is_the_tempered_softmax_jacobian(tau, n):
    """eq. 4 with temperature: d softmax(theta / tau) / d theta = J(pi_tau) / tau."""
    for theta, g, v in rows(n, seed=1):
        pi, pi_tau = torch.softmax(theta, -1), torch.softmax(theta / tau, -1)
        for d in range(n):
            _, grad = one_row_gradient(reinmax.st, theta, d, g, v, tau)
            assert (grad - jacobian(pi_tau) @ g / tau - jacobian(pi) @ v).abs().max() < EXACT
            _, grad = one_row_gradient(reinmax.st, theta, d, g, None, tau)
            assert (grad - jacobian(pi_tau) @ g / tau).abs().max() < EXACT
            _, grad = one_row_gradient(reinmax.st, theta, d, None, v, tau)
            assert (grad - jacobian(pi) @ v).abs().max() < EXACT


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("tau", [1.0, 1.3])
def test_uniform_baseline_per_sample_gradient_is_the_protocols_form(tau, n):
    """book/04_baselines.md: 1/2 (g[d] - mean g)(D - pi) + 1/(2 n pi_d) * (ST gradient at D), and the
    authors' variant: the second half pi_d g[d] D - (pi.g) pi over (n pi_tau[d] + 1e-12)."""
    for theta, g, _ in rows(n, seed=2):
        pi, pi_tau = torch.softmax(theta, -1), torch.softmax(theta / tau, -1)
        for d in range(n):
            D = torch.eye(n, dtype=theta.dtype)[d]
            score_half = 0.5 * (g[d] - g.mean()) * (D - pi)
            ours = score_half + jacobian(pi_tau) @ g / tau / (2 * n * pi[d])
            authors = score_half + 0.5 * (pi[d] * g[d] * D - (pi @ g) * pi) / (n * pi_tau[d] + 1e-12)
            _, grad = one_row_gradient(reinmax.reinmax_uniform_baseline, theta, d, g, tau=tau)
            assert (grad - ours).abs().max() < EXACT
            _, grad = one_row_gradient(reinmax.reinmax_uniform_baseline_authors, theta, d, g, tau=tau)
            assert (grad - authors).abs().max() < EXACT


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("gap", [0.0, 1.0, 2.5, "p"])
@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_gst_per_sample_gradient_goes_through_the_moved_logits(gap, tau, n):
    """GST: the sampled logit is raised to max(theta); every other logit is lowered to at most
    max(theta) - gap (gap = -log(1 - pi_d) / pi_d for 'p'); gradient J(softmax(moved / tau)) / tau."""
    for theta, g, v in rows(n, seed=3):
        pi = torch.softmax(theta, -1)
        for d in range(n):
            kappa = -math.log1p(-pi[d].item()) / pi[d].item() if gap == "p" else gap
            top = theta.max()
            moved = torch.minimum(theta, top - kappa)
            moved[d] = top
            q = torch.softmax(moved / tau, -1)
            _, grad = one_row_gradient(reinmax.gst, theta, d, g, v, tau=tau, gap=gap)
            # GST-p multiplies pi_d by (1 - 1e-5) to keep the log finite: allow for that.
            by_hand = jacobian(q) @ g / tau + jacobian(pi) @ v
            assert (grad - by_hand).abs().max() < (1e-4 if gap == "p" else EXACT)
            assert q[d] == q.max() and (moved[d] - moved[torch.arange(n) != d] >= kappa - 1e-12).all()


# ----------------------------------------------------------- fast == line-by-line reference
@pytest.mark.parametrize("n", [2, 3, 6])
@pytest.mark.parametrize("tau", TAUS)
@pytest.mark.parametrize("fast,slow", [(reinmax.st, reference.st_algorithm1),
                                       (reinmax.reinmax, reference.reinmax_algorithm2)],
                         ids=["ST", "ReinMax"])
def test_fast_estimators_equal_the_algorithms_line_by_line(fast, slow, tau, n):
    theta = random_logits((4, 3, n), seed=5, scale=2.0)
    sample = torch.randint(0, n, (4, 3), generator=torch.Generator().manual_seed(6))
    g, v = random_logits((4, 3, n), seed=7), random_logits((4, 3, n), seed=8)

    leaf = theta.clone().requires_grad_(True)
    y_hard, y_soft = fast(leaf, tau, sample=sample)
    (fast_grad,) = torch.autograd.grad((g * y_hard).sum() + (v * y_soft).sum(), leaf)

    leaf = theta.clone().requires_grad_(True)
    y_ref = slow(leaf, tau, sample=sample)
    soft_ref = torch.softmax(leaf, -1)      # what the official package returns beside D
    (slow_grad,) = torch.autograd.grad((g * y_ref).sum() + (v * soft_ref).sum(), leaf)

    assert torch.equal(y_hard, y_ref.detach())
    assert torch.allclose(y_soft, soft_ref, rtol=0, atol=1e-15)
    assert (fast_grad - slow_grad).abs().max() < EXACT


def test_reference_algorithms_draw_their_own_sample():
    theta = random_logits((50, 4), seed=9)
    D = reference.reinmax_algorithm2(theta, 1.3)
    assert ((D == 0) | (D == 1)).all() and torch.equal(D.sum(-1), torch.ones(50, dtype=D.dtype))


# ------------------------------------------------------------------------------ STGS family
@pytest.mark.parametrize("tau", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("hard", [True, False])
def test_stgs_equals_torch_gumbel_softmax_given_the_same_noise(tau, hard):
    theta = random_logits((64, 5), seed=10, scale=2.0)
    g = random_logits((64, 5), seed=11)
    # torch's gumbel_softmax draws G = -log(Exp(1)) from the global generator: replay it.
    torch.manual_seed(1234)
    leaf = theta.clone().requires_grad_(True)
    expected = F.gumbel_softmax(leaf, tau=tau, hard=hard)
    (expected_grad,) = torch.autograd.grad((g * expected).sum(), leaf)
    torch.manual_seed(1234)
    gumbels = -torch.empty_like(theta).exponential_().log()

    leaf = theta.clone().requires_grad_(True)
    y, _ = reinmax.stgs(leaf, tau, hard, gumbels=gumbels)
    (grad,) = torch.autograd.grad((g * y).sum(), leaf)
    assert torch.allclose(y, expected, rtol=0, atol=1e-15)
    assert (grad - expected_grad).abs().max() < EXACT


def _stgs_term_by_term(logits, tau, hard=True, *, sample=None, generator=None):
    """STGS as defined, from the estimators' random streams: the category by the inverse CDF,
    then Exp(1) draws E of the logits' shape and the Gumbel noise given the category (Paulus et
    al. 2021: the maximum is logsumexp(theta) - log E_d, every other perturbed logit is
    -logaddexp(log E_i - theta_i, -max)), autograd through softmax((theta + G) / tau)."""
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        index = sampling.draw_index(probs, logits, sample, generator)
        log_e = sampling.exponential(logits.shape, logits, generator).log()
        top = torch.logsumexp(logits, -1, keepdim=True) - log_e.gather(-1, index.unsqueeze(-1))
        chosen = F.one_hot(index, logits.shape[-1]).bool()
        perturbed = torch.where(chosen, top, -torch.logaddexp(log_e - logits, -top))
        noise = torch.where(torch.isneginf(logits), 0.0, perturbed - logits)
    relaxed = torch.softmax((logits + noise) / tau, -1)
    y = chosen.to(logits.dtype) + relaxed - relaxed.detach() if hard else relaxed
    return y, torch.softmax(logits, -1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("tau", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("hard", [True, False])
def test_stgs_drawing_its_noise_is_the_term_by_term_definition_from_the_same_draws(dtype, tau,
                                                                                    hard):
    """The fused STGS (closed-form relaxation and backward): the same categories from the same
    generator, its relaxation and gradients (through y_hard and y_soft) equal to rounding; a
    masked category, a row with one allowed category and given samples included."""
    theta = random_logits((40, 3, 6), seed=30, scale=3.0).to(dtype)
    theta[..., 4] = -math.inf
    theta[0, 0, 1:] = -math.inf
    w_hard, w_soft = random_logits((2, 40, 3, 6), seed=31).to(dtype)
    sample = torch.multinomial(torch.softmax(theta.double(), -1).view(-1, 6), 1,
                               generator=torch.Generator().manual_seed(32)).view(40, 3)
    for given in (None, sample):
        results = []
        for stgs in (reinmax.stgs, _stgs_term_by_term):
            leaf = theta.clone().requires_grad_(True)
            y, soft = stgs(leaf, tau, hard, sample=given, generator=torch.Generator().manual_seed(33))
            (grad,) = torch.autograd.grad((w_hard * y).sum() + (w_soft * soft).sum(), leaf)
            results.append((y.detach(), grad))
        (y, grad), (y_ref, grad_ref) = results
        assert torch.equal(y.argmax(-1), y_ref.argmax(-1))
        tolerance = 1e-13 if dtype == torch.float64 else 1e-5
        assert torch.allclose(y, y_ref, rtol=0, atol=tolerance)
        if hard:              # exactly one-hot (the definition's 1 + s - s may be 1 - 1 ulp)
            assert torch.equal(y, F.one_hot(y_ref.argmax(-1), 6).to(dtype))
        assert ((grad - grad_ref).abs() <= tolerance * grad_ref.abs().max()).all()
        assert torch.isfinite(grad).all() and (grad[..., 4] == 0).all()


def test_stgs_gumbels_follow_dim():
    theta = random_logits((5, 7), seed=12)
    gumbels = -torch.empty_like(theta).exponential_(generator=torch.Generator().manual_seed(0)).log()
    y0, _ = reinmax.stgs(theta, 1.0, gumbels=gumbels, dim=0)
    y1, _ = reinmax.stgs(theta.T, 1.0, gumbels=gumbels.T)
    assert torch.equal(y0, y1.T)
    assert torch.equal(y0.argmax(0), (theta + gumbels).argmax(0))


@pytest.mark.parametrize("name", ["STGS", "GR-MCK"])
def test_gumbel_noise_given_a_sample_keeps_that_sample_on_top(name):
    theta = random_logits((2000, 4), seed=13, scale=2.0)
    sample = torch.randint(0, 4, (2000,), generator=torch.Generator().manual_seed(1))
    relaxed, _ = ESTIMATORS[name](theta, 0.3, hard=False, sample=sample)
    if name == "STGS":   # one perturbation: its argmax is the given sample
        assert torch.equal(relaxed.argmax(-1), sample)
    y, _ = ESTIMATORS[name](theta, 0.3, sample=sample)
    assert torch.equal(y.argmax(-1), sample)


def ks_statistic(x, cdf):
    """Kolmogorov-Smirnov distance between the sample x and a continuous CDF."""
    x, _ = torch.sort(x)
    F_x = cdf(x)
    i = torch.arange(1, len(x) + 1, dtype=x.dtype)
    return torch.maximum(i / len(x) - F_x, F_x - (i - 1) / len(x)).max().item()


@pytest.mark.parametrize("tau", [0.5, 1.0])
def test_conditional_gumbels_mixed_over_the_sample_are_iid_gumbels(tau):
    """Draw D ~ softmax(theta), then G given argmax(theta + G) = D: the pair (D, G) must be a
    plain Gumbel-max draw, so every difference G_i - G_j is standard logistic. We read
    (theta_i + G_i - theta_j - G_j) / tau off log softmax((theta + G) / tau). KS test at level
    1e-4 (critical value sqrt(-log(1e-4 / 2) / 2) / sqrt(N))."""
    N = 50_000
    theta = torch.tensor([0.8, -0.4, 0.1, -1.0], dtype=torch.float64)
    sample = torch.multinomial(torch.softmax(theta, -1), N, replacement=True,
                               generator=torch.Generator().manual_seed(0))
    relaxed, _ = reinmax.stgs(theta.expand(N, 4), tau, hard=False, sample=sample,
                              generator=torch.Generator().manual_seed(1))
    log_relaxed = relaxed.log()
    critical = math.sqrt(-math.log(1e-4 / 2) / 2) / math.sqrt(N)
    for i, j in [(0, 1), (2, 3), (1, 3), (0, 2)]:
        difference = tau * (log_relaxed[:, i] - log_relaxed[:, j]) - (theta[i] - theta[j])
        assert ks_statistic(difference, torch.sigmoid) < critical, (i, j)
    # The same statistic has power: a logistic of scale 0.95 is rejected.
    assert ks_statistic(difference, lambda x: torch.sigmoid(x / 0.95)) > critical


def per_row_gradients(estimator, theta, f, **kwargs):
    """Gradients of sum_rows f(y_row): row r's gradient is one draw of the estimator."""
    leaf = theta.clone().requires_grad_(True)
    y, _ = estimator(leaf, **kwargs)
    (grad,) = torch.autograd.grad(f(y).sum(), leaf)
    return grad


def mean_and_stderr(x):
    return x.mean(0), x.std(0) / math.sqrt(x.shape[0])


# Monte Carlo tests: a coordinate fails when the two means differ by more than Z combined
# standard errors. With Z = 5 a false alarm has probability below 6e-7 per coordinate; the
# seeds are fixed, so the outcome is deterministic.
Z = 5.0
N_MC = 100_000


def _stgs_setting():
    theta = torch.tensor([0.8, -0.4, 0.1], dtype=torch.float64)
    return theta.expand(N_MC, 3), random_nonlinear_f(1, 3, seed=21)


@pytest.mark.slow
def test_stgs_with_given_samples_has_the_mean_of_plain_stgs():
    """stgs(sample=D) draws G given argmax(theta + G) = D: averaged over D ~ softmax(theta) this
    is plain STGS. A test with teeth: noise drawn independently of D changes the mean."""
    theta, f = _stgs_setting()
    tau = 0.5
    plain = per_row_gradients(reinmax.stgs, theta, f, tau=tau,
                              generator=torch.Generator().manual_seed(0))
    sample = torch.multinomial(torch.softmax(theta[0], -1), N_MC, replacement=True,
                               generator=torch.Generator().manual_seed(1))
    conditional = per_row_gradients(reinmax.stgs, theta, f, tau=tau, sample=sample,
                                    generator=torch.Generator().manual_seed(2))
    (m1, s1), (m2, s2) = mean_and_stderr(plain), mean_and_stderr(conditional)
    assert ((m1 - m2).abs() < Z * torch.sqrt(s1 ** 2 + s2 ** 2)).all(), (m1, m2, s1, s2)

    def independent_noise(logits, tau, sample, generator):   # the wrong way: G ignores D
        relaxed, _ = reinmax.stgs(logits, tau, hard=False, generator=generator)
        D = F.one_hot(sample, logits.shape[-1]).to(logits.dtype)
        return D + relaxed - relaxed.detach(), None
    wrong = per_row_gradients(independent_noise, theta, f, tau=tau, sample=sample,
                              generator=torch.Generator().manual_seed(3))
    m3, s3 = mean_and_stderr(wrong)
    assert ((m1 - m3).abs() > Z * torch.sqrt(s1 ** 2 + s3 ** 2)).any()


@pytest.mark.slow
def test_gumbel_rao_has_the_mean_of_stgs():
    theta, f = _stgs_setting()
    theta = theta[:N_MC // 2]
    tau = 0.5
    plain = per_row_gradients(reinmax.stgs, theta, f, tau=tau,
                              generator=torch.Generator().manual_seed(4))
    rao = per_row_gradients(reinmax.gumbel_rao, theta, f, tau=tau, K=10,
                            generator=torch.Generator().manual_seed(5))
    (m1, s1), (m2, s2) = mean_and_stderr(plain), mean_and_stderr(rao)
    assert ((m1 - m2).abs() < Z * torch.sqrt(s1 ** 2 + s2 ** 2)).all(), (m1, m2, s1, s2)


def test_gumbel_rao_variance_falls_as_k_grows():
    """Rao-Blackwellisation: with K = 100 the per-draw variance is well below K = 1's."""
    theta, f = _stgs_setting()
    theta = theta[:4000]
    var = {}
    for K in (1, 100):
        grads = per_row_gradients(reinmax.gumbel_rao, theta, f, tau=0.5, K=K,
                                  generator=torch.Generator().manual_seed(K))
        var[K] = grads.var(0).sum().item()
    # Only the noise given D averages out (D's own randomness stays), so the ratio is not 1/K.
    assert var[100] < 0.5 * var[1], var          # measured: 0.14 vs 0.99


# GR-MCK's fused Function (reinmax/estimators/categorical.py, _GumbelRaoFunction) against the unfused
# reference written term by term (_GR_FUSED = False): same generator state, same draws, so the
# same outputs and gradients to rounding, in float64.
GR_CASES = [  # (shape, dim, K, tau)
    ((7, 5), -1, 50, 1.0),          # tau = 1 has its own branch (a reciprocal, no exp/log)
    ((3, 4, 8), -1, 20, 0.5),
    ((6, 3, 10), 1, 33, 1.3),       # categories not last
    ((9, 2), -1, 30, 2.0),          # two categories
    ((4, 3), 0, 700, 5.0),          # 34 blocks of draws (21 per block, the last one 7)
    ((40, 64), -1, 3, 0.3),         # long rows
]


def _gr_run(monkeypatch, fused, theta, g, dim, K, tau, hard, sample=None, seed=5):
    monkeypatch.setitem(reinmax.estimators.GUMBEL_RAO_KERNEL, "fused", fused)
    leaf = theta.clone().requires_grad_(True)
    y, soft = reinmax.gumbel_rao(leaf, tau, hard, dim=dim, K=K, sample=sample,
                                 generator=torch.Generator().manual_seed(seed))
    (grad,) = torch.autograd.grad((g * y).sum() + (g.flip(dim) * soft).sum(), leaf)
    return y.detach(), grad


@pytest.mark.parametrize("hard", [True, False])
@pytest.mark.parametrize("shape, dim, K, tau", GR_CASES)
def test_fused_gumbel_rao_equals_the_reference(monkeypatch, shape, dim, K, tau, hard):
    monkeypatch.setitem(reinmax.estimators.GUMBEL_RAO_KERNEL, "block", 256)    # several blocks per call
    theta = 2 * random_logits(shape, seed=40)
    if shape[dim] > 2:                          # a masked category in every other row
        masked = theta.movedim(dim, -1)
        masked[::2, ..., 1] = -math.inf
    g = random_logits(shape, seed=41)
    y1, grad1 = _gr_run(monkeypatch, True, theta, g, dim, K, tau, hard)
    y2, grad2 = _gr_run(monkeypatch, False, theta, g, dim, K, tau, hard)
    if hard:
        assert torch.equal(y1, y2)              # same sample
        assert ((y1 == 0) | (y1 == 1)).all()
    assert (y1 - y2).abs().max() < EXACT
    assert (grad1 - grad2).abs().max() < EXACT
    assert torch.isneginf(theta).sum() == 0 or (grad1[torch.isneginf(theta)] == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_gumbel_rao_uniform_of_exactly_zero_beside_a_masked_category(monkeypatch, dtype):
    """A uniform draw of exactly 0 (one in 2^24 in float32) gives E = 0, and E * (1/p) with a
    masked category's 1/p = inf was NaN: a NaN relaxation row and a NaN gradient after a finite
    loss (it stopped every ListOps GR-MCK run after a few epochs). Every draw 0 here: the fused
    path must give what the reference (E clamped at tiny) gives, finite, masked entries 0."""
    theta = random_logits((6, 5), seed=45).to(dtype)
    theta[:, 2] = -math.inf
    g = random_logits((6, 5), seed=46).to(dtype)
    monkeypatch.setattr(torch.Tensor, "uniform_", lambda self, *a, **k: self.zero_())
    monkeypatch.setattr(torch, "rand", lambda *a, **k: torch.zeros(*a, dtype=k.get("dtype"),
                                                                    device=k.get("device")))
    y1, grad1 = _gr_run(monkeypatch, True, theta, g, -1, 10, 0.7, False)
    y2, grad2 = _gr_run(monkeypatch, False, theta, g, -1, 10, 0.7, False)
    assert torch.isfinite(y1).all() and torch.isfinite(grad1).all()
    assert (y1[:, 2] == 0).all() and (grad1[:, 2] == 0).all()
    assert (y1 - y2).abs().max() < 1e-6 and (grad1 - grad2).abs().max() < 1e-6


def test_fused_gumbel_rao_equals_the_reference_given_samples(monkeypatch):
    theta, g = random_logits((50, 6), seed=42), random_logits((50, 6), seed=43)
    theta[:, 0] = -math.inf
    sample = torch.randint(1, 6, (50,), generator=torch.Generator().manual_seed(44))
    y1, grad1 = _gr_run(monkeypatch, True, theta, g, -1, 40, 0.7, True, sample=sample)
    y2, grad2 = _gr_run(monkeypatch, False, theta, g, -1, 40, 0.7, True, sample=sample)
    assert torch.equal(y1, F.one_hot(sample, 6).double()) and torch.equal(y1, y2)
    assert (grad1 - grad2).abs().max() < EXACT


def test_fused_gumbel_rao_in_float32_and_near_its_temperature_limit(monkeypatch):
    """A category of probability exp(-90) (subnormal 1/p: w_i = 0 in the fused form) at the
    largest fused temperature: the weight it loses is below float32 resolution, as argued at
    _gr_tau_limit; above the limit the reference runs."""
    theta = random_logits((200, 4), seed=45).float()
    theta[:, 3] = theta[:, 0] - 90.0
    g = random_logits((200, 4), seed=46).float()
    tau = 5.0
    assert tau <= reinmax.estimators.categorical._gr_tau_limit(torch.float32) < 6.0
    y1, grad1 = _gr_run(monkeypatch, True, theta, g, -1, 64, tau, False)
    y2, grad2 = _gr_run(monkeypatch, False, theta, g, -1, 64, tau, False)
    assert (y1 - y2).abs().max() < 1e-6 and (grad1 - grad2).abs().max() < 1e-6


def test_fused_gumbel_rao_saves_one_copy_of_the_draws_and_allows_a_second_backward():
    """The fused backward keeps the K relaxations (K * numel numbers) and nothing K-sized else;
    it leaves them unchanged, so a retained graph gives the same gradient twice."""
    theta = random_logits((10, 3, 6), seed=47).float().requires_grad_(True)
    K = 50
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t,
                                                  lambda t: t):
        y, _ = reinmax.gumbel_rao(theta, 0.7, K=K, generator=torch.Generator().manual_seed(0))
    big = [n for n in saved if n > theta.numel()]
    assert big == [K * theta.numel()], saved
    g = random_logits((10, 3, 6), seed=48).float()
    (first,) = torch.autograd.grad((g * y).sum(), theta, retain_graph=True)
    (second,) = torch.autograd.grad((g * y).sum(), theta)
    assert torch.equal(first, second) and first.abs().sum() > 0


# Two categories: STGS and GR-MCK have a separate sigmoid implementation (reinmax/estimators/two_category.py).
# GR-MCK with K="quadrature" is deterministic given the sample, so its expectation is exact by
# enumeration; it must equal E[STGS], which torch's own gumbel_softmax estimates independently.
def _binary_setting(tau):
    theta = torch.tensor([0.4, -0.3], dtype=torch.float64)
    return theta, random_nonlinear_f(1, 2, seed=31), tau


@pytest.mark.parametrize("tau", [0.5, 1.5])
@pytest.mark.parametrize("d", [0, 1])
def test_two_category_quadrature_is_gumbel_rao_with_many_draws(tau, d):
    """Per sample: the quadrature weight equals the general K-draw average as K grows."""
    theta, f, _ = _binary_setting(tau)
    g = torch.tensor([0.7, -1.1], dtype=torch.float64)
    _, quadrature = one_row_gradient(reinmax.gumbel_rao, theta, d, g, tau=tau, K="quadrature")
    # The general path (rows of 3 categories, one masked) with K = 200000 conditional draws.
    wide = torch.cat([theta, torch.tensor([-math.inf], dtype=theta.dtype)])
    _, many = one_row_gradient(reinmax.gumbel_rao, wide, d, torch.cat([g, g[:1]]), tau=tau, K=200_000)
    assert torch.allclose(quadrature, many[:2], rtol=1e-2, atol=1e-4), (quadrature, many)


@pytest.mark.slow
@pytest.mark.parametrize("tau", [0.5, 1.5])
def test_two_category_stgs_has_the_mean_of_torch_gumbel_softmax(tau):
    theta, f, tau = _binary_setting(tau)
    exact_mean = exact.expected_estimate(reinmax.gumbel_rao, f, theta, tau, K="quadrature")
    rows_ = theta.expand(N_MC, 2)

    def torch_stgs(logits, tau, generator=None, sample=None):
        return F.gumbel_softmax(logits, tau=tau, hard=True), None

    torch.manual_seed(0)
    estimators = {
        "torch": per_row_gradients(torch_stgs, rows_, f, tau=tau),
        "stgs": per_row_gradients(reinmax.stgs, rows_, f, tau=tau,
                                  generator=torch.Generator().manual_seed(1)),
        "stgs given sample": per_row_gradients(
            reinmax.stgs, rows_, f, tau=tau, generator=torch.Generator().manual_seed(2),
            sample=torch.multinomial(torch.softmax(theta, -1), N_MC, replacement=True,
                                     generator=torch.Generator().manual_seed(3))),
        "GR-MCK K=4": per_row_gradients(reinmax.gumbel_rao, rows_[:N_MC // 4], f, tau=tau, K=4,
                                        generator=torch.Generator().manual_seed(4)),
    }
    for name, grads in estimators.items():
        mean, stderr = mean_and_stderr(grads)
        assert ((mean - exact_mean).abs() < Z * stderr).all(), (name, mean, exact_mean, stderr)


# ------------------------------------------------------------------ samples follow softmax
def chi_square_p_value(counts, probs):
    """Pearson's chi-square goodness of fit; the p-value is the regularised upper incomplete
    gamma function Q(df / 2, x / 2)."""
    expected = probs * counts.sum()
    statistic = ((counts - expected) ** 2 / expected).sum()
    df = torch.tensor((len(counts) - 1) / 2, dtype=torch.float64)
    return torch.special.gammaincc(df, statistic / 2).item()


ALPHA = 1e-4     # significance level; fixed seeds make every outcome deterministic
MASKED_LOGITS = torch.tensor([0.5, -math.inf, 1.5, -1.0, 0.0], dtype=torch.float64)


# Two categories only: GR-MCK's exact conditional expectation by quadrature.
TWO_CATEGORY = dict(ESTIMATORS, **{"GR-MCK-quadrature": reinmax.get_estimator("GR-MCK", K="quadrature")})


@pytest.mark.parametrize("name", list(TWO_CATEGORY))
def test_a_masked_category_of_two_leaves_one_choice(name):
    theta = torch.tensor([[-math.inf, 0.3], [1.0, -math.inf]] * 50, requires_grad=True)
    y, _ = TWO_CATEGORY[name](theta, 1.3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 50))
    (grad,) = torch.autograd.grad((y * torch.randn(100, 2)).sum(), theta)
    assert torch.isfinite(grad).all() and (grad == 0).all()     # no choice, no gradient


@pytest.mark.parametrize("name", NAMES)
def test_samples_follow_softmax_and_never_hit_a_masked_category(name):
    """An exact draw passes the chi-square test; an estimator registered with
    exact_sample=False (ReDGE at t_1 < 1) must fail it: the registry's claim, both ways."""
    N = 40_000
    theta = MASKED_LOGITS.expand(N, 5).clone().requires_grad_(True)
    y, _ = ESTIMATORS[name](theta, 1.0, generator=torch.Generator().manual_seed(42))
    counts = y.detach().sum(0)
    probs = torch.softmax(MASKED_LOGITS, -1)
    assert counts[1] == 0
    keep = torch.tensor([0, 2, 3, 4])
    assert (chi_square_p_value(counts[keep], probs[keep]) > ALPHA) == (name in EXACT_SAMPLE)
    # The masked logit gets an exact zero gradient, the others finite ones.
    (grad,) = torch.autograd.grad((y * random_logits((N, 5), seed=1)).sum(), theta)
    assert torch.isfinite(grad).all() and (grad[:, 1] == 0).all()


def test_the_chi_square_test_rejects_a_wrong_distribution():
    y, _ = reinmax.st(MASKED_LOGITS.expand(40_000, 5), generator=torch.Generator().manual_seed(42))
    wrong = torch.softmax(MASKED_LOGITS / 1.1, -1)[[0, 2, 3, 4]]
    assert chi_square_p_value(y.sum(0)[[0, 2, 3, 4]], wrong) < ALPHA


@pytest.mark.parametrize("name", [name for name in TWO_CATEGORY if name not in NAMES or name in EXACT_SAMPLE])
def test_samples_follow_softmax_for_two_categories_and_float32(name):
    # n = 2 takes its own fast path; float32 its own sampling precision.
    # An expanded view: the quadrature then integrates once for the one distinct row.
    theta = torch.tensor([0.3, -1.2], dtype=torch.float32).expand(30_000, 2)
    y, _ = TWO_CATEGORY[name](theta, generator=torch.Generator().manual_seed(7))
    probs = torch.softmax(theta[0].double(), -1)
    assert chi_square_p_value(y.double().sum(0), probs) > ALPHA


# ------------------------------------------------- shapes, dims, layouts, dtypes, seeds
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("shape", [(4, 5, 6), (2, 3, 2)], ids=["n=6", "n=2"])
def test_any_dim_equals_moving_the_categories_last(name, dim, shape):
    theta = random_logits(shape, seed=14)
    moved = theta.movedim(dim, -1)
    sample = torch.randint(0, moved.shape[-1], moved.shape[:-1],
                           generator=torch.Generator().manual_seed(dim % 3))
    g = random_logits(theta.shape, seed=15)

    def run(logits, g, dim):
        leaf = logits.clone().requires_grad_(True)
        y, soft = ESTIMATORS[name](leaf, 1.3, dim=dim, sample=sample,
                                   generator=torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad((g * y).sum() + (g * soft).sum(), leaf)
        return y, soft, grad

    y, soft, grad = run(theta, g, dim)
    y_last, soft_last, grad_last = run(moved, g.movedim(dim, -1), -1)
    assert y.shape == soft.shape == theta.shape
    assert torch.equal(y, y_last.movedim(-1, dim))
    assert torch.allclose(soft, soft_last.movedim(-1, dim), rtol=0, atol=1e-15)
    assert torch.allclose(grad, grad_last.movedim(-1, dim), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_leading_shapes_and_a_single_row(name):
    for shape in [(7,), (2, 3, 4, 7), (1, 7), (0, 7)]:
        y, soft = ESTIMATORS[name](torch.randn(shape))
        assert y.shape == soft.shape == shape
        if y.numel():
            assert torch.equal(y.sum(-1), torch.ones(shape[:-1]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [2, 3])
def test_non_contiguous_input_gives_the_same_result_as_contiguous(name, n):
    base = random_logits((6, 8, n), seed=16)
    theta = base.transpose(0, 1)                       # (8, 6, 3), not contiguous
    assert not theta.is_contiguous()
    g = random_logits(theta.shape, seed=17)
    results = []
    for logits in (theta, theta.contiguous()):
        leaf = logits.detach().clone() if logits.is_contiguous() else logits.detach()
        leaf.requires_grad_(True)
        y, soft = ESTIMATORS[name](leaf, generator=torch.Generator().manual_seed(3))
        (grad,) = torch.autograd.grad((g * y).sum(), leaf)
        results.append((y, soft, grad))
    (y1, s1, g1), (y2, s2, g2) = results
    assert torch.equal(y1, y2) and torch.equal(s1, s2)
    assert torch.allclose(g1, g2, rtol=0, atol=1e-12)


TOLERANCE = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 1e-6, torch.float64: 1e-14}


DTYPE_CASES = {
    6: torch.cat([random_logits((200, 6), seed=18, scale=3.0),
                  torch.tensor([[20.0, 0, 0, 0, 0, -20.0],                  # near-certain
                                [0.0, -math.inf, 1, 2, -math.inf, 0]])]),   # masked
    2: torch.cat([random_logits((200, 2), seed=18, scale=3.0),
                  torch.tensor([[20.0, -20.0], [-math.inf, 0.5]])]),
}


@pytest.mark.parametrize("n", [2, 6])
@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("name", NAMES)
def test_every_dtype_gives_exact_one_hots_and_finite_gradients(name, dtype, n):
    theta = DTYPE_CASES[n].to(dtype).requires_grad_(True)
    y, soft = ESTIMATORS[name](theta, 1.3, generator=torch.Generator().manual_seed(0))
    assert y.dtype == soft.dtype == dtype
    assert ((y == 0) | (y == 1)).all() and (y.sum(-1) == 1).all()
    assert (soft.sum(-1).double() - 1).abs().max() <= TOLERANCE[dtype] * n
    (grad,) = torch.autograd.grad((random_logits(y.shape, seed=19).to(dtype) * y).sum(), theta)
    assert grad.dtype == dtype and torch.isfinite(grad).all()
    masked = torch.isneginf(DTYPE_CASES[n][-1])
    assert (grad[-1, masked] == 0).all()


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
def test_two_category_quadrature_in_every_dtype_and_dim(dtype):
    theta = DTYPE_CASES[2].to(dtype)
    estimator = TWO_CATEGORY["GR-MCK-quadrature"]
    leaf = theta.T.clone().requires_grad_(True)                      # categories on dim 0
    y, soft = estimator(leaf, 0.7, dim=0, generator=torch.Generator().manual_seed(0))
    assert y.dtype == soft.dtype == dtype and y.shape == leaf.shape
    assert ((y == 0) | (y == 1)).all() and (y.sum(0) == 1).all()
    (grad,) = torch.autograd.grad((random_logits(y.shape, seed=19).to(dtype) * y).sum(), leaf)
    assert torch.isfinite(grad).all() and (grad[:, -1] == 0).all()   # last row: one choice


@pytest.mark.parametrize("name", NAMES)
def test_the_same_generator_seed_gives_the_same_sample_and_gradient(name):
    theta = random_logits((500, 4), seed=20)

    def draw(seed):
        leaf = theta.clone().requires_grad_(True)
        y, _ = ESTIMATORS[name](leaf, generator=torch.Generator().manual_seed(seed))
        (grad,) = torch.autograd.grad((y * theta).sum(), leaf)
        return y, grad

    (y1, g1), (y2, g2), (y3, _) = draw(0), draw(0), draw(1)
    assert torch.equal(y1, y2) and torch.equal(g1, g2)
    assert not torch.equal(y1, y3)


@pytest.mark.parametrize("name", ["STGS", "GR-MCK"])
def test_soft_form_is_accepted_where_it_exists(name):
    theta = random_logits((10, 4), seed=22)
    relaxed, soft = ESTIMATORS[name](theta, 0.7, hard=False)
    assert torch.allclose(relaxed.sum(-1), torch.ones(10, dtype=theta.dtype))
    assert ((relaxed > 0) & (relaxed < 1)).all()     # a relaxation, not a one-hot


# --------------------------------------------------------------------------- torch.func
FUNC_NAMES = ["ST", "ReinMax", "ReinMax-1/n"]


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("name", FUNC_NAMES)
def test_torch_func_grad_equals_autograd(name, n):
    estimator = ESTIMATORS[name]
    theta, g = random_logits(n, seed=23), random_logits(n, seed=24)
    sample = torch.tensor(1)
    loss = lambda logits: (g * estimator(logits, 1.3, sample=sample)[0]).sum()
    _, expected = one_row_gradient(estimator, theta, 1, g, tau=1.3)
    assert (torch.func.grad(loss)(theta) - expected).abs().max() < EXACT


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("name", FUNC_NAMES)
def test_vmap_with_different_randomness_draws_independent_samples(name, n):
    estimator = ESTIMATORS[name]
    theta = torch.zeros(400, 3, n)           # identical logits: only randomness can differ
    y = torch.func.vmap(lambda logits: estimator(logits)[0], randomness="different")(theta)
    assert y.shape == theta.shape and torch.equal(y.sum(-1), torch.ones(400, 3))
    distinct = len({tuple(row.argmax(-1).tolist()) for row in y})
    assert distinct > 0.75 * n ** 3          # of the n^3 possible; identical draws would give 1


@pytest.mark.parametrize("n", [2, 4])
@pytest.mark.parametrize("name", ["STGS", "GR-MCK", "GST-1.0"])
def test_vmap_over_the_gumbel_family(name, n):
    """Noise is drawn out of place, so vmap with randomness='different' batches it too."""
    estimator = reinmax.get_estimator(name, K=8) if name == "GR-MCK" else ESTIMATORS[name]
    theta = torch.zeros(400, 3, n)
    y = torch.func.vmap(lambda logits: estimator(logits)[0], randomness="different")(theta)
    assert torch.equal(y.sum(-1), torch.ones(400, 3))
    assert len({tuple(row.argmax(-1).tolist()) for row in y}) > 0.75 * n ** 3
    weights = torch.arange(float(n))
    grads = torch.func.vmap(torch.func.grad(lambda l: (weights * estimator(l)[0]).sum()),
                            randomness="different")(random_logits((5, 3, n), seed=27))
    assert grads.shape == (5, 3, n) and torch.isfinite(grads).all()


@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("name", FUNC_NAMES)
def test_vmap_of_grad_equals_a_loop(name, n):
    """A torch.func ensemble: per-member gradients with per-member samples."""
    estimator = ESTIMATORS[name]
    theta, g = random_logits((6, 2, n), seed=25), random_logits((2, n), seed=26)
    sample = torch.randint(0, n, (6, 2), generator=torch.Generator().manual_seed(2))

    def loss(logits, s):
        return (g * estimator(logits, 1.3, sample=s)[0]).sum()

    batched = torch.func.vmap(torch.func.grad(loss))(theta, sample)
    for k in range(6):
        leaf = theta[k].clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(loss(leaf, sample[k]), leaf)
        assert (batched[k] - expected).abs().max() < EXACT


def test_data_checks_are_skipped_only_inside_vmap():
    seen = []
    torch.func.vmap(lambda x: seen.append(reinmax.validate_args_enabled()) or x)(torch.zeros(2, 3))
    assert seen == [False] and reinmax.validate_args_enabled()


# -------------------------------------------------------------------------------- CUDA
@requires_cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_matches_cpu_given_the_same_sample(name):
    theta = random_logits((32, 6), seed=27)
    sample = torch.randint(0, 6, (32,), generator=torch.Generator().manual_seed(0))
    g = random_logits((32, 6), seed=28)
    grads = []
    for device in ("cpu", "cuda"):
        leaf = theta.to(device).requires_grad_(True)
        y, soft = ESTIMATORS[name](leaf, 1.3, sample=sample.to(device))
        assert y.device.type == device
        (grad,) = torch.autograd.grad((g.to(device) * y).sum(), leaf)
        grads.append(grad.cpu())
    if name in SAMPLE_ONLY:
        assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-12)


@requires_cuda
@pytest.mark.parametrize("name", NAMES)
def test_cuda_sampling_and_masking(name):
    theta = MASKED_LOGITS.to("cuda").expand(20_000, 5)
    y, _ = ESTIMATORS[name](theta, generator=torch.Generator("cuda").manual_seed(0))
    counts = y.sum(0).double().cpu()
    assert counts[1] == 0
    keep = [0, 2, 3, 4]
    assert chi_square_p_value(counts[keep], torch.softmax(MASKED_LOGITS, -1)[keep]) > ALPHA


def test_fused_gumbel_rao_draws_in_cpu_sized_blocks_on_cpu_and_one_block_elsewhere():
    """Blocks keep a CPU's cache warm; on a GPU one block holds all K draws, because there the
    per-block kernel launches cost (2.4x an 8x4 training step on an H200, benchmarks/README)."""
    from reinmax.estimators import categorical as estimators
    cpu = torch.empty(3 * 100 * 4, 8)
    assert (estimators._gr_block_draws(cpu) == estimators.GUMBEL_RAO_KERNEL["block"] // cpu.numel()
            < 1000)
    elsewhere = torch.empty(3 * 100 * 4, 8, device="meta")
    assert estimators._gr_block_draws(elsewhere) >= 10**12
