"""The REINFORCE family: surrogate objectives whose gradient is the score-function estimator.

Exact unbiasedness (enumeration) is in test_exact.py; here: the surrogate's values, the gradient
that reaches f's own parameters, shapes and dims, and sampling by Monte Carlo.
"""
import math

import pytest
import torch

import reinmax
from reinmax import exact
from conftest import random_logits, random_nonlinear_f


def test_surrogate_has_the_values_of_f_and_lets_f_train():
    theta = random_logits((8, 4), seed=0)
    weight = torch.randn(4, dtype=torch.float64, requires_grad=True)
    f = lambda D: (D * weight).sum(-1) ** 2
    sample = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    surrogate, values = reinmax.reinforce(theta, f, sample=sample)
    assert torch.equal(surrogate.detach(), values.detach())
    (grad_w,) = torch.autograd.grad(surrogate.sum(), weight)
    one_hot = torch.nn.functional.one_hot(sample, 4).double()
    by_hand = (2 * (one_hot * weight.detach()).sum(-1, keepdim=True) * one_hot).sum(0)
    assert torch.allclose(grad_w, by_hand, rtol=0, atol=1e-12)


def test_reinforce_gradient_per_sample_by_hand():
    """f(D) * d log pi_D / d theta = f(D) (D - pi), and with a baseline (f(D) - b)(D - pi)."""
    theta = random_logits(5, seed=1)
    f = lambda D: (D * torch.arange(5.0, dtype=D.dtype)).sum(-1) ** 2 + 1
    pi = torch.softmax(theta, -1)
    for d in range(5):
        D = torch.eye(5, dtype=theta.dtype)[d]
        for baseline in (None, 3.0):
            leaf = theta.clone().requires_grad_(True)
            surrogate, _ = reinmax.reinforce(leaf, f, sample=torch.tensor(d), baseline=baseline)
            (grad,) = torch.autograd.grad(surrogate, leaf)
            advantage = f(D) - (0 if baseline is None else baseline)
            assert (grad - advantage * (D - pi)).abs().max() < 1e-12


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_dims_and_several_variables(dim):
    """logits (3, 4, 5) with the categories on `dim`; f returns one value per leading row, so the
    log-probabilities of the other variables in that row are summed."""
    theta = random_logits((3, 4, 5), seed=2)
    moved_shape = theta.movedim(dim, -1).shape
    sample = torch.randint(0, moved_shape[-1], moved_shape[:-1], generator=torch.Generator().manual_seed(0))

    def f(D):                                            # D has the categories on `dim`
        return (D.movedim(dim, -1) * torch.linspace(-1, 1, moved_shape[-1], dtype=D.dtype)).sum((-1, -2))

    leaf = theta.clone().requires_grad_(True)
    surrogate, values = reinmax.reinforce(leaf, f, dim=dim, sample=sample, batch_dims=1)
    assert surrogate.shape == values.shape == moved_shape[:1]
    (grad,) = torch.autograd.grad(surrogate.sum(), leaf)
    moved = theta.movedim(dim, -1)
    D = torch.nn.functional.one_hot(sample, moved_shape[-1]).double()
    by_hand = values.detach()[:, None, None] * (D - torch.softmax(moved, -1))
    assert torch.allclose(grad, by_hand.movedim(-1, dim), rtol=0, atol=1e-12)


def test_rloo_shapes_and_leading_sample_dimension():
    theta = random_logits((6, 3), seed=3)
    surrogate, values = reinmax.rloo(theta, lambda D: D[..., 0], num_samples=4,
                                     generator=torch.Generator().manual_seed(0))
    assert surrogate.shape == values.shape == (4, 6)
    with pytest.raises(ValueError, match=r"sample must have the shape of logits without the category "
                                         r"dimension, \(4, 6\); got \(6,\)"):
        reinmax.rloo(theta, lambda D: D[..., 0], num_samples=4, sample=torch.zeros(6, dtype=torch.long))


@pytest.mark.parametrize("name", ["REINFORCE", "RLOO"])
def test_sampled_score_estimators_are_unbiased_by_monte_carlo(name):
    """With their own sampler (no sample=), the mean over many rows is within 5 standard errors
    of the exact gradient; RLOO's spread is smaller than REINFORCE's on this f."""
    theta0 = random_logits(4, seed=4)
    f_batch = random_nonlinear_f(1, 4, seed=5)
    f = lambda D: f_batch(D.reshape(-1, 4)).reshape(D.shape[:-1])
    N = 40_000
    theta = theta0.expand(N, 4).clone().requires_grad_(True)
    estimator = reinmax.get_score_estimator(name)
    surrogate, _ = estimator(theta, f, generator=torch.Generator().manual_seed(6))
    per_row = surrogate.mean(0) if name == "RLOO" else surrogate
    (grad,) = torch.autograd.grad(per_row.sum(), theta)
    mean, stderr = grad.mean(0), grad.std(0) / math.sqrt(N)
    true = exact.exact_gradient(f_batch, theta0)
    assert ((mean - true).abs() < 5 * stderr).all(), (mean, true, stderr)


def test_rloo_has_lower_variance_than_reinforce_here():
    theta0 = random_logits(4, seed=4)
    f = lambda D: (D * torch.tensor([3.0, 3.5, 2.5, 3.2], dtype=D.dtype)).sum(-1)  # far from 0
    theta = theta0.expand(5000, 4)
    spreads = {}
    for name, estimator in reinmax.SCORE_ESTIMATORS.items():
        leaf = theta.clone().requires_grad_(True)
        surrogate, _ = estimator(leaf, f, generator=torch.Generator().manual_seed(7))
        per_row = surrogate.mean(0) if name == "RLOO" else surrogate
        spreads[name] = torch.autograd.grad(per_row.sum(), leaf)[0].var(0).sum().item()
    assert spreads["RLOO"] < 0.5 * spreads["REINFORCE"], spreads


def test_generator_reproducibility():
    theta = random_logits((100, 5), seed=8)
    f = lambda D: D[..., 2]
    draws = [reinmax.reinforce(theta, f, generator=torch.Generator().manual_seed(s))[1] for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_masked_categories_are_never_sampled_and_get_no_gradient():
    theta = torch.tensor([[0.0, -math.inf, 1.0]] * 3000, requires_grad=True)
    surrogate, values = reinmax.reinforce(theta, lambda D: D[..., 1] * 100 + D[..., 2],
                                          generator=torch.Generator().manual_seed(0))
    assert (values < 100).all()
    (grad,) = torch.autograd.grad(surrogate.sum(), theta)
    assert torch.isfinite(grad).all() and (grad[:, 1] == 0).all()


# ------------------------------------------------------- one value per sample (batch_dims)
def test_a_batch_mean_is_refused_naming_both_shapes():
    """f returning a scalar (a mean over the batch) gave a valid but far noisier estimate; now it
    is a ValueError naming the expected and the returned shape, for both estimators."""
    theta = random_logits((8, 4), seed=9)
    f_mean = lambda D: D[..., 0].mean()
    with pytest.raises(ValueError, match=r"one value per sample, shape \(8,\) .*got shape \(\)"):
        reinmax.reinforce(theta, f_mean, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"one value per sample, shape \(3, 8\) \(num_samples, then "
                                         r"the first batch_dims=1 .*got shape \(\)"):
        reinmax.rloo(theta, f_mean, num_samples=3, generator=torch.Generator().manual_seed(0))
    # a mean over RLOO's draws only is refused too
    with pytest.raises(ValueError, match=r"shape \(3, 8\) .*got shape \(8,\)"):
        reinmax.rloo(theta, lambda D: D[..., 0].mean(0), num_samples=3)


def test_batch_dims_says_which_leading_dimensions_are_samples():
    """logits (batch, latents, categories): by default every latent is a sample, and an f that
    returns one value per example is told to pass batch_dims=1; with it, the latents' log-
    probabilities are summed per example (checked against batch_dims=2 with f per latent)."""
    theta = random_logits((5, 3, 4), seed=10)
    weight = torch.linspace(-1, 1, 4, dtype=torch.float64)
    per_example = lambda D: (D * weight).sum((-1, -2))
    with pytest.raises(ValueError, match=r"shape \(5, 3\) .*got shape \(5,\); if only the first 1 "
                                         r"dimensions of the logits are samples .*pass batch_dims=1"):
        reinmax.reinforce(theta, per_example)
    sample = torch.randint(0, 4, (5, 3), generator=torch.Generator().manual_seed(1))
    leaf = theta.clone().requires_grad_(True)
    surrogate, values = reinmax.reinforce(leaf, per_example, sample=sample, batch_dims=1)
    assert surrogate.shape == values.shape == (5,)
    (grad,) = torch.autograd.grad(surrogate.sum(), leaf)
    D = torch.nn.functional.one_hot(sample, 4).double()
    by_hand = values.detach()[:, None, None] * (D - torch.softmax(theta, -1))
    assert torch.allclose(grad, by_hand, rtol=0, atol=1e-12)
    # batch_dims=0: the whole tensor is one sample, f returns a scalar
    surrogate, values = reinmax.reinforce(theta, lambda D: (D * weight).sum(), sample=sample, batch_dims=0)
    assert values.shape == ()
    # RLOO: the draws come first, then batch_dims dimensions of the logits
    surrogate, values = reinmax.rloo(theta, per_example, num_samples=3, batch_dims=1,
                                     generator=torch.Generator().manual_seed(2))
    assert surrogate.shape == values.shape == (3, 5)


def test_batch_dims_is_checked():
    theta = random_logits((5, 4), seed=11)
    f = lambda D: D[..., 0]
    with pytest.raises(ValueError, match=r"batch_dims must be between 0 and 1 \(the logits have 1 "
                                         r"dimensions besides the categories\); got batch_dims=2"):
        reinmax.reinforce(theta, f, batch_dims=2)
    with pytest.raises(TypeError, match=r"batch_dims must be an integer .*got batch_dims=True"):
        reinmax.rloo(theta, f, batch_dims=True)
    with pytest.raises(ValueError, match=r"got a list"):
        reinmax.reinforce(theta, lambda D: [0.0] * 5)
