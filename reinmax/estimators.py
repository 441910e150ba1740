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
"""
from typing import Optional, Tuple, Union

import torch

from . import _binary
from ._checks import (check_logits, check_positive_int, check_sample, check_tau,
                      diagnose_bad_rows, validate_args_enabled)

Tensor = torch.Tensor
Pair = Tuple[Tensor, Tensor]


# ----------------------------------------------------------------------------- helpers
def _one_hot(index: Tensor, like: Tensor) -> Tensor:
    """One-hot rows (dtype of ``like``) for ``index``; a comparison, so it works under vmap."""
    categories = torch.arange(like.shape[-1], device=like.device)
    return (index.unsqueeze(-1) == categories).to(like.dtype)


def _uniform(shape, like: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """Uniform numbers in (0, 1]: excluding 0 keeps masked categories (probability 0) unsampled."""
    dtype = torch.float64 if like.dtype == torch.float64 else torch.float32
    return 1.0 - torch.rand(shape, generator=generator, device=like.device, dtype=dtype)


def _inverse_cdf(probs: Tensor, u: Tensor) -> Tensor:
    """Category indices with P(index = i) = probs[..., i]; rows need not sum exactly to one."""
    if probs.dtype in (torch.float16, torch.bfloat16):
        probs = probs.float()
    cdf = probs.cumsum(-1)
    # The index is the number of categories whose cumulative mass lies below u * total.
    return (cdf < u.unsqueeze(-1) * cdf[..., -1:]).sum(-1)


def _check_rows(probs: Tensor, logits: Tensor) -> None:
    """softmax gives NaN for NaN, +inf or all -inf rows; one reduction detects all three."""
    if validate_args_enabled() and not torch.isfinite(probs.sum(-1)).all():
        diagnose_bad_rows(logits.detach())


def _prepare(logits: Tensor, tau, dim: int) -> Tuple[Tensor, float, int]:
    dim = check_logits(logits, dim)
    tau = check_tau(tau)
    return logits.movedim(dim, -1), tau, dim


def _draw_index(probs: Tensor, logits: Tensor, sample, generator) -> Tensor:
    if sample is not None:
        return check_sample(sample, logits)
    return _inverse_cdf(probs, _uniform(probs.shape[:-1], probs, generator))


def _no_soft_form(name: str, hard: bool) -> None:
    if not hard:
        raise ValueError(f"{name} has no soft (relaxed) form: hard must be True; got hard={hard!r}")


def _softmax_vjp(probs: Tensor, grad: Tensor) -> Tensor:
    """Vector-Jacobian product of softmax: probs * (grad - <probs, grad>)."""
    weighted = grad * probs
    return weighted - probs * weighted.sum(-1, keepdim=True)


# ------------------------------------------------------------------- fused Functions
class _SampleFunction(torch.autograd.Function):
    """Shared forward of ST and ReinMax: softmax, inverse-CDF sample, one-hot.

    ``index`` (given samples) or ``u`` (uniform numbers) decides the sample; both are plain
    tensor arguments so that the forward is a pure function and ``torch.func`` can batch it.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index, u, tau):
        probs = torch.softmax(logits, -1)
        if index is None:
            index = _inverse_cdf(probs, u)
        return _one_hot(index, logits), probs

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, _, tau = inputs
        one_hot, probs = output
        ctx.tau = tau
        # logits are kept only to form softmax(logits / tau) lazily in backward when tau != 1.
        ctx.save_for_backward(logits if tau != 1.0 else None, probs, one_hot)


class _STFunction(_SampleFunction):
    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        logits, probs, _ = ctx.saved_tensors
        tau = ctx.tau
        surrogate = probs if tau == 1.0 else torch.softmax(logits / tau, -1)
        grad = _softmax_vjp(surrogate, grad_hard)
        if tau != 1.0:
            grad = grad / tau
        return grad + _softmax_vjp(probs, grad_soft), None, None, None


class _ReinMaxFunction(_SampleFunction):
    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        logits, probs, one_hot = ctx.saved_tensors
        tau = ctx.tau
        tempered = probs if tau == 1.0 else torch.softmax(logits / tau, -1)
        midpoint = 0.5 * (tempered + one_hot)          # pi_D = (pi_tau + D) / 2, eq. 7
        # 2 * softmax-VJP at the midpoint - 1/2 * softmax-VJP at pi (the ST term at tau = 1),
        # plus the ordinary gradient of y_soft = softmax(logits).
        grad = 2.0 * _softmax_vjp(midpoint, grad_hard)
        grad = grad + _softmax_vjp(probs, grad_soft - 0.5 * grad_hard)
        return grad, None, None, None


def _fused(function, logits, tau, hard, dim, sample, generator, name) -> Pair:
    _no_soft_form(name, hard)
    logits, tau, dim = _prepare(logits, tau, dim)
    if sample is not None:
        index, u = check_sample(sample, logits), None
    else:
        index, u = None, _uniform(logits.shape[:-1], logits, generator)
    y_hard, y_soft = function.apply(logits, index, u, tau)
    _check_rows(y_soft, logits)
    return y_hard.movedim(-1, dim), y_soft.movedim(-1, dim)


def st(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
       sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Pair:
    r"""Straight-Through (Algorithm 1; Bengio et al. 2013).

    The forward value is a one-hot sample ``D`` from ``softmax(logits)``; the backward treats
    sampling as the identity on ``softmax(logits / tau)``:
    :math:`\widehat\nabla_{ST} = \frac{\partial f(D)}{\partial D}\,\frac{d\,\mathrm{softmax}_\tau(\theta)}{d\theta}`
    (eq. 4). At ``tau = 1`` its expectation is the first-order approximation of Theorem 3.1.

    Returns ``(y_hard, y_soft)``: the one-hot sample and ``softmax(logits)``.
    """
    return _fused(_STFunction, logits, tau, hard, dim, sample, generator, "st")


def reinmax(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
            sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None) -> Pair:
    r"""ReinMax (Algorithm 2, eq. 7; Liu et al. 2023): a second-order estimator at ST's cost.

    Backward: :math:`2\,\widehat\nabla_{(\pi_\tau + D)/2} - \tfrac12\,\widehat\nabla_{ST}`, where
    the tempered softmax enters only the midpoint :math:`(\pi_\tau + D)/2` and the ST term uses
    ``softmax(logits)`` at temperature 1, as Algorithm 2 (line 5) and the official package do.
    At ``tau = 1`` its expectation is the second-order (Heun) approximation of Theorem 3.2.
    The paper recommends ``tau >= 1`` (the temperature stabilises, it does not reduce bias); any
    ``tau > 0`` is accepted so that temperature sweeps such as Figure 2 can run.

    Call-compatible with the official ``reinmax`` 0.1.0 package: ``reinmax(logits, tau)``
    returns ``(one_hot_sample, softmax(logits))``.
    """
    return _fused(_ReinMaxFunction, logits, tau, hard, dim, sample, generator, "reinmax")


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
    return torch.where(_one_hot(index, logits).bool(), top, others)


def _noise_from_perturbed(perturbed: Tensor, logits: Tensor) -> Tensor:
    """G = (theta + G) - theta, with masked (-inf) categories given zero noise instead of NaN."""
    return torch.where(torch.isneginf(logits), torch.zeros_like(perturbed), perturbed - logits)


def _through(y_hard: Tensor, surrogate: Tensor) -> Tensor:
    """Forward value of ``y_hard``, gradient of ``surrogate``."""
    return y_hard - surrogate.detach() + surrogate


def stgs(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
         sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
         gumbels: Optional[Tensor] = None) -> Pair:
    r"""Straight-Through Gumbel-Softmax (eq. 5; Jang et al. 2017).

    ``D = one_hot(argmax(logits + G))`` with Gumbel noise ``G``; the backward goes through
    ``softmax((logits + G) / tau)``. Pass ``gumbels=`` (the shape of ``logits``) to fix the noise
    (this reproduces :func:`torch.nn.functional.gumbel_softmax` given the same noise), or
    ``sample=`` to fix the category, in which case G is drawn conditionally on it.
    ``hard=False`` returns the relaxed sample ``softmax((logits + G) / tau)`` as ``y_hard``.
    """
    logits, tau, dim = _prepare(logits, tau, dim)
    if gumbels is not None and sample is not None:
        raise ValueError("stgs takes either gumbels= or sample=, not both")
    if hard and gumbels is None and logits.shape[-1] == 2:
        return _binary.stgs(logits, tau, dim, sample, generator)   # same estimator, sigmoid form
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        _check_rows(probs, logits)
        if gumbels is not None:
            gumbels = gumbels.movedim(dim, -1)
            if gumbels.shape != logits.shape:
                raise ValueError(f"gumbels must have the shape of logits {tuple(logits.shape)}; "
                                 f"got {tuple(gumbels.shape)}")
            noise = gumbels.to(logits.dtype)
            index = (logits + noise).argmax(-1)
        else:
            index = _draw_index(probs, logits, sample, generator)
            # torch.empty, not empty_like: the noise must not depend on the memory layout.
            e = torch.empty(logits.shape, device=logits.device,
                            dtype=torch.float64 if logits.dtype == torch.float64
                            else torch.float32).exponential_(generator=generator)
            noise = _noise_from_perturbed(_gumbel_given_sample(logits.to(e.dtype), index, e),
                                          logits).to(logits.dtype)
    relaxed = torch.softmax((logits + noise) / tau, -1)
    y = _through(_one_hot(index, logits), relaxed) if hard else relaxed
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


def gumbel_rao(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
               sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               K: Union[int, str] = 1000) -> Pair:
    r"""Gumbel-Rao Monte Carlo, GR-MCK (Paulus et al. 2021).

    Rao-Blackwellises STGS: the backward goes through the average of
    ``softmax((logits + G_k) / tau)`` over ``K`` Gumbel draws conditioned on the sampled
    category, so its mean equals STGS's and its variance falls as ``K`` grows. Memory and time
    grow as ``K * logits.numel()`` (the paper uses K = 1000; Table 3 measures 100, 300, 1000).
    ``hard=False`` returns the averaged relaxation as ``y_hard``.

    ``K="quadrature"`` (two categories only, ``hard=True``): the limit ``K -> inf``. With two
    categories the conditional expectation is a one-dimensional integral over the logistic noise
    of the logit difference; a 64-node Gauss-Legendre rule computes it (error below 1e-6 where
    K = 1000 Monte Carlo has a relative standard error of about 1%), once per distinct logit row
    of a broadcast (expanded) ``logits``. It is GR-MCK without its remaining Monte Carlo noise.
    """
    logits, tau, dim = _prepare(logits, tau, dim)
    if K == "quadrature":
        if logits.shape[-1] != 2 or not hard:
            raise ValueError(f"K='quadrature' needs two categories and hard=True; got "
                             f"{logits.shape[-1]} categories and hard={hard!r} (use an integer K)")
        return _binary.gumbel_rao_quadrature(logits, tau, dim, sample, generator)
    if isinstance(K, str):
        raise ValueError(f"K must be a positive integer or 'quadrature'; got K={K!r}")
    K = check_positive_int("K", K)
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        _check_rows(probs, logits)
        index = _draw_index(probs, logits, sample, generator)
        work = torch.float64 if logits.dtype == torch.float64 else torch.float32
        e = torch.empty((K,) + tuple(logits.shape), dtype=work,
                        device=logits.device).exponential_(generator=generator)
        noise = _noise_from_perturbed(_gumbel_given_sample(logits.to(work), index, e),
                                      logits).to(logits.dtype)
    relaxed = torch.softmax((logits + noise) / tau, -1).mean(0)
    y = _through(_one_hot(index, logits), relaxed) if hard else relaxed
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


def gst(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
        sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
        gap: Union[float, str] = 1.0) -> Pair:
    r"""Gapped Straight-Through (Fan et al. 2022): GST-1.0 (``gap=1.0``) and GST-p (``gap="p"``).

    Replaces STGS's random Gumbel perturbation by a deterministic one given the sample ``d``:
    the sampled logit is raised to the current maximum and every other logit is lowered, if
    needed, to at least ``gap`` below it; the backward goes through the softmax of the moved
    logits at temperature ``tau``. ``gap="p"`` uses the adaptive gap ``-log(1 - pi_d) / pi_d``.
    The correction depends only on the sample, so E[GST] can be computed exactly by enumeration.
    """
    _no_soft_form("gst", hard)
    logits, tau, dim = _prepare(logits, tau, dim)
    if not (gap == "p" or (isinstance(gap, (int, float)) and not isinstance(gap, bool) and 0 <= gap < float("inf"))):
        raise ValueError(f"gap must be a non-negative finite number or 'p'; got gap={gap!r}")
    if logits.shape[-1] == 2:
        return _binary.gst(logits, tau, dim, sample, generator, gap)   # same estimator, sigmoid form
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        _check_rows(probs, logits)
        index = _draw_index(probs, logits, sample, generator)
        chosen = _one_hot(index, logits).bool()
        top = logits.max(-1, keepdim=True).values
        if gap == "p":
            p_d = probs.gather(-1, index.unsqueeze(-1)) * (1 - 1e-5)  # keeps log(1 - p) finite
            gap = -torch.log1p(-p_d) / p_d
        raise_chosen = torch.where(chosen, top - logits, torch.zeros_like(logits))
        lower_others = torch.where(chosen | torch.isneginf(logits), torch.zeros_like(logits),
                                   (logits - top + gap).clamp(min=0))
        move = raise_chosen - lower_others
    relaxed = torch.softmax((logits + move) / tau, -1)
    y = _through(chosen.to(logits.dtype), relaxed)
    return y.movedim(-1, dim), torch.softmax(logits, -1).movedim(-1, dim)


# ------------------------------------------------------------- ReinMax, 1/n baseline
class _UniformBaselineFunction(torch.autograd.Function):
    """ReinMax with the uniform baseline phi = 1/n (Section 6.6, Remark 4.1 with Heun).

    ``authors=False``: the single-sample estimator derived in PROTOCOLS.md, whose expectation is
    exactly Heun's approximation with the 1/n baseline:
        1/2 (g[d] - mean_k g[k]) (D - pi)  +  1/(2 n pi_d) * ST-gradient at D.
    ``authors=True``: the variant in the authors' script, whose second half uses
    pi_d g[d] D - (pi . g) pi in place of the ST gradient and weights it by
    1 / (n softmax(logits / tau)_d + 1e-12). Its expectation is not that target.
    """
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, index, tau, authors):
        probs = torch.softmax(logits, -1)
        return _one_hot(index, logits), probs

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, _, tau, authors = inputs
        one_hot, probs = output
        ctx.tau, ctx.authors = tau, authors
        ctx.save_for_backward(logits, probs, one_hot)

    @staticmethod
    def backward(ctx, grad_hard, grad_soft):
        logits, probs, one_hot = ctx.saved_tensors
        tau, n = ctx.tau, logits.shape[-1]
        g_sample = (grad_hard * one_hot).sum(-1, keepdim=True)
        score_half = (g_sample - grad_hard.mean(-1, keepdim=True)) * (one_hot - probs)
        tempered = probs if tau == 1.0 else torch.softmax(logits / tau, -1)
        if ctx.authors:
            weighted = grad_hard * probs
            st_half = weighted * one_hot - weighted.sum(-1, keepdim=True) * probs
            weight = 1.0 / (n * (tempered * one_hot).sum(-1, keepdim=True) + 1e-12)
        else:
            st_half = _softmax_vjp(tempered, grad_hard) / tau
            weight = 1.0 / (n * (probs * one_hot).sum(-1, keepdim=True))
        grad = 0.5 * (score_half + weight * st_half)
        return grad + _softmax_vjp(probs, grad_soft), None, None, None


def _uniform_baseline(logits, tau, hard, dim, sample, generator, authors, name) -> Pair:
    _no_soft_form(name, hard)
    logits, tau, dim = _prepare(logits, tau, dim)
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        _check_rows(probs, logits)
        index = _draw_index(probs, logits, sample, generator)
    y_hard, y_soft = _UniformBaselineFunction.apply(logits, index, tau, authors)
    return y_hard.movedim(-1, dim), y_soft.movedim(-1, dim)


def reinmax_uniform_baseline(logits: Tensor, tau: float = 1.0, hard: bool = True, *,
                             dim: int = -1, sample: Optional[Tensor] = None,
                             generator: Optional[torch.Generator] = None) -> Pair:
    r"""ReinMax with the uniform ``1/n`` baseline (Section 6.6), in the form derived in this book.

    Its expectation equals Heun's approximation with baseline :math:`\phi_j = 1/n`
    (Remark 4.1 with the second-order rule). The ``1/(n \pi_D)`` importance weight is the
    instability Section 4.1 warns about. ``tau`` enters the ST half only, as in :func:`st`.
    """
    return _uniform_baseline(logits, tau, hard, dim, sample, generator, False,
                             "reinmax_uniform_baseline")


def reinmax_uniform_baseline_authors(logits: Tensor, tau: float = 1.0, hard: bool = True, *,
                                     dim: int = -1, sample: Optional[Tensor] = None,
                                     generator: Optional[torch.Generator] = None) -> Pair:
    """The 1/n-baseline ReinMax exactly as the authors' public script computes it (Figure 6).

    Kept so that Figure 6 can be rerun as published; its expectation differs from the Heun
    target with the uniform baseline (see :func:`reinmax_uniform_baseline`).
    """
    return _uniform_baseline(logits, tau, hard, dim, sample, generator, True,
                             "reinmax_uniform_baseline_authors")
