r"""Two-category fast paths: ST and ReinMax, and the Gumbel family (STGS, GR-MCK, GST).

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
ST and ReinMax (``_STReinMax``) draw exactly the samples of the general code from the same
uniform numbers, and give its gradients to rounding.

Every estimator here returns new tensors laid out like the caller's logits, with the categories
at the caller's ``dim``: with ``dim`` last the two categories interleave in memory; with any other
``dim`` each category is one contiguous plane, and every pass over the data (sampling, the loss,
the backward) reads and writes whole contiguous planes, several times faster than interleaved
strided access.
Probabilities, and anything else that depends on the logits only, are computed once per
distinct row of a broadcast (expanded) input, e.g. one parameter row repeated over a batch of
samples, and broadcast back.

Under ``torch.compile`` the forward passes run as custom operators around these same kernels
(the section "torch.compile: opaque operators" at the end says why).
"""
import inspect
import math
from typing import Optional, Tuple, Union

import torch

from .checks import check_values, diagnose_bad_rows, mark_invalid, sample_index, unit_tau
from .sampling import inside_transform, uniform, working_dtype
from .transforms import symmetric_jvp, without_jvp

Tensor = torch.Tensor

QUADRATURE_NODES = 128
"""Nodes of GR-MCK's two-category quadrature. Relative error against 6,000 nodes, over |a| <= 30:
3e-5 at tau = 0.1, 6e-8 at tau = 0.5, 1e-10 for tau >= 1 (K = 1000 Monte Carlo: about 1e-2).
For float32 logits the rule runs in float32, adding rounding of about 2e-6.
tests/test_polynomial.py checks it against Monte Carlo with K = 1000 and against 4,096 nodes."""


# ------------------------------------------------------------ results in the caller's layout
def _plain() -> bool:
    """Whether results may be written into fresh tensors (``out=``, in place): not under a
    torch.func transform (vmap cannot write a batched value into an unbatched tensor, and grad
    traces the backward, where ``out=`` is not differentiable) nor a backward that is itself
    differentiated (create_graph). Otherwise the same values come from functional operations."""
    return not inside_transform() and not torch.is_grad_enabled()


def _new_pair(like: Tensor, dim: int, dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """A new uninitialised tensor with the shape of ``like`` (the caller's shape, two categories
    at ``dim``), contiguous, and its categories-last view: (result, view to write through).

    The result itself, not a view, is what an autograd Function returns: its outputs must not
    be views of tensors made inside it, or the caller could not modify them in place."""
    out = torch.empty(like.shape, dtype=dtype, device=like.device)
    return out, out.movedim(dim, -1)


def _fill_pair(first: Tensor, second: Tensor, like: Tensor, dim: int, dtype: torch.dtype) -> Tensor:
    """A new tensor shaped like ``like`` (caller's layout) holding ``first`` and ``second`` as
    categories 0 and 1; both have the shape of ``like`` without ``dim``."""
    if not _plain():      # stack batches (and differentiates) either operand
        return torch.stack([first.to(dtype), second.to(dtype)], dim)
    out, last = _new_pair(like, dim, dtype)
    if (last.stride(-1) == 1 and out.numel() > 0 and dtype in (torch.float32, torch.float64)
            and first.dtype == second.dtype == dtype and first.shape == second.shape == last.shape[:-1]):
        # Interleaved categories: complex() interleaves two real tensors about 1.7x faster than
        # two strided copies, writing straight into the result viewed as complex numbers.
        torch.complex(first, second, out=torch.view_as_complex(last))
    else:
        last[..., 0].copy_(first)
        last[..., 1].copy_(second)
    return out


# ------------------------------------------------------------------------ ST and ReinMax
class _STReinMax(torch.autograd.Function):
    r"""ST (``reinmax=False``) and ReinMax (``reinmax=True``) for two categories.

    Forward: with ``d = l1 - l0``, ``softmax(l) = (sigmoid(-d), sigmoid(d))`` (dozens of times
    cheaper than a row softmax of length 2), and the inverse CDF of ``u`` in (0, 1] draws
    category 1 iff ``u > p0``: the general code's sample from the same ``u`` (a category of
    probability 0 is never drawn). ``index`` (given samples) replaces ``u``.

    Backward: both gradients are ``c * [-1, +1]`` per row. With ``delta = g1 - g0`` for the
    gradient ``g`` of ``y_hard`` and ``q = softmax(logits / tau)``:

        ST:       c = q0 q1 delta / tau
        ReinMax:  c = (2 m0 m1 - p0 p1 / 2) delta,  m = (q + D) / 2              (eq. 7)
                    = (q0 q1 + q_other - p0 p1) delta / 2,

    where ``q_other`` is q at the category not drawn (D0 D1 = 0 expands 4 m0 m1 = q0 q1 +
    q_other); at tau = 1 this is ``p_other delta / 2``. ``y_soft = softmax(logits)`` adds
    ``p0 p1 (s1 - s0)``. Everything that depends on the logits alone (``p``, ``q``, ReinMax's
    per-category factor) is computed per distinct row; per sample there remain a few passes.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index, u, tau, dim, reinmax):
        dtype = logits.dtype
        last = logits.movedim(dim, -1)
        plain = _plain()
        # Distinct rows need strides, known to eager code and to torch.compile (which traces a
        # fixed layout), not to torch.func.vmap.
        rows = distinct_rows(last) if plain or torch.compiler.is_compiling() else last
        broadcast = rows.shape != last.shape     # a broadcast input: fewer distinct rows
        work = rows if dtype in (torch.float32, torch.float64) else rows.float()
        d = work[..., 1] - work[..., 0]
        p0 = torch.neg(d).sigmoid_()     # sigmoid(-d) itself, not 1 - p1: small p0 stay exact
        p1 = d.sigmoid_()                # d is not needed any more
        if not plain:
            chosen = u > p0 if index is None else index == 1
            one_hot = _fill_pair(~chosen, chosen, logits, dim, dtype)
            drawn_one = chosen.to(dtype)
        else:
            one_hot, one_last = _new_pair(logits, dim, dtype)
            # Category 1 is drawn where x = 1. A comparison writes its 0/1 straight into a float
            # tensor, several times faster than a boolean mask converted afterwards.
            interleaved = one_last.stride(-1) == 1
            drawn_one = (torch.empty(one_last.shape[:-1], dtype=dtype, device=logits.device)
                         if interleaved else one_last[..., 1])
            if index is None:
                torch.gt(u, p0, out=drawn_one)
            else:
                torch.eq(index, 1, out=drawn_one)
            if interleaved:
                one_hot = _fill_pair(torch.rsub(drawn_one, 1.0), drawn_one, logits, dim, dtype)
            else:
                torch.neg(drawn_one, out=one_last[..., 0]).add_(1.0)
        p0, p1 = p0.to(dtype), p1.to(dtype)
        if broadcast:
            probs = torch.stack([p0, p1], dim).expand(logits.shape)
        else:
            probs = _fill_pair(p0, p1, logits, dim, dtype)
        # ReinMax's per-sample factor depends on the logits and the sample only: formed here,
        # where the drawn category is at hand, and returned as a third output for backward
        # (saving the one-hot itself would forbid changing it in place).
        factor = (_reinmax_half_factor(p0, p1, rows, tau, drawn_one, plain) if reinmax
                  else logits.new_empty(0))
        return one_hot, probs, factor

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, _, tau, dim, reinmax = inputs
        _, probs, factor = output
        ctx.mark_non_differentiable(factor)
        ctx.set_materialize_grads(False)     # an unused output costs no tensor of zeros
        ctx.tau, ctx.dim, ctx.reinmax = tau, dim, reinmax
        # logits for ST's softmax(logits / tau) when tau != 1, and with the sample's index or
        # uniform numbers for ReinMax's factor as a function of the logits, should the backward
        # itself be differentiated (saving costs no copy).
        index, u = inputs[1], inputs[2]
        saved = (None if unit_tau(tau) and not reinmax else logits, probs, factor,
                 index if reinmax else None, u if reinmax else None)
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)

    @staticmethod
    def backward(ctx, grad_hard, grad_soft, _):
        logits, probs, factor, index, u = ctx.saved_tensors
        tau, dim = ctx.tau, ctx.dim
        if ctx.reinmax and grad_hard is not None and differentiated():
            # create_graph: the saved factor is data; recompute it as a function of the logits
            # (the same values), so that a second derivative keeps its term.
            factor = _differentiable_factor(logits, probs, index, u, tau, dim)
        return _st_reinmax_grad(grad_hard, grad_soft, logits, probs, factor, tau, dim, ctx.reinmax), \
            None, None, None, None, None

    # Forward mode: both Jacobians are c [-1, +1] [-1, +1]^T per row, symmetric.
    jvp = symmetric_jvp(backward, outputs=3)


def _st_reinmax_grad(grad_hard, grad_soft, logits: Tensor, probs: Tensor, factor: Tensor,
                     tau: float, dim: int, reinmax: bool):
    """The gradient into the logits of :class:`_STReinMax` (None if neither output has one);
    ``factor``: ReinMax's per-sample factor, as the forward returned it."""
    in_place = _plain()
    probs_last = probs.movedim(dim, -1)
    p_rows = distinct_rows(probs_last) if in_place else probs_last
    p0, p1 = p_rows[..., 0], p_rows[..., 1]
    if in_place:
        grad, grad_last = _new_pair(probs, dim, probs.dtype)
        plane = grad_last[..., 1]     # c is computed straight into the result's category 1
    c = None
    if grad_hard is not None:
        g = grad_hard.movedim(dim, -1)
        c = torch.sub(g[..., 1], g[..., 0], out=plane) if in_place else g[..., 1] - g[..., 0]
        if reinmax:
            c = c.mul_(factor) if in_place else c * factor
        else:
            if unit_tau(tau):
                q0, q1 = p0, p1
            else:
                l_last = logits.movedim(dim, -1)
                q0, q1 = _tempered(distinct_rows(l_last) if in_place else l_last, tau)
            c = c.mul_(q0).mul_(q1) if in_place else c * q0 * q1
            if not unit_tau(tau):
                c = c.div_(tau) if in_place else c / tau
    if grad_soft is not None:
        s = grad_soft.movedim(dim, -1)
        soft = (s[..., 1] - s[..., 0]) * p0
        if c is None:
            c = torch.mul(soft, p1, out=plane) if in_place else soft * p1
        else:
            c = c.add_(soft.mul_(p1)) if in_place else c + soft * p1
    if c is None:
        return None
    if in_place:
        torch.neg(c, out=grad_last[..., 0])
    else:
        grad = torch.stack([-c, c], dim)
    return grad


def _differentiable_factor(logits: Tensor, probs: Tensor, index, u, tau: float, dim: int) -> Tensor:
    """ReinMax's per-sample factor (as the forward forms it) by differentiable operations: the
    sample is found again as the forward found it, from the detached logits and ``u`` (or
    ``index``), and everything else is a function of the saved logits and probabilities."""
    last = logits.movedim(dim, -1)
    if index is None:
        rows = distinct_rows(last.detach())     # the forward's exact operations, for u > p0
        work = rows if rows.dtype in (torch.float32, torch.float64) else rows.float()
        chosen = u > torch.neg(work[..., 1] - work[..., 0]).sigmoid_()
    else:
        chosen = index == 1
    p_last = probs.movedim(dim, -1)
    return _reinmax_half_factor(p_last[..., 0], p_last[..., 1], last, tau,
                                chosen.to(logits.dtype), plain=False)


def differentiated() -> bool:
    """Whether this backward is itself recorded by autograd (create_graph=True). Not while
    torch.compile traces it: the compiler may trace a backward with grad mode on, and PyTorch
    does not support double backward through compiled code anyway."""
    return torch.is_grad_enabled() and not torch.compiler.is_compiling()


def refuse_second_derivative(grad, logits: Tensor, what: str):
    """``grad`` (computed with grad mode off) with a grad_fn that raises a clear error if it is
    differentiated: what ``torch.autograd.function.once_differentiable`` does, with a message
    that names the estimator. A first derivative taken with create_graph=True still works."""
    if grad is None:
        return None
    error = torch._C._functions.DelayedError(
        f"{what} is not twice differentiable (its backward holds an average over the noise as "
        f"data): a second derivative through it was asked for. Use st, reinmax, stgs or gst for "
        f"gradient penalties, meta-learning or Hessian-vector products".encode(), 2)
    # logits as a second input connect the error to them, so that autograd.grad reaches it.
    return error(grad.detach().requires_grad_(True), logits)[0]


def _tempered(rows: Tensor, tau: float) -> Tuple[Tensor, Tensor]:
    """softmax(rows / tau) for two categories (in the logits' dtype): (q0, q1)."""
    d = (rows[..., 1] - rows[..., 0]).div_(tau)
    return torch.neg(d).sigmoid_(), d.sigmoid_()


def _reinmax_half_factor(p0: Tensor, p1: Tensor, rows: Tensor, tau: float, drawn_one: Tensor,
                         plain: bool) -> Tensor:
    """Half of ReinMax's factor ``q0 q1 + q_other - p0 p1`` for every sample (see
    :class:`_STReinMax`): ``b_k = q_k + q0 q1 - p0 p1`` per distinct row (``b = p`` at tau = 1)
    and, per sample, ``b`` at the category not drawn, picked by lerp with weights 0/1 (exact,
    and on CPU several times faster than torch.where with a boolean mask)."""
    b0, b1 = p0, p1
    if not unit_tau(tau):
        q0, q1 = _tempered(rows, tau)
        if plain:
            b0 = torch.addcmul(q0, q0, q1).addcmul_(p0, p1, value=-1.0)
            b1 = torch.addcmul(q1, q0, q1).addcmul_(p0, p1, value=-1.0)
        else:
            b0, b1 = q0 + q0 * q1 - p0 * p1, q1 + q0 * q1 - p0 * p1
    # halving is exact, so halving b per row equals halving the product per sample
    return torch.lerp(b1 * 0.5, b0 * 0.5, drawn_one)


# Function.apply binds its arguments with inspect.signature(forward) on every call when
# setup_context is defined; a precomputed signature saves about 20 us a call.
_STReinMax.forward.__signature__ = inspect.signature(_STReinMax.forward)


def check_rows(logits: Tensor) -> None:
    """The sigmoid form maps a +inf logit to a finite probability where softmax gives NaN, so
    two-category rows are checked on the logits (categories last): one sum over the distinct
    rows is finite unless some logit is NaN or infinite (or the sum overflows), and only then
    do the precise checks run."""
    if not check_values(logits):
        return
    rows = distinct_rows(logits)
    total = rows.sum(dtype=torch.float64 if rows.dtype == torch.float64 else torch.float32)
    if torch.isfinite(total):
        return
    if (torch.isnan(rows).any() or torch.isposinf(rows).any()
            or torch.isneginf(rows).all(-1).any()):
        diagnose_bad_rows(rows.detach())


def st_reinmax(logits: Tensor, tau: float, dim: int, sample, generator, reinmax: bool,
               uniforms=None) -> Tuple[Tensor, Tensor]:
    """ST or ReinMax for two categories; ``logits`` in the caller's layout, ``dim`` checked."""
    last = logits.movedim(dim, -1)
    invalid = None
    compiling = torch.compiler.is_compiling()
    if sample is not None:    # unchecked out-of-range indices: NaN rows, never a real category
        (index, invalid), u = sample_index(sample, last), None
    elif compiling and generator is None and uniforms is None:
        index, u = None, None     # the operator draws them, as uniform() would
    else:
        # 1 - U with U uniform in [0, 1): the general code's numbers, in (0, 1].
        index, u = None, uniform(last.shape[:-1], last, generator, uniforms)
    if compiling:    # one opaque operator around the same kernels (see _st_reinmax_op)
        y_hard, y_soft, _ = _st_reinmax_op(logits, index, u, _op_tau(tau), dim, reinmax)
    else:
        y_hard, y_soft, _ = _STReinMax.apply(logits, index, u, tau, dim, reinmax)
    check_rows(last)
    return mark_invalid(y_hard, invalid, dim), y_soft


class _BinaryThrough(torch.autograd.Function):
    """Forward: the one-hot sample and ``softmax(logits)``; backward: ``weight * (g0 - g1)``.

    ``weight`` is ``d sigmoid(z / tau) / dz`` at the perturbed logit difference (or its average
    over the noise, for GR-MCK): the Jacobian of the relaxation, held as data. ``logits`` and
    every result are in the caller's layout (categories at ``dim``), as in ``_STReinMax``:
    with ``dim`` not last, each category is one contiguous plane.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, first, weight, dim, z, tau):
        # softmax(logits) once per distinct row of a broadcast input, then broadcast back.
        distinct = distinct_rows(logits.movedim(dim, -1))
        difference = distinct[..., 0] - distinct[..., 1]
        probs = torch.stack([torch.sigmoid(difference), torch.sigmoid(-difference)], -1)
        one_hot = _fill_pair(first, ~first, logits, dim, logits.dtype)
        return one_hot, probs.movedim(-1, dim).expand(logits.shape)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, weight, dim, z, tau = inputs
        _, probs = output
        ctx.set_materialize_grads(False)     # an unused output costs no tensor of zeros
        ctx.save_for_backward(weight, probs, logits, z)
        ctx.save_for_forward(weight, probs, logits, z)
        ctx.dim, ctx.tau = dim, tau

    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        weight, probs, logits, z = ctx.saved_tensors
        dim = ctx.dim
        if grad_hard is not None and differentiated():
            # create_graph: the weight as a function of the logits, the perturbation z - a held
            # fixed as the first derivative holds it (z + (a - a) is z exactly).
            if z is None:    # GR-MCK's quadrature: an average over the noise, held as data
                with torch.no_grad():
                    grad = _BinaryThrough.backward(ctx, grad_hard, grad_soft)[0]
                return (refuse_second_derivative(grad, logits, "gumbel_rao (GR-MCK) with K='quadrature'"),
                        None, None, None, None, None)
            last = logits.movedim(dim, -1)
            a = last[..., 0] - last[..., 1]
            shift = torch.where(torch.isfinite(a), a - a.detach(), torch.zeros_like(a))
            weight = torch.nan_to_num(_slope(z + shift, ctx.tau).to(logits.dtype), nan=0.0)
        return _through_grad(grad_hard, grad_soft, weight, probs, dim), None, None, None, None, None

    # Forward mode: both Jacobians are w [1, -1] [1, -1]^T per row, symmetric.
    jvp = symmetric_jvp(backward, outputs=2)


_BinaryThroughCompiled = without_jvp(_BinaryThrough)     # torch.compile cannot trace a jvp


def _through_grad(grad_hard, grad_soft, weight: Tensor, probs: Tensor, dim: int):
    """The gradient into the logits of :class:`_BinaryThrough` (None if neither output has one)."""
    grad = None
    if grad_hard is not None:
        g = grad_hard.movedim(dim, -1)
        grad = weight * (g[..., 0] - g[..., 1])
    if grad_soft is not None:
        # The ordinary gradient of y_soft = softmax(logits): p0 p1 (gs0 - gs1) into l0.
        s, p = grad_soft.movedim(dim, -1), probs.movedim(dim, -1)
        soft = p[..., 0] * p[..., 1] * (s[..., 0] - s[..., 1])
        grad = soft if grad is None else grad + soft
    if grad is None:
        return None
    return _fill_pair(grad, -grad, probs, dim, grad.dtype)


def _check(difference: Tensor, logits: Tensor) -> None:
    """NaN differences come from NaN logits or two -inf logits; +inf logits are not allowed."""
    if check_values(logits) and (torch.isnan(difference).any() or torch.isposinf(logits).any()):
        diagnose_bad_rows(logits.detach())


def _draw_first(difference: Tensor, logits: Tensor, sample, generator, uniforms=None):
    """``(first, invalid)``: True where category 0 is drawn (probability sigmoid(a)), or where
    ``sample`` says 0; and the unchecked out-of-range rows of ``sample`` (None: none possible),
    which :func:`_through` makes NaN rather than a real category."""
    if sample is not None:
        index, invalid = sample_index(sample, logits)
        return index == 0, invalid
    return uniform(difference.shape, difference, generator, uniforms) <= torch.sigmoid(
        difference.to(working_dtype(difference))), None


def _through(logits, first, weight, dim, z=None, tau=1.0, invalid=None) -> Tuple[Tensor, Tensor]:
    """``logits`` categories-last (a view of the caller's tensor); results in the caller's layout.
    ``z``: the perturbed logit difference whose slope ``weight`` is (STGS, GST), kept so that a
    backward run with create_graph=True can differentiate the weight; None for GR-MCK, whose
    weight is an average over the noise (not twice differentiable). Rows ``invalid`` marks
    (unchecked out-of-range samples) come out NaN."""
    weight = torch.nan_to_num(weight.to(logits.dtype), nan=0.0)  # a masked (-inf) logit: no gradient
    function = _BinaryThroughCompiled if torch.compiler.is_compiling() else _BinaryThrough
    y_hard, y_soft = function.apply(logits.movedim(-1, dim), first, weight, dim, z, tau)
    return mark_invalid(y_hard, invalid, dim), y_soft


def _slope(z: Tensor, tau: float) -> Tensor:
    """d sigmoid(z / tau) / dz = sigmoid(z / tau) sigmoid(-z / tau) / tau."""
    scaled = z / tau
    return torch.sigmoid(scaled) * torch.sigmoid(-scaled) / tau


def stgs(logits: Tensor, tau: float, dim: int, sample, generator) -> Tuple[Tensor, Tensor]:
    """STGS (hard) for two categories; ``logits`` has its categories last already."""
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    index, invalid = sample_index(sample, logits) if sample is not None else (None, None)
    if torch.compiler.is_compiling():
        # One opaque operator (see _gumbel_op); it draws its own numbers unless a generator's are
        # needed (drawn outside the graph, as uniform() does).
        v = None if generator is None else uniform(difference.shape, difference, generator)
        y_hard, y_soft, _ = _gumbel_op(logits.movedim(-1, dim), index, v, _op_tau(tau), dim, "stgs", 0.0)
        return mark_invalid(y_hard, invalid, dim), y_soft
    work = difference.to(working_dtype(logits))
    first, z = _stgs_difference(work, index, uniform(work.shape, work, generator))
    return _through(logits, first, _slope(z, tau), dim, z, tau, invalid)


def _stgs_difference(work: Tensor, index, v: Tensor) -> Tuple[Tensor, Tensor]:
    """``(first, z)``: whether category 0 is drawn, and the perturbed logit difference, from the
    logit difference ``work`` and one uniform number ``v`` in (0, 1] per row; given ``index``
    (the sample), ``z`` is drawn conditionally on it."""
    if index is None:
        # One uniform decides both: z = a + logit(v), category 0 iff z > 0 (argmax of l + G).
        z = work + torch.logit(v)
        return z > 0, z
    first = index == 0
    return first, _conditional_difference(work, first, v)


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


def distinct_rows(logits: Tensor) -> Tensor:
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
    log = torch.log if isinstance(tau, Tensor) else math.log    # a tensor tau while compiling
    low = log(1e-10 * tau / (1 + tau))
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
    log_integrand = (-scaled - 2 * torch.log1p(torch.exp(-scaled)) - log(tau)
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
    distinct = distinct_rows(logits.detach())
    a_distinct = distinct[..., 0] - distinct[..., 1]
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    first, invalid = _draw_first(difference, logits, sample, generator)
    given_first, given_second = expected_slope(a_distinct, tau)
    return _through(logits, first, torch.where(first, given_first, given_second), dim, invalid=invalid)


def gst(logits: Tensor, tau: float, dim: int, sample, generator,
        gap: Union[float, str], uniforms=None) -> Tuple[Tensor, Tensor]:
    """GST-1.0 / GST-p for two categories: the moved difference is max(a, gap) given category 0
    and min(a, -gap) given category 1 (raise the chosen logit to the top, keep the other at least
    ``gap`` below it)."""
    difference = logits.detach()[..., 0] - logits.detach()[..., 1]
    _check(difference, logits)
    if torch.compiler.is_compiling():      # one opaque operator, see _gumbel_op
        index, invalid = sample_index(sample, logits) if sample is not None else (None, None)
        u = (None if sample is not None or (generator is None and uniforms is None)
             else uniform(difference.shape, difference, generator, uniforms))
        kind, gap = ("gst-p", 0.0) if gap == "p" else ("gst", float(gap))
        y_hard, y_soft, _ = _gumbel_op(logits.movedim(-1, dim), index, u, _op_tau(tau), dim, kind, gap)
        return mark_invalid(y_hard, invalid, dim), y_soft
    first, invalid = _draw_first(difference, logits, sample, generator, uniforms)
    z = _gst_difference(difference, first, gap)
    return _through(logits, first, _slope(z, tau), dim, z, tau, invalid)


def _gst_difference(difference: Tensor, first: Tensor, gap: Union[float, str]) -> Tensor:
    """GST's moved logit difference given the sample (``first``: category 0 drawn)."""
    if gap == "p":
        # gap = -log(1 - p_d) / p_d with p_d the chosen probability, shrunk as the general code does.
        p_d = torch.sigmoid(torch.where(first, difference, -difference)) * (1 - 1e-5)
        gap = -torch.log1p(-p_d) / p_d
    else:
        gap = torch.as_tensor(float(gap), dtype=difference.dtype, device=difference.device)
    return torch.where(first, torch.maximum(difference, gap), torch.minimum(difference, -gap))


# ------------------------------------------------------------ torch.compile: opaque operators
# Traced by torch.compile, the fast paths above lose what makes them fast on a CPU: inductor
# draws random numbers with a scalar Philox call per element (ATen's torch.rand is vectorised),
# emits scalar loops for the stride-2 layout of two interleaved categories, and computes per
# sample what the eager code computes once per distinct row of a broadcast parameter (at the QP
# shape (512, 128, 2): ReinMax compiled ran at half eager's speed; benchmarks/README.md, issue 13).
# So while compiling, the forward passes of ST, ReinMax, STGS and GST run as custom operators
# that call the eager kernels (random numbers included): inductor calls each as one opaque
# function and fuses only the code around it. Their backward passes stay traced (see
# _st_reinmax_backward). Tags: nondeterministic_seeded, because an operator that draws must not
# be recomputed in the backward pass (the partitioner would draw anew); needs_exact_strides, so
# that a broadcast (stride-0) input reaches the kernel as it is and the per-row work stays per
# row. Outputs are laid out exactly as the eager code lays them out (the fake implementations
# repeat its allocations on shapes alone). Not twice differentiable, as no compiled code is.
_DRAWS = (torch.Tag.nondeterministic_seeded, torch.Tag.needs_exact_strides)


def _op_tau(tau) -> Optional[Tensor]:
    """The operators' temperature: a 0-d tensor, or None for tau = 1 (where the kernels take
    their shortcuts). A float argument would be a constant of the graph, compiled anew for every
    temperature; check_tau hands the estimators a tensor while compiling, or the number 1."""
    return None if unit_tau(tau) else torch.as_tensor(tau)


@torch.library.custom_op("reinmax::binary_st_reinmax", mutates_args=(), tags=_DRAWS)
def _st_reinmax_op(logits: Tensor, index: Optional[Tensor], u: Optional[Tensor], tau: Optional[Tensor],
                   dim: int, reinmax: bool) -> Tuple[Tensor, Tensor, Tensor]:
    """:class:`_STReinMax`'s forward; with neither ``index`` nor ``u``, draws ``u`` from the
    global generator (torch.rand, as eager code does). ``tau``: see _op_tau."""
    tau = 1.0 if tau is None else tau
    with torch.no_grad():     # as in an autograd Function's forward: the in-place kernels
        if index is None and u is None:
            u = uniform(logits.shape[:dim] + logits.shape[dim + 1:], logits, None)
        one_hot, probs, factor = _STReinMax.forward(logits, index, u, tau, dim, reinmax)
        return one_hot, probs, factor.contiguous()


@_st_reinmax_op.register_fake
def _(logits, index, u, tau, dim, reinmax):
    last = logits.movedim(dim, -1)
    factor = logits.new_empty(last.shape[:-1] if reinmax else (0,))
    return logits.new_empty(logits.shape), _fake_probs(logits, dim, stacked_at=dim), factor


def _fake_probs(logits: Tensor, dim: int, stacked_at: int) -> Tensor:
    """An empty tensor laid out as the eager forwards lay out ``y_soft``: per distinct row,
    stacked at ``stacked_at`` (moved to ``dim``) and expanded, for a broadcast input; for any
    other input, _STReinMax writes a fresh contiguous tensor (``stacked_at == dim``)."""
    last = logits.movedim(dim, -1)
    rows = distinct_rows(last)
    if stacked_at == dim and rows.shape == last.shape:
        return logits.new_empty(logits.shape)
    return logits.new_empty(rows.movedim(-1, stacked_at).shape).movedim(stacked_at, dim).expand(logits.shape)


def _st_reinmax_setup(ctx, inputs, output):
    logits, _, _, tau, dim, reinmax = inputs
    _, probs, factor = output
    ctx.mark_non_differentiable(factor)
    ctx.set_materialize_grads(False)     # an unused output costs no tensor of zeros
    ctx.dim, ctx.reinmax = dim, reinmax
    ctx.save_for_backward(logits, probs, factor, tau)


def _st_reinmax_backward(ctx, grad_hard, grad_soft, _):
    # Traced, not opaque: the closed form is a few elementwise operations, which inductor fuses
    # with the loss's gradient and with the sum over a broadcast batch (no per-sample gradient
    # is written out); as one more opaque operator it measured slower than eager.
    logits, probs, factor, tau = ctx.saved_tensors
    tau = 1.0 if tau is None else tau
    grad = _st_reinmax_grad(grad_hard, grad_soft, logits, probs, factor, tau, ctx.dim, ctx.reinmax)
    return grad, None, None, None, None, None


_st_reinmax_op.register_autograd(_st_reinmax_backward, setup_context=_st_reinmax_setup)


@torch.library.custom_op("reinmax::binary_gumbel", mutates_args=(), tags=_DRAWS)
def _gumbel_op(logits: Tensor, index: Optional[Tensor], u: Optional[Tensor], tau: Optional[Tensor], dim: int,
               kind: str, gap: float) -> Tuple[Tensor, Tensor, Tensor]:
    """STGS (``kind="stgs"``), GST with a fixed ``gap`` (``"gst"``) or GST-p (``"gst-p"``):
    :class:`_BinaryThrough`'s forward and the weight its backward uses. ``u``: the uniform
    numbers in (0, 1] (STGS: ``v``; GST: the sample's), drawn from the global generator when
    not given (GST given ``index`` draws nothing). ``tau``: see _op_tau."""
    tau = 1.0 if tau is None else tau
    with torch.no_grad():
        last = logits.movedim(dim, -1)
        difference = last[..., 0] - last[..., 1]
        work = difference.to(working_dtype(logits))
        if u is None and (kind == "stgs" or index is None):
            u = uniform(work.shape, work, None)
        if kind == "stgs":
            first, z = _stgs_difference(work, index, u)
        else:
            first = index == 0 if index is not None else u <= torch.sigmoid(work)
            z = _gst_difference(difference, first, "p" if kind == "gst-p" else gap)
        weight = torch.nan_to_num(_slope(z, tau).to(logits.dtype), nan=0.0).contiguous()
        one_hot, probs = _BinaryThrough.forward(logits, first, weight, dim, None, tau)
        return one_hot, probs, weight


@_gumbel_op.register_fake
def _(logits, index, u, tau, dim, kind, gap):
    weight = logits.new_empty(logits.shape[:dim] + logits.shape[dim + 1:])
    return logits.new_empty(logits.shape), _fake_probs(logits, dim, stacked_at=logits.dim() - 1), weight


def _gumbel_setup(ctx, inputs, output):
    dim = inputs[4]
    _, probs, weight = output
    ctx.mark_non_differentiable(weight)
    ctx.set_materialize_grads(False)
    ctx.dim = dim
    ctx.save_for_backward(weight, probs)


def _gumbel_backward(ctx, grad_hard, grad_soft, _):
    weight, probs = ctx.saved_tensors     # traced, as _st_reinmax_backward is
    return _through_grad(grad_hard, grad_soft, weight, probs, ctx.dim), None, None, None, None, None, None


_gumbel_op.register_autograd(_gumbel_backward, setup_context=_gumbel_setup)

# The nondeterministic_seeded tag alone does not stop AOTAutograd's common-subexpression pass
# (torch 2.13), which merged two identical calls in one differentiated graph into one draw.
# An ordered effect threads a token through the calls: each is kept, in program order.
for _op in (torch.ops.reinmax.binary_st_reinmax.default, torch.ops.reinmax.binary_gumbel.default):
    torch.library._register_effectful_op(_op, torch.library.EffectType.ORDERED)
