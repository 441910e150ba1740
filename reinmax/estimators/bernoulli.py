r"""Binary variables as one logit: the straight-through estimators for Bernoulli variables.

A binary variable is often given one logit ``a`` per variable, ``P(b = 1) = sigmoid(a)``, rather
than two categories. Every estimator here takes such logits (any shape, 0-d included) and
returns ``(b_hard, p)``: ``b_hard`` holds the sample, 0.0 or 1.0 in the logits' dtype, whose
backward pass is the estimator, and ``p = sigmoid(logits)`` with its ordinary gradient, as the
categorical estimators return ``(one_hot, softmax(logits))``::

    b, p = reinmax.estimators.bernoulli.reinmax(logits, tau=1.3)

**The same estimators as the two-category form.** The logit ``a`` is the two-category logits
``[0, a]``: category 1 is ``b = 1`` (``softmax([0, a])_1 = sigmoid(a)``) and category 0 is
``b = 0``; ``b_hard`` is the one-hot's entry 1. Given the same generator state, each function
here draws the sample (and noise) that :func:`reinmax.st`, :func:`reinmax.reinmax`,
:func:`reinmax.stgs` and :func:`reinmax.gumbel_rao` draw for the logits ``[0, a]`` (categories
last), and its gradient with respect to ``a`` is their gradient with respect to that category-1
logit, for any temperature (``tests/test_bernoulli.py`` holds them equal to 1e-12 in float64,
and the samples equal in float32; in half precision GR-MCK's two-category code computes its
probabilities in the half dtype, so a few samples near the boundary may differ).
With ``q = sigmoid(a / tau)``, ``p = sigmoid(a)`` and the upstream gradient ``g`` of ``b_hard``:

* ST: ``g q (1 - q) / tau``;
* ReinMax (Algorithm 2 for two categories): ``g (2 m (1 - m) - p (1 - p) / 2)`` with
  ``m = (q + b) / 2``, the midpoint between the tempered probability and the sample;
* STGS: ``g r (1 - r) / tau`` with ``r = sigmoid((a + L) / tau)`` and ``L`` a standard logistic
  variable (the difference of the two categories' Gumbel noises), ``b = 1`` iff ``a + L > 0``;
* GR-MCK: the same slope averaged over ``K`` logistic draws conditioned on the sample.

The backward formulas are written with differentiable operations, so a second derivative (with
the sample and the noise held fixed, as the first derivative holds them) is available under
``create_graph=True``, and forward-mode AD (``torch.func.jvp``, forward-over-reverse) multiplies
the tangent by the same slope. Under ``torch.compile`` each compiles into one graph
(``fullgraph=True``, logits requiring grad or not) and takes a temperature that changes between
calls without compiling anew, as the categorical estimators do
(:mod:`reinmax.estimators.categorical`). ``sample=`` takes 0/1 values (bool, integer or floating)
shaped like ``logits``: tests enumerate samples with it, and the Gumbel estimators then draw
their noise conditionally on it. ``generator=`` takes a ``torch.Generator`` (``None``: PyTorch's
global one).

These functions are registered in :mod:`reinmax.estimators.registry` as the family ``"bernoulli"``
("ST-Bernoulli", "ReinMax-Bernoulli", "STGS-Bernoulli", "GR-MCK-Bernoulli"): look them up with
``reinmax.get_estimator(name)`` or ``reinmax.BERNOULLI_ESTIMATORS``.
"""
import math
from typing import Optional, Tuple

import torch

from .checks import check_generator, check_positive_int, check_tau, validate_args_enabled
from .registry import EstimatorSpec, OptionRule, register
from .sampling import exponential, uniform, working_dtype
from .transforms import without_jvp

Tensor = torch.Tensor
Pair = Tuple[Tensor, Tensor]

__all__ = ["st", "reinmax", "stgs", "gumbel_rao"]


# ----------------------------------------------------------------------------- checks
def _check_logits(logits, generator=None) -> None:
    check_generator(generator)
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor; got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must have a floating dtype (float16, bfloat16, float32 or "
                        f"float64); got {logits.dtype}")
    if validate_args_enabled() and logits.numel() and torch.isnan(logits.detach()).any():
        raise ValueError("logits contain NaN; every logit must be a number "
                         "(+inf and -inf are allowed: b = 1 or b = 0 surely)")


def _check_hard(name: str, hard) -> None:
    if hard is not True:
        raise ValueError(f"{name} has no soft (relaxed) form: hard must be True; got hard={hard!r}")


def _check_sample(sample, logits: Tensor) -> Tensor:
    """``sample`` as 0.0/1.0 in the working dtype of ``logits``: bool, integer or floating
    values 0 and 1, shaped like ``logits``."""
    if not isinstance(sample, torch.Tensor):
        sample = torch.as_tensor(sample, device=logits.device)
    if sample.is_complex():
        raise TypeError(f"sample must hold 0/1 values (bool, integer or floating); got dtype {sample.dtype}")
    if tuple(sample.shape) != tuple(logits.shape):
        raise ValueError(f"sample must have the shape of logits, {tuple(logits.shape)}; "
                         f"got {tuple(sample.shape)}")
    if sample.dtype != torch.bool and sample.numel() and validate_args_enabled():
        bad = (sample != 0) & (sample != 1)
        if bad.any():
            raise ValueError(f"sample must hold 0/1 values (b = 1 is the event of probability "
                             f"sigmoid(logit)); got {sample[bad].flatten()[0].item()!r}")
    return sample.detach().to(device=logits.device, dtype=working_dtype(logits))


def _check_noise(name: str, tensor, logits: Tensor) -> Tensor:
    if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
        raise TypeError(f"{name} must be a floating torch.Tensor shaped like logits; got {tensor!r}")
    if tuple(tensor.shape) != tuple(logits.shape):
        raise ValueError(f"{name} must have the shape of logits, {tuple(logits.shape)}; "
                         f"got {tuple(tensor.shape)}")
    return tensor.detach().to(device=logits.device, dtype=working_dtype(logits))


def _draw(logits: Tensor, sample, generator) -> Tensor:
    """``b`` (0.0/1.0, working dtype): ``sample`` when given, else drawn as the two-category
    inverse CDF draws it from one uniform ``u`` in (0, 1]: category 1 iff ``u > P(b = 0)``."""
    if sample is not None:
        return _check_sample(sample, logits)
    work = logits.detach().to(working_dtype(logits))
    u = uniform(work.shape, work, generator)
    return (u > torch.sigmoid(-work)).to(work.dtype)


# ----------------------------------------------------------------------------- backward
class _Through(torch.autograd.Function):
    """Forward: ``value`` (the sample, or a relaxation); backward: ``grad * slope(...)``.

    ``slope`` is the estimator's backward formula, ``slope(logits, value, *fixed)``: a function
    of the logits, of the value (the sample, for ST and ReinMax: passed once, as torch.compile
    refuses the same tensor as two inputs of a Function) and of what else it holds fixed (the
    noise). It is evaluated in backward with differentiable operations on the saved logits, so
    the backward is itself differentiable (``create_graph=True``); torch.func (vmap, grad)
    batches it by a generated rule, and forward-mode AD (``torch.func.jvp``) multiplies the
    tangent by the same slope (the Jacobian is diagonal)."""
    generate_vmap_rule = True

    @staticmethod
    def forward(logits, value, slope, *fixed):
        return value.to(logits.dtype).clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, value, slope, *fixed = inputs
        ctx.slope = slope
        ctx.save_for_backward(logits, value, *fixed)
        ctx.save_for_forward(logits, value, *fixed)

    @staticmethod
    def backward(ctx, grad):
        logits, _, *fixed = ctx.saved_tensors
        return (grad * _Through.weight(ctx)).to(logits.dtype), None, None, *([None] * len(fixed))

    @staticmethod
    def jvp(ctx, tangent, *_):
        return (tangent * _Through.weight(ctx)).to(ctx.saved_tensors[0].dtype)

    @staticmethod
    def weight(ctx) -> Tensor:
        """The slope at the saved logits (working dtype)."""
        logits, value, *fixed = ctx.saved_tensors
        return ctx.slope(logits.to(working_dtype(logits)), value, *fixed)


_ThroughCompiled = without_jvp(_Through)


def _result(logits: Tensor, value: Tensor, slope, *fixed) -> Pair:
    function = _ThroughCompiled if torch.compiler.is_compiling() else _Through
    return function.apply(logits, value, slope, *fixed), torch.sigmoid(logits)


def _logistic_slope(x: Tensor, tau: float) -> Tensor:
    """d sigmoid(x / tau) / dx."""
    r = torch.sigmoid(x / tau)
    return r * (1 - r) / tau


def _st_slope(a: Tensor, b: Tensor, tau: float) -> Tensor:
    return _logistic_slope(a, tau)


def _reinmax_slope(a: Tensor, b: Tensor, tau: float) -> Tensor:
    # eq. 7 for two categories: 2 VJP at the midpoint m - 1/2 VJP at p, the sigmoid's VJP at a
    # probability x being x (1 - x).
    m = (torch.sigmoid(a / tau) + b) / 2
    p = torch.sigmoid(a)
    return 2 * m * (1 - m) - p * (1 - p) / 2


def _gumbel_slope(a: Tensor, noise: Tensor, tau: float) -> Tensor:
    """The slope of the relaxation sigmoid((a + L) / tau), averaged over a leading dimension of
    ``noise`` when it has one more dimension than ``a`` (GR-MCK's K draws)."""
    slope = _logistic_slope(a + noise, tau)
    return slope.mean(0) if noise.dim() > a.dim() else slope


# ----------------------------------------------------------------------------- estimators
def st(logits: Tensor, tau: float = 1.0, hard: bool = True, *, sample=None,
       generator: Optional[torch.Generator] = None) -> Pair:
    r"""Straight-Through for Bernoulli variables (one logit each), ST-Bernoulli.

    Forward: ``b ~ Bernoulli(sigmoid(logits))``; backward: ``g sigmoid'(a / tau) / tau``,
    :func:`reinmax.st` on the two-category logits ``[0, a]``. Returns ``(b_hard, sigmoid(logits))``.
    """
    _check_hard("st", hard)
    _check_logits(logits, generator)
    tau = check_tau(tau, logits)
    b = _draw(logits, sample, generator)
    return _result(logits, b, lambda a, b: _st_slope(a, b, tau))


def reinmax(logits: Tensor, tau: float = 1.0, hard: bool = True, *, sample=None,
            generator: Optional[torch.Generator] = None) -> Pair:
    r"""ReinMax for Bernoulli variables (one logit each), ReinMax-Bernoulli.

    Forward: ``b ~ Bernoulli(sigmoid(logits))``; backward:
    ``g (2 m (1 - m) - p (1 - p) / 2)`` with ``m = (sigmoid(a / tau) + b) / 2`` and
    ``p = sigmoid(a)``: :func:`reinmax.reinmax` on the two-category logits ``[0, a]``. At
    ``tau = 1`` its expectation is the second-order (Heun) approximation of Theorem 3.2.
    Returns ``(b_hard, sigmoid(logits))``.
    """
    _check_hard("reinmax", hard)
    _check_logits(logits, generator)
    tau = check_tau(tau, logits)
    b = _draw(logits, sample, generator)
    return _result(logits, b, lambda a, b: _reinmax_slope(a, b, tau))


def _conditional_logistic(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``x = a + L`` (``L`` standard logistic) conditioned on ``b = [x > 0]``, from ``t`` in
    (0, 1] by the inverse CDF: given ``b = 1`` the logistic's upper tail beyond ``-a`` holds
    mass ``sigmoid(a)``, and ``x = a - logit(sigmoid(a) t)``; given ``b = 0``,
    ``x = a - logit(1 - sigmoid(-a) t)``. Written with logarithms so that neither tail loses
    precision."""
    F = torch.nn.functional
    log_t = torch.log(t)
    one = a - F.logsigmoid(a) - log_t + torch.log1p(-torch.sigmoid(a) * t)
    zero = a + F.logsigmoid(-a) + log_t - torch.log1p(-torch.sigmoid(-a) * t)
    return torch.where(b > 0, one, zero)


def stgs(logits: Tensor, tau: float = 1.0, hard: bool = True, *, sample=None,
         generator: Optional[torch.Generator] = None, logistic: Optional[Tensor] = None) -> Pair:
    r"""Straight-Through Gumbel-Softmax for Bernoulli variables (STGS-Bernoulli; the binary
    Concrete relaxation of Maddison et al. 2017 with a straight-through forward).

    ``b = [a + L > 0]`` with ``L`` standard logistic noise, drawn from ``generator`` as
    :func:`reinmax.stgs` draws the two-category noise (one uniform per variable); the backward
    goes through ``sigmoid((a + L) / tau)``. ``logistic=`` (shaped like ``logits``) fixes ``L``:
    given the two-category Gumbel noise ``G``, ``L = G[..., 1] - G[..., 0]`` reproduces
    ``reinmax.stgs(..., gumbels=G)``. ``sample=`` fixes ``b`` instead, and ``L`` is then drawn
    conditionally on it. ``hard=False`` returns the relaxation ``sigmoid((a + L) / tau)`` as
    ``b_hard``. Returns ``(b_hard, sigmoid(logits))``.
    """
    _check_logits(logits, generator)
    tau = check_tau(tau, logits)
    if logistic is not None and sample is not None:
        raise ValueError("stgs takes either logistic= or sample=, not both")
    work = logits.detach().to(working_dtype(logits))
    if logistic is not None:
        x = work + _check_noise("logistic", logistic, logits)
        b = (x > 0).to(work.dtype)
    else:
        v = uniform(work.shape, work, generator)
        if sample is None:
            # The two-category code's draw: z = -a + logit(v), category 0 iff z > 0; x = -z.
            x = work - torch.logit(v)
            b = (x >= 0).to(work.dtype)
        else:
            b = _check_sample(sample, logits)
            x = _conditional_logistic(work, b, v)
    noise = torch.nan_to_num(x - work, nan=0.0)      # an infinite logit: no noise, no gradient
    value = b if hard else torch.sigmoid(x / tau)
    return _result(logits, value, lambda a, _, noise: _gumbel_slope(a, noise, tau), noise)


def gumbel_rao(logits: Tensor, tau: float = 1.0, hard: bool = True, *, sample=None,
               generator: Optional[torch.Generator] = None, K: int = 1000) -> Pair:
    r"""Gumbel-Rao Monte Carlo for Bernoulli variables (GR-MCK-Bernoulli; Paulus et al. 2021).

    The sample as :func:`st` draws it; the backward goes through the average of
    ``sigmoid((a + L_k) / tau)`` over ``K`` logistic draws conditioned on the sample, the same
    numbers :func:`reinmax.gumbel_rao` draws for the two-category logits ``[0, a]`` (two
    exponential draws per variable and draw: with ``E_d`` the sampled category's and ``E_o`` the
    other's, ``|a + L| = log(1 + E_o / (E_d P(other)))``). Memory grows as ``K * logits.numel()``.
    ``hard=False`` returns the averaged relaxation as ``b_hard``. Returns
    ``(b_hard, sigmoid(logits))``.
    """
    _check_logits(logits, generator)
    tau = check_tau(tau, logits)
    K = check_positive_int("K", K)
    b = _draw(logits, sample, generator)
    work = logits.detach().to(working_dtype(logits))
    e = exponential((K,) + tuple(work.shape) + (2,), work, generator)
    one = b > 0
    e_drawn = torch.where(one, e[..., 1], e[..., 0])
    e_other = torch.where(one, e[..., 0], e[..., 1])
    p_other = torch.sigmoid(torch.where(one, -work, work))
    x_abs = torch.log1p(e_other / (e_drawn * p_other))   # inf where the other category is impossible
    x = torch.where(one, x_abs, -x_abs)
    noise = torch.nan_to_num(x - work, nan=0.0, posinf=math.inf, neginf=-math.inf)
    value = b if hard else torch.sigmoid(x / tau).mean(0)
    return _result(logits, value, lambda a, _, noise: _gumbel_slope(a, noise, tau), noise)


# ------------------------------------------------------------------------ the registry
# Family "bernoulli": one logit per variable, fn(logits, tau, hard, *, sample, generator) ->
# (b_hard, sigmoid(logits)). Colours are the light tones of the categorical estimators' own.
register(EstimatorSpec(
    name="ST-Bernoulli", family="bernoulli", function=st, sample_only_backward=True,
    description="Straight-Through for one logit per binary variable (= ST on [0, a])",
    style=dict(color="#c7c7c7", linestyle="--")))
register(EstimatorSpec(
    name="ReinMax-Bernoulli", family="bernoulli", function=reinmax, sample_only_backward=True,
    description="ReinMax for one logit per binary variable (= ReinMax on [0, a])",
    style=dict(color="#ff9896", linestyle="-")))
register(EstimatorSpec(
    name="STGS-Bernoulli", family="bernoulli", function=stgs, draws_noise=True,
    description="Straight-Through Gumbel-Softmax (logistic noise) for one logit per binary variable",
    style=dict(color="#aec7e8", linestyle="-.")))
register(EstimatorSpec(
    name="GR-MCK-Bernoulli", family="bernoulli", function=gumbel_rao, options={"K": 1000},
    rules={"K": OptionRule("int", low=1)}, draws_noise=True,
    description="Gumbel-Rao Monte Carlo with K draws for one logit per binary variable",
    style=dict(color="#98df8a", linestyle=":")))
