"""The straight-through family of gradient estimators, in PyTorch's functional style.

Every estimator has the signature of :func:`torch.nn.functional.gumbel_softmax`::

    y_hard, y_soft = estimator(logits, tau=1.0, hard=True, *, dim=-1, sample=None, generator=None)

``y_hard`` is a one-hot sample from ``softmax(logits)`` whose backward pass is the estimator;
``y_soft`` is ``softmax(logits)`` (temperature 1) with its ordinary gradient, as the official
``reinmax`` package returns it. ``sample`` takes category indices drawn by the caller (the shape
of ``logits`` without ``dim``): tests enumerate samples with it and experiments share random
numbers across methods with it. Gumbel-based estimators then draw their noise conditionally
on the given sample, so the estimator's distribution is unchanged.

Sampling uses the inverse CDF (a cumulative sum and a comparison), several times faster than
``torch.multinomial``; ST and ReinMax use fused autograd Functions whose backward is written in
closed form. Both Functions support ``torch.func`` (``setup_context`` and a generated vmap rule).

**Second derivatives** (gradient penalties, meta-learning, Hessian-vector products:
``torch.autograd.grad(..., create_graph=True)`` and then a second ``grad``). The second
derivative is that of the estimator's backward formula with the sample, and any noise or
sample-dependent perturbation, held fixed, as the first derivative holds them. Twice
differentiable: ST, ReinMax, STGS, GST-1.0, GST-p, ReinMax-1/n and ReinMax-1/n-authors, for any
number of categories and any ``tau`` (the backward passes compute out of place when autograd
records them; ``tests/test_autograd.py`` checks them with ``gradgradcheck`` or against the plain
formula). GR-MCK is not: its backward holds an average over K noise draws as data; a first
derivative taken with ``create_graph=True`` works, a second one raises a ``RuntimeError`` naming
it. PyTorch does not support double backward through code compiled by ``torch.compile``.
Either output may go unused: its gradient is then simply absent.

**Forward-mode AD** (``torch.func.jvp``, ``torch.func.jacfwd``, ``torch.autograd.forward_ad``, and
forward-over-reverse Hessian-vector products ``jvp(grad(f))``) works through every estimator here:
the tangent of ``y_hard`` is the estimator's Jacobian (the matrix whose transpose its backward
applies, sample and noise held fixed) times the tangent of the logits, and ``y_soft``'s is
softmax's. The fused Functions (ST, ReinMax, the 1/n forms, the two-category forms of STGS and
GST) have ``jvp`` rules in closed form; the rest is differentiated by autograd (GR-MCK takes its
unfused form in forward mode). Except for ST, the estimated gradient is not the gradient of
anything, so the Jacobian ``M`` of the gradient is not symmetric: ``jvp(grad(f))`` gives ``M v``,
a double backward (``autograd.grad(g, x, v)``) gives ``M^T v``. ``tests/test_forward_mode.py``
checks the jvp against the VJPs and the defining formulas, in float64.

**torch.compile.** With ``reinmax.set_validate_args(False)`` every estimator here compiles into
one graph (``fullgraph=True``) when it draws from PyTorch's global generator or is given its
randomness: ``sample=``, ``gumbels=`` (STGS), or ``uniforms=`` (ST, ReinMax, GST and the 1/n
forms: ``torch.rand`` numbers in [0, 1), one per categorical variable, i.e. the logits' shape
without the category dimension; the sample is then the one ``generator=`` would draw from the
same numbers). A ``torch.Generator`` cannot be traced: with ``generator=`` the graph breaks at the
draw (once; STGS with more than two categories and GR-MCK draw twice: the category, then the
noise), and the call still gives eager's numbers. With the checks on, the checks that read
values on the host (NaN logits, sample indices in range, ``uniforms`` in [0, 1)) would each
break the graph, so they are skipped while compiling (run the function once eagerly to have the
inputs checked); the shape and dtype checks run at trace time and cost nothing. A temperature
that changes between calls (annealing) stays in the graph: a 0-d tensor ``tau`` is an input of
one graph, and a Python float, which dynamo turns into a symbolic float once it sees it change,
gives at most two (the first call's, with the float as a constant, and one for every other
value; one more if it reaches exactly 1, where the estimators take shortcuts); the estimators
compute with it as a 0-d tensor while compiling
(:func:`reinmax.estimators.checks.check_tau`), and :class:`reinmax.estimators.nn.StraightThrough`
passes its (scheduled) temperature as one. With two categories, the forward
passes of ST, ReinMax, STGS and GST compile to one custom operator each (``reinmax::binary_*``,
in :mod:`reinmax.estimators.two_category`) that runs the eager kernels and draws with ``torch.rand`` from the
global generator, so that compiled and eager code draw the same numbers from the same seed;
their closed-form backward passes are traced and fused with the code around them.
"""
import contextlib
import inspect
import math
from typing import Optional, Tuple, Union

import torch

from . import two_category
from .checks import (check_generator, check_logits, check_positive_int, check_softmax_rows,
                     check_tau, check_values, mark_invalid, sample_index, unit_tau)
from .registry import EstimatorSpec, OptionRule, register
from .sampling import (draw_index_unchecked, exponential, inside_transform, inside_vmap, inverse_cdf, one_hot,
                       uniform, working_dtype)
from .transforms import symmetric_jvp, without_jvp

Tensor = torch.Tensor
Pair = Tuple[Tensor, Tensor]

__all__ = ["st", "reinmax", "stgs", "gumbel_rao", "gst", "reinmax_uniform_baseline",
           "reinmax_uniform_baseline_authors"]
"""What ``reinmax`` exports from here (``from reinmax import st``)."""


# ----------------------------------------------------------------------------- helpers
# Sampling (uniform numbers, the inverse CDF, one-hot rows, exponential draws) is in
# reinmax.estimators.sampling, shared with the two-category fast paths, the score estimators and the models.


def _prepare(logits: Tensor, tau, dim: int) -> Tuple[Tensor, float, int]:
    dim = check_logits(logits, dim)
    tau = check_tau(tau, logits)
    return logits.movedim(dim, -1), tau, dim


def _no_soft_form(name: str, hard: bool) -> None:
    if not hard:
        raise ValueError(f"{name} has no soft (relaxed) form: hard must be True; got hard={hard!r}")


def _softmax_vjp(probs: Tensor, grad: Tensor) -> Tensor:
    """Vector-Jacobian product of softmax: probs * (grad - <probs, grad>), in two passes."""
    weighted = grad * probs
    return _addcmul(weighted, probs, weighted.sum(-1, keepdim=True), -1.0, _in_place_ok())


def _softmax(logits: Tensor) -> Tensor:
    """softmax over the last dimension. torch's kernel handles rows shorter than its vector
    width one element at a time (about 5x slower than max, exp, sum and divide at n = 10), so
    short float32/float64 rows take that explicit route; the values agree to rounding.
    Out of place (the same values) where autograd records it: a backward that is itself
    differentiated (create_graph), where exp_ and div_ would overwrite what exp's backward needs."""
    if logits.shape[-1] < 16 and logits.dtype in (torch.float32, torch.float64):
        exp = (logits - logits.amax(-1, keepdim=True))
        if _in_place_ok():
            exp = exp.exp_()
            return exp.div_(exp.sum(-1, keepdim=True))
        exp = exp.exp()
        return exp / exp.sum(-1, keepdim=True)
    return torch.softmax(logits, -1)


# ------------------------------------------------------------------- fused Functions
# ST and ReinMax are the estimators people train with, so they are fused autograd Functions
# whose backward is written in closed form: a few passes over the data, O(numel), and as few
# fresh tensors as possible (on the machines this book is built on, the page faults of a fresh
# allocation cost more than the arithmetic done in it). Two categories (binary variables) take a
# fast path, reinmax.two_category.st_reinmax: everything is a function of d = theta_1 - theta_0,
# softmax(theta) = (sigmoid(-d), sigmoid(d)) costs dozens of times less than a row softmax over a
# last dimension of 2, and the softmax VJP of two categories is p0 p1 (g1 - g0) [-1, +1].
def _in_place_ok() -> bool:
    """Arithmetic in place on a fresh temporary saves an allocation. Under torch.func.vmap it
    fails when the other operand is batched and the temporary is not (and some in-place ops have
    no batching rule), and where autograd records the arithmetic (a backward run with
    create_graph=True, for a second derivative) it would overwrite values that autograd saved;
    so it is used outside vmap and with grad mode off only (as it is in every forward of an
    autograd Function and in every ordinary backward). The values are the same either way."""
    return not torch.is_grad_enabled() and not inside_vmap()


def _addcmul(tensor: Tensor, a: Tensor, b: Tensor, value: float, in_place: bool) -> Tensor:
    """tensor + value * a * b, in place when allowed (addcmul_ has no vmap batching rule)."""
    return tensor.addcmul_(a, b, value=value) if in_place else tensor + value * a * b


class _SampleFunction(torch.autograd.Function):
    """Shared forward of ST and ReinMax: softmax, inverse-CDF sample, one-hot.

    ``index`` (given samples) or ``u`` (uniform numbers in (0, 1]) decides the sample; both are
    plain tensor arguments so that the forward is a pure function and ``torch.func`` can batch
    it. The sample is a third, non-differentiable output (category indices), so that backward
    can gather and scatter at it. Two categories take ``reinmax.two_category.st_reinmax`` instead.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index, u, tau):
        probs = _softmax(logits)
        # A given index is returned as a view: autograd cannot save an input returned as-is.
        index = inverse_cdf(probs, u) if index is None else index.view_as(index)
        # The one-hot depends on the index alone, so it is made from it (batched under vmap
        # exactly when the index is; scatter_ has no batching rule, scatter has).
        one_hot = index.new_zeros(index.shape + probs.shape[-1:], dtype=probs.dtype)
        scatter = one_hot.scatter_ if _in_place_ok() else one_hot.scatter
        return scatter(-1, index.unsqueeze(-1), 1.0), probs, index

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, _, tau = inputs
        _, probs, index = output
        ctx.mark_non_differentiable(index)
        ctx.set_materialize_grads(False)   # an output the loss does not use costs no work
        ctx.tau = tau
        # logits are kept only to form softmax(logits / tau) lazily in backward when tau != 1.
        saved = (None if unit_tau(tau) else logits, probs, index)
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)      # the same tensors for jvp (symmetric_jvp)


# Function.apply binds its arguments with inspect.signature(forward) on every call when
# setup_context is defined; a precomputed signature saves about 20 us a call (small inputs).
_SampleFunction.forward.__signature__ = inspect.signature(_SampleFunction.forward)


class _STFunction(_SampleFunction):
    @staticmethod
    def backward(ctx, grad_hard, grad_soft, _):
        logits, probs, index = ctx.saved_tensors
        tau = ctx.tau
        # ST: VJP(softmax_tau, g) / tau for y_hard's gradient g, plus VJP(softmax, s) for y_soft's.
        if unit_tau(tau):   # both are VJPs at probs: one VJP of the summed gradient
            total = grad_hard if grad_soft is None else grad_soft if grad_hard is None else grad_hard + grad_soft
            return (None if total is None else _softmax_vjp(probs, total)), None, None, None
        grad = None
        if grad_hard is not None:
            grad = _softmax_vjp(_softmax(logits / tau), grad_hard)
            grad = grad.div_(tau) if _in_place_ok() else grad / tau
        if grad_soft is not None:
            soft = _softmax_vjp(probs, grad_soft)
            grad = soft if grad is None else (grad.add_(soft) if _in_place_ok() else grad + soft)
        return grad, None, None, None

    # Forward mode: ST's Jacobian diag(q) - q q^T over tau (q = softmax(logits / tau)) and
    # ReinMax's, 2 such at the midpoint (q + D) / 2 minus 1/2 at softmax(logits), are symmetric.
    jvp = symmetric_jvp(backward, outputs=3)


class _ReinMaxFunction(_SampleFunction):
    @staticmethod
    def backward(ctx, grad_hard, grad_soft, _):
        logits, probs, index = ctx.saved_tensors
        tau = ctx.tau
        if grad_hard is None:      # only y_soft = softmax(logits) is used: its plain gradient
            grad = None if grad_soft is None else _softmax_vjp(probs, grad_soft)
            return grad, None, None, None
        # eq. 7: 2 VJP(m, g) - 1/2 VJP(pi, g) with m = (pi_tau + D) / 2, plus VJP(pi, s) for
        # y_soft's gradient s. A VJP ignores a constant added to a row of g, so g can be replaced
        # by h = g - g[sample], which is 0 at the sample (D * h = 0 and <D, h> = 0). Then
        #   2 VJP(m, h) = q * h - (q + D) <q, h> / 2                        (q = pi_tau)
        #   VJP(pi, s - h / 2) = pi * r - pi <pi, r>                        (r = s - h / 2)
        # and at tau = 1 (q = pi) their sum is  (w - D <w, 1>) / 2  with  w = pi * (h + 2 s - 2 <pi, s>).
        in_place = _in_place_ok()
        index = index.unsqueeze(-1)
        h = grad_hard - grad_hard.gather(-1, index)
        if unit_tau(tau):
            if grad_soft is not None:
                shift = torch.linalg.vecdot(probs, grad_soft).unsqueeze(-1)
                h = (h.add_(grad_soft, alpha=2.0).sub_(shift, alpha=2.0) if in_place
                     else h + 2.0 * (grad_soft - shift))
            w = h.mul_(probs) if in_place else h * probs
            scatter_add = w.scatter_add_ if in_place else w.scatter_add
            grad = scatter_add(-1, index, -w.sum(-1, keepdim=True))
            return (grad.mul_(0.5) if in_place else 0.5 * grad), None, None, None
        q = _softmax(logits / tau)
        half_qh = 0.5 * torch.linalg.vecdot(q, h).unsqueeze(-1)
        grad = (h - half_qh).mul_(q) if in_place else (h - half_qh) * q   # q h - q <q, h> / 2
        scatter_add = grad.scatter_add_ if in_place else grad.scatter_add
        grad = scatter_add(-1, index, -half_qh)          # - D <q, h> / 2
        # r - <pi, r> with r = s - h / 2, written over h (no longer needed) outside vmap.
        r = h.mul_(-0.5) if in_place else -0.5 * h
        if grad_soft is not None:
            r = r.add_(grad_soft) if in_place else r + grad_soft
        r = r - torch.linalg.vecdot(probs, r).unsqueeze(-1)
        grad = _addcmul(grad, probs, r, 1.0, in_place)
        return grad, None, None, None

    jvp = symmetric_jvp(backward, outputs=3)    # see _STFunction


# torch.compile cannot trace a Function that defines jvp: these run while compiling.
_COMPILED = {"st": without_jvp(_STFunction), "reinmax": without_jvp(_ReinMaxFunction)}


def _no_two_draws(sample, uniforms) -> None:
    if sample is not None and uniforms is not None:
        raise ValueError("give either sample= or uniforms=, not both")


def _fused(function, logits, tau, hard, dim, sample, generator, name, uniforms) -> Pair:
    _no_soft_form(name, hard)
    check_generator(generator)
    dim = check_logits(logits, dim)
    tau = check_tau(tau, logits)
    _no_two_draws(sample, uniforms)
    if logits.shape[dim] == 2:    # same samples from the same random numbers, sigmoid form
        # (a name, not `function is ...`: torch.compile cannot trace `is` between two classes)
        return two_category.st_reinmax(logits, tau, dim, sample, generator, name == "reinmax", uniforms)
    logits = logits.movedim(dim, -1)
    invalid = None
    if sample is not None:    # unchecked out-of-range indices: NaN rows, never a real category
        (index, invalid), u = sample_index(sample, logits), None
    else:
        index, u = None, uniform(logits.shape[:-1], logits, generator, uniforms)
    if torch.compiler.is_compiling():
        function = _COMPILED[name]
    y_hard, y_soft, _ = function.apply(logits, index, u, tau)
    y_hard = mark_invalid(y_hard, invalid)
    check_softmax_rows(y_soft, logits)
    if dim == y_hard.dim() - 1:
        return y_hard, y_soft
    return y_hard.movedim(-1, dim), y_soft.movedim(-1, dim)


def st(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
       sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
       uniforms: Optional[Tensor] = None) -> Pair:
    r"""Straight-Through (Algorithm 1; Bengio et al. 2013).

    The forward value is a one-hot sample ``D`` from ``softmax(logits)``; the backward treats
    sampling as the identity on ``softmax(logits / tau)``:
    :math:`\widehat\nabla_{ST} = \frac{\partial f(D)}{\partial D}\,\frac{d\,\mathrm{softmax}_\tau(\theta)}{d\theta}`
    (eq. 4). At ``tau = 1`` its expectation is the first-order approximation of Theorem 3.1.

    Returns ``(y_hard, y_soft)``: the one-hot sample and ``softmax(logits)``. ``uniforms``:
    ``torch.rand`` numbers (the shape of ``logits`` without ``dim``) to draw the sample from
    instead of a generator, e.g. for a full graph under ``torch.compile`` (module docstring).
    """
    return _fused(_STFunction, logits, tau, hard, dim, sample, generator, "st", uniforms)


def reinmax(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
            sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
            uniforms: Optional[Tensor] = None) -> Pair:
    r"""ReinMax (Algorithm 2, eq. 7; Liu et al. 2023): a second-order estimator at ST's cost.

    Backward: :math:`2\,\widehat\nabla_{(\pi_\tau + D)/2} - \tfrac12\,\widehat\nabla_{ST}`, where
    the tempered softmax enters only the midpoint :math:`(\pi_\tau + D)/2` and the ST term uses
    ``softmax(logits)`` at temperature 1, as Algorithm 2 (line 5) and the official package do.
    At ``tau = 1`` its expectation is the second-order (Heun) approximation of Theorem 3.2.
    The paper recommends ``tau >= 1`` (the temperature stabilises, it does not reduce bias); any
    ``tau > 0`` is accepted so that temperature sweeps such as Figure 2 can run.

    Call-compatible with the official ``reinmax`` 0.1.0 package: ``reinmax(logits, tau)``
    returns ``(one_hot_sample, softmax(logits))``. ``uniforms`` as in :func:`st`. Twice
    differentiable (module docstring).
    """
    return _fused(_ReinMaxFunction, logits, tau, hard, dim, sample, generator, "reinmax", uniforms)


# ------------------------------------------------------------------- Gumbel family
def _gumbel_given_sample(logits: Tensor, index: Tensor, exponentials: Tensor) -> Tensor:
    """Perturbed logits ``theta + G`` with Gumbel noise G drawn conditionally on argmax = index.

    ``exponentials`` are Exp(1) draws with the shape of ``logits`` (plus leading sample dims).
    The maximum is logsumexp(theta) + Gumbel(0, 1); every other coordinate is a Gumbel
    truncated at that maximum: -log(exp(-max) + E_i * exp(-theta_i)) (Paulus et al. 2021).
    """
    log_e = exponentials.log()
    log_z = torch.logsumexp(logits, -1, keepdim=True)
    top = log_z - log_e.gather(-1, index.expand(log_e.shape[:-1]).unsqueeze(-1))
    others = -torch.logaddexp(log_e - logits, -top)
    return torch.where(one_hot(index, logits).bool(), top, others)


def _noise_from_perturbed(perturbed: Tensor, logits: Tensor) -> Tensor:
    """G = (theta + G) - theta, with masked (-inf) categories given zero noise instead of NaN."""
    return torch.where(torch.isneginf(logits), torch.zeros_like(perturbed), perturbed - logits)


def _through(y_hard: Tensor, surrogate: Tensor) -> Tensor:
    """Forward value of ``y_hard``, gradient of ``surrogate``."""
    return y_hard - surrogate.detach() + surrogate


# STGS drawing its own noise, fused. Its relaxation given the sample d is GR-MCK's with K = 1
# (the closed form explained before GUMBEL_RAO_KERNEL, below): softmax((theta + G) / tau)_i is proportional to
# w_i = (1 + r_i)^(-1/tau), r_i = E_i / (E_d p_i), w_d = 1, from the same Exp(1) draws E as
# sampling.exponential makes (the same uniforms, in the same order, after the category's). So no
# logarithm of E, no logsumexp, no torch.where and no softmax over the perturbed logits (torch's
# softmax takes rows shorter than its vector width one element at a time), and the backward is
# the softmax VJP written out, (1/tau) s (g - <s, g>), instead of autograd's graph of six nodes.
# p is softmax(theta) computed once: it is y_soft, and the sample is drawn from it as before.
# Taken where GR-MCK's fused kernel is (float32/float64, tau <= _gr_tau_limit, no torch.func
# transform, not compiling); elsewhere the term-by-term code below runs.
class _STGSFunction(torch.autograd.Function):
    """Forward: one_hot(index) (hard) or the relaxation s; backward: the softmax VJP at s over
    tau, the noise held fixed. Under create_graph the relaxation is rebuilt as a function of the
    logits (noise fixed), so that STGS stays twice differentiable."""

    @staticmethod
    def forward(ctx, logits, probs, index, tau, generator, hard):
        tiny = torch.finfo(probs.dtype).tiny
        with torch.no_grad():
            # -E = log(1 - U), clamped at -tiny, as sampling.exponential draws E (in place, and
            # negated: r_i = (-E_i) (1 / p_i) / (-E_d) is the same number)
            s = torch.rand(probs.shape, generator=generator, dtype=probs.dtype,
                           device=probs.device).neg_().log1p_().clamp_(max=-tiny)
            at = index.unsqueeze(-1)
            minus_e_d = s.gather(-1, at)
            inv_p = probs.reciprocal().scatter_(-1, at, 0.0)        # inf where masked; r_d = 0
            # w = (1 + r)^(-1/tau): one pow (torch's fast reciprocal and square at tau = 1 and
            # 1/2), where log1p, multiply, exp would be three passes, two of them transcendental
            s.mul_(inv_p).div_(minus_e_d).add_(1.0).pow_(-1.0 / tau)
            s.div_(s.sum(-1, keepdim=True))
        ctx.save_for_backward(s, logits)
        ctx.save_for_forward(s)
        ctx.tau = tau
        if not hard:
            return s.clone()
        return torch.zeros_like(s).scatter_(-1, at, 1.0)

    @staticmethod
    def jvp(ctx, tangent, *_):
        # Forward-mode AD (dual tensors): the softmax Jacobian at s over tau is symmetric, so
        # J v is the backward's formula applied to the tangent.
        s, = ctx.saved_tensors            # what save_for_forward kept
        return s * (tangent - (s * tangent).sum(-1, keepdim=True)) / ctx.tau

    @staticmethod
    def backward(ctx, grad):
        s, logits = ctx.saved_tensors
        tau = ctx.tau
        if two_category.differentiated():
            # s = softmax(log s): as a function of the logits with the noise fixed, log s + (l -
            # l.detach()) / tau (a masked, -inf logit: no shift, and s = 0 there stays 0).
            shift = torch.where(torch.isfinite(logits), logits - logits.detach(),
                                torch.zeros_like(logits))
            s = torch.softmax(s.log() + shift / tau, -1)
            return (s * (grad - (s * grad).sum(-1, keepdim=True)) / tau,
                    None, None, None, None, None)
        g = _softmax_vjp(s, grad)
        return (g if tau == 1.0 else g.div_(tau)), None, None, None, None, None


def stgs(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
         sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
         gumbels: Optional[Tensor] = None) -> Pair:
    r"""Straight-Through Gumbel-Softmax (eq. 5; Jang et al. 2017).

    ``D = one_hot(argmax(logits + G))`` with Gumbel noise ``G``; the backward goes through
    ``softmax((logits + G) / tau)``. Pass ``gumbels=`` (the shape of ``logits``) to fix the noise
    (this reproduces :func:`torch.nn.functional.gumbel_softmax` given the same noise), or
    ``sample=`` to fix the category, in which case G is drawn conditionally on it.
    ``hard=False`` returns the relaxed sample ``softmax((logits + G) / tau)`` as ``y_hard``.
    Given ``gumbels=`` (noise you drew yourself) it compiles into one graph under
    ``torch.compile`` and is twice differentiable with the noise held fixed.

    Drawing its own noise (float32 or float64 logits, ``tau`` up to 5.39 for float32 and 19.6
    for float64, outside torch.func transforms and torch.compile), it runs as one fused
    autograd Function: the relaxation in closed form from the same random numbers, the backward
    written out (benchmarks/stgs.py times it against ``F.gumbel_softmax``). The same samples,
    the relaxation and gradients equal to rounding, and a ``y_hard`` that is exactly one-hot.
    """
    expected = tuple(logits.shape) if isinstance(logits, torch.Tensor) else None
    logits, tau, dim = _prepare(logits, tau, dim)
    check_generator(generator)
    if gumbels is not None and sample is not None:
        raise ValueError("stgs takes either gumbels= or sample=, not both")
    if hard and gumbels is None and logits.shape[-1] == 2:
        return two_category.stgs(logits, tau, dim, sample, generator)   # same estimator, sigmoid form
    if (gumbels is None and logits.dtype in (torch.float32, torch.float64)
            and not inside_transform() and tau <= _gr_tau_limit(logits.dtype)):
        soft = torch.softmax(logits, -1)         # y_soft; the sample is drawn from its values
        with torch.no_grad():
            probs = soft.detach()
            check_softmax_rows(probs, logits)
            index, invalid = draw_index_unchecked(probs, logits, sample, generator)
        y = mark_invalid(_STGSFunction.apply(logits, probs, index, tau, generator, hard), invalid)
        return y.movedim(-1, dim), soft.movedim(-1, dim)
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        check_softmax_rows(probs, logits)
        if gumbels is not None:
            # Checked before moving dim: a tensor of fewer dimensions would fail inside movedim.
            if not isinstance(gumbels, torch.Tensor) or not gumbels.is_floating_point():
                raise TypeError(f"gumbels must be a floating tensor shaped like logits {expected}; "
                                f"got {type(gumbels).__name__}" + (f" of dtype {gumbels.dtype}"
                                                                   if isinstance(gumbels, torch.Tensor) else ""))
            if tuple(gumbels.shape) != expected:
                raise ValueError(f"gumbels must have the shape of logits {expected}; "
                                 f"got {tuple(gumbels.shape)}")
            gumbels = gumbels.movedim(dim, -1)
            noise = gumbels.to(logits.dtype)
            index, invalid = (logits + noise).argmax(-1), None
        else:
            index, invalid = draw_index_unchecked(probs, logits, sample, generator)
            e = exponential(tuple(logits.shape), logits, generator)
            noise = _noise_from_perturbed(_gumbel_given_sample(logits.to(e.dtype), index, e),
                                          logits).to(logits.dtype)
    # noise.detach(): no_grad does not stop forward-mode AD (jvp), and the noise is held fixed.
    relaxed = torch.softmax((logits + noise.detach()) / tau, -1)
    y = mark_invalid(_through(one_hot(index, logits), relaxed) if hard else relaxed, invalid)
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


# GR-MCK's K relaxations given the sample, fused. With E_i = -log(1 - u_i) the Exp(1) draws of
# reinmax.estimators.sampling.exponential and p = softmax(theta), the conditional Gumbel formula of _gumbel_given_sample
# gives, relative to the sampled (largest) perturbed logit,
#     (theta_i + G_i) - (theta_d + G_d) = -log(1 + r_i),   r_i = E_i / (E_d p_i)   (i != d),
# so softmax((theta + G) / tau)_i is proportional to w_i = (1 + r_i)^(-1/tau), with w_d = 1: no
# logarithm of E, no logsumexp per draw, no max (the sampled category is the maximum by
# construction) and no torch.where (slow on CPU). A masked category (p_i = 0) gets r_i = inf and
# w_i = 0 exactly. The draws are the same uniforms in the same order as the unfused code (drawn
# block by block: the CPU generator fills a tensor serially, so blocks continue one stream).
# r_i overflows (to w_i = 0) only where the exact w_i is below about exp(-log(max/17) / tau),
# under the working precision relative to w_d = 1 while tau <= _GR_TAU_LIMIT; above it the
# unfused code runs. On a CPU, blocks of about GUMBEL_RAO_KERNEL["block"] elements keep the passes over each block
# in cache. On a GPU the loop's kernel launches are what costs (benchmarks/vae_step.py measures
# it; see benchmarks/README.md), so there one block holds all K draws, which also
# makes them the unfused code's draws in one call, as a GPU generator's stream requires.
GUMBEL_RAO_KERNEL = {"fused": True, "block": 1 << 18, "block_accelerator": 1 << 62}
"""How GR-MCK computes: ``fused`` (False: always the unfused reference path, which benchmarks and
tests compare with), ``block`` (elements per block on a CPU) and ``block_accelerator`` (on a GPU).
Change it with :func:`gumbel_rao_kernel`, which puts the old values back."""


@contextlib.contextmanager
def gumbel_rao_kernel(**changes):
    """``with gumbel_rao_kernel(fused=False): ...``: run GR-MCK with other kernel settings (keys of
    ``GUMBEL_RAO_KERNEL``), restored on leaving the block. Same numbers either way, up to
    rounding: the settings change speed, not the estimator."""
    unknown = set(changes) - set(GUMBEL_RAO_KERNEL)
    if unknown:
        raise ValueError(f"gumbel_rao_kernel got {sorted(unknown)}; allowed: {sorted(GUMBEL_RAO_KERNEL)}")
    for key, value in changes.items():
        if key == "fused" and not isinstance(value, bool):
            raise ValueError(f"fused must be True or False; got fused={value!r}")
        if key != "fused" and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{key} must be a positive integer; got {key}={value!r}")
    before = dict(GUMBEL_RAO_KERNEL)
    GUMBEL_RAO_KERNEL.update(changes)
    try:
        yield
    finally:
        GUMBEL_RAO_KERNEL.clear()
        GUMBEL_RAO_KERNEL.update(before)


def _gr_tau_limit(dtype: torch.dtype) -> float:
    info = torch.finfo(dtype)
    return (math.log(info.max) - math.log(17.0)) / -math.log(info.eps)


def _gr_block_draws(like: Tensor) -> int:
    """How many of the K draws one block of the fused loops holds."""
    elements = GUMBEL_RAO_KERNEL["block" if like.device.type == "cpu" else "block_accelerator"]
    return max(1, elements // max(1, like.numel()))


def _gr_relaxations(probs: Tensor, index: Tensor, tau: float, K: int,
                    generator: Optional[torch.Generator], exponentials: Optional[Tensor] = None,
                    tilt: Optional[Tensor] = None) -> Tensor:
    """The K relaxations softmax((theta + G_k) / tau), shape (K,) + theta.shape, for
    ``probs = softmax(theta)`` (in the working dtype), with G_k drawn from ``generator`` exactly
    as sampling.exponential and _gumbel_given_sample would draw them, or made from the given
    Exp(1) draws ``exponentials`` (shape (K,) + theta.shape, working dtype; left unchanged).
    ``tilt`` (theta's shape, 1 at the sample): factors on w before normalising, so that
    ``tilt = exp((delta - delta_d) / tau)`` gives softmax((theta + delta + G_k) / tau), the
    noise still drawn at theta (ReinMax-CV evaluates it at theta + delta = log((pi + D)/2))."""
    inv_p = probs.reciprocal()                                # inf where masked
    # 1/p_d := 0 makes r_d = 0 and so w_d = 1 exactly, once per row instead of once per draw.
    inv_p.scatter_(-1, index.unsqueeze(-1), 0.0)
    s = torch.empty((K,) + tuple(probs.shape), dtype=probs.dtype, device=probs.device)
    step = _gr_block_draws(probs)
    where = index.unsqueeze(-1).expand((min(step, K),) + tuple(index.shape) + (1,))
    ones = torch.ones(probs.shape[-1], 1, dtype=probs.dtype, device=probs.device)
    tiny = torch.finfo(probs.dtype).tiny
    for start in range(0, K, step):
        block = s[start:start + step]
        at = where[:len(block)]
        # -E, clamped as sampling.exponential clamps E >= tiny: for E_d, the divisor; for a masked
        # category, whose r_i = E_i * inf would be NaN (a NaN row) when U_i is exactly 0 (one draw
        # in 2^24 in float32: with K = 100 it stopped ListOps runs after a few epochs).
        if exponentials is None:
            block.uniform_(generator=generator)                # = torch.rand, same stream
            block.neg_().log1p_().clamp_(max=-tiny)
        else:
            torch.neg(exponentials[start:start + step], out=block).clamp_(max=-tiny)
        minus_e_d = block.gather(-1, at)
        block.mul_(inv_p).div_(minus_e_d)                      # r
        if tau == 1.0:
            block.add_(1.0).reciprocal_()
        else:
            block.log1p_().mul_(-1.0 / tau).exp_()             # w
        if tilt is not None:
            block.mul_(tilt)
        block.div_(block @ ones)                               # matmul: fast sum of short rows
    return s


def _gr_vjp_sum(s: Tensor, g: Tensor) -> Tensor:
    """sum_k s_k (g - <s_k, g>) over the leading dimension of the relaxations ``s`` (softmax's
    VJP without its 1/tau), block by block, in ``g``'s shape and s's dtype."""
    K = s.shape[0]
    step = _gr_block_draws(g)
    ones = torch.ones(s.shape[-1], 1, dtype=s.dtype, device=s.device)
    acc = torch.zeros_like(g)
    buffer = torch.empty_like(s[:step])
    for start in range(0, K, step):
        block = s[start:start + step]
        product = torch.mul(block, g, out=buffer[:len(block)])
        dots = product @ ones                                  # <s_k, g> per row
        # s_k (g - <s_k, g>) term by term, as autograd's softmax backward does: exactly 0
        # where s_k is one-hot (one allowed category), where mean_s g - mean(s <s, g>) is not.
        acc += torch.sub(g, dots, out=product).mul_(block).sum(0)
    return acc


class _GumbelRaoFunction(torch.autograd.Function):
    """Forward: one-hot(index) (hard) or the mean relaxation; backward through the mean of the
    K relaxations s_k, noise fixed: the softmax VJP (1/tau) mean_k s_k (g - <s_k, g>).
    Plain autograd only (torch.func transforms take the unfused path)."""

    @staticmethod
    def forward(ctx, logits, probs, index, tau, K, generator, hard):
        # probs: the probabilities at which the noise is drawn, in the working dtype (GR-MCK:
        # softmax(logits); ReinMax-Rao: (pi + D)/2); the gradient goes to logits.
        s = _gr_relaxations(probs, index, tau, K, generator)
        ctx.save_for_backward(s, logits)     # logits: only to tie a refusal to them (below)
        ctx.tau = tau
        return one_hot(index, logits) if hard else s.mean(0).to(logits.dtype)

    @staticmethod
    def backward(ctx, grad):
        if two_category.differentiated():
            # create_graph: the K relaxations are held as data (their noise is gone), so this
            # backward is not differentiable; a second derivative through it is a clear error.
            with torch.no_grad():
                grad_logits = _GumbelRaoFunction.backward(ctx, grad)[0]
            return (two_category.refuse_second_derivative(grad_logits, ctx.saved_tensors[1],
                                                     "gumbel_rao (GR-MCK)"),
                    None, None, None, None, None, None)
        s = ctx.saved_tensors[0]
        grad_logits = _gr_vjp_sum(s, grad.to(s.dtype)).mul_(1.0 / (s.shape[0] * ctx.tau))
        return grad_logits.to(grad.dtype), None, None, None, None, None, None


class _GumbelControlFunction(torch.autograd.Function):
    """A control variate made of GR-MCK's relaxations s_0..s_R (R >= 1): value 0 (the logits'
    shape); backward ``scale / tau * [J(s_0) - (1/R) sum_{k>=1} J(s_k)] g`` with J(s) g =
    s (g - <s, g>), the noise held fixed. The R + 1 relaxations are one copy of numbers, made
    in place as GR-MCK's are; no graph of R + 1 softmaxes. Plain autograd only. Twice
    differentiable, as the unfused definition is (the second derivative rebuilds that graph)."""

    @staticmethod
    def forward(ctx, logits, probs, index, tau, K, generator, exponentials, tilt, scale):
        s = _gr_relaxations(probs, index, tau, K, generator, exponentials, tilt)
        ctx.save_for_backward(s, logits)     # logits: for a second derivative only
        ctx.tau, ctx.scale = tau, scale
        return torch.zeros_like(logits)

    @staticmethod
    def backward(ctx, grad):
        s, logits = ctx.saved_tensors
        g = grad.to(s.dtype)
        if two_category.differentiated():
            # create_graph (a second derivative will follow): the relaxations as functions of the
            # logits, softmax(log s_k + (theta - theta_0)/tau), of value s_k and derivative
            # J(s_k)/tau as in the unfused definition, and their VJPs built in autograd.
            shift = torch.where(torch.isneginf(logits), torch.zeros_like(logits), logits)
            q = torch.softmax(s.log() + ((shift - shift.detach()) / ctx.tau).to(s.dtype), -1)
            vjp = q * (g - (q * g).sum(-1, keepdim=True))
            grad_logits = (vjp[0] - vjp[1:].mean(0)) * (ctx.scale / ctx.tau)
            return (grad_logits.to(grad.dtype),) + (None,) * 8
        grad_logits = _gr_vjp_sum(s[:1], g).sub_(_gr_vjp_sum(s[1:], g), alpha=1.0 / (s.shape[0] - 1))
        return (grad_logits.mul_(ctx.scale / ctx.tau).to(grad.dtype),) + (None,) * 8


def gumbel_rao(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
               sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               K: Union[int, str] = 1000) -> Pair:
    r"""Gumbel-Rao Monte Carlo, GR-MCK (Paulus et al. 2021).

    Rao-Blackwellises STGS: the backward goes through the average of
    ``softmax((logits + G_k) / tau)`` over ``K`` Gumbel draws conditioned on the sampled
    category, so its mean equals STGS's and its variance falls as ``K`` grows. Memory and time
    grow as ``K * logits.numel()`` (the paper uses K = 1000; Table 3 measures 100, 300, 1000).
    ``hard=False`` returns the averaged relaxation as ``y_hard``.

    A fused autograd Function computes the K relaxations in place, block by block, and keeps
    one copy of them (K * numel numbers in float32, or float64 for float64 logits) for its
    closed-form backward; on the CPU it draws the same numbers as the term-by-term definition
    (``_gr_reference_relaxed``), which runs instead under torch.func transforms and above
    ``tau = 5.39`` (float32 logits; 19.6 for float64).

    ``K="quadrature"`` (two categories only, ``hard=True``): the limit ``K -> inf``. With two
    categories the conditional expectation is a one-dimensional integral over the logistic noise
    of the logit difference; a 128-node quadrature computes it (relative error below 3e-5, where
    K = 1000 Monte Carlo has a relative standard error of about 1%), once per distinct logit row
    of a broadcast (expanded) ``logits``. It is GR-MCK without its remaining Monte Carlo noise.

    Not twice differentiable (a second derivative through its backward raises a clear error),
    and it has no ``uniforms=``: under ``torch.compile`` it draws from the global generator (one
    graph) or from ``generator=`` (breaking the graph at its two draws).
    """
    logits, tau, dim = _prepare(logits, tau, dim)
    check_generator(generator)
    if K == "quadrature":
        if logits.shape[-1] != 2 or not hard:
            raise ValueError(f"K='quadrature' needs two categories and hard=True; got "
                             f"{logits.shape[-1]} categories and hard={hard!r} (use an integer K)")
        return two_category.gumbel_rao_quadrature(logits, tau, dim, sample, generator)
    if isinstance(K, str):
        raise ValueError(f"K must be a positive integer or 'quadrature'; got K={K!r}")
    K = check_positive_int("K", K)
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        check_softmax_rows(probs, logits)
        index, invalid = draw_index_unchecked(probs, logits, sample, generator)
    work = working_dtype(logits)
    if fused_gumbel_rao_applies(logits, tau):
        at = probs if probs.dtype == work else torch.softmax(logits.detach().to(work), -1)
        y = mark_invalid(_GumbelRaoFunction.apply(logits, at, index, tau, K, generator, hard), invalid)
        return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)
    # Under torch.func transforms (the Function is written for plain autograd), in forward mode
    # and at very high temperatures: the unfused reference.
    relaxed = _gr_reference_relaxed(logits, index, tau, K, generator)
    y = mark_invalid(_through(one_hot(index, logits), relaxed) if hard else relaxed, invalid)
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


def fused_gumbel_rao_applies(logits: Tensor, tau: float) -> bool:
    """Whether GR-MCK's fused Function runs for these logits (categories last) and ``tau``: not
    under torch.func transforms (it is written for plain autograd), not in forward mode (it has
    no jvp rule: dual tensors take the unfused path too), not above the temperature limit of
    the working dtype, and not switched off (``gumbel_rao_kernel(fused=False)``)."""
    dual = torch.autograd.forward_ad.unpack_dual(logits).tangent is not None
    return (GUMBEL_RAO_KERNEL["fused"] and not inside_transform() and not dual
            and tau <= _gr_tau_limit(working_dtype(logits)))


def fused_gumbel_rao_at(logits: Tensor, probs: Tensor, index: Tensor, tau: float, K: int,
                        generator: Optional[torch.Generator]) -> Tensor:
    """GR-MCK's fused Function with the noise drawn at other probabilities (categories last,
    where :func:`fused_gumbel_rao_applies`): forward ``one_hot(index)``; backward the mean over K
    draws of softmax's VJP at ``s_k = softmax((log probs + G_k) / tau)``, ``G_k`` Gumbel noise
    at ``log probs`` conditioned on ``index`` being its argmax, passed to ``logits`` (the noise
    and ``probs`` held fixed). ReinMax-Rao calls it with ``probs = (pi + D)/2``: the pivot
    ``log((pi + D)/2)`` never needs forming, nor its softmax (which is ``probs``)."""
    work = working_dtype(logits)
    return _GumbelRaoFunction.apply(logits, probs.detach().to(work), index, tau, K, generator, True)


def fused_gumbel_control_at(logits: Tensor, probs: Tensor, index: Tensor, tau: float, K: int,
                            generator: Optional[torch.Generator], scale: float, *,
                            exponentials: Optional[Tensor] = None,
                            tilt: Optional[Tensor] = None) -> Tensor:
    """A control variate from GR-MCK's kernel (categories last, where
    :func:`fused_gumbel_rao_applies`): zeros of the logits' shape whose backward is
    ``scale / tau * [J(s_0) - mean_{k>=1} J(s_k)] g`` over K >= 2 relaxations s_k =
    softmax((log probs + G_k) / tau) (times ``tilt``, normalised: see ``_gr_relaxations``),
    G_k Gumbel noise at ``log probs`` given ``index``, drawn from ``generator`` in the order of
    ``sampling.exponential((K,) + shape)``, or made from ``exponentials`` (Exp(1) draws of that
    shape). ReinMax-CV adds it to ReinMax's output with ``scale = -eta``."""
    work = working_dtype(logits)
    if exponentials is not None:
        exponentials = exponentials.detach().to(work)
    return _GumbelControlFunction.apply(logits, probs.detach().to(work), index, tau, K, generator,
                                        exponentials, tilt, scale)


def _gr_reference_relaxed(logits: Tensor, index: Tensor, tau: float, K: int,
                          generator: Optional[torch.Generator]) -> Tensor:
    """GR-MCK's mean relaxation written term by term, with autograd's softmax backward: the
    definition the fused Function is tested against. Noise is drawn out of place, so that
    torch.func.vmap(randomness='different') can batch it."""
    with torch.no_grad():
        work = working_dtype(logits)
        e = exponential((K,) + tuple(logits.shape), logits, generator)
        noise = _noise_from_perturbed(_gumbel_given_sample(logits.to(work), index, e),
                                      logits).to(logits.dtype)
    return torch.softmax((logits + noise.detach()) / tau, -1).mean(0)    # detach: see stgs


def gst(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
        sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
        gap: Union[float, str] = 1.0, uniforms: Optional[Tensor] = None) -> Pair:
    r"""Gapped Straight-Through (Fan et al. 2022): GST-1.0 (``gap=1.0``) and GST-p (``gap="p"``).

    Replaces STGS's random Gumbel perturbation by a deterministic one given the sample ``d``:
    the sampled logit is raised to the current maximum and every other logit is lowered, if
    needed, to at least ``gap`` below it; the backward goes through the softmax of the moved
    logits at temperature ``tau``. ``gap="p"`` uses the adaptive gap ``-log(1 - pi_d) / pi_d``.
    The correction depends only on the sample, so E[GST] can be computed exactly by enumeration.
    ``uniforms`` as in :func:`st`. A given sample (``sample=``) of probability 0 (a masked or
    underflowing category) is raised to the top like any other; GST-p's gap there is its limit
    1 as ``pi_d -> 0``. The move is computed in float32 for half-precision logits.
    """
    _no_soft_form("gst", hard)
    logits, tau, dim = _prepare(logits, tau, dim)
    check_generator(generator)
    if not (gap == "p" or (isinstance(gap, (int, float)) and not isinstance(gap, bool) and 0 <= gap < float("inf"))):
        raise ValueError(f"gap must be a non-negative finite number or 'p'; got gap={gap!r}")
    _no_two_draws(sample, uniforms)
    if logits.shape[-1] == 2:    # same estimator, sigmoid form
        return two_category.gst(logits, tau, dim, sample, generator, gap, uniforms)
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        check_softmax_rows(probs, logits)
        index, invalid = draw_index_unchecked(probs, logits, sample, generator, uniforms)
        chosen = one_hot(index, logits).bool()
        top = logits.max(-1, keepdim=True).values
        # The move in float32 at least: in half precision 1 - 1e-5 rounds to 1 (an infinite
        # gap, and inf - inf where the spread of the logits overflows) and top - logits overflows.
        work = working_dtype(logits)
        if gap == "p":
            p_d = probs.gather(-1, index.unsqueeze(-1)).to(work) * (1 - 1e-5)  # keeps log(1 - p) finite
            # -log(1 - p) / p -> 1 as p -> 0: its value where the sample's probability underflows
            # (sample= a masked or very unlikely category), where the formula is 0 / 0.
            gap = torch.where(p_d > 0, -torch.log1p(-p_d) / p_d, torch.ones_like(p_d))
        raise_chosen = torch.where(chosen, top.to(work) - logits.to(work), torch.zeros_like(logits, dtype=work))
        lower_others = torch.where(chosen | torch.isneginf(logits), torch.zeros_like(logits, dtype=work),
                                   (logits.to(work) - top.to(work) + gap).clamp(min=0))
        move = raise_chosen - lower_others
        # A sampled masked category (sample=, logit -inf) is raised to the top: -inf + inf would be NaN.
        raised_mask = chosen & torch.isneginf(logits)
    moved = torch.where(raised_mask, top.to(work), logits + move.detach())    # detach: see stgs
    relaxed = torch.softmax(moved / tau, -1).to(logits.dtype)
    y = mark_invalid(_through(chosen.to(logits.dtype), relaxed), invalid)
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


# ------------------------------------------------------------- ReinMax, 1/n baseline
def _uniform_st_half(vector, logits, probs, one_hot, tau, authors):
    """The ST half of the 1/n forms applied to ``vector`` (symmetric, so backward and jvp share
    it) and its row weight: ``diag(q) - q q^T`` over tau with weight 1/(n pi_d), or for the
    authors' form ``pi_d D D^T - pi pi^T`` with weight 1/(n q_d)."""
    n = logits.shape[-1]
    tempered = probs if unit_tau(tau) else _softmax(logits / tau)
    if authors:
        weighted = vector * probs
        st_half = weighted * one_hot - weighted.sum(-1, keepdim=True) * probs
        return st_half, 1.0 / (n * (tempered * one_hot).sum(-1, keepdim=True) + 1e-12)
    st_half = _softmax_vjp(tempered, vector) / tau
    return st_half, 1.0 / (n * (probs * one_hot).sum(-1, keepdim=True))


class _UniformBaselineFunction(torch.autograd.Function):
    """ReinMax with the uniform baseline phi = 1/n (Section 6.6, Remark 4.1 with Heun).

    ``authors=False``: the single-sample estimator derived in the book's chapter 4
    (book/04_baselines.md; the book's appendix, book/appendix/mnist_vae.md, compares it with the
    authors' script), whose expectation is
    exactly Heun's approximation with the 1/n baseline:
        1/2 (g[d] - mean_k g[k]) (D - pi)  +  1/(2 n pi_d) * ST-gradient at D.
    ``authors=True``: the variant in the authors' script, whose second half uses
    pi_d g[d] D - (pi . g) pi in place of the ST gradient and weights it by
    1 / (n softmax(logits / tau)_d + 1e-12). Its expectation is not that target.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index, tau, authors):
        probs = _softmax(logits)
        return one_hot(index, logits), probs

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, tau, authors = inputs
        one_hot, probs = output
        ctx.tau, ctx.authors = tau, authors
        ctx.save_for_backward(logits, probs, one_hot)
        ctx.save_for_forward(logits, probs, one_hot)

    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        logits, probs, one_hot = ctx.saved_tensors
        # The sample is fixed: the saved one-hot (an output of this Function) must not carry
        # the estimator's own gradient into a second derivative.
        one_hot = one_hot.detach()
        tau = ctx.tau
        g_sample = (grad_hard * one_hot).sum(-1, keepdim=True)
        score_half = (g_sample - grad_hard.mean(-1, keepdim=True)) * (one_hot - probs)
        st_half, weight = _uniform_st_half(grad_hard, logits, probs, one_hot, tau, ctx.authors)
        grad = 0.5 * (score_half + weight * st_half)
        return grad + _softmax_vjp(probs, grad_soft), None, None, None

    @staticmethod
    def jvp(ctx, tangent, *_):
        """Forward mode: the Jacobian whose transpose backward applies. Its score half
        ``(g[d] - mean g) (D - pi)`` is ``(D - pi) (D - 1/n)^T g``, so its jvp is
        ``(D - 1/n) <D - pi, v>``; the ST half is symmetric (``diag(q) - q q^T`` over tau, or for
        the authors' form ``pi_d D D^T - pi pi^T``) and its row weight does not depend on g."""
        logits, probs, one_hot = ctx.saved_tensors
        one_hot = one_hot.detach()
        tau, n = ctx.tau, logits.shape[-1]
        score_half = (one_hot - 1.0 / n) * ((one_hot - probs) * tangent).sum(-1, keepdim=True)
        st_half, weight = _uniform_st_half(tangent, logits, probs, one_hot, tau, ctx.authors)
        return 0.5 * (score_half + weight * st_half), _softmax_vjp(probs, tangent)


_UniformBaselineCompiled = without_jvp(_UniformBaselineFunction)    # for torch.compile


def _uniform_baseline(logits, tau, hard, dim, sample, generator, authors, name, uniforms) -> Pair:
    _no_soft_form(name, hard)
    logits, tau, dim = _prepare(logits, tau, dim)
    check_generator(generator)
    with torch.no_grad():
        probs = _softmax(logits)
        check_softmax_rows(probs, logits)
        index, invalid = draw_index_unchecked(probs, logits, sample, generator, uniforms)
        if sample is not None and check_values(probs) and index.numel():
            # A drawn category has probability > 0; a given one may not, and its weight
            # 1/(n pi_d) is then infinite (NaN gradients): refuse it while checks are on.
            impossible = probs.gather(-1, index.unsqueeze(-1)) == 0
            if impossible.any():
                raise ValueError(f"{name} weights the sample by 1/(n pi_d), infinite where the "
                                 f"sampled category has probability 0 (a masked or underflowing "
                                 f"logit in {logits.dtype}); sample= gives such a category in "
                                 f"{int(impossible.sum())} row(s): pass categories of positive probability")
    function = _UniformBaselineCompiled if torch.compiler.is_compiling() else _UniformBaselineFunction
    y_hard, y_soft = function.apply(logits, index, tau, authors)
    return mark_invalid(y_hard, invalid).movedim(-1, dim), y_soft.movedim(-1, dim)


def reinmax_uniform_baseline(logits: Tensor, tau: float = 1.0, hard: bool = True, *,
                             dim: int = -1, sample: Optional[Tensor] = None,
                             generator: Optional[torch.Generator] = None,
                             uniforms: Optional[Tensor] = None) -> Pair:
    r"""ReinMax with the uniform ``1/n`` baseline (Section 6.6), in the form derived in this book.

    Its expectation equals Heun's approximation with baseline :math:`\phi_j = 1/n`
    (Remark 4.1 with the second-order rule). The ``1/(n \pi_D)`` importance weight is the
    instability Section 4.1 warns about; it is infinite for a category of probability 0, so a
    ``sample=`` holding one is a ValueError while the checks are on. ``tau`` enters the ST half
    only, as in :func:`st`.
    """
    return _uniform_baseline(logits, tau, hard, dim, sample, generator, False,
                             "reinmax_uniform_baseline", uniforms)


def reinmax_uniform_baseline_authors(logits: Tensor, tau: float = 1.0, hard: bool = True, *,
                                     dim: int = -1, sample: Optional[Tensor] = None,
                                     generator: Optional[torch.Generator] = None,
                                     uniforms: Optional[Tensor] = None) -> Pair:
    """The 1/n-baseline ReinMax exactly as the authors' public script computes it (Figure 6).

    Kept so that Figure 6 can be rerun as published; its expectation differs from the Heun
    target with the uniform baseline (see :func:`reinmax_uniform_baseline`).
    """
    return _uniform_baseline(logits, tau, hard, dim, sample, generator, True,
                             "reinmax_uniform_baseline_authors", uniforms)


# ------------------------------------------------------------------------ the registry
# The straight-through family under the names the paper prints (and Figure 6's two variants), in
# the order the book lists them. Every list of estimators in the package, the tests and the
# benchmarks is read from these entries (reinmax.estimators.registry); styles are the book's figure colours.
# draws_noise: given the sample, STGS and GR-MCK still draw Gumbel noise from the generator.
# sample_only_backward: the others' backward is a function of the logits, the sample and the
# upstream gradient (tests/test_registry.py checks both claims for every entry).
register(EstimatorSpec(
    name="ST", family="straight-through", function=st, sample_only_backward=True,
    description="Straight-Through (Bengio et al. 2013), Algorithm 1",
    style=dict(color="#7f7f7f", linestyle="--")))
register(EstimatorSpec(
    name="ReinMax", family="straight-through", function=reinmax, sample_only_backward=True,
    description="ReinMax (Liu et al. 2023), Algorithm 2: second order at ST's cost",
    style=dict(color="#d62728", linestyle="-")))
register(EstimatorSpec(
    name="STGS", family="straight-through", function=stgs, draws_noise=True,
    description="Straight-Through Gumbel-Softmax (Jang et al. 2017)",
    style=dict(color="#1f77b4", linestyle="-.")))
register(EstimatorSpec(
    name="GR-MCK", family="straight-through", function=gumbel_rao, options={"K": 1000},
    rules={"K": OptionRule("int", low=1, choices=("quadrature",))}, draws_noise=True, noise_free_with={"K": "quadrature"}, description="Gumbel-Rao Monte Carlo with K draws (Paulus et al. 2021)",
    style=dict(color="#2ca02c", linestyle=":")))
register(EstimatorSpec(
    name="GST-1.0", family="straight-through", function=gst, fixed={"gap": 1.0},
    sample_only_backward=True, description="Gapped Straight-Through, gap 1 (Fan et al. 2022)",
    style=dict(color="#9467bd", linestyle=(0, (5, 1)))))
register(EstimatorSpec(
    name="GST-p", family="straight-through", function=gst, fixed={"gap": "p"},
    sample_only_backward=True,
    description="Gapped Straight-Through, adaptive gap -log(1 - p)/p (Fan et al. 2022)",
    style=dict(color="#8c564b", linestyle=(0, (3, 1, 1, 1)))))
register(EstimatorSpec(
    name="ReinMax-1/n", family="straight-through", function=reinmax_uniform_baseline,
    sample_only_backward=True,
    description="ReinMax with the uniform 1/n baseline (Section 6.6), as derived in this book",
    style=dict(color="#ff7f0e", linestyle="-")))
register(EstimatorSpec(
    name="ReinMax-1/n-authors", family="straight-through",
    function=reinmax_uniform_baseline_authors, sample_only_backward=True,
    description="ReinMax with the 1/n baseline as the authors' Figure 6 script computes it",
    style=dict(color="#bcbd22", linestyle="--")))
