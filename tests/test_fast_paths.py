"""The fast paths of ST and ReinMax give the estimators of the paper, to float64 rounding.

Two categories take a sigmoid path inside the public ``st`` and ``reinmax`` (issue 4: binary
variables must be fast where every user gets it). A two-category problem is also a
three-category problem whose third category is masked (-inf, probability 0), which the general
path computes; so the two paths can be compared on the same logits, the same sample and the
same random numbers. Rows shorter than 16 use an explicit softmax; they are compared with the
reference Algorithms 1 and 2 around that threshold.
"""
import itertools

import pytest
import torch
from torch.func import grad, vmap

import reinmax
from reinmax.theory.algorithms import reinmax_algorithm2, st_algorithm1

from conftest import random_logits

ESTIMATORS = {"st": reinmax.st, "reinmax": reinmax.reinmax}
REFERENCES = {"st": st_algorithm1, "reinmax": reinmax_algorithm2}
# The Gumbel family's two-category paths (same layout and autograd properties as ST/ReinMax).
GUMBEL_FAMILY = {
    "stgs": reinmax.stgs,
    "gst": lambda logits, tau, **options: reinmax.gst(logits, tau, gap=1.0, **options),
    "gumbel_rao": lambda logits, tau, **options: reinmax.gumbel_rao(logits, tau, K="quadrature",
                                                                    **options),
}
TWO_CATEGORY = {**ESTIMATORS, **GUMBEL_FAMILY}
TAUS = [1.0, 1.3, 0.5]
USES = ["hard", "soft", "both"]   # which outputs the loss uses (so either gradient may be None)
EXACT = 1e-12                     # float64 rounding of O(1) values; anything wrong is far larger


def loss_of(y_hard, y_soft, use, w_hard, w_soft):
    """A nonlinear loss of the outputs the test names (nonlinear: the gradient then depends on
    the sampled vertex, so a wrong formula cannot hide behind linearity)."""
    loss = 0.0
    if use in ("hard", "both"):
        loss = loss + (torch.sin(3 * y_hard) * w_hard).sum() + (y_hard * w_hard).sum() ** 2
    if use in ("soft", "both"):
        loss = loss + (y_soft * y_soft * w_soft).sum()
    return loss


def run(estimator, logits, tau, sample, use, w_hard, w_soft, generator=None):
    """Outputs and gradient of one estimator call under ``loss_of``."""
    logits = logits.clone().requires_grad_()
    y_hard, y_soft = estimator(logits, tau, sample=sample, generator=generator)
    loss_of(y_hard, y_soft, use, w_hard, w_soft).backward()
    return y_hard.detach(), y_soft.detach(), logits.grad


def masked_binary_problem(seed):
    """float64 logits (6, 5, 2) with masked categories, and a sample that avoids the masks."""
    logits = random_logits((6, 5, 2), seed, scale=2.0)
    logits[0, 0, 0] = -float("inf")
    logits[1, 2, 1] = -float("inf")
    sample = torch.randint(0, 2, (6, 5), generator=torch.Generator().manual_seed(seed))
    sample[0, 0], sample[1, 2] = 1, 0
    return logits, sample


def padded(tensor, value):
    """Append a third category holding ``value``."""
    return torch.cat([tensor, torch.full(tensor.shape[:-1] + (1,), value, dtype=tensor.dtype)], -1)


@pytest.mark.parametrize("name,tau,use", list(itertools.product(ESTIMATORS, TAUS, USES)))
def test_two_categories_equal_the_general_path_with_a_masked_third(name, tau, use):
    estimator = ESTIMATORS[name]
    logits, sample = masked_binary_problem(seed=1)
    w_hard = random_logits((6, 5, 2), seed=2)
    w_soft = random_logits((6, 5, 2), seed=3)
    fast = run(estimator, logits, tau, sample, use, w_hard, w_soft)
    general = run(estimator, padded(logits, -float("inf")), tau, sample, use,
                  padded(w_hard, 0.0), padded(w_soft, 0.0))
    for a, b in zip(fast, general):
        assert torch.isfinite(a).all()
        assert (a - b[..., :2]).abs().max() < EXACT
    assert (general[2][..., 2] == 0).all()   # the masked third category gets no gradient


@pytest.mark.parametrize("name,tau,use", list(itertools.product(ESTIMATORS, TAUS, USES)))
def test_two_categories_equal_the_reference_algorithms(name, tau, use):
    logits = random_logits((7, 3, 2), seed=4, scale=2.0)
    sample = torch.randint(0, 2, (7, 3), generator=torch.Generator().manual_seed(5))
    w_hard, w_soft = random_logits((7, 3, 2), seed=6), random_logits((7, 3, 2), seed=7)
    y_hard, y_soft, gradient = run(ESTIMATORS[name], logits, tau, sample, use, w_hard, w_soft)

    theta = logits.clone().requires_grad_()
    ref_hard = REFERENCES[name](theta, tau, sample=sample)
    loss_of(ref_hard, torch.softmax(theta, -1), use, w_hard, w_soft).backward()
    assert torch.equal(y_hard, ref_hard.detach())
    assert (y_soft - torch.softmax(logits, -1)).abs().max() < EXACT
    assert (gradient - theta.grad).abs().max() < EXACT


@pytest.mark.parametrize("name,n,tau", list(itertools.product(ESTIMATORS, [3, 10, 15, 16, 40],
                                                              [1.0, 1.3])))
def test_short_and_long_rows_equal_the_reference_algorithms(name, n, tau):
    """Rows shorter than 16 use an explicit softmax, longer ones torch.softmax: both exact."""
    logits = random_logits((4, 5, n), seed=8, scale=2.0)
    sample = torch.randint(0, n, (4, 5), generator=torch.Generator().manual_seed(9))
    w_hard, w_soft = random_logits((4, 5, n), seed=10), random_logits((4, 5, n), seed=11)
    y_hard, y_soft, gradient = run(ESTIMATORS[name], logits, tau, sample, "both", w_hard, w_soft)
    theta = logits.clone().requires_grad_()
    ref_hard = REFERENCES[name](theta, tau, sample=sample)
    loss_of(ref_hard, torch.softmax(theta, -1), "both", w_hard, w_soft).backward()
    assert torch.equal(y_hard, ref_hard.detach())
    assert (y_soft - torch.softmax(logits, -1)).abs().max() < EXACT
    assert (gradient - theta.grad).abs().max() < EXACT


@pytest.mark.parametrize("name", ESTIMATORS)
def test_two_categories_draw_the_general_paths_samples_from_the_same_seed(name):
    """Both paths invert the CDF of the same uniform numbers: the samples agree row by row
    (float64, where a disagreement needs u within rounding of p0)."""
    logits, _ = masked_binary_problem(seed=12)
    logits = torch.cat([logits, random_logits((2000, 5, 2), seed=13)])
    fast, _ = ESTIMATORS[name](logits, 1.3, generator=torch.Generator().manual_seed(14))
    general, _ = ESTIMATORS[name](padded(logits, -float("inf")), 1.3,
                                  generator=torch.Generator().manual_seed(14))
    assert torch.equal(fast, general[..., :2])
    assert 0.3 < fast[..., 1].mean() < 0.7   # both categories are drawn, not a constant


@pytest.mark.parametrize("name,dtype", list(itertools.product(
    ESTIMATORS, [torch.float32, torch.float16, torch.bfloat16])))
def test_two_categories_never_draw_a_masked_category_and_keep_gradients_finite(name, dtype):
    logits = torch.randn(20000, 2).to(dtype)
    logits[::2, 0] = -float("inf")     # even rows: only category 1 is possible
    logits[1::2, 1] = -float("inf")    # odd rows: only category 0
    logits.requires_grad_()
    y_hard, y_soft = ESTIMATORS[name](logits, 1.3, generator=torch.Generator().manual_seed(0))
    assert y_hard.dtype == y_soft.dtype == dtype
    assert (y_hard[::2, 1] == 1).all() and (y_hard[1::2, 0] == 1).all()
    (y_hard * torch.randn(20000, 2).to(dtype)).sum().add((y_soft * y_soft).sum()).backward()
    assert torch.isfinite(logits.grad).all()


@pytest.mark.parametrize("name,dtype", list(itertools.product(ESTIMATORS,
                                                              [torch.float16, torch.bfloat16])))
def test_two_categories_in_half_precision_follow_float64(name, dtype):
    logits = random_logits((50, 2), seed=15)
    sample = torch.randint(0, 2, (50,), generator=torch.Generator().manual_seed(16))
    w = random_logits((50, 2), seed=17)
    expected = run(ESTIMATORS[name], logits, 1.3, sample, "both", w, w)
    low = run(ESTIMATORS[name], logits.to(dtype), 1.3, sample, "both", w.to(dtype), w.to(dtype))
    tolerance = {torch.float16: 2e-2, torch.bfloat16: 1e-1}[dtype]
    assert torch.equal(low[0].double(), expected[0])
    for a, b in zip(low[1:], expected[1:]):
        assert a.dtype == dtype
        assert (a.double() - b).abs().max() < tolerance * (1 + b.abs().max())


@pytest.mark.parametrize("name,tau,n", list(itertools.product(ESTIMATORS, [1.0, 1.3], [2, 10])))
def test_vmap_of_grad_with_given_samples_equals_a_loop(name, tau, n):
    """torch.func batches the fast paths (their in-place shortcuts are off under vmap)."""
    estimator = ESTIMATORS[name]
    logits = random_logits((5, 3, n), seed=18)
    samples = torch.randint(0, n, (5, 3), generator=torch.Generator().manual_seed(19))
    w = random_logits((3, n), seed=20)

    def loss(theta, sample):
        y_hard, y_soft = estimator(theta, tau, sample=sample)
        return (y_hard * w).sum() + (y_soft * y_soft * w).sum()

    batched = vmap(grad(loss))(logits, samples)
    looped = torch.stack([grad(loss)(theta, s) for theta, s in zip(logits, samples)])
    assert (batched - looped).abs().max() < EXACT
    # only the samples batched, the logits shared: the one-hot and gradients follow the sample
    shared = vmap(grad(loss), in_dims=(None, 0))(logits[0], samples)
    looped = torch.stack([grad(loss)(logits[0], s) for s in samples])
    assert (shared - looped).abs().max() < EXACT


@pytest.mark.parametrize("name", ESTIMATORS)
def test_two_category_rows_with_bad_values_are_clear_errors(name):
    """The sigmoid form would map +inf to a probability; the check catches it like softmax."""
    for bad, message in [(float("nan"), "NaN"), (float("inf"), r"\+inf")]:
        logits = torch.randn(3, 2)
        logits[1, 0] = bad
        with pytest.raises(ValueError, match=message):
            ESTIMATORS[name](logits)
    logits = torch.randn(3, 2)
    logits[2] = -float("inf")
    with pytest.raises(ValueError, match="all -inf"):
        ESTIMATORS[name](logits)
    huge = torch.full((70000, 2), 60000.0, dtype=torch.float16)   # a float16 sum would overflow
    ESTIMATORS[name](huge)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_two_categories_keep_small_probabilities_exact(name):
    """p0 = sigmoid(-d) itself, not 1 - sigmoid(d), which would lose a probability of 1e-13
    (and the gradient that scales with it) to cancellation, where softmax keeps it."""
    logits = torch.tensor([[0.0, 30.0], [-25.0, 5.0], [40.0, 0.0]], dtype=torch.float64,
                          requires_grad=True)
    y_hard, y_soft = ESTIMATORS[name](logits, sample=torch.tensor([1, 1, 0]))
    expected = torch.softmax(logits.detach(), -1)
    assert ((y_soft - expected).abs() <= 1e-14 * expected).all()
    (y_soft[:, 0] + y_soft[:, 1] * 0).sum().backward()   # gradient p0 p1 [-1, 1], p0 tiny
    gradient = expected[:, 0] * expected[:, 1]
    assert ((logits.grad[:, 1] + gradient).abs() <= 1e-12 * gradient).all()


# Two categories at any dim and from a broadcast (expanded) input: the results are new tensors
# laid out with the categories at the caller's dim (two contiguous planes unless dim is last),
# and what depends on the logits only is computed once per distinct row (reinmax.estimators.two_category).
def broadcast_problem(seed):
    """float64 parameters (4, 1, 3, 2) seen as logits (4, 5, 3, 2) through expand, a sample
    for every one of the 4 * 5 * 3 rows, and loss weights."""
    base = random_logits((4, 1, 3, 2), seed, scale=2.0)
    sample = torch.randint(0, 2, (4, 5, 3), generator=torch.Generator().manual_seed(seed + 1))
    return base, sample, random_logits((4, 5, 3, 2), seed + 2), random_logits((4, 5, 3, 2), seed + 3)


@pytest.mark.parametrize("name,tau,use,dim", list(itertools.product(
    ESTIMATORS, TAUS, USES, [3, 1, 0])))
def test_two_categories_at_any_dim_from_a_broadcast_input_equal_the_reference(name, tau, use, dim):
    base, sample, w_hard, w_soft = broadcast_problem(seed=30)
    theta = base.clone().requires_grad_()
    # the caller's tensor: categories at dim, rows broadcast along the batch of 5
    logits = theta.expand(4, 5, 3, 2).movedim(-1, dim)
    y_hard, y_soft = ESTIMATORS[name](logits, tau, dim=dim, sample=sample)
    assert y_hard.shape == y_soft.shape == logits.shape
    assert y_hard.is_contiguous()          # the caller's layout, not a view of another one
    y_hard, y_soft = y_hard.movedim(dim, -1), y_soft.movedim(dim, -1)
    loss_of(y_hard, y_soft, use, w_hard, w_soft).backward()

    reference = base.expand(4, 5, 3, 2).clone().requires_grad_()
    ref_hard = REFERENCES[name](reference, tau, sample=sample)
    loss_of(ref_hard, torch.softmax(reference, -1), use, w_hard, w_soft).backward()
    assert torch.equal(y_hard.detach(), ref_hard.detach())
    assert (y_soft.detach() - torch.softmax(reference.detach(), -1)).abs().max() < EXACT
    # autograd sums the reference's gradient over the batch of 5, as expand's backward does
    assert (theta.grad - reference.grad.sum(1, keepdim=True)).abs().max() < EXACT


@pytest.mark.parametrize("name,dtype", list(itertools.product(ESTIMATORS, [torch.float32, torch.float64])))
def test_two_categories_at_dim_1_draw_the_same_samples_as_at_the_last_dim(name, dtype):
    """The uniform numbers are drawn in the logical order of the rows, so the layout of the
    result does not change the sample; the gradients agree to rounding."""
    base = random_logits((3, 1, 7, 2), seed=31).to(dtype)
    results = []
    for dim in (-1, 1):
        theta = base.clone().requires_grad_()
        logits = theta.expand(3, 50, 7, 2)
        if dim == 1:
            logits = logits.movedim(-1, 1)
        y_hard, _ = ESTIMATORS[name](logits, 1.3, dim=dim, generator=torch.Generator().manual_seed(32))
        y_hard = y_hard.movedim(1, -1) if dim == 1 else y_hard
        (torch.sin(3 * y_hard) * torch.arange(14.0, dtype=dtype).view(7, 2)).sum().backward()
        results.append((y_hard.detach(), theta.grad))
    assert torch.equal(results[0][0], results[1][0])
    assert 0.2 < results[0][0][..., 1].mean() < 0.8
    tolerance = EXACT if dtype == torch.float64 else 1e-5
    assert (results[0][1] - results[1][1]).abs().max() < tolerance


@pytest.mark.parametrize("name,dim", list(itertools.product(TWO_CATEGORY, [-1, 0])))
def test_two_category_one_hot_can_be_modified_in_place(name, dim):
    """Outputs of an autograd Function that are views of its own tensors refuse in-place
    changes; the fast path returns whole tensors, as torch's own functions do, and does not
    save the one-hot for backward (y_soft is saved, as torch.softmax saves its output)."""
    logits = random_logits((2, 6), seed=33) if dim == 0 else random_logits((6, 2), seed=33)
    logits.requires_grad_()
    y_hard, y_soft = TWO_CATEGORY[name](logits, 1.3, dim=dim, generator=torch.Generator().manual_seed(0))
    expected = torch.autograd.grad((y_hard * 2.0).sum() + (y_soft * y_soft).sum(), logits,
                                   retain_graph=True)[0]
    y_hard.mul_(2.0)
    (y_hard.sum() + (y_soft * y_soft).sum()).backward()
    assert (logits.grad - expected).abs().max() < EXACT


@pytest.mark.parametrize("name,dim", list(itertools.product(TWO_CATEGORY, [-1, 1])))
def test_two_categories_double_backward_through_the_fast_path(name, dim):
    """create_graph=True runs the backward with autograd on: the functional form is used, and
    its gradient agrees with the fast one."""
    base = random_logits((3, 1, 4, 2), seed=34)
    sample = torch.randint(0, 2, (3, 5, 4), generator=torch.Generator().manual_seed(35))
    grads = []
    for create_graph in (False, True):
        theta = base.clone().requires_grad_()
        logits = theta.expand(3, 5, 4, 2)
        logits = logits.movedim(-1, dim) if dim != -1 else logits
        y_hard, y_soft = TWO_CATEGORY[name](logits, 1.3, dim=dim, sample=sample,
                                            generator=torch.Generator().manual_seed(47))
        loss = (torch.sin(3 * y_hard) + y_soft * y_soft).sum()
        grads.append(torch.autograd.grad(loss, theta, create_graph=create_graph)[0])
    assert (grads[0] - grads[1]).abs().max() < EXACT


@pytest.mark.parametrize("name,use", list(itertools.product(GUMBEL_FAMILY, USES)))
def test_gumbel_family_at_dim_1_equals_the_last_dim_and_lays_out_planes(name, use):
    """Categories at dim 1 of a broadcast input: the same samples and gradients as at the last
    dim (float64, same generator seed), results in the caller's layout as contiguous planes."""
    base = random_logits((3, 1, 4, 2), seed=40, scale=2.0)
    w_hard = torch.randn(3, 5, 4, 2, generator=torch.Generator().manual_seed(41), dtype=torch.float64)
    w_soft = torch.randn(3, 5, 4, 2, generator=torch.Generator().manual_seed(42), dtype=torch.float64)
    results = {}
    for dim in (-1, 1):
        theta = base.clone().requires_grad_()
        logits = theta.expand(3, 5, 4, 2)
        logits = logits.movedim(-1, 1) if dim == 1 else logits
        y_hard, y_soft = GUMBEL_FAMILY[name](logits, 0.7, dim=dim,
                                             generator=torch.Generator().manual_seed(43))
        if dim == 1:
            assert y_hard.shape == (3, 2, 5, 4) and y_hard.is_contiguous()
            y_hard, y_soft = y_hard.movedim(1, -1), y_soft.movedim(1, -1)
        loss = loss_of(y_hard, y_soft, use, w_hard, w_soft)
        results[dim] = (y_hard.detach(), y_soft.detach(), torch.autograd.grad(loss, theta)[0])
    for a, b in zip(results[-1], results[1]):
        assert (a - b).abs().max() < EXACT
