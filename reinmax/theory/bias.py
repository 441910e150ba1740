"""Exact bias and variance of an estimator, by enumerating its samples.

:func:`reinmax.theory.exact.expected_estimate` gives an estimator's mean; the chapters on temperature
and baselines also need its spread. For estimators whose backward depends only on the sample
(ST, ReinMax and its baseline variants, GST), the estimate takes one value per configuration,
so its whole distribution, and with it the exact variance, is available by enumeration.
"""
from typing import Callable, Optional, Tuple

import torch

from reinmax.estimators.checks import check_positive_int

from .exact import MAX_CONFIGURATIONS, per_sample_estimates  # noqa: F401 (re-exported)

Tensor = torch.Tensor


def exact_moments(estimator: Callable, f: Callable, logits: Tensor, tau: float = 1.0, *,
                  max_configurations: int = MAX_CONFIGURATIONS, draws_noise: Optional[bool] = None,
                  **options) -> Tuple[Tensor, Tensor]:
    """Exact mean and per-coordinate variance of one sample's estimate (shapes of ``logits``).

    Only for estimators that draw no noise beyond the sample (others are a ValueError; see
    :func:`reinmax.theory.exact.per_sample_estimates` for ``draws_noise``)."""
    p, est = per_sample_estimates(estimator, f, logits, tau, max_configurations=max_configurations,
                                  draws_noise=draws_noise, **options)
    w = p.reshape((-1,) + (1,) * (est.dim() - 1))
    mean = (w * est).sum(0)
    variance = (w * (est - mean) ** 2).sum(0)
    return mean, variance


def relative_bias(estimate: Tensor, truth: Tensor) -> float:
    """``|estimate - truth| / |truth|`` in the Euclidean norm over all entries."""
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate and truth must have the same shape; got {tuple(estimate.shape)} "
                         f"and {tuple(truth.shape)}")
    norm = truth.norm()
    if norm == 0:
        raise ValueError("truth is the zero vector: the relative bias is undefined")
    return float((estimate - truth).norm() / norm)


def monte_carlo_moments(estimator: Callable, f: Callable, logits: Tensor, tau: float = 1.0, *,
                        samples: int = 10000, chunk: int = 2000,
                        generator: Optional[torch.Generator] = None, **options) -> Tuple[Tensor, Tensor]:
    """Mean and per-coordinate variance of one sample's estimate over ``samples`` independent
    draws, ``chunk`` draws per call (GR-MCK's and ReinMax-Rao's work tensors grow with their
    number of Gumbel draws): the Monte Carlo counterpart of :func:`exact_moments` for estimators
    that draw noise beyond the sample. The mean's standard error is ``sqrt(variance / samples)``."""
    samples = check_positive_int("samples", samples)
    chunk = check_positive_int("chunk", chunk)
    theta = logits.detach()
    total = torch.zeros_like(theta)
    squares = torch.zeros_like(theta)
    done = 0
    while done < samples:
        k = min(chunk, samples - done)
        rows = theta[None].expand((k,) + tuple(theta.shape)).clone().requires_grad_(True)
        y, _ = estimator(rows, tau, generator=generator, **options)
        (grad,) = torch.autograd.grad(f(y).sum(), rows)
        total += grad.sum(0)
        squares += (grad * grad).sum(0)
        done += k
    mean = total / samples
    variance = (squares / samples - mean * mean).clamp(min=0) * samples / max(samples - 1, 1)
    return mean, variance
