"""reinmax.estimators.bernoulli: one logit per binary variable is the two-category form [0, a].

Given the same generator seed, every Bernoulli estimator draws the sample the two-category
estimator draws on the logits [0, a] (category 1 = b = 1), and its values and gradients equal
that estimator's to 1e-12 in float64, at tau = 1 and away from it. Its exact expectation (by
enumeration) is the paper's target: second order for ReinMax, first order for ST.
"""
import pytest
import torch

import reinmax
from reinmax import bernoulli, exact, registry

PAIRS = {  # Bernoulli estimator -> the two-category estimator it must equal
    "ST-Bernoulli": (bernoulli.st, reinmax.st, {}),
    "ReinMax-Bernoulli": (bernoulli.reinmax, reinmax.reinmax, {}),
    "STGS-Bernoulli": (bernoulli.stgs, reinmax.stgs, {}),
    "GR-MCK-Bernoulli": (bernoulli.gumbel_rao, reinmax.gumbel_rao, {"K": 5}),
}


def _two(a):
    return torch.stack([torch.zeros_like(a), a], -1)


def _run(fn, logits, tau, seed, sample, weights, two_category, options):
    """Values and the gradient of a loss that uses b, 1 - b, p and 1 - p (both categories)."""
    w0, w1, v0, v1 = weights
    leaf = logits.clone().requires_grad_(True)
    generator = torch.Generator().manual_seed(seed)
    if two_category:
        y, soft = fn(_two(leaf), tau, sample=None if sample is None else sample.long(),
                     generator=generator, **options)
        b, p, not_b, not_p = y[..., 1], soft[..., 1], y[..., 0], soft[..., 0]
    else:
        b, p = fn(leaf, tau, sample=sample, generator=generator, **options)
        not_b, not_p = 1 - b, 1 - p
    loss = (w1 * b + w0 * not_b).sum() + (v1 * p + v0 * not_p).sum()
    (grad,) = torch.autograd.grad(loss, leaf)
    after = torch.rand(3, generator=generator, dtype=torch.float64)   # the same numbers drawn?
    return b.detach(), p.detach(), grad, after


@pytest.mark.parametrize("name", list(PAIRS))
@pytest.mark.parametrize("tau", [1.0, 0.6, 2.5])
@pytest.mark.parametrize("shape", [(40,), (3, 7)])
@pytest.mark.parametrize("given", [False, True])
def test_equals_the_two_category_estimator(name, tau, shape, given):
    g = torch.Generator().manual_seed(hash((name, tau, shape)) % 1000)
    logits = 2.5 * torch.randn(shape, generator=g, dtype=torch.float64)
    weights = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(4)]
    sample = (torch.rand(shape, generator=g) < 0.5).to(torch.float64) if given else None
    ours, theirs, options = PAIRS[name]
    b, p, grad, after = _run(ours, logits, tau, 7, sample, weights, False, options)
    b2, p2, grad2, after2 = _run(theirs, logits, tau, 7, sample, weights, True, options)
    assert torch.equal(b, b2)
    assert set(b.unique().tolist()) <= {0.0, 1.0} and b.dtype == torch.float64
    if given:
        assert torch.equal(b, sample)
    else:
        assert 0 < b.sum() < b.numel()        # both outcomes occur: the test compares something
    torch.testing.assert_close(p, torch.sigmoid(logits), rtol=0, atol=1e-15)
    torch.testing.assert_close(p, p2, rtol=0, atol=1e-15)
    torch.testing.assert_close(grad, grad2, rtol=0, atol=1e-12)
    assert grad.abs().max() > 1e-3
    assert torch.equal(after, after2)


@pytest.mark.parametrize("name", list(PAIRS))
def test_float32_draws_the_same_samples(name):
    logits = 2 * torch.randn(20000, generator=torch.Generator().manual_seed(8))
    ours, theirs, options = PAIRS[name]
    b, _ = ours(logits, 0.7, generator=torch.Generator().manual_seed(0), **options)
    y, _ = theirs(_two(logits), 0.7, generator=torch.Generator().manual_seed(0), **options)
    assert torch.equal(b, y[:, 1])


def test_the_registry_knows_them_and_any_shape_works():
    assert list(reinmax.BERNOULLI_ESTIMATORS) == list(PAIRS)
    assert reinmax.get_estimator("reinmax-bernoulli") is bernoulli.reinmax
    assert reinmax.get_estimator("GR-MCK-Bernoulli", K=3).keywords == {"K": 3}
    assert "ReinMax-Bernoulli" not in reinmax.ESTIMATORS       # not a one-hot estimator
    assert registry.names("bernoulli", draws_noise=True) == ["STGS-Bernoulli", "GR-MCK-Bernoulli"]
    for name, (fn, _, options) in PAIRS.items():
        for shape in [(), (2, 3, 4)]:
            leaf = torch.randn(shape, requires_grad=True)
            b, p = fn(leaf, 1.3, generator=torch.Generator().manual_seed(0), **options)
            assert b.shape == p.shape == shape and b.dtype == torch.float32, name
            b.sum().backward()
            assert leaf.grad.shape == shape


def test_stgs_given_the_logistic_noise_equals_stgs_given_the_gumbels():
    """logistic = G1 - G0 reproduces stgs(gumbels=G), hard and relaxed."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(50, generator=g, dtype=torch.float64)
    gumbels = -torch.log(torch.empty(50, 2, dtype=torch.float64).exponential_(generator=g))
    w = torch.randn(50, generator=g, dtype=torch.float64)
    for hard in (True, False):
        for tau in (0.5, 1.0):
            leaf = logits.clone().requires_grad_(True)
            b, _ = bernoulli.stgs(leaf, tau, hard, logistic=gumbels[:, 1] - gumbels[:, 0])
            (grad,) = torch.autograd.grad((w * b).sum(), leaf)
            leaf2 = logits.clone().requires_grad_(True)
            y, _ = reinmax.stgs(_two(leaf2), tau, hard, gumbels=gumbels)
            (grad2,) = torch.autograd.grad((w * y[:, 1] - w * y[:, 0] * 0).sum(), leaf2)
            torch.testing.assert_close(b, y[:, 1].detach(), rtol=0, atol=1e-12)
            torch.testing.assert_close(grad, grad2, rtol=0, atol=1e-12)


def test_hard_false_of_gumbel_rao_is_the_mean_relaxation():
    logits = torch.randn(30, dtype=torch.float64)
    b, _ = bernoulli.gumbel_rao(logits, 0.8, generator=torch.Generator().manual_seed(1), K=4)
    y, _ = reinmax.gumbel_rao(_two(logits), 0.8, False, generator=torch.Generator().manual_seed(1), K=4)
    relaxed, _ = bernoulli.gumbel_rao(logits, 0.8, False, generator=torch.Generator().manual_seed(1), K=4)
    torch.testing.assert_close(relaxed, y[:, 1], rtol=0, atol=1e-12)
    assert ((relaxed > 0.5) == (b > 0)).all()    # the relaxation lies on the sample's side


# ----------------------------------------------------------------- exact, by enumeration
def _expected(fn, f, logits):
    """E[gradient of f(b)] over all 2^m outcomes, weighted by their probabilities."""
    m = logits.numel()
    b = exact.configurations(m, 2).to(torch.float64)              # (2^m, m) 0/1 outcomes
    p = torch.sigmoid(logits)
    probability = torch.where(b > 0, p, 1 - p).prod(-1)
    rows = logits.expand(len(b), m).clone().requires_grad_(True)
    hard, _ = fn(rows, 1.0, sample=b)
    assert torch.equal(hard.detach(), b)
    (grad,) = torch.autograd.grad(f(torch.stack([1 - hard, hard], -1)).sum(), rows)
    return probability @ grad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_expectation_is_the_papers_target(seed):
    """E[ReinMax-Bernoulli] = the second-order target (Definition 3.2), E[ST-Bernoulli] = the
    first-order one (3.1), both on [0, a], read at the category-1 logit; and they differ."""
    g = torch.Generator().manual_seed(seed)
    logits = 1.5 * torch.randn(4, generator=g, dtype=torch.float64)
    f = exact.random_smooth_f((4, 2), generator=g)
    second = exact.second_order_target(f, _two(logits))[..., 1]
    first = exact.first_order_target(f, _two(logits))[..., 1]
    torch.testing.assert_close(_expected(bernoulli.reinmax, f, logits), second, rtol=0, atol=1e-12)
    torch.testing.assert_close(_expected(bernoulli.st, f, logits), first, rtol=0, atol=1e-12)
    assert (second - first).abs().max() > 1e-3


def test_draws_follow_sigmoid():
    logits = torch.tensor([-2.0, 0.0, 0.7, 3.0], dtype=torch.float64).expand(20000, 4)
    for name, (fn, _, options) in PAIRS.items():
        b, _ = fn(logits, 1.0, generator=torch.Generator().manual_seed(5), **options)
        p = torch.sigmoid(logits[0])
        assert ((b.mean(0) - p).abs() < 4 * (p * (1 - p) / 20000).sqrt() + 1e-9).all(), name


@pytest.mark.parametrize("name", ["ST-Bernoulli", "ReinMax-Bernoulli", "STGS-Bernoulli"])
def test_backward_is_twice_differentiable_given_the_sample(name):
    fn = reinmax.get_estimator(name)
    logits = torch.randn(6, dtype=torch.float64, requires_grad=True)
    sample = torch.tensor([0, 1, 1, 0, 1, 0])
    noise = torch.randn(6, dtype=torch.float64)
    kwargs = {"logistic": noise} if name == "STGS-Bernoulli" else {"sample": sample}
    assert torch.autograd.gradgradcheck(lambda a: fn(a, 0.7, **kwargs)[0], (logits,))


def test_torch_func_vmap_of_grad_is_the_per_row_gradient():
    logits = torch.randn(5, 3, dtype=torch.float64)
    sample = torch.tensor([[0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0]])
    for fn in (bernoulli.st, bernoulli.reinmax):
        loss = lambda a, s: (fn(a, 1.3, sample=s)[0] * torch.arange(3.0)).sum()    # noqa: E731
        batched = torch.func.vmap(torch.func.grad(loss))(logits, sample)
        leaf = logits.clone().requires_grad_(True)
        (plain,) = torch.autograd.grad(loss(leaf, sample), leaf)
        torch.testing.assert_close(batched, plain, rtol=0, atol=1e-15)


# ----------------------------------------------------------------- bad input
def test_bad_input_is_a_clear_error():
    a = torch.randn(3)
    with pytest.raises(ValueError, match=r"sample must hold 0/1 values .*got 2"):
        bernoulli.reinmax(a, sample=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match=r"sample must have the shape of logits, \(3,\); got \(2,\)"):
        bernoulli.st(a, sample=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="st has no soft"):
        bernoulli.st(a, hard=False)
    with pytest.raises(ValueError, match="logits contain NaN"):
        bernoulli.reinmax(torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="floating dtype"):
        bernoulli.reinmax(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="tau must be a positive finite number"):
        bernoulli.stgs(a, tau=0.0)
    with pytest.raises(ValueError, match="K must be a positive integer; got K=0"):
        bernoulli.gumbel_rao(a, K=0)
    with pytest.raises(ValueError, match="either logistic= or sample="):
        bernoulli.stgs(a, sample=torch.tensor([0, 1, 1]), logistic=torch.zeros(3))
    with pytest.raises(TypeError, match="K10"):
        reinmax.get_estimator("ST-Bernoulli", K10=1)
    b, _ = bernoulli.st(a, sample=torch.tensor([True, False, True]))   # bool samples are fine
    assert b.tolist() == [1.0, 0.0, 1.0]
