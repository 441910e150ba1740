"""Which binary estimator trains the VAE, and one training loss per family.

Two families take one Bernoulli logit per latent:

* **straight-through** (``reinmax.bernoulli``: "ReinMax", "ST", "STGS", "GR-MCK", with a
  temperature ``tau``): K codes are drawn per image, the reconstruction is averaged over them and
  the KL term is taken in closed form, as the authors' script does;
* **score** (the binary score-family contract of ``reinmax.binary_score``: "REINFORCE", "RLOO",
  "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO"): ``f`` is the single-sample -ELBO with the
  encoder's logits detached in log q (the baselines drop that direct dependence); the encoder is
  trained with the estimate, the decoder (and a learned prior) with the mean of f over the K
  samples, and an estimator's own control parts with the variance of its estimate by their own
  Adam (1e-3), as Shi et al. do.

Where ``reinmax.binary_score`` is not installed, "REINFORCE" and "RLOO" are still available: they
are the package's categorical :func:`reinmax.reinforce` and :func:`reinmax.rloo` on the two-category
logits ``[0, a]`` (the same estimators; ``reinmax.bernoulli``'s docstring explains the view). The
record names which implementation trained (``estimator_module``).
"""
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

import reinmax
from reinmax import bernoulli

STRAIGHT_THROUGH: Dict[str, Callable] = {
    "ReinMax": bernoulli.reinmax, "ST": bernoulli.st, "STGS": bernoulli.stgs,
    "GR-MCK": bernoulli.gumbel_rao}
"""The straight-through estimators for one logit per variable (``reinmax.bernoulli``)."""

SCORE_NAMES = ("REINFORCE", "RLOO", "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO")
"""The score family's names in the contract (``reinmax.binary_score``)."""

FALLBACK_SCORE = ("REINFORCE", "RLOO")
"""Score methods the package has without ``reinmax.binary_score`` (categorical, two categories)."""


def binary_score_module():
    """``reinmax.binary_score`` or None where this checkout does not have it."""
    try:
        from reinmax import binary_score
    except ImportError:
        return None
    return binary_score


def score_methods() -> List[str]:
    """The score-family names trainable in this checkout."""
    return list(SCORE_NAMES) if binary_score_module() is not None else list(FALLBACK_SCORE)


def methods() -> List[str]:
    """Every method the Bernoulli VAE can train here (straight-through first)."""
    return list(STRAIGHT_THROUGH) + score_methods()


def family(method: str) -> str:
    return "straight-through" if method in STRAIGHT_THROUGH else "score"


class _Estimate:
    """The contract's result (``grad``, ``values``; ``samples`` are not kept by the fallback)."""

    def __init__(self, grad, values, samples=None):
        self.grad, self.values, self.samples = grad, values, samples


class PackageScore(nn.Module):
    """REINFORCE (K single-sample estimates averaged) or RLOO with K samples, through the
    package's categorical estimators on the logits ``[0, a]``, shaped like the binary contract:
    ``est(logits, f) -> .grad (*batch, D), .values (K, *batch)``. No learned parts."""

    def __init__(self, name: str, num_samples: int):
        super().__init__()
        if name not in FALLBACK_SCORE:
            raise ValueError(f"name must be one of {list(FALLBACK_SCORE)}; got name={name!r}")
        self.name, self.num_samples = name, num_samples

    def forward(self, logits: torch.Tensor, f: Callable, generator=None, sample=None
                ) -> _Estimate:
        """``sample``: the K codes ``(K, *batch, D)`` with 0/1 values instead of drawing them
        (tests enumerate every tuple with it)."""
        K = self.num_samples
        a = logits.detach().requires_grad_(True)
        two = torch.stack([torch.zeros_like(a), a], -1)             # (*batch, D, 2)
        batch = a.dim() - 1
        if sample is not None:
            sample = torch.as_tensor(sample, device=a.device).long()
            if tuple(sample.shape) != (K,) + tuple(a.shape):
                raise ValueError(f"sample must have shape {(K,) + tuple(a.shape)} (K codes); "
                                 f"got {tuple(sample.shape)}")

        def on_codes(one_hot):                                      # (K, *batch, D, 2) -> (K, *batch)
            return f(one_hot[..., 1])

        if self.name == "RLOO":
            surrogate, values = reinmax.rloo(two, on_codes, num_samples=K, generator=generator,
                                             batch_dims=batch, sample=sample)
        else:
            surrogate, values = reinmax.reinforce(two.expand((K,) + two.shape), on_codes,
                                                  generator=generator, batch_dims=batch + 1,
                                                  sample=sample)
        # d surrogate.sum() / d a is the sum of the K draws' estimates (f does not depend on a).
        grad, = torch.autograd.grad(surrogate.sum(), a, retain_graph=True)
        return _Estimate(grad / K, values)

    def variance_loss(self, out: _Estimate) -> torch.Tensor:
        return (out.grad ** 2).mean()


def build_score(name: str, num_samples: int) -> nn.Module:
    """The score estimator ``name`` with K = ``num_samples``: ``reinmax.binary_score``'s where
    this checkout has it, else the package's categorical REINFORCE/RLOO (:class:`PackageScore`)."""
    module = binary_score_module()
    if module is not None:
        return module.build_binary_score_estimator(name, num_samples=num_samples)
    if name in FALLBACK_SCORE:
        return PackageScore(name, num_samples)
    raise ValueError(f"method {name!r} needs reinmax.binary_score, which this checkout does not "
                     f"have; available score methods: {list(FALLBACK_SCORE)}")


def estimator_module(method: str) -> str:
    """Which implementation trains ``method`` (stored in each record)."""
    if family(method) == "straight-through":
        return "reinmax.bernoulli"
    return "reinmax.binary_score" if binary_score_module() is not None else \
        "reinmax.score (two-category view)"


def straight_through_loss(model, x: torch.Tensor, method: str, tau: float, K: int,
                          generator: Optional[torch.Generator]):
    """(loss, its value as the -ELBO): K codes per image by the estimator, the reconstruction
    averaged over them, plus the closed-form KL."""
    logits = model.encode(x)                                       # (B, D)
    codes, _ = STRAIGHT_THROUGH[method](logits.expand((K,) + logits.shape), tau,
                                        generator=generator)
    loss = -model.log_likelihood(x, codes).mean() + model.kl(logits).mean()
    return loss, loss.detach()


def score_loss(model, estimator: nn.Module, x: torch.Tensor,
               generator: Optional[torch.Generator]):
    """(loss, the -ELBO's sampled value, the estimator's variance loss or None): ``loss``'s
    gradient is the estimate for the encoder (pushed through it as Shi et al.'s
    ``output_gradients`` do) plus f's own gradient for the decoder and a learned prior."""
    logits = model.encode(x)
    frozen = logits.detach()
    out = estimator(frozen, lambda b: model.neg_elbo_terms(x, frozen, b), generator=generator)
    encoder = (logits * out.grad.detach()).sum() / x.shape[0]
    decoder = out.values.mean()
    learned = any(p.requires_grad for p in estimator.parameters())
    control = estimator.variance_loss(out) if learned else None
    return encoder + decoder, out.values.detach().mean(), control
