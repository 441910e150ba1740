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

The lists of methods are read from the estimator registry (families "bernoulli" and
"bernoulli-score"), by the short names the paper's Table 6 prints.
"""
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from reinmax.estimators import bernoulli_score, registry

SUFFIX = "-Bernoulli"
"""The registry names a one-logit estimator "<method>-Bernoulli" where the categorical family has
the same name ("ReinMax-Bernoulli"); the Bernoulli VAE's records and Table 6 use the short name."""


def short_name(name: str) -> str:
    return name[:-len(SUFFIX)] if name.endswith(SUFFIX) else name


STRAIGHT_THROUGH: Dict[str, Callable] = {
    short_name(spec.name): spec.function for spec in registry.specs("bernoulli")}
"""The straight-through estimators for one logit per variable (``reinmax.estimators.bernoulli``),
read from the registry: "ST", "ReinMax", "STGS", "GR-MCK"."""

SCORE_NAMES = tuple(short_name(name) for name in registry.names("bernoulli-score"))
"""The score family's names (``reinmax.estimators.bernoulli_score``), read from the registry:
"REINFORCE", "RLOO", "DisARM", "ARMS", "DoubleCV", "RELAX", "RODEO"."""


def score_methods() -> List[str]:
    """The score-family names trainable here."""
    return list(SCORE_NAMES)


def methods() -> List[str]:
    """Every method the Bernoulli VAE can train (straight-through first)."""
    return list(STRAIGHT_THROUGH) + score_methods()


def family(method: str) -> str:
    return "straight-through" if method in STRAIGHT_THROUGH else "score"


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
    """The score estimator ``name`` of ``reinmax.estimators.bernoulli_score`` for K =
    ``num_samples`` evaluations per image. RELAX gets K / 3 samples, ``latents`` and the image
    (``context`` features) as its surrogate's input, as Shi et al. feed it."""
    if name == "RELAX":
        return bernoulli_score.build_binary_score_estimator(
            name, num_samples=num_samples // 3, num_latents=latents, context_features=context)
    return bernoulli_score.build_binary_score_estimator(name, num_samples=num_samples)


def estimator_module(method: str) -> str:
    """Which implementation trains ``method`` (stored in each record; records written before the
    package's layers name the same modules by their old paths, ``reinmax.bernoulli`` and
    ``reinmax.binary_score``)."""
    if family(method) == "straight-through":
        return "reinmax.estimators.bernoulli"
    return "reinmax.estimators.bernoulli_score"


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
