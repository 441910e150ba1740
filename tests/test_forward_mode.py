"""Forward-mode AD through the estimators: ``torch.func.jvp``, ``torch.func.jacfwd`` and
forward-over-reverse Hessian-vector products.

The estimator's Jacobian in the logits (given the sample, and any noise, held fixed) is the
matrix whose transpose the backward pass applies. In float64 and for a fixed sample:

* the jvp equals that Jacobian, built from the VJPs of the unit vectors, times the tangent;
* for ST, ReinMax and the two 1/n forms it equals the defining formula, written out here
  (ST: ``(diag(q) - q q^T) / tau``; ReinMax: ``2 J(m) - J(pi) / 2`` with ``m = (q + D) / 2``;
  1/n: ``((D - 1/n) (D - pi)^T + w J_ST) / 2``), and ``y_soft``'s is ``diag(pi) - pi pi^T``;
* a jvp of the gradient (forward-over-reverse) equals the Jacobian of the gradient built by
  double backward (which tests/test_autograd.py checks against finite differences) times the
  tangent.
"""
import pytest
import torch
import torch.autograd.forward_ad as fwAD

import reinmax
from reinmax.estimators import bernoulli

NAMES = ["ST", "ReinMax", "STGS", "GST-1.0", "GST-p", "ReinMax-1/n", "ReinMax-1/n-authors"]
BERNOULLI = ["ST-Bernoulli", "ReinMax-Bernoulli", "STGS-Bernoulli", "GR-MCK-Bernoulli"]
OPTIONS = {"GR-MCK": {"K": 4}, "GR-MCK-Bernoulli": {"K": 4}, "ReinMax-CV": {"R": 4, "eta": 0.8, "tau2": 0.6},
           "ReinMax-Rao": {"R": 4}}


def _cases(names):
    """(name, number of categories): two (the sigmoid forms) and five; None for the Bernoulli
    forms (one logit per variable)."""
    return [(name, n) for name in names for n in (2, 5)] + [(name, None) for name in BERNOULLI]


def _inputs(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    shape = (3, n) if n else (3, 4)        # n = None: Bernoulli, one logit per variable
    x = torch.randn(shape, generator=g, dtype=torch.float64)
    v = torch.randn(shape, generator=g, dtype=torch.float64)
    if n:
        sample = torch.randint(0, n, shape[:-1], generator=g)
    else:
        sample = torch.randint(0, 2, shape, generator=g)
    return x, v, sample


def _estimator(name, tau, sample):
    """The estimator as a function of the logits alone: the sample given, and any noise drawn
    from a generator seeded afresh at every call (the same noise every time)."""
    fn = reinmax.get_estimator(name)
    options = OPTIONS.get(name, {})
    return lambda x: fn(x, tau, sample=sample, generator=torch.Generator().manual_seed(7), **options)


def _jacobians_from_vjps(f, x):
    """(J_hard, J_soft), each of shape output.shape + x.shape, from one VJP per output entry."""
    x = x.detach().requires_grad_(True)
    outputs = f(x)
    result = []
    for y in outputs:
        rows = [torch.autograd.grad(y.reshape(-1)[i], x, retain_graph=True)[0]
                for i in range(y.numel())]
        result.append(torch.stack(rows).reshape(y.shape + x.shape))
    return result


def _times(J, v):
    return (J * v).flatten(-v.dim()).sum(-1)


@pytest.mark.parametrize("name,n", _cases(NAMES + ["GR-MCK", "ReinMax-Rao", "ReinMax-CV"]))
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_jvp_is_the_jacobian_of_the_backward_times_the_tangent(name, n, tau):
    """Every estimator, with torch.func.jvp and with dual tensors (GR-MCK, ReinMax-Rao and
    ReinMax-CV then take their unfused forms, as under torch.func; the Jacobian from VJPs comes
    from their fused Functions). The Rao pivot log((pi + D)/2) is held fixed in forward mode too
    (no_grad alone did not stop its tangent)."""
    x, v, sample = _inputs(n)
    f = _estimator(name, tau, sample)
    hard, soft = _jacobians_from_vjps(f, x)
    (y_hard, y_soft), (t_hard, t_soft) = torch.func.jvp(f, (x,), (v,))
    expected_hard, expected_soft = f(x)
    torch.testing.assert_close(y_hard, expected_hard, rtol=0, atol=0)
    torch.testing.assert_close(y_soft, expected_soft, rtol=0, atol=0)
    torch.testing.assert_close(t_hard, _times(hard, v), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_soft, _times(soft, v), rtol=1e-12, atol=1e-12)
    with fwAD.dual_level():          # plain forward-mode AD, outside torch.func
        y_hard, y_soft = f(fwAD.make_dual(x, v))
        torch.testing.assert_close(fwAD.unpack_dual(y_hard).tangent, t_hard, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(fwAD.unpack_dual(y_soft).tangent, t_soft, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------- the defining formulas
def _softmax_jacobian(p):
    """diag(p) - p p^T per row: (rows, n, n)."""
    return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)


def _defining_jacobian(name, x, sample, tau):
    """The estimator's Jacobian of y_hard per row, (rows, n, n), from its definition."""
    n = x.shape[-1]
    pi, q = torch.softmax(x, -1), torch.softmax(x / tau, -1)
    D = torch.nn.functional.one_hot(sample, n).to(x.dtype)
    if name == "ST":
        return _softmax_jacobian(q) / tau
    if name == "ReinMax":
        return 2 * _softmax_jacobian((q + D) / 2) - _softmax_jacobian(pi) / 2
    score = (D - 1.0 / n).unsqueeze(-1) * (D - pi).unsqueeze(-2)
    if name == "ReinMax-1/n":
        st, w = _softmax_jacobian(q) / tau, 1 / (n * (pi * D).sum(-1))
    else:    # the authors' form
        pi_d = (pi * D).sum(-1)
        st = pi_d[:, None, None] * D.unsqueeze(-1) * D.unsqueeze(-2) - pi.unsqueeze(-1) * pi.unsqueeze(-2)
        w = 1 / (n * (q * D).sum(-1) + 1e-12)
    return (score + w[:, None, None] * st) / 2


@pytest.mark.parametrize("name", ["ST", "ReinMax", "ReinMax-1/n", "ReinMax-1/n-authors"])
@pytest.mark.parametrize("n", [2, 5])
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_jvp_equals_the_defining_formula(name, n, tau):
    """torch.func.jvp and torch.func.jacfwd (a vmap over jvp) give the formula's Jacobian."""
    x, v, sample = _inputs(n, seed=1)
    f = _estimator(name, tau, sample)
    J = _defining_jacobian(name, x, sample, tau)
    soft = _softmax_jacobian(torch.softmax(x, -1))
    _, (t_hard, t_soft) = torch.func.jvp(f, (x,), (v,))
    torch.testing.assert_close(t_hard, (J @ v.unsqueeze(-1)).squeeze(-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_soft, (soft @ v.unsqueeze(-1)).squeeze(-1), rtol=1e-12, atol=1e-12)
    jac_hard, jac_soft = torch.func.jacfwd(f)(x)       # (rows, n, rows, n), block diagonal
    rows = torch.arange(x.shape[0])
    torch.testing.assert_close(jac_hard[rows, :, rows], J, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(jac_soft[rows, :, rows], soft, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------ Hessian-vector products
@pytest.mark.parametrize("name,n", _cases(NAMES))
@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_forward_over_reverse_is_the_double_backward_jacobian_times_the_tangent(name, n, tau):
    """jvp(grad(loss)) is M v with M the Jacobian of the estimated gradient, built row by row by
    double backward (create_graph=True, checked against finite differences in
    tests/test_autograd.py). Except for ST, M is not symmetric (ReinMax's estimate is not the
    gradient of anything), so reverse-over-reverse, M^T v, differs from it."""
    x, v, sample = _inputs(n, seed=2)
    w = torch.randn(x.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    f = _estimator(name, tau, sample)

    def loss(x):
        y_hard, y_soft = f(x)
        return (torch.sin(y_hard * w + x)).sum() + (y_soft * w.flip(0)).sum()

    _, forward_over_reverse = torch.func.jvp(torch.func.grad(loss), (x,), (v,))
    x = x.clone().requires_grad_(True)
    grad = torch.autograd.grad(loss(x), x, create_graph=True)[0].reshape(-1)
    M = torch.stack([torch.autograd.grad(grad[i], x, retain_graph=True)[0].reshape(-1)
                     for i in range(grad.numel())])
    expected = (M @ v.reshape(-1)).reshape(v.shape)
    torch.testing.assert_close(forward_over_reverse, expected, rtol=1e-12, atol=1e-12)
    assert expected.abs().max() > 1e-3     # a second derivative, not zeros


def test_forward_mode_through_the_bernoulli_forms_is_the_slope():
    """Bernoulli: the Jacobian is diagonal, the slope the backward multiplies by."""
    x, v, sample = _inputs(None, seed=4)
    _, (t_hard, t_soft) = torch.func.jvp(lambda x: bernoulli.reinmax(x, 0.7, sample=sample), (x,), (v,))
    m = (torch.sigmoid(x / 0.7) + sample) / 2
    p = torch.sigmoid(x)
    torch.testing.assert_close(t_hard, v * (2 * m * (1 - m) - p * (1 - p) / 2), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(t_soft, v * p * (1 - p), rtol=1e-12, atol=1e-12)
