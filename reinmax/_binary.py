r"""Two-category fast paths of the Gumbel family (STGS, GR-MCK, GST).

With two categories everything depends on the logit difference ``a = l0 - l1``:
``softmax(l)_0 = sigmoid(a)``, and the Gumbel perturbation ``G0 - G1`` is a standard logistic
variable, so the perturbed difference ``z = a + logistic`` decides the sample (category 0 iff
``z > 0``) and the relaxation is ``softmax((l + G) / tau)_0 = sigmoid(z / tau)``. Given the sample,
``z`` is a logistic truncated to one side of 0, drawn by inverting its CDF from one uniform number.

The backward pass of every straight-through-Gumbel estimator through ``softmax((l + G) / tau)``
(with ``G`` held fixed) is then ``w * (g0 - g1)`` into ``l0`` and its negative into ``l1``, where
``w = r (1 - r) / tau`` and ``r = sigmoid(z / tau)``; GR-MCK averages ``w`` over the noise, a
one-dimensional integral that a quadrature rule computes (``K="quadrature"``).

These give the same estimators in distribution as the general code in :mod:`reinmax.estimators`
(not the same random numbers): a softmax over a last dimension of size 2 costs dozens of times a
sigmoid, and GR-MCK's ``K`` copies of the noise are replaced by a table per distinct logit row.
"""
import math
from typing import Tuple, Union

import torch

from ._checks import check_sample, diagnose_bad_rows, validate_args_enabled

Tensor = torch.Tensor

QUADRATURE_NODES = 128
"""Nodes of GR-MCK's two-category quadrature. Relative error against 6,000 nodes, over |a| <= 30:
3e-5 at tau = 0.1, 6e-8 at tau = 0.5, 1e-10 for tau >= 1 (K = 1000 Monte Carlo: about 1e-2).
For float32 logits the rule runs in float32, adding rounding of about 2e-6.
tests/test_polynomial.py checks it against Monte Carlo with K = 1000 and against 4,096 nodes."""


class _BinaryThrough(torch.autograd.Function):
    """Forward: the one-hot sample and ``softmax(logits)``; backward: ``weight * (g0 - g1)``.

    ``weight`` is ``d sigmoid(z / tau) / dz`` at the perturbed logit difference (or its average
    over the noise, for GR-MCK): the Jacobian of the relaxation, held as data.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, first, weight):
        # softmax(logits) once per distinct row of a broadcast input, then broadcast back.
        distinct = _distinct_rows(logits)
        difference = distinct[..., 0] - distinct[..., 1]
        probs = torch.stack([torch.sigmoid(difference), torch.sigmoid(-difference)], -1)
        one_hot = torch.stack([first, ~first], -1).to(logits.dtype)
        return one_hot, probs.expand(logits.shape)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, _, weight = inputs
        _, probs = output
        ctx.set_materialize_grads(False)     # an unused output costs no tensor of zeros
        ctx.save_for_backward(weight, probs)

    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        weight, probs = ctx.saved_tensors
        grad = None
        if grad_hard is not None:
            grad = weight * (grad_hard[..., 0] - grad_hard[..., 1])
        if grad_soft is not None:
            # The ordinary gradient of y_soft = softmax(logits): p0 p1 (gs0 - gs1) into l0.
            soft = probs[..., 0] * probs[..., 1] * (grad_soft[..., 0] - grad_soft[..., 1])
            grad = soft if grad is None else grad + soft
        if grad is None:
            return None, None, None
        return torch.stack([grad, -grad], -1), None, None


def _check(difference: Tensor, logits: Tensor) -> None:
    """NaN differences come from NaN logits or two -inf logits; +inf logits are not allowed."""
    if validate_args_enabled() and (torch.isnan(difference).any() or torch.isposinf(logits).any()):
        diagnose_bad_rows(logits.detach())


def _uniform(like: Tensor, generator) -> Tensor:
    """Uniform numbers in (0, 1], in float64 for float64 input and float32 otherwise."""
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return 1.0 - torch.rand(like.shape, generator=generator, device=like.device, dtype=dtype)


def _draw_first(difference: Tensor, logits: Tensor, sample, generator) -> Tensor:
    """True where category 0 is drawn (probability sigmoid(a)), or where ``sample`` says 0."""
    if sample is not None:
        return check_sample(sample, logits) == 0
    return _uniform(difference, generator) <= torch.sigmoid(difference.to(torch.float64 if
                                                          difference.dtype == torch.float64
                                                          else torch.float32))


def _through(logits, first, weight, dim) -> Tuple[Tensor, Tensor]:
    weight = torch.nan_to_num(weight.to(logits.dtype), nan=0.0)  # a masked (-inf) logit: no gradient
    y_hard, y_soft = _BinaryThrough.apply(logits, first, weight)
    return y_hard.movedim(-1, dim), y_soft.movedim(-1, dim)


def _slope(z: Tensor, tau: float) -> Tensor:
    """d sigmoid(z / tau) / dz = sigmoid(z / tau) sigmoid(-z / tau) / tau."""
    scaled = z / tau
    return torch.sigmoid(scaled) * torch.sigmoid(-scaled) / tau


def stgs(logits: Tensor, tau: float, dim: int, sample, generator) -> Tuple[Tensor, Tensor]:
    """STGS (hard) for two categories; ``logits`` has its categories last already."""
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    work = difference.to(torch.float64 if logits.dtype == torch.float64 else torch.float32)
    v = _uniform(work, generator)
    if sample is None:
        # One uniform decides both: z = a + logit(v), category 0 iff z > 0 (argmax of l + G).
        z = work + torch.logit(v)
        first = z > 0
    else:
        first = check_sample(sample, logits) == 0
        z = _conditional_difference(work, first, v)
    return _through(logits, first, _slope(z, tau), dim)


def _conditional_difference(a: Tensor, first: Tensor, t: Tensor) -> Tensor:
    """``z = a + logistic`` conditioned on its sign, from ``t`` in (0, 1] (inverse CDF).

    Given category 0 (``z > 0``) the logistic's CDF value lies in (sigmoid(-a), 1): take
    ``1 - F = sigmoid(a) t``; given category 1 take ``F = sigmoid(-a) t``. Written with logs so
    that neither tail loses precision.
    """
    log_t = torch.log(t)
    up = a + torch.log1p(-torch.sigmoid(a) * t) - (torch.nn.functional.logsigmoid(a) + log_t)
    down = a + (torch.nn.functional.logsigmoid(-a) + log_t) - torch.log1p(-torch.sigmoid(-a) * t)
    return torch.where(first, up, down)


def _distinct_rows(logits: Tensor) -> Tensor:
    """``logits`` with every broadcast (stride-0) dimension narrowed to one entry.

    An expanded view, e.g. one parameter row repeated over a batch of samples, holds the same
    numbers along such a dimension, so a per-row table is computed once and broadcast back.
    """
    for d in range(logits.dim() - 1):
        if logits.stride(d) == 0 and logits.shape[d] > 1:
            logits = logits.narrow(d, 0, 1)
    return logits


def _log_integral(a: Tensor, tau: float, nodes: int) -> Tensor:
    r"""``log of the integral over z > 0 of sigmoid'(z / tau) / tau * logistic_density(z - a) dz``.

    The integrand is smooth and log-concave; its mass sits near 0 (width ~tau) or near ``a``
    (width ~1) or on a plateau between them. The substitution ``z = softplus(y)`` spaces nodes
    geometrically near 0 and evenly beyond 1, and the trapezoid rule in ``y`` — spectrally accurate
    for such integrands — covers ``z`` from ``1e-10 tau / (1 + tau)`` (the part below is
    negligible) to ``max(a, 0) + 40`` (the tail beyond decays like ``exp(-(z - a))``). Summed in
    log space, so that tiny values (a very unlikely sample) keep their relative accuracy.
    """
    a = a.unsqueeze(-1)
    low = math.log(1e-10 * tau / (1 + tau))
    high = a.clamp(min=0) + 40.0
    grid = torch.linspace(0, 1, nodes, dtype=a.dtype, device=a.device)
    y = low + (high - low) * grid
    step = (high - low) / (nodes - 1)
    z = torch.nn.functional.softplus(y)
    # log sigmoid(x) + log sigmoid(-x) = -|x| - 2 log(1 + exp(-|x|)) for the slope (x = z / tau,
    # z > 0) and for the logistic density (x = z - a); log sigmoid(y) = y - softplus(y) for dz/dy.
    # Half the transcendental functions of writing out every log-sigmoid.
    scaled = z / tau
    centred = (z - a).abs()
    log_integrand = (-scaled - 2 * torch.log1p(torch.exp(-scaled)) - math.log(tau)
                     - centred - 2 * torch.log1p(torch.exp(-centred)) + (y - z))
    return torch.logsumexp(log_integrand, -1) + step.squeeze(-1).log()


def expected_slope(difference: Tensor, tau: float,
                   nodes: int = QUADRATURE_NODES) -> Tuple[Tensor, Tensor]:
    """E[d sigmoid(z / tau) / dz | category 0] and the same given category 1.

    The conditional expectation that GR-MCK estimates with K Monte Carlo draws. Given category 0,
    ``z = a + logistic`` conditioned on ``z > 0``: the integral of :func:`_log_integral` divided
    by ``P(z > 0) = sigmoid(a)``; given category 1, the mirror image (``a -> -a``), because the
    slope and the logistic density are both even.
    """
    F = torch.nn.functional
    # float64 for float64 logits; float32 otherwise (relative rounding ~1e-6, far below the
    # Monte Carlo error of K = 1000 draws, at a fraction of the cost).
    a = difference if difference.dtype == torch.float64 else difference.to(torch.float32)
    given_first = torch.exp(_log_integral(a, tau, nodes) - F.logsigmoid(a))
    given_second = torch.exp(_log_integral(-a, tau, nodes) - F.logsigmoid(-a))
    return given_first, given_second


def gumbel_rao_quadrature(logits: Tensor, tau: float, dim: int, sample,
                          generator) -> Tuple[Tensor, Tensor]:
    """GR-MCK (hard) for two categories with the conditional expectation by quadrature (K -> inf)."""
    distinct = _distinct_rows(logits.detach())
    a_distinct = distinct[..., 0] - distinct[..., 1]
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    first = _draw_first(difference, logits, sample, generator)
    given_first, given_second = expected_slope(a_distinct, tau)
    return _through(logits, first, torch.where(first, given_first, given_second), dim)


def gst(logits: Tensor, tau: float, dim: int, sample, generator,
        gap: Union[float, str]) -> Tuple[Tensor, Tensor]:
    """GST-1.0 / GST-p for two categories: the moved difference is max(a, gap) given category 0
    and min(a, -gap) given category 1 (raise the chosen logit to the top, keep the other at least
    ``gap`` below it)."""
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    first = _draw_first(difference, logits, sample, generator)
    if gap == "p":
        # gap = -log(1 - p_d) / p_d with p_d the chosen probability, shrunk as the general code does.
        p_d = torch.sigmoid(torch.where(first, difference, -difference)) * (1 - 1e-5)
        gap = -torch.log1p(-p_d) / p_d
    else:
        gap = torch.as_tensor(float(gap), dtype=difference.dtype, device=difference.device)
    z = torch.where(first, torch.maximum(difference, gap), torch.minimum(difference, -gap))
    return _through(logits, first, _slope(z, tau), dim)
