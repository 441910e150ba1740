"""Several samples per distribution (K draws per logit row, by expanding the logits) and the
official package's samples for the same seed (reinmax.estimators.sampling.official_sample)."""
import pytest
import torch

import reinmax
from reinmax import exact, reference
from reinmax.estimators.sampling import official_sample

K = 4000


@pytest.mark.parametrize("name,options", [("ST", {}), ("ReinMax", {}), ("STGS", {}),
                                          ("GR-MCK", {"K": 2}), ("GST-1.0", {})])
@pytest.mark.parametrize("n", [2, 4])
def test_k_draws_by_expanding_the_logits(name, options, n):
    """logits.unsqueeze(0).expand(K, ...) (stride 0, not contiguous) gives K independent draws
    per row, the same as a contiguous copy from the same seed, and its gradient is the sum of
    the K per-draw gradients; for ReinMax their mean is the exact expectation."""
    g = torch.Generator().manual_seed(n)
    theta = torch.randn(3, n, generator=g, dtype=torch.float64)
    w = torch.randn(3, n, generator=g, dtype=torch.float64)
    fn = reinmax.get_estimator(name, **options)
    leaf = theta.clone().requires_grad_(True)
    expanded = leaf.unsqueeze(0).expand(K, 3, n)
    assert not expanded.is_contiguous()
    y, _ = fn(expanded, 1.3, generator=torch.Generator().manual_seed(0))
    (grad,) = torch.autograd.grad((w * y).sum(), leaf)
    rows = theta.expand(K, 3, n).clone().requires_grad_(True)         # K independent copies
    y2, _ = fn(rows, 1.3, generator=torch.Generator().manual_seed(0))
    (per_draw,) = torch.autograd.grad((w * y2).sum(), rows)
    assert torch.equal(y, y2)
    torch.testing.assert_close(grad, per_draw.sum(0), rtol=1e-12, atol=1e-9)
    # K independent draws from softmax(theta): frequencies within 5 standard errors
    p = torch.softmax(theta, -1)
    assert ((y.mean(0) - p).abs() <= 5 * (p * (1 - p) / K).sqrt() + 1e-12).all()
    assert (y[1:] != y[:-1]).any(-1).any(0).all()                    # not one draw repeated
    if reinmax.estimators.registry.get_spec(name).sample_only_backward:
        expected = exact.expected_estimate(fn, lambda D: (w * D).sum((-1, -2)), theta, 1.3)
        stderr = per_draw.std(0) / K ** 0.5
        assert ((grad / K - expected).abs() <= 5 * stderr + 1e-12).all()


def test_k_draws_for_bernoulli():
    theta = torch.tensor([-1.0, 0.3, 2.0], dtype=torch.float64)
    leaf = theta.clone().requires_grad_(True)
    b, p = reinmax.estimators.bernoulli.reinmax(leaf.expand(K, 3), generator=torch.Generator().manual_seed(1))
    b.sum().backward()
    q = torch.sigmoid(theta)
    assert ((b.mean(0) - q).abs() <= 5 * (q * (1 - q) / K).sqrt()).all()
    rows = theta.expand(K, 3).clone().requires_grad_(True)
    b2, _ = reinmax.estimators.bernoulli.reinmax(rows, generator=torch.Generator().manual_seed(1))
    b2.sum().backward()
    assert torch.equal(b, b2)
    torch.testing.assert_close(leaf.grad, rows.grad.sum(0), rtol=1e-12, atol=1e-9)


# ----------------------------------------------------------------- the official package's draws
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_official_sample_is_torch_multinomial(dtype):
    logits = torch.randn(5, 7, 6, dtype=dtype)
    n = logits.shape[-1]
    for replacement in (True, False):      # one draw per row: both forms draw the same numbers
        torch.manual_seed(11)
        ours = official_sample(logits)
        torch.manual_seed(11)
        theirs = torch.multinomial(torch.softmax(logits, -1).view(-1, n), 1, replacement=replacement)
        assert torch.equal(ours, theirs.view(5, 7))
    ours = official_sample(logits.movedim(-1, 1), dim=1, generator=torch.Generator().manual_seed(3))
    theirs = torch.multinomial(torch.softmax(logits, -1).view(-1, n), 1,
                               generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, theirs.view(5, 7))
    with pytest.raises(TypeError, match="floating dtype"):
        official_sample(torch.ones(2, 3, dtype=torch.long))


def test_official_samples_reproduce_the_official_algorithm():
    """Algorithm 2 as printed, drawing with torch.multinomial as the official package does, and
    reinmax.reinmax given official_sample: the same sample and gradient for the same seed. Our
    own sampler draws other samples from that seed (same distribution)."""
    theta = torch.randn(200, 5, dtype=torch.float64)
    w = torch.randn(200, 5, dtype=torch.float64)
    leaf = theta.clone().requires_grad_(True)
    torch.manual_seed(4)
    y_ref = reference.reinmax_algorithm2(leaf, 1.3)
    (grad_ref,) = torch.autograd.grad((w * y_ref).sum(), leaf)
    leaf = theta.clone().requires_grad_(True)
    torch.manual_seed(4)
    y, _ = reinmax.reinmax(leaf, 1.3, sample=official_sample(leaf))
    (grad,) = torch.autograd.grad((w * y).sum(), leaf)
    assert torch.equal(y.detach(), y_ref.detach())
    torch.testing.assert_close(grad, grad_ref, rtol=1e-10, atol=1e-12)
    torch.manual_seed(4)
    ours, _ = reinmax.reinmax(theta, 1.3)
    assert not torch.equal(ours, y.detach())
