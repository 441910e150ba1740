"""Generated property test over EVERY registered estimator (all four families, read from
``reinmax.estimators.registry``): no NaN, no infinity, no invalid sample, whatever the dtype,
the shape, the category dimension, masked categories or extreme logits.

Each estimator gets ``CASES`` cases drawn from a generator seeded by its name (the same cases on
every run, none picked by hand): a dtype (float16, bfloat16, float32, float64: every registered
estimator takes all four), a shape (0 to 2 batch dimensions of 1 to 3, 2 to 8 categories or 1 to
4 binary variables), a category dimension (any, counted from the end), and logits mixing
standard normal values, a large scale (x 30) and extreme entries (+-1e4, +-4e4: a spread that
overflows float16 once subtracted); categories masked with -inf (never a whole row) for the
categorical families, +-inf for the Bernoulli straight-through family (b = 1 or 0 surely; the
Bernoulli score family refuses infinite logits). Checked in every case: the forward value is
finite and valid (one-hot rows, 0/1 values), a masked category is never drawn, ``softmax`` or
``sigmoid`` is finite, and the gradients (and the learned parts' gradients) are finite. Given
samples (``sample=``) may point at a category whose probability is 0 (masked or underflowing):
the straight-through estimators must still be finite there, except the 1/n-baseline ReinMax,
whose importance weight 1/(n pi_d) is infinite there and which refuses such a sample.

Budget: about 3 seconds of the suite on 2 cores (21 estimators x 12 cases, tiny shapes); keep it small.
"""
import math
import zlib

import pytest
import torch

import reinmax
from reinmax.estimators import registry

CASES = 12
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
EXTREMES = (1e4, -1e4, 4e4, -4e4)
SMALL = {"K": 8, "hidden": 8}                # small where an option sets the cost
REFUSES_IMPOSSIBLE_SAMPLE = {"ReinMax-1/n", "ReinMax-1/n-authors"}   # weight 1/(n pi_d)


def _randint(g, low, high):
    return int(torch.randint(low, high + 1, (), generator=g))


def _case(g, family):
    """One generated case: (dtype, logits, dim, mask) with mask True where a category or
    variable is masked (-inf; for bernoulli also +inf)."""
    dtype = DTYPES[_randint(g, 0, len(DTYPES) - 1)]
    batch = tuple(_randint(g, 1, 3) for _ in range(_randint(g, 0, 2)))
    last = _randint(g, 2, 8) if family in ("straight-through", "score") else _randint(g, 1, 4)
    shape = batch + (last,)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * (30.0 if _randint(g, 0, 1) else 1.0)
    extreme = torch.rand(shape, generator=g) < 0.3
    picks = torch.tensor(EXTREMES, dtype=torch.float64)[torch.randint(0, 4, shape, generator=g)]
    x = torch.where(extreme, picks, x)
    mask = torch.zeros(shape, dtype=torch.bool)
    if family in ("straight-through", "score"):
        mask = torch.rand(shape, generator=g) < 0.3
        keep = torch.randint(0, last, batch, generator=g)            # one category stays possible
        mask &= ~torch.nn.functional.one_hot(keep, last).bool()
        x = x.masked_fill(mask, -math.inf)
    elif family == "bernoulli":
        mask = torch.rand(shape, generator=g) < 0.2
        signs = torch.where(torch.rand(shape, generator=g) < 0.5, -math.inf, math.inf)
        x = torch.where(mask, signs.double(), x)
    dim = -_randint(g, 1, len(shape)) if family in ("straight-through", "score") else -1
    # Categories at `dim`: move the last axis there (the mask follows).
    logits, mask = x.movedim(-1, dim).to(dtype), mask.movedim(-1, dim)
    return dtype, logits, dim, mask


def _finite(*tensors):
    return all(t is None or bool(torch.isfinite(t.float()).all()) for t in tensors)


def _cases(name):
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    spec = registry.get_spec(name)
    for index in range(CASES):
        yield index, spec, g, _case(g, spec.family)


def _build(spec, **extra):
    options = {k: v for k, v in SMALL.items() if k in spec.options}
    return spec.build(**options, **extra)


def _describe(name, index, dtype, logits, dim):
    return f"{name} case {index}: {dtype}, shape {tuple(logits.shape)}, dim {dim}"


def _check_one_hot(y, dim, mask, where):
    assert _finite(y), f"{where}: forward not finite"
    assert bool(((y == 0) | (y == 1)).all()) and bool((y.sum(dim) == 1).all()), f"{where}: not one-hot"
    assert not bool(y.masked_select(mask).any()), f"{where}: a masked category was drawn"


@pytest.mark.parametrize("name", registry.names("straight-through"))
def test_straight_through_estimators_stay_finite_and_one_hot(name):
    for index, spec, g, (dtype, logits, dim, mask) in _cases(name):
        where = _describe(name, index, dtype, logits, dim)
        estimator = _build(spec)
        leaf = logits.clone().requires_grad_(True)
        y, soft = estimator(leaf, 1.0 + _randint(g, 0, 2) / 2, dim=dim,
                            generator=torch.Generator().manual_seed(index))
        _check_one_hot(y, dim, mask, where)
        assert _finite(soft), f"{where}: softmax not finite"
        w = torch.randn(y.shape, generator=g).to(dtype)
        grad, = torch.autograd.grad((y * w).sum() + (soft * w).sum(), leaf)
        assert _finite(grad), f"{where}: gradient not finite"
        # A given sample may be a category of probability 0 (masked or underflowing).
        moved = logits.movedim(dim, -1)
        sample = torch.randint(0, moved.shape[-1], moved.shape[:-1], generator=g)
        impossible = bool((torch.softmax(moved.float(), -1).gather(-1, sample.unsqueeze(-1)) == 0).any())
        if name in REFUSES_IMPOSSIBLE_SAMPLE and impossible:
            with pytest.raises(ValueError, match=r"probability 0"):
                estimator(leaf, dim=dim, sample=sample)
            continue
        y, soft = estimator(leaf, dim=dim, sample=sample, generator=torch.Generator().manual_seed(index))
        assert torch.equal(y.movedim(dim, -1).argmax(-1), sample), f"{where}: not the given sample"
        grad, = torch.autograd.grad((y * w).sum(), leaf)
        assert _finite(y, grad), f"{where}, sample= {sample.tolist()}: not finite"


@pytest.mark.parametrize("name", registry.names("score"))
def test_score_estimators_stay_finite(name):
    for index, spec, g, (dtype, logits, dim, mask) in _cases(name):
        where = _describe(name, index, dtype, logits, dim)
        estimator = _build(spec)
        w = torch.randn(logits.shape, generator=g).to(dtype)
        drawn = []

        def f(D):                                   # one value per sample: categories summed out
            drawn.append(D.detach())
            return (D * w).sum(dim).sin()

        leaf = logits.clone().requires_grad_(True)
        surrogate, values = estimator(leaf, f, dim=dim, generator=torch.Generator().manual_seed(index))
        D = drawn[0]
        categories = D.dim() + dim if dim < 0 else dim
        _check_one_hot(D, categories, mask.expand(D.shape), where)
        grad, = torch.autograd.grad(surrogate.sum(), leaf)
        assert _finite(surrogate, values, grad), f"{where}: not finite"


@pytest.mark.parametrize("name", registry.names("bernoulli"))
def test_bernoulli_estimators_stay_finite_and_binary(name):
    for index, spec, g, (dtype, logits, _, mask) in _cases(name):
        where = _describe(name, index, dtype, logits, -1)
        estimator = _build(spec)
        leaf = logits.clone().requires_grad_(True)
        b, p = estimator(leaf, 1.0, generator=torch.Generator().manual_seed(index))
        assert _finite(b, p), f"{where}: forward not finite"
        assert bool(((b == 0) | (b == 1)).all()), f"{where}: not 0/1"
        assert torch.equal(b[mask], (logits[mask] > 0).to(b.dtype)), f"{where}: an impossible value drawn"
        w = torch.randn(b.shape, generator=g).to(dtype)
        grad, = torch.autograd.grad((b * w).sum() + (p * w).sum(), leaf)
        assert _finite(grad), f"{where}: gradient not finite"


@pytest.mark.parametrize("name", registry.names("bernoulli-score"))
def test_bernoulli_score_estimators_stay_finite(name):
    for index, spec, g, (dtype, logits, _, _) in _cases(name):
        where = _describe(name, index, dtype, logits, -1)
        D = logits.shape[-1]
        estimator = _build(spec, **({"num_latents": D} if "num_latents" in spec.options else {}))
        with torch.no_grad():                       # learned parts away from their zero start
            for parameter in estimator.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=g))
        W = torch.randn(D, D, generator=g).to(dtype)

        def f(b):                                   # differentiable in b (DoubleCV, RODEO, RELAX)
            return ((b - 0.3) @ W).tanh().sum(-1)

        leaf = logits.clone().requires_grad_(True)
        out = estimator(leaf, f, torch.Generator().manual_seed(index))
        assert bool(((out.samples == 0) | (out.samples == 1)).all()), f"{where}: not 0/1"
        grad, = torch.autograd.grad(estimator.surrogate(leaf, out) + out.values.sum(), leaf)
        estimator.variance_backward(out)
        learned = [p.grad for p in estimator.parameters()]
        assert _finite(out.grad, out.values, grad, *learned), f"{where}: not finite"
