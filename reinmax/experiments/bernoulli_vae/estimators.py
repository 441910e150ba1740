"""Which binary estimator trains the VAE, and one training loss per family.

Two families take one Bernoulli logit per latent:

* **straight-through** (``reinmax.estimators.bernoulli``: "ReinMax", "ST", "STGS", "GR-MCK", with a
  temperature ``tau``): K codes are drawn per image, the reconstruction is averaged over them and
  the KL term is taken in closed form, as the authors' script does;
* **score** (the binary score-family contract of ``reinmax.estimators.bernoulli_score``: "REINFORCE", "RLOO",
  "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO"): ``f`` is the single-sample -ELBO with the
  encoder's logits detached in log q (the baselines drop that direct dependence); the encoder is
  trained with the estimate, the decoder (and a learned prior) with the mean of f over the K
  samples, and an estimator's own control parts with the variance of its estimate by their own
  Adam (1e-3), as Shi et al. do.

Where ``reinmax.estimators.bernoulli_score`` is not installed, "REINFORCE" and "RLOO" are still available: they
are the package's categorical :func:`reinmax.reinforce` and :func:`reinmax.rloo` on the two-category
logits ``[0, a]`` (the same estimators; ``reinmax.estimators.bernoulli``'s docstring explains the view). The
record names which implementation trained (``estimator_module``).
"""
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

import reinmax
from reinmax.estimators import bernoulli

STRAIGHT_THROUGH: Dict[str, Callable] = {
    "ReinMax": bernoulli.reinmax, "ST": bernoulli.st, "STGS": bernoulli.stgs,
    "GR-MCK": bernoulli.gumbel_rao}
"""The straight-through estimators for one logit per variable (``reinmax.estimators.bernoulli``)."""

SCORE_NAMES = ("REINFORCE", "RLOO", "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO")
"""The score family's names in the contract (``reinmax.estimators.bernoulli_score``)."""

FALLBACK_SCORE = ("REINFORCE", "RLOO")
"""Score methods the package has without ``reinmax.estimators.bernoulli_score`` (categorical, two categories)."""


def binary_score_module():
    """``reinmax.estimators.bernoulli_score`` or None where this checkout does not have it."""
    try:
        from reinmax.estimators import bernoulli_score as binary_score
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


EVALUATIONS_PER_SAMPLE = {"RELAX": 3}
"""f evaluations per sample (RELAX evaluates f at the sample and at two relaxations): with K
evaluations per step RELAX draws K / 3 samples, as Table 6 runs it at K = 3."""


def check_evaluations(method: str, K: int) -> Optional[str]:
    """None when ``method`` can run with K evaluations per step, else what it needs."""
    if family(method) == "straight-through":
        return None
    if method == "RELAX":
        return None if K % 3 == 0 else "a multiple of 3 (RELAX: 3 evaluations per sample)"
    if method == "DisARM":
        return None if K % 2 == 0 else "even (DisARM: antithetic pairs)"
    if method == "RODEO":
        return None if K in (2, 3) else "2 or 3 (RODEO's two control-function forms)"
    if method == "REINFORCE":
        return None
    return None if K >= 2 else ">= 2"


def build_score(name: str, num_samples: int, latents: int = 200, context: int = 784) -> nn.Module:
    """The score estimator ``name`` for K = ``num_samples`` evaluations per image:
    ``reinmax.estimators.bernoulli_score``'s where this checkout has it, else the package's categorical
    REINFORCE/RLOO (``PackageScore``). RELAX gets K / 3 samples, ``latents`` and the image
    (``context`` features) as its surrogate's input, as Shi et al. feed it."""
    module = binary_score_module()
    if module is not None:
        if name == "RELAX":
            return module.build_binary_score_estimator(
                name, num_samples=num_samples // 3, num_latents=latents, context_features=context)
        return module.build_binary_score_estimator(name, num_samples=num_samples)
    if name in FALLBACK_SCORE:
        return PackageScore(name, num_samples)
    raise ValueError(f"method {name!r} needs reinmax.estimators.bernoulli_score, which this checkout does not "
                     f"have; available score methods: {list(FALLBACK_SCORE)}")


def estimator_module(method: str) -> str:
    """Which implementation trains ``method`` (stored in each record)."""
    if family(method) == "straight-through":
        return "reinmax.estimators.bernoulli"
    return "reinmax.estimators.bernoulli_score" if binary_score_module() is not None else \
        "reinmax.estimators.categorical_score (two-category view)"


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
    """(loss, the -ELBO's sampled value, the estimate): ``loss``'s gradient is the estimate for
    the encoder (pushed through it as Shi et al.'s ``output_gradients`` do) plus f's own gradient
    for the decoder and a learned prior. The caller trains the estimator's control parts with
    ``estimator.variance_backward(estimate)`` where it has any."""
    logits = model.encode(x)
    frozen = logits.detach()
    extra = {"context": x} if getattr(estimator, "name", None) == "RELAX" else {}
    out = estimator(frozen, lambda b: model.neg_elbo_terms(x, frozen, b), generator=generator,
                    **extra)
    encoder = (logits * out.grad.detach()).sum() / x.shape[0]
    decoder = out.values.mean()
    return encoder + decoder, out.values.detach().mean(), out
