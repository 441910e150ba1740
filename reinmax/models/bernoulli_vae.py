r"""The 2x200 Bernoulli VAE of Shi et al. (2022), which the paper's Table 6 and Figure 5 use.

Architecture (Shi et al.'s ``experiment_launcher_singlelayer.py``, as the baselines ran it):
encoder 784-200-200-200 giving one Bernoulli logit per latent (200 binary latents), decoder
200-200-200-784 giving one Bernoulli logit per pixel, LeakyReLU with slope 0.3 between layers,
Glorot-uniform weights and zero biases. The prior is a product of Bernoulli distributions with
logits ``prior_logits``: fixed at zero (uniform) in the baselines' protocol, learned in the
authors' ReinMax script (there as a mis-laid vector; here properly normalised, see
``config.PROTOCOLS``).

``f(b)``, the negative single-sample ELBO of a binary code ``b``,
``-[log p(x|b) + log p(b) - log q(b|x)]``, is what every estimator differentiates. It is
computed with the encoder's logits *detached* in ``log q``: the baselines drop the direct
dependence of f on the logits (its expectation is zero) and train the encoder only through the
estimate, and the straight-through methods get the KL term analytically instead
(:meth:`BernoulliVAE.kl`).
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

PIXELS, HIDDEN, LATENTS = 784, 200, 200
SLOPE = 0.3
"""LeakyReLU's negative slope in Shi et al.'s networks."""


def _glorot_linear(fan_in: int, fan_out: int, generator: torch.Generator) -> nn.Linear:
    """A linear layer with Glorot-uniform weights (Keras' default) and zero biases, drawn from
    ``generator`` so that a seed fixes its initial weights."""
    layer = nn.Linear(fan_in, fan_out)
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        layer.weight.copy_(torch.empty(fan_out, fan_in).uniform_(-bound, bound, generator=generator))
        layer.bias.zero_()
    return layer


class BernoulliVAE(nn.Module):
    """One 2x200 Bernoulli VAE (encoder and decoder with two hidden layers of 200 units).

    ``learn_prior``: the prior's logits are a parameter (the authors' script) instead of a fixed
    zero buffer (the baselines). Images are ``(..., 784)`` with values in [0, 1] (binarised by the
    caller); codes ``(..., 200)`` with values in [0, 1].
    """

    def __init__(self, generator: torch.Generator, *, learn_prior: bool = False,
                 latents: int = LATENTS, hidden: int = HIDDEN):
        super().__init__()
        self.latents = latents
        self.encoder = nn.ModuleList([_glorot_linear(PIXELS, hidden, generator),
                                      _glorot_linear(hidden, hidden, generator),
                                      _glorot_linear(hidden, latents, generator)])
        self.decoder = nn.ModuleList([_glorot_linear(latents, hidden, generator),
                                      _glorot_linear(hidden, hidden, generator),
                                      _glorot_linear(hidden, PIXELS, generator)])
        prior = torch.zeros(latents)
        if learn_prior:
            self.prior_logits = nn.Parameter(prior)
        else:
            self.register_buffer("prior_logits", prior)

    @staticmethod
    def _mlp(h: Tensor, layers: nn.ModuleList) -> Tensor:
        for i, layer in enumerate(layers):
            h = layer(h)
            if i < len(layers) - 1:
                h = F.leaky_relu(h, SLOPE)
        return h

    def encode(self, x: Tensor) -> Tensor:
        """The encoder's Bernoulli logits, shape ``x.shape[:-1] + (200,)``."""
        return self._mlp(x, self.encoder)

    def log_likelihood(self, x: Tensor, b: Tensor) -> Tensor:
        """log p(x | b) summed over pixels; ``b`` may carry leading sample dimensions."""
        pixel_logits = self._mlp(b, self.decoder)
        return -F.binary_cross_entropy_with_logits(
            pixel_logits, x.expand_as(pixel_logits), reduction="none").sum(-1)

    @staticmethod
    def log_bernoulli(logits: Tensor, b: Tensor) -> Tensor:
        """log prod_d Bern(b_d; sigmoid(logits_d)), summed over the last dimension; for b in
        [0, 1] (a relaxation) it is the same expression, b log p + (1 - b) log(1 - p)."""
        return (b * F.logsigmoid(logits) + (1 - b) * F.logsigmoid(-logits)).sum(-1)

    def neg_elbo_terms(self, x: Tensor, logits: Tensor, b: Tensor) -> Tensor:
        """f(b) = -[log p(x|b) + log p(b) - log q(b|x)] per sample, shape ``b.shape[:-1]``, with
        ``logits`` used as given in log q (detach them to drop f's direct dependence)."""
        return -(self.log_likelihood(x, b) + self.log_bernoulli(self.prior_logits, b)
                 - self.log_bernoulli(logits, b))

    def kl(self, logits: Tensor) -> Tensor:
        """KL(q(.|x) || p) in closed form, summed over latents, shape ``logits.shape[:-1]``."""
        q = torch.sigmoid(logits)
        prior = self.prior_logits
        return (q * (F.logsigmoid(logits) - F.logsigmoid(prior))
                + (1 - q) * (F.logsigmoid(-logits) - F.logsigmoid(-prior))).sum(-1)

    @torch.no_grad()
    def sampled_bounds(self, x: Tensor, samples: int, generator: Optional[torch.Generator]
                       ) -> Tensor:
        """``samples`` single-sample -ELBOs per image, shape ``(samples, N)``: the codes drawn
        from q(.|x) with ``generator`` (Shi et al.'s train metric averages them; their
        validation and test metric is their log-mean-exp, :func:`iwae_bound`)."""
        logits = self.encode(x)
        probs = torch.sigmoid(logits).expand((samples,) + logits.shape)
        u = torch.rand(probs.shape, generator=generator, device=probs.device, dtype=probs.dtype)
        b = (u < probs).to(logits.dtype)
        return self.neg_elbo_terms(x, logits, b)


def iwae_bound(neg_elbos: Tensor) -> Tensor:
    """The K-sample bound -log (1/K) sum_k exp(-f_k) per image from ``(K, N)`` single-sample
    -ELBOs (float64, so the log-mean-exp does not lose digits)."""
    K = neg_elbos.shape[0]
    return -(torch.logsumexp(-neg_elbos.double(), 0) - math.log(K))
