r"""Quadrature rules on eq. 6's segment integral: their orders in sympy, their targets and their
estimators' exact moments by enumeration, the bias order measured on chapter 5's family, and
the research code's endpoint-only alpha family (first order for alpha != 1).

A rule with nodes :math:`a_q` and weights :math:`w_q` replaces
:math:`\int_0^1 \varphi(t)\,dt` by :math:`\sum_q w_q \varphi(a_q)`. Its degree of exactness is
the largest d with :math:`\sum_q w_q a_q^k = 1/(k + 1)` for k = 0..d; the estimator built on it
has order d + 1: on :math:`f_s(D) = g(s\,w\cdot D)` the t^k coefficient of
:math:`\nabla f_s\cdot(I_i - I_j)` along a segment scales as :math:`s^{k+1}`, so the rule's error
is :math:`O(s^{d+2})` against a true gradient of order s: relative bias :math:`O(s^{d+1})`.
"""
import itertools
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import sympy as sp
import torch

from reinmax.estimators.checks import check_positive_int
from reinmax.estimators.quadrature import RULES, interior_nodes, segment_rule
from reinmax.estimators.sampling import one_hot

from . import exact
from .bias import relative_bias
from .ode import fit_slope

Tensor = torch.Tensor

__all__ = ["rule_order", "two_stage_rule", "rule_target", "rule_targets", "rule_moments", "chapter5_family",
           "bias_curve", "research_alpha_form", "SCALES"]

SCALES = np.logspace(-2.5, -1, 7)
"""Scales s of chapter 5's family where the leading term dominates for every rule here (in
float64: Simpson's relative bias at s = 10^-2.5 is still far above rounding)."""


# ------------------------------------------------------------------------ orders in sympy
def rule_order(nodes: Sequence, weights: Sequence, max_degree: int = 8) -> Dict[str, object]:
    r"""The degree of exactness d of a rule (exact sympy rationals), its order d + 1 and the
    leading error constant :math:`1/(d + 2) - \sum_q w_q a_q^{d+1}` (the error on t^{d+1})."""
    nodes = [sp.nsimplify(a) for a in nodes]
    weights = [sp.nsimplify(w) for w in weights]
    if len(nodes) != len(weights) or not nodes:
        raise ValueError(f"nodes and weights must be non-empty and of equal length; got "
                         f"{len(nodes)} nodes and {len(weights)} weights")
    for k in range(max_degree + 1):
        error = sp.Rational(1, k + 1) - sum(w * a ** k for a, w in zip(nodes, weights))
        if sp.simplify(error) != 0:
            return {"degree": k - 1, "order": k, "error_constant": sp.simplify(error)}
    raise ValueError(f"the rule is exact beyond degree {max_degree}; raise max_degree")


def two_stage_rule(alpha):
    r"""The two-stage explicit Runge-Kutta family for :math:`y' = F(t)`: nodes 0 and alpha,
    weights 1 - 1/(2 alpha) and 1/(2 alpha) (alpha = 1/2 midpoint, 1 Heun, 2/3 Ralston)."""
    alpha = sp.nsimplify(alpha)
    return (0, alpha), (1 - 1 / (2 * alpha), 1 / (2 * alpha))


# ------------------------------------------------------------------- targets by enumeration
def _gradients(f: Callable, points: Tensor) -> Tensor:
    points = points.detach().clone().requires_grad_(True)
    values = f(points)
    if not isinstance(values, torch.Tensor) or values.shape != points.shape[:1]:
        raise ValueError(f"f must return one value per point, shape ({points.shape[0]},); got "
                         f"{tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__}")
    (grads,) = torch.autograd.grad(values.sum(), points)
    return grads


def rule_target(f: Callable, logits: Tensor, rule: str) -> Tensor:
    r"""The gradient approximation ``rule`` gives, by enumeration, for logits ``(n,)`` or
    ``(m, n)`` (each variable's segments with the others at their sampled values, averaged over
    them, as :mod:`reinmax.theory.exact` defines the targets): ``euler`` is
    :func:`reinmax.theory.exact.first_order_target`, ``trapezoid`` :func:`reinmax.theory.exact.second_order_target`. ``f``
    takes points ``(B, *logits.shape)``, off the one-hot corners for interior nodes."""
    return rule_targets(f, logits, [rule])[rule]


def rule_targets(f: Callable, logits: Tensor, rules: Sequence[str],
                 chunk: Optional[int] = None) -> Dict[str, Tensor]:
    r""":func:`rule_target` for several rules at once, each node's gradients computed once.

    Nodes at the segment's ends reuse the gradients at the ``n^m`` corners (node 0: the sample's;
    node 1: the corner the partner's category makes); an interior node evaluates f's gradient at
    the ``n^m m (n - 1)`` moved points (one variable moved toward another category), ``chunk``
    points per call of f (all at once when None): what makes the 8x4 VAE's 4,096 codes
    tractable."""
    for rule in rules:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}; got rule={rule!r}")
    if chunk is not None:
        chunk = check_positive_int("chunk", chunk)
    theta = logits.detach().reshape(-1, logits.shape[-1])
    m, n = theta.shape
    probs = torch.softmax(theta, -1)
    index = exact.configurations(m, n).to(theta.device)                    # (N, m)
    weight = probs.gather(1, index.T).T.prod(-1)                             # (N,)
    D = one_hot(index, theta)                                                # (N, m, n)
    N = len(index)
    corner = _gradients(f, D.reshape((-1,) + tuple(logits.shape))).reshape(N, m, n).to(theta.dtype)
    # d[c, v, i] = grad . (I_i - I_{c_v}) at variable v, for a gradient table G (N, m, n)
    def along(G, rows):
        return G - G.gather(2, index[rows][:, :, None])
    at_zero = along(corner, slice(None))                                     # node 0: (N, m, n)
    # node 1: the corner c[v <- i], in configurations() order (variable 0 most significant)
    radix = torch.tensor([n ** (m - 1 - v) for v in range(m)], device=theta.device)
    eye_n = torch.arange(n, device=theta.device)
    moved = (index.matmul(radix)[:, None, None]
             + (eye_n[None, None, :] - index[:, :, None]) * radix[None, :, None])   # (N, m, n)
    at_one = (corner[moved, torch.arange(m, device=theta.device)[None, :, None], eye_n[None, None, :]]
              - corner[moved, torch.arange(m, device=theta.device)[None, :, None], index[:, :, None]])
    cache = {0.0: at_zero, 1.0: at_one}
    # interior nodes: the moved points with i != c_v (a zero step contributes nothing)
    c_idx, v_idx, i_idx = torch.nonzero(eye_n[None, None, :] != index[:, :, None], as_tuple=True)
    step = torch.zeros(len(c_idx), m, n, dtype=theta.dtype, device=theta.device)
    step[torch.arange(len(c_idx)), v_idx, i_idx] = 1.0
    step[torch.arange(len(c_idx)), v_idx, index[c_idx, v_idx]] = -1.0
    for a in sorted({float(a) for rule in rules for a in RULES[rule][0] if 0 < a < 1}):
        values = torch.zeros(len(c_idx), dtype=theta.dtype, device=theta.device)
        size = chunk or len(c_idx)
        for begin in range(0, len(c_idx), size):
            rows = slice(begin, begin + size)
            points = D[c_idx[rows]] + a * step[rows]
            grads = _gradients(f, points.reshape((-1,) + tuple(logits.shape))).reshape(-1, m, n)
            values[rows] = (grads.to(theta.dtype) * step[rows]).sum((-2, -1))
        table = torch.zeros(N, m, n, dtype=theta.dtype, device=theta.device)
        table[c_idx, v_idx, i_idx] = values
        cache[a] = table
    targets = {}
    for rule in rules:
        A = sum(float(w) * cache[float(a)] for a, w in zip(*RULES[rule]))
        vjp = probs[None] * (A - (probs[None] * A).sum(-1, keepdim=True))
        targets[rule] = (weight[:, None, None] * vjp).sum(0).reshape(logits.shape)
    return targets


def rule_moments(f: Callable, logits: Tensor, rule: str, one_pass: bool = False,
                 estimator: Callable = segment_rule):
    """Exact mean and per-coordinate variance of the single-sample estimator of ``rule``
    (:func:`reinmax.estimators.quadrature.segment_rule`), by enumerating every sample and every
    partner (``n^(2m)`` rows for ``m`` variables; the partner only where the rule has an interior
    node). ``estimator``: another function with ``segment_rule``'s signature (tests pass broken
    variants)."""
    theta = logits.detach().reshape(-1, logits.shape[-1])
    m, n = theta.shape
    probs = torch.softmax(theta, -1)
    index = exact.configurations(m, n).to(theta.device)
    p = probs.gather(1, index.T).T.prod(-1)
    if interior_nodes(rule):
        pairs = torch.tensor(list(itertools.product(range(len(index)), repeat=2)), device=theta.device)
        sample, partner = index[pairs[:, 0]], index[pairs[:, 1]]
        weight = p[pairs[:, 0]] * p[pairs[:, 1]]
    else:
        sample, partner, weight = index, None, p
    rows = theta[None].expand(len(sample), m, n).clone().requires_grad_(True)

    def batched(X):            # (L, rows, m, n) -> (L, rows)
        return f(X.reshape((-1,) + tuple(logits.shape))).reshape(X.shape[0], X.shape[1])

    surrogate, _ = estimator(rows, batched, rule=rule, one_pass=one_pass, sample=sample,
                             partner=partner, batch_dims=1)
    (grad,) = torch.autograd.grad(surrogate.sum(), rows)
    w = weight[:, None, None]
    mean = (w * grad).sum(0)
    variance = (w * (grad - mean) ** 2).sum(0)
    return mean.reshape(logits.shape), variance.reshape(logits.shape)


# --------------------------------------------------------------- chapter 5's family, orders
def chapter5_family(s: float, w: Tensor) -> Callable:
    r""":math:`f_s(D) = g(s\,w\cdot D)` with the logistic loss :math:`g(x) = \log(1 + e^{x-1})`
    (chapter 5: g's derivatives of orders 1, 2, 3 and 5 at 0 are nonzero); defined off the
    corners too."""
    return lambda D: torch.nn.functional.softplus(s * (D * w).sum(-1) - 1.0)


def bias_curve(mean_of: Callable, n: int = 4, instances: int = 3, scales=SCALES,
               generator: Optional[torch.Generator] = None):
    """Relative bias of an estimator's exact mean against the true gradient on chapter 5's
    family, for random (logits, w) instances over ``scales``; returns ``(scales, biases
    (instances, len(scales)), slopes per instance)``. ``mean_of(f, logits)`` gives the mean."""
    instances = check_positive_int("instances", instances)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    scales = np.asarray(scales, dtype=np.float64)
    biases = np.zeros((instances, len(scales)))
    for k in range(instances):
        logits = 1.5 * torch.randn(n, generator=generator, dtype=torch.float64)
        w = torch.randn(n, generator=generator, dtype=torch.float64)
        for j, s in enumerate(scales):
            f = chapter5_family(float(s), w)
            biases[k, j] = relative_bias(mean_of(f, logits), exact.exact_gradient(f, logits))
    slopes = [fit_slope(scales, biases[k]) for k in range(instances)]
    return scales, biases, slopes


# ------------------------------------------------------------- the research code's alpha family
class _ResearchAlpha(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, index, tau, alpha):
        probs = torch.softmax(logits, -1)
        D = one_hot(index, logits)
        ctx.save_for_backward(probs, torch.softmax(logits / tau, -1), D)
        ctx.alpha = alpha
        return D

    @staticmethod
    def backward(ctx, g):
        probs, probs_tau, D = ctx.saved_tensors
        w = 1.0 / (2.0 * ctx.alpha)
        p_alpha = (1 - w) * probs_tau + w * D
        s = 0.5 * (probs_tau + D)
        first = 2 * g * p_alpha - s * (2 * g * p_alpha).sum(-1, keepdim=True)
        zeroth = -w * probs * (g - (probs * g).sum(-1, keepdim=True))
        grad = first + zeroth
        return grad - grad.mean(-1, keepdim=True), None, None, None


def research_alpha_form(logits: Tensor, tau: float = 1.0, hard: bool = True, *, alpha: float = 1.0,
                        sample=None, generator: Optional[torch.Generator] = None):
    r"""The research code's "generalised ReinMax with alpha" (Wang & Bui's repository, as the
    facts behind chapter 11 record it), written from its formula: with ``w = 1/(2 alpha)``,
    ``p_alpha = (1 - w) pi_tau + w D`` and ``s = (pi_tau + D)/2``, the backward is
    ``2 g * p_alpha - s <2 g, p_alpha> - w J(pi) g`` (centred). It projects with ``s`` where
    ``J(p_alpha)`` would use ``p_alpha``; at alpha = 1 both are ReinMax. It uses gradients at the
    one-hot sample only, so it cannot carry a node inside the segment: for alpha != 1 it is
    first order (tests/test_beyond.py measures it). Straight-through signature, not registered:
    a measurement, not an estimator we recommend."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"alpha must be a positive number; got alpha={alpha!r}")
    theta = logits
    with torch.no_grad():
        probs = torch.softmax(theta, -1)
        if sample is None:
            index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1, generator=generator)
            index = index.reshape(probs.shape[:-1])
        else:
            index = torch.as_tensor(sample, device=theta.device)
    return _ResearchAlpha.apply(theta, index, float(tau), float(alpha)), torch.softmax(theta, -1)


def research_alpha_mean(f: Callable, logits: Tensor, alpha: float) -> Tensor:
    """The exact mean of :func:`research_alpha_form` (enumeration over the sample)."""
    return exact.expected_estimate(research_alpha_form, f, logits, draws_noise=False, alpha=alpha)


def rule_mean(rule: str) -> Callable:
    """``mean_of(f, logits)`` for :func:`bias_curve`: the exact mean of the rule's estimator."""
    return lambda f, logits: rule_moments(f, logits, rule)[0]


__all__ += ["research_alpha_mean", "rule_mean"]
