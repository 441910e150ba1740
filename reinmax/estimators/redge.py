r"""ReDGE (Gourevitch et al. 2026, "Categorical Reparameterization with Denoising Diffusion
models") and its ReinMax-style variant ReinDGE, from their public code's definitions.

A one-hot x0 noised as ``x_t = alpha_t x0 + sigma_t eps`` has the closed-form denoiser
``xhat0(x_t) = softmax(theta + alpha_t x_t / sigma_t^2)``. The sampler starts from
``x ~ N(0, I)`` and takes deterministic DDIM steps
``x_{t-1} = alpha_{t-1} xhat0 + sigma_{t-1} (x_t - alpha_t xhat0) / sigma_t`` down to t = 1 on the
schedule ``alpha = [1] + linspace(1 - t_1, 1e-4, n_steps - 1)``, ``sigma = 1 - alpha``; there the
last denoiser's logits ``lambda = theta + alpha_1 x_1 / sigma_1^2`` give ``soft = softmax(lambda)``
and the hard sample ``D ~ Cat(soft)``. The output is ST on lambda (ReDGE) or ReinMax on lambda
(ReinDGE, the ReinMax correction at the last step), and the gradient flows back to theta
through the whole sampler. n_steps - 1 denoiser evaluations.

**Choosing t_1.** t_1 = 1 gives alpha_1 = 0, lambda = theta: exactly ST (ReinMax for ReinDGE).
For t_1 < 1 the forward sample is only approximately Cat(softmax(theta)): the forward law
itself is biased, not only the gradient (``reinmax.theory.beyond.redge_forward_tv`` measures
the total variation distance against n_steps and t_1, ``redge_gradient_bias`` the gradient's
bias). The registry records this (``exact_sample=False``).

Ours, labelled: ``tau`` tempers only the backward's softmax of lambda (as ``st`` and ``reinmax``
do with theta); their code has no temperature. Given ``sample=``, the start x is drawn
independently of it (the forward's own pair (x, D) has D ~ Cat(softmax(lambda(x))), so a given
D and a fresh x do not follow ReDGE's joint law unless t_1 = 1). ``start=`` fixes x.
"""
import math
from typing import Optional

import torch

from .categorical import reinmax, st
from .checks import check_generator, check_logits, check_positive_int, check_softmax_rows, check_tau
from .registry import EstimatorSpec, OptionRule, register
from .sampling import working_dtype
from .two_category import distinct_rows

Tensor = torch.Tensor

__all__ = ["redge", "reindge", "redge_schedule", "redge_logits"]


def redge_schedule(n_steps: int, t_1: float):
    """alpha_t for t = 0..n_steps-1: 1, then n_steps - 1 values from 1 - t_1 down to 1e-4."""
    n_steps = check_positive_int("n_steps", n_steps)
    if n_steps < 2:
        raise ValueError(f"n_steps must be an integer >= 2 (n_steps - 1 denoiser evaluations); "
                         f"got n_steps={n_steps}")
    if isinstance(t_1, bool) or not isinstance(t_1, (int, float)) or not 0 < t_1 <= 1:
        raise ValueError(f"t_1 must be a number in (0, 1] (t_1 = 1 is ST); got t_1={t_1!r}")
    if n_steps == 2:
        return [1.0, 1.0 - float(t_1)]
    stop, first = 1e-4, 1.0 - float(t_1)
    return [1.0] + [first + (stop - first) * k / (n_steps - 2) for k in range(n_steps - 1)]


def _softmax(x: Tensor) -> Tensor:
    """softmax over the last dimension; for two categories ``(sigmoid(-d), sigmoid(d))`` with
    d = x_1 - x_0, the same values to rounding at several times less cost (torch's row softmax
    over a last dimension of 2 was most of ReDGE's step in polynomial programming)."""
    if x.shape[-1] != 2:
        return torch.softmax(x, -1)
    d = x[..., 1] - x[..., 0]
    return torch.stack([torch.sigmoid(-d), torch.sigmoid(d)], -1)


def redge_logits(theta: Tensor, start: Tensor, n_steps: int = 3, t_1: float = 0.5) -> Tensor:
    """The last denoiser's logits lambda = theta + alpha_1 x_1 / sigma_1^2 after the DDIM steps
    from ``start`` (categories last; differentiable in theta)."""
    alphas = redge_schedule(n_steps, t_1)
    x = start
    for t in range(n_steps - 1, 1, -1):
        a_t, s_t = alphas[t], 1.0 - alphas[t]
        a_prev, s_prev = alphas[t - 1], 1.0 - alphas[t - 1]
        xhat0 = _softmax(theta + (a_t / s_t ** 2) * x)
        x = a_prev * xhat0 + s_prev * (x - a_t * xhat0) / s_t
    a_1, s_1 = alphas[1], 1.0 - alphas[1]
    if a_1 == 0.0:                      # t_1 = 1: lambda is theta itself
        return theta
    return theta + (a_1 / s_1 ** 2) * x


def _redge(logits, tau, hard, dim, sample, generator, n_steps, t_1, start, last):
    if not hard:
        name = "redge" if last is st else "reindge"
        raise ValueError(f"{name} has no soft (relaxed) form: hard must be True; got hard={hard!r}")
    check_generator(generator)
    dim = check_logits(logits, dim)
    tau = check_tau(tau)
    redge_schedule(n_steps, t_1)                       # checks both
    theta = logits.movedim(dim, -1)
    with torch.no_grad():       # once per distinct row (a parameter broadcast over a batch)
        check_softmax_rows(torch.softmax(distinct_rows(theta), -1).expand(theta.shape), theta)
    work = working_dtype(theta)
    if start is None:
        start = torch.randn(theta.shape, generator=generator, device=theta.device, dtype=work)
    else:
        if not isinstance(start, Tensor) or start.shape != logits.shape:
            got = tuple(start.shape) if isinstance(start, Tensor) else type(start).__name__
            raise ValueError(f"start must be a tensor of the logits' shape {tuple(logits.shape)}; got {got}")
        start = start.movedim(dim, -1).to(work)
    lam = redge_logits(theta.to(work), start, n_steps, t_1).to(theta.dtype)
    y, _ = last(lam, tau, sample=sample, generator=generator)
    return y.movedim(-1, dim), _softmax(theta).movedim(-1, dim)


def redge(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
          sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
          n_steps: int = 3, t_1: float = 0.5, start: Optional[Tensor] = None):
    r"""ReDGE (module docstring): the one-hot ``D ~ Cat(softmax(lambda))`` with ST's backward on
    the sampler's last logits lambda, differentiated through the sampler. Returns
    ``(D, softmax(logits))``. **t_1 < 1 biases the forward sample itself** (D is not an exact
    draw from softmax(logits)); t_1 = 1 is ST exactly. ``n_steps`` >= 2 (their defaults: 3
    steps, t_1 = 0.5; README range 3-9 steps, t_1 0.3-0.9). ``start``: the Gaussian start x."""
    return _redge(logits, tau, hard, dim, sample, generator, n_steps, t_1, start, st)


def reindge(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
            sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
            n_steps: int = 3, t_1: float = 0.5, start: Optional[Tensor] = None):
    r"""ReinDGE: :func:`redge` with ReinMax's backward at the last step (their ``reindge``: the
    hook adds 1/2 [J(xhat0) g + (g . Delta) Delta], Delta = D - xhat0, which is ReinMax at tau = 1
    on lambda). t_1 = 1 is ReinMax exactly; t_1 < 1 biases the forward sample (see redge)."""
    return _redge(logits, tau, hard, dim, sample, generator, n_steps, t_1, start, reinmax)


# n_steps >= 2 (n_steps - 1 denoiser evaluations); t_1 in (0, 1], t_1 = 1 being ST exactly.
_REDGE_RULES = {"n_steps": OptionRule("int", low=2), "t_1": OptionRule("real", low=0, high=1, open_low=True)}
register(EstimatorSpec(
    name="ReDGE", family="straight-through", function=redge, options={"n_steps": 3, "t_1": 0.5},
    rules=_REDGE_RULES, draws_noise=True, exact_sample=False,
    description="ReDGE (Gourevitch et al. 2026): ST through a training-free diffusion sampler; "
                "for t_1 < 1 the forward sample is not exactly Cat(pi)",
    style=dict(color="#393b79", linestyle=(0, (5, 2)))))
register(EstimatorSpec(
    name="ReinDGE", family="straight-through", function=reindge, options={"n_steps": 3, "t_1": 0.5},
    rules=_REDGE_RULES, draws_noise=True, exact_sample=False,
    description="ReinDGE (Gourevitch et al. 2026): ReDGE with ReinMax's correction at the last step",
    style=dict(color="#6b6ecf", linestyle=(0, (5, 2)))))
