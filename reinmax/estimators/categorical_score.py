"""The REINFORCE family: surrogate objectives that need the value f(D), not its gradient.

Each function draws one-hot samples from ``softmax(logits)`` (or takes them through ``sample=``),
evaluates ``f`` on them and returns ``(surrogate, values)``. ``values`` are f's values (with
their ordinary gradient, e.g. into a decoder); ``surrogate`` has the same values as ``values`` but
its gradient with respect to ``logits`` is the score-function estimator. Minimise
``surrogate.mean()`` exactly as you would minimise ``values.mean()``.

``f`` receives the one-hot samples (the shape of ``logits``, or ``(K, *logits.shape)`` for RLOO)
and must return **one value per sample**, not a mean over the batch: each sample's score term
is weighted by its own value, and a batch mean would weight every sample by the whole batch's
loss (still unbiased, but far noisier). ``batch_dims`` says which dimensions are samples: the
first ``batch_dims`` dimensions of ``logits`` without its category dimension (default: all of
them, i.e. every categorical variable is its own sample), plus RLOO's leading ``num_samples``
dimension. The variables in the remaining dimensions belong to one sample (their
log-probabilities are summed, being independent). For logits of shape ``(batch, latents,
categories)`` and an f that returns one loss per example, pass ``batch_dims=1``. A value of any
other shape is a ValueError naming both shapes.
"""
from typing import Callable, Optional

import torch

from .checks import check_generator, check_logits, check_positive_int, check_softmax_rows
from .registry import EstimatorSpec, OptionRule, register
from .sampling import draw_index, one_hot

__all__ = ["reinforce", "rloo"]
"""What ``reinmax`` exports from here (``from reinmax import rloo``)."""


def _log_prob(logits, index, batch_dims):
    """log p of each sample: the log-probabilities of the variables beyond the first
    ``batch_dims`` dimensions summed (they are independent)."""
    log_probs = torch.log_softmax(logits, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return log_probs.reshape(log_probs.shape[:batch_dims] + (-1,)).sum(-1)


def _check_batch_dims(batch_dims, logits) -> int:
    """``batch_dims`` as a number of leading dimensions of ``logits`` (categories last):
    ``None`` means all of them but the categories."""
    variables = logits.dim() - 1
    if batch_dims is None:
        return variables
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int):
        raise TypeError(f"batch_dims must be an integer (how many leading dimensions of the logits "
                        f"are samples) or None; got batch_dims={batch_dims!r}")
    if not 0 <= batch_dims <= variables:
        raise ValueError(f"batch_dims must be between 0 and {variables} (the logits have "
                         f"{variables} dimensions besides the categories); got batch_dims={batch_dims}")
    return batch_dims


def _sample(logits, dim, sample, generator, leading=()):
    check_generator(generator)
    dim = check_logits(logits, dim)
    logits = logits.movedim(dim, -1)
    if leading:
        logits = logits.expand(leading + tuple(logits.shape))
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        check_softmax_rows(probs, logits)
        index = draw_index(probs, logits, sample, generator)
    return logits, dim, index


def _evaluate(f, one_hot, dim, samples: int, batch_dims: int, leading: str = ""):
    """f at the one-hot samples (categories moved back to ``dim``), checked to hold one value per
    sample: shape ``one_hot.shape[:samples]``, where ``samples`` is ``batch_dims`` plus the
    leading dimensions the estimator adds (RLOO's draws, named in ``leading`` for the message)."""
    values = f(one_hot.movedim(-1, dim))
    expected = tuple(one_hot.shape[:samples])
    got = tuple(values.shape) if isinstance(values, torch.Tensor) else None
    if got == expected:
        return values
    added = samples - batch_dims
    variables = tuple(one_hot.shape[:-1])
    hint = ""
    if got is not None and added <= len(got) <= len(variables) and got == variables[:len(got)]:
        k = len(got) - added
        hint = (f"; if only the first {k} dimensions of the logits are samples (the rest are "
                f"variables of one sample), pass batch_dims={k}")
    if got is not None and len(got) < samples:
        hint += ("; do not return a mean over the samples: it weights every sample's score by the "
                 "whole batch's loss, a valid but far noisier estimate (return each sample's value "
                 "and take the mean of the surrogate)")
    what = f"shape {got}" if got is not None else f"a {type(values).__name__}"
    raise ValueError(f"f must return one value per sample, shape {expected} ({leading}the first "
                     f"batch_dims={batch_dims} dimensions of the logits without the category "
                     f"dimension); got {what}{hint}")


def reinforce(logits: torch.Tensor, f: Callable, *, dim: int = -1, sample=None,
              generator: Optional[torch.Generator] = None, baseline=None,
              batch_dims: Optional[int] = None):
    r"""REINFORCE (eq. 3; Williams 1992): gradient f(D) d log p(D) / d theta, unbiased.

    ``f`` must return one value per sample: a tensor of shape ``logits.shape[:batch_dims]``
    (the category dimension ``dim`` left out). ``batch_dims=None`` (the default) takes every
    dimension but the categories as a sample dimension; for logits ``(batch, latents,
    categories)`` and one loss per example pass ``batch_dims=1``. Any other shape (a batch mean,
    say) is a ValueError naming both shapes.

    ``baseline`` (a number or a tensor broadcastable to the values, treated as a constant) is
    subtracted from f(D) in the score term; the paper's polynomial script uses none.
    """
    logits, dim, index = _sample(logits, dim, sample, generator)
    batch_dims = _check_batch_dims(batch_dims, logits)
    values = _evaluate(f, one_hot(index, logits), dim, batch_dims, batch_dims)
    log_p = _log_prob(logits, index, batch_dims)
    advantage = values.detach() if baseline is None else values.detach() - baseline
    surrogate = values + advantage * (log_p - log_p.detach())
    return surrogate, values


def rloo(logits: torch.Tensor, f: Callable, *, num_samples: int = 2, dim: int = -1, sample=None,
         generator: Optional[torch.Generator] = None, batch_dims: Optional[int] = None):
    r"""REINFORCE leave-one-out (Kool et al. 2019): ``num_samples`` draws per evaluation, each
    using the mean of the others as its baseline. Unbiased.

    ``f`` receives ``(num_samples, *logits.shape)`` one-hot samples and must return one value
    per sample, shape ``(num_samples, *logits.shape[:batch_dims])`` (category dimension left
    out; ``batch_dims=None``: every dimension but the categories), as in :func:`reinforce`.
    Returns tensors of that shape; ``sample=`` takes indices with the leading ``num_samples``
    dimension.
    """
    K = check_positive_int("num_samples", num_samples)
    if K < 2:
        raise ValueError(f"rloo needs num_samples >= 2 (one draw has no others); got {K}")
    logits, dim, index = _sample(logits, dim, sample, generator, leading=(K,))
    batch_dims = _check_batch_dims(batch_dims, logits[0])
    values = _evaluate(f, one_hot(index, logits), dim + 1, 1 + batch_dims, batch_dims,
                       "num_samples, then ")
    log_p = _log_prob(logits, index, 1 + batch_dims)
    baseline = (values.detach().sum(0, keepdim=True) - values.detach()) / (K - 1)
    surrogate = values + (values.detach() - baseline) * (log_p - log_p.detach())
    return surrogate, values


# ------------------------------------------------------------------------ the registry
# Given the samples (sample=), neither draws anything more, and the gradient is a function of the
# samples and f's values at them (tests/test_registry.py checks both claims).
register(EstimatorSpec(
    name="REINFORCE", family="score", function=reinforce, options={"baseline": None},
    rules={"baseline": OptionRule("real", choices=(None,), tensors=True)}, sample_only_backward=True, description="REINFORCE (Williams 1992), eq. 3",
    style=dict(color="#17becf", linestyle="-")))
register(EstimatorSpec(
    name="RLOO", family="score", function=rloo, options={"num_samples": 2},
    rules={"num_samples": OptionRule("int", low=2)}, sample_only_backward=True,
    description="REINFORCE leave-one-out (Kool et al. 2019), num_samples draws per evaluation",
    style=dict(color="#e377c2", linestyle="-.")))
