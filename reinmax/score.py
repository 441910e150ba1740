"""The REINFORCE family: surrogate objectives that need the value f(D), not its gradient.

Each function draws one-hot samples from ``softmax(logits)`` (or takes them through ``sample=``),
evaluates ``f`` on them and returns ``(surrogate, values)``. ``values`` are f's values (with
their ordinary gradient, e.g. into a decoder); ``surrogate`` has the same values as ``values`` but
its gradient with respect to ``logits`` is the score-function estimator. Minimise
``surrogate.mean()`` exactly as you would minimise ``values.mean()``.

``f`` receives the one-hot samples (shape of ``logits``, or ``(K, *logits.shape)`` for RLOO) and
returns one value per evaluation: a tensor whose shape is a prefix of ``logits.shape[:-1]``.
The log-probabilities of the variables beyond that prefix are summed (they are independent).
"""
from typing import Callable, Optional

import torch

from ._checks import check_logits, check_positive_int, check_softmax_rows
from .registry import EstimatorSpec, register
from .sampling import draw_index, one_hot

__all__ = ["reinforce", "rloo"]
"""What ``reinmax`` exports from here (``from reinmax import rloo``)."""


def _log_prob(logits, index, batch_dims):
    log_probs = torch.log_softmax(logits, -1).gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return log_probs.reshape(log_probs.shape[:batch_dims] + (-1,)).sum(-1)


def _sample(logits, dim, sample, generator, leading=()):
    dim = check_logits(logits, dim)
    logits = logits.movedim(dim, -1)
    if leading:
        logits = logits.expand(leading + tuple(logits.shape))
    with torch.no_grad():
        probs = torch.softmax(logits, -1)
        check_softmax_rows(probs, logits)
        index = draw_index(probs, logits, sample, generator)
    return logits, dim, index


def _evaluate(f, one_hot, dim):
    values = f(one_hot.movedim(-1, dim))
    # One value per evaluation: a prefix of the shape without the category dimension.
    if (not isinstance(values, torch.Tensor) or values.dim() >= one_hot.dim()
            or values.shape != one_hot.shape[:values.dim()]):
        raise ValueError(f"f must return one value per evaluation, shaped like a prefix of "
                         f"{tuple(one_hot.shape[:-1])}; got {getattr(values, 'shape', type(values))}")
    return values


def reinforce(logits: torch.Tensor, f: Callable, *, dim: int = -1, sample=None,
              generator: Optional[torch.Generator] = None, baseline=None):
    r"""REINFORCE (eq. 3; Williams 1992): gradient f(D) d log p(D) / d theta, unbiased.

    ``baseline`` (a number or a tensor broadcastable to the values, treated as a constant) is
    subtracted from f(D) in the score term; the paper's polynomial script uses none.
    """
    logits, dim, index = _sample(logits, dim, sample, generator)
    values = _evaluate(f, one_hot(index, logits), dim)
    log_p = _log_prob(logits, index, values.dim())
    advantage = values.detach() if baseline is None else values.detach() - baseline
    surrogate = values + advantage * (log_p - log_p.detach())
    return surrogate, values


def rloo(logits: torch.Tensor, f: Callable, *, num_samples: int = 2, dim: int = -1, sample=None,
         generator: Optional[torch.Generator] = None):
    r"""REINFORCE leave-one-out (Kool et al. 2019): ``num_samples`` draws per evaluation, each
    using the mean of the others as its baseline. Unbiased.

    Returns tensors with a leading ``num_samples`` dimension; ``sample=`` takes indices with that
    leading dimension.
    """
    K = check_positive_int("num_samples", num_samples)
    if K < 2:
        raise ValueError(f"rloo needs num_samples >= 2 (one draw has no others); got {K}")
    logits, dim, index = _sample(logits, dim, sample, generator, leading=(K,))
    values = _evaluate(f, one_hot(index, logits), dim + 1)
    log_p = _log_prob(logits, index, values.dim())
    baseline = (values.detach().sum(0, keepdim=True) - values.detach()) / (K - 1)
    surrogate = values + (values.detach() - baseline) * (log_p - log_p.detach())
    return surrogate, values


# ------------------------------------------------------------------------ the registry
# Given the samples (sample=), neither draws anything more, and the gradient is a function of the
# samples and f's values at them (tests/test_registry.py checks both claims).
register(EstimatorSpec(
    name="REINFORCE", family="score", function=reinforce, options={"baseline": None},
    sample_only_backward=True, description="REINFORCE (Williams 1992), eq. 3",
    style=dict(color="#17becf", linestyle="-")))
register(EstimatorSpec(
    name="RLOO", family="score", function=rloo, options={"num_samples": 2},
    sample_only_backward=True,
    description="REINFORCE leave-one-out (Kool et al. 2019), num_samples draws per evaluation",
    style=dict(color="#e377c2", linestyle="-.")))
