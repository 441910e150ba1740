"""Autograd beyond one backward pass: second derivatives (gradient penalties, meta-learning,
Hessian-vector products) and outputs that receive no gradient.

The second derivative of an estimator is that of its backward formula with the sample, and any
noise or sample-dependent perturbation, held fixed, as the first derivative holds them. Where that
backward is smooth in the logits given what is fixed (ST, ReinMax, the 1/n forms given
``sample=``, STGS given ``gumbels=``), ``gradgradcheck`` compares it with finite differences in
float64; the two-category Gumbel forms (STGS drawing its own noise, GST) are compared with autograd
through the plain formula; GR-MCK refuses with a clear error.
"""
import pytest
import torch

import reinmax
from reinmax import exact, registry
from reinmax.estimators.sampling import uniform

TAUS = [1.0, 0.7, 1.8]
SHAPES = [(3, 2), (3, 5)]          # two categories (the sigmoid fast paths) and more
SMOOTH = [reinmax.st, reinmax.reinmax, reinmax.reinmax_uniform_baseline,
          reinmax.reinmax_uniform_baseline_authors]


def _logits(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64).requires_grad_(True)


def _sample(shape, seed=1):
    return torch.randint(0, shape[-1], shape[:-1], generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------- second derivatives
@pytest.mark.parametrize("estimator", SMOOTH, ids=lambda f: f.__name__)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", TAUS)
def test_second_derivative_given_the_sample_matches_finite_differences(estimator, shape, tau):
    logits, sample = _logits(shape), _sample(shape)
    assert torch.autograd.gradgradcheck(lambda x: estimator(x, tau, sample=sample), (logits,))


@pytest.mark.parametrize("estimator", [reinmax.st, reinmax.reinmax], ids=lambda f: f.__name__)
@pytest.mark.parametrize("tau", [1.0, 1.8])
def test_second_derivative_with_drawn_samples_and_other_layouts(estimator, tau):
    """Samples drawn from uniform numbers (the same for every finite-difference step), the
    categories not last, and a broadcast (expanded) input, where the fast paths differ."""
    for shape, dim in [((2, 4), 0), ((5, 3), 0)]:
        base = _logits(shape)
        assert torch.autograd.gradgradcheck(
            lambda x: estimator(x, tau, dim=dim, generator=torch.Generator().manual_seed(3)),
            (base,))
    row = _logits((1, 2))
    assert torch.autograd.gradgradcheck(
        lambda x: estimator(x.expand(6, 2), tau, generator=torch.Generator().manual_seed(4)),
        (row,))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tau", [1.0, 0.6])
def test_stgs_second_derivative_given_the_gumbel_noise(shape, tau):
    logits = _logits(shape)
    gumbels = -torch.empty(shape, dtype=torch.float64).exponential_(
        generator=torch.Generator().manual_seed(5)).log()
    assert torch.autograd.gradgradcheck(lambda x: reinmax.stgs(x, tau, gumbels=gumbels), (logits,))


def _hessian_vector(fn, logits, w_hard, w_soft):
    """Second derivative of a gradient penalty: d/dlogits |grad_logits(<y_hard, w_hard>
    + <y_soft, w_soft>)|^2, with the first gradient's graph kept."""
    y_hard, y_soft = fn(logits)
    (grad,) = torch.autograd.grad((y_hard * w_hard).sum() + (y_soft * w_soft).sum(), logits,
                                  create_graph=True)
    (second,) = torch.autograd.grad(grad.pow(2).sum(), logits)
    return grad.detach(), second


def _through(y_hard, surrogate):
    return y_hard - surrogate.detach() + surrogate


@pytest.mark.parametrize("tau", [1.0, 0.6, 2.0])
def test_two_category_stgs_second_derivative_equals_the_plain_formula(tau):
    """STGS drawing its own noise, two categories: the sigmoid form's backward, differentiated,
    equals autograd through softmax((logits + G) / tau) with the same noise G held fixed."""
    logits = _logits((6, 2))
    w_hard, w_soft = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    grad, second = _hessian_vector(
        lambda x: reinmax.stgs(x, tau, generator=torch.Generator().manual_seed(7)),
        logits, w_hard, w_soft)
    # The fast path's noise: G0 - G1 = logit(v) from one uniform number v per row.
    v = uniform((6,), logits, torch.Generator().manual_seed(7))
    noise = torch.stack([torch.logit(v), torch.zeros_like(v)], -1)

    def plain(x):
        relaxed = torch.softmax((x + noise) / tau, -1)
        y_hard = torch.nn.functional.one_hot((x + noise).argmax(-1), 2).to(x.dtype)
        return _through(y_hard, relaxed), torch.softmax(x, -1)

    ref_grad, ref_second = _hessian_vector(plain, logits, w_hard, w_soft)
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(second, ref_second, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tau", [1.0, 0.6, 2.0])
def test_stgs_second_derivative_equals_the_plain_formula_with_its_own_noise(tau):
    """STGS drawing its own noise, five categories (the fused Function): differentiated twice,
    it equals autograd through softmax((logits + G) / tau) (``gumbels=G``, checked above) with
    the same noise G held fixed, read off its relaxation: G = tau log(relaxed) - logits, up to
    a constant per row, which softmax and argmax ignore."""
    logits = _logits((6, 5))
    w_hard, w_soft = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    draw = lambda x, hard=True: reinmax.stgs(x, tau, hard, generator=torch.Generator().manual_seed(7))  # noqa: E731
    grad, second = _hessian_vector(draw, logits, w_hard, w_soft)
    with torch.no_grad():
        noise = tau * draw(logits, hard=False)[0].log() - logits
    ref_grad, ref_second = _hessian_vector(lambda x: reinmax.stgs(x, tau, gumbels=noise),
                                           logits, w_hard, w_soft)
    assert torch.equal(draw(logits)[0], reinmax.stgs(logits, tau, gumbels=noise)[0])
    assert torch.allclose(grad, ref_grad, rtol=1e-10, atol=1e-12)
    assert torch.allclose(second, ref_second, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gap", [1.0, "p"])
@pytest.mark.parametrize("n", [2, 4])
def test_gst_second_derivative_equals_the_plain_formula(gap, n):
    """GST: the backward through softmax((logits + move) / tau), the move held fixed; with two
    categories the sigmoid form must agree with that formula written out."""
    tau = 0.8
    logits, sample = _logits((5, n), seed=2), _sample((5, n), seed=3)
    w_hard, w_soft = torch.randn(5, n, dtype=torch.float64), torch.randn(5, n, dtype=torch.float64)
    grad, second = _hessian_vector(lambda x: reinmax.gst(x, tau, sample=sample, gap=gap),
                                   logits, w_hard, w_soft)

    def plain(x):
        with torch.no_grad():
            chosen = torch.nn.functional.one_hot(sample, n).bool()
            probs = torch.softmax(x, -1)
            top = x.max(-1, keepdim=True).values
            g = gap
            if g == "p":
                p_d = probs.gather(-1, sample.unsqueeze(-1)) * (1 - 1e-5)
                g = -torch.log1p(-p_d) / p_d
            move = (torch.where(chosen, top - x, 0.0)
                    - torch.where(chosen, 0.0, (x - top + g).clamp(min=0)))
        return _through(chosen.to(x.dtype), torch.softmax((x + move) / tau, -1)), torch.softmax(x, -1)

    ref_grad, ref_second = _hessian_vector(plain, logits, w_hard, w_soft)
    assert torch.allclose(grad, ref_grad, rtol=1e-9, atol=1e-12)
    assert torch.allclose(second, ref_second, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n,K", [(2, 10), (4, 10), (2, "quadrature")])
def test_gumbel_rao_refuses_a_second_derivative_clearly(n, K):
    logits = _logits((3, n))
    w = torch.randn(3, n, dtype=torch.float64)
    first = []
    for create_graph in (False, True):
        y_hard, _ = reinmax.gumbel_rao(logits, 1.0, K=K, generator=torch.Generator().manual_seed(0))
        (grad,) = torch.autograd.grad((y_hard * w).sum(), logits, create_graph=create_graph)
        first.append(grad)
    # A first derivative taken with create_graph=True is the ordinary one ...
    assert torch.equal(first[0], first[1].detach())
    # ... and a second derivative through it is a clear error, not a silently missing term.
    with pytest.raises(RuntimeError, match=r"gumbel_rao \(GR-MCK\).* not twice differentiable"):
        torch.autograd.grad(first[1].pow(2).sum(), logits)


@pytest.mark.parametrize("name", registry.names("straight-through"))
@pytest.mark.parametrize("n", [2, 5])
def test_first_derivative_is_unchanged_by_create_graph(name, n):
    """The differentiable backward gives the ordinary backward's numbers (to rounding)."""
    if name == "GR-MCK":
        pytest.skip("GR-MCK is not twice differentiable (tested above)")
    fn = reinmax.get_estimator(name)
    logits, sample = _logits((4, n), seed=9), _sample((4, n), seed=10)
    w = torch.randn(4, n, dtype=torch.float64)
    grads = []
    for create_graph in (False, True):
        y_hard, y_soft = fn(logits, 1.6, sample=sample, generator=torch.Generator().manual_seed(2))
        (g,) = torch.autograd.grad((y_hard * w).sum() + y_soft[..., 0].sum(), logits,
                                   create_graph=create_graph)
        grads.append(g.detach())
    assert torch.allclose(grads[0], grads[1], rtol=1e-12, atol=1e-14)


# -------------------------------------------------------------- outputs without a gradient
def _fixed_call(name, n):
    """The estimator with everything random fixed: the sample, and STGS's noise."""
    fn = reinmax.get_estimator(name)
    sample = _sample((3, n), seed=11)
    if name == "STGS":
        gumbels = torch.randn(3, n, dtype=torch.float64)
        return lambda x: fn(x, 1.4, gumbels=gumbels)
    kwargs = {"K": 20} if name == "GR-MCK" else {}
    return lambda x: fn(x, 1.4, sample=sample, generator=torch.Generator().manual_seed(0), **kwargs)


@pytest.mark.parametrize("name", registry.names("straight-through"))
@pytest.mark.parametrize("n", [2, 5])
def test_gradcheck_on_y_soft_with_undefined_gradients(name, n):
    """y_hard receives no gradient; gradcheck also passes undefined gradients for y_soft."""
    call = _fixed_call(name, n)
    assert torch.autograd.gradcheck(lambda x: call(x)[1], (_logits((3, n), seed=12),),
                                    check_undefined_grad=True)


@pytest.mark.parametrize("name", registry.names("straight-through"))
@pytest.mark.parametrize("n", [2, 5])
def test_each_output_alone_gives_its_part_of_the_gradient(name, n):
    call = _fixed_call(name, n)
    logits = _logits((3, n), seed=13)
    w_hard, w_soft = torch.randn(3, n, dtype=torch.float64), torch.randn(3, n, dtype=torch.float64)

    def grad(use_hard, use_soft):
        y_hard, y_soft = call(logits)
        loss = (y_hard * w_hard).sum() * use_hard + (y_soft * w_soft).sum() * use_soft
        return torch.autograd.grad(loss, logits)[0]

    def alone(which):
        y_hard, y_soft = call(logits)
        y = y_hard if which == "hard" else y_soft
        w = w_hard if which == "hard" else w_soft
        return torch.autograd.grad((y * w).sum(), logits)[0]

    both = grad(1.0, 1.0)
    hard, soft = alone("hard"), alone("soft")
    assert torch.allclose(hard + soft, both, rtol=1e-12, atol=1e-14)
    # softmax's own gradient for y_soft alone
    expected_soft = torch.autograd.grad((torch.softmax(logits, -1) * w_soft).sum(), logits)[0]
    assert torch.allclose(soft, expected_soft, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_one_hot_alone_gives_the_theorems_exactly(n):
    """y_hard's gradient on its own (y_soft unused, its gradient None), checked exactly by
    enumerating every sample: E[ST] is the first-order target and E[ReinMax] the second."""
    theta = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    a = torch.randn(2, n, dtype=torch.float64, generator=torch.Generator().manual_seed(n + 1))

    def f(d):
        return (d * a).sum((-1, -2)).sin()

    st = exact.expected_estimate(reinmax.st, f, theta)
    rm = exact.expected_estimate(reinmax.reinmax, f, theta)
    assert torch.allclose(st, exact.first_order_target(f, theta), rtol=0, atol=1e-12)
    assert torch.allclose(rm, exact.second_order_target(f, theta), rtol=0, atol=1e-12)
