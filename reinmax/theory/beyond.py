r"""Measurements of the estimators after ReinMax (:mod:`reinmax.estimators.rao`,
:mod:`reinmax.estimators.redge`): ReinMax-Rao's mean and bias order, the stored code's ReinMax-CV
bias, ReDGE's forward total variation distance and gradient bias. Exact where mathematics allows
(two categories by quadrature, enumeration over the sample), Monte Carlo with a standard error
elsewhere.
"""
import math
from typing import Callable, Dict

import torch

from reinmax.estimators.categorical import reinmax
from reinmax.estimators.checks import check_positive_int
from reinmax.estimators.rao import reinmax_cv_stored_reading, reinmax_rao
from reinmax.estimators.redge import redge, redge_logits

from . import exact

Tensor = torch.Tensor

__all__ = ["rao_mean", "cv_stored_bias", "redge_forward_tv", "redge_gradient_bias"]


def rao_mean(f: Callable, logits: Tensor, tau: float = 1.0) -> Tensor:
    """ReinMax-Rao's exact mean for two categories (R -> infinity by quadrature, enumeration over
    the sample); logits ``(2,)`` or ``(m, 2)``."""
    if logits.shape[-1] != 2:
        raise ValueError(f"rao_mean is exact for two categories; got {logits.shape[-1]} "
                         f"(use exact.monte_carlo_estimate with reinmax_rao)")
    return exact.expected_estimate(reinmax_rao, f, logits, tau, R="quadrature")


def cv_stored_bias(f: Callable, logits: Tensor, tau2: float = 0.5, eta: float = 1.0, R: int = 16,
                   samples: int = 20000, seed: int = 0) -> Dict[str, float]:
    """The stored code's ReinMax-CV (:func:`reinmax.estimators.rao.reinmax_cv_stored_reading`,
    ReinMax at tau = 1) against ReinMax's exact mean, by Monte Carlo: returns the largest
    ``|mean - E[ReinMax]|`` over the coordinates, in standard errors (``z``) and relative to
    ``|E[ReinMax]|`` (``relative``)."""
    samples = check_positive_int("samples", samples)
    target = exact.expected_estimate(reinmax, f, logits, 1.0)
    mean, stderr = exact.monte_carlo_estimate(
        reinmax_cv_stored_reading, f, logits, 1.0, samples=samples,
        generator=torch.Generator().manual_seed(seed), eta=eta, tau2=tau2, R=R)
    gap = (mean - target).abs()
    return {"z": float((gap / stderr.clamp(min=1e-300)).max()),
            "relative": float((mean - target).norm() / target.norm())}


def redge_forward_tv(logits: Tensor, n_steps: int = 3, t_1: float = 0.5, draws: int = 20000,
                     seed: int = 0) -> Dict[str, float]:
    r"""Total variation distance between ReDGE's forward law and Cat(softmax(logits)) for one
    variable (``logits`` of shape ``(n,)``): P(D = k) = E_x[softmax(lambda(x))_k] over ``draws``
    Gaussian starts (exact over D given x). Returns ``tv`` and its standard error (delta method
    on each ``|P_k - pi_k|``, summed: a conservative bound)."""
    draws = check_positive_int("draws", draws)
    theta = logits.detach().to(torch.float64).reshape(-1)
    start = torch.randn(draws, theta.shape[0], generator=torch.Generator().manual_seed(seed),
                        dtype=torch.float64)
    soft = torch.softmax(redge_logits(theta.expand(draws, -1), start, n_steps, t_1), -1)
    law, se = soft.mean(0), soft.std(0) / math.sqrt(draws)
    pi = torch.softmax(theta, -1)
    return {"tv": float(0.5 * (law - pi).abs().sum()), "stderr": float(0.5 * se.sum())}


def redge_gradient_bias(f: Callable, logits: Tensor, n_steps: int = 3, t_1: float = 0.5,
                        estimator: Callable = redge, draws: int = 4000, seed: int = 0) -> Dict[str, float]:
    r"""ReDGE's (or ReinDGE's, ``estimator=reindge``) gradient bias for one variable: its mean
    E_x[sum_D softmax(lambda(x))_D grad(D, x)] (exact over D given x, Monte Carlo over x)
    against the true gradient; returns ``relative`` (``|mean - truth| / |truth|``) and its standard
    error ``stderr`` (of the mean's distance, per coordinate, as a norm)."""
    draws = check_positive_int("draws", draws)
    theta = logits.detach().to(torch.float64).reshape(-1)
    n = theta.shape[0]
    start = torch.randn(draws, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    weight = torch.softmax(redge_logits(theta.expand(draws, -1), start, n_steps, t_1), -1)   # (draws, n)
    rows = theta.expand(draws * n, n).clone().requires_grad_(True)
    sample = torch.arange(n).repeat(draws)
    y, _ = estimator(rows, 1.0, sample=sample, start=start.repeat_interleave(n, 0),
                     n_steps=n_steps, t_1=t_1)
    (grad,) = torch.autograd.grad(f(y).sum(), rows)
    per_draw = (weight.reshape(-1, 1) * grad).reshape(draws, n, n).sum(1)     # E_D given x
    mean = per_draw.mean(0)
    stderr = per_draw.std(0) / math.sqrt(draws)
    truth = exact.exact_gradient(f, theta)
    return {"relative": float((mean - truth).norm() / truth.norm()),
            "stderr": float(stderr.norm() / truth.norm())}
