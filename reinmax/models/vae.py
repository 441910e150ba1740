r"""The categorical VAE of the paper's MNIST experiments (Section 6.3, Appendix F.2), as an ensemble.

One :class:`CategoricalVAE` holds ``S`` independent models, one per seed. Every weight is stacked
along a leading seed axis and every layer is one batched matrix product (``torch.baddbmm``) over
the seeds. Each seed's parameters are their own slice, its random numbers come from its own
generators (:func:`seed_generators`), and the training loss is the *sum* of the per-seed losses,
so each seed's gradient -- and, with an element-wise optimizer such as Adam or RAdam, each seed's
update -- is exactly what that seed would get if it were trained alone. The tests hold a batched
run of two seeds equal to two single-seed runs.

Architecture (Appendix F.2, Table 8; the authors' ``mnist_vae/model/vae.py``):

* encoder 784-512-256-(L*C) with ReLU and no activation on the logits, which are read as
  ``L`` independent categorical variables with ``C`` categories each (``C x L`` in the paper's
  tables: 8x4 is 8 categories, 4 variables);
* decoder (L*C)-256-512-784 with ReLU and a Bernoulli likelihood on the grey levels in [0, 1]
  (not binarised): the reconstruction term is the binary cross-entropy summed over the 784
  pixels. It is computed from the decoder's logits (``binary_cross_entropy_with_logits``), which
  equals the authors' sigmoid followed by ``binary_cross_entropy`` except where a sigmoid
  saturates, where theirs clamps the logarithm at -100;
* KL to the uniform prior: :math:`\sum q \log q + L \log C` per image, with ``log q`` from
  ``log_softmax`` (the authors add 1e-10 inside the logarithm; the two agree to ~1e-9).

Both terms are averaged over the minibatch, as the authors' code does. Initialisation is
PyTorch's ``nn.Linear`` default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases, drawn
from each seed's own generator.

Figure 4's machinery is here too: :meth:`CategoricalVAE.exact_reconstruction_gradient`
enumerates all ``C ** L`` codes for a batch of images at once, and
:meth:`CategoricalVAE.estimator_gradient_moments` averages an estimator over many samples.
"""
import math
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reinmax.estimators.sampling import inverse_cdf as _inverse_cdf
from reinmax.theory.exact import configurations

Tensor = torch.Tensor

PIXELS = 784
ENCODER_HIDDEN = (512, 256)
DECODER_HIDDEN = (256, 512)

STREAMS = ("init", "data", "noise", "test", "gradient")
"""Independent random streams per seed, for parameter initialisation, minibatch order, the
estimator's sampling noise in training, the test-set samples, and Figure 4's analysis. Separate
streams keep, e.g., the training noise unchanged when test evaluations are added or removed."""

MAX_ENUMERATION = 2 ** 16
"""The largest code space :meth:`CategoricalVAE.exact_reconstruction_gradient` enumerates."""


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for one random stream of one seed, from numpy's ``SeedSequence``
    (well-separated states for nearby seeds, unlike ``seed + offset``). ``"gradient:<name>"`` is
    the analysis stream of one more estimator measured beside a run's own (its own stream, so
    that measuring it moves no other estimator's draws)."""
    base, _, estimator = stream.partition(":")
    if base not in STREAMS or (estimator and base != "gradient") or stream.endswith(":"):
        raise ValueError(f"unknown random stream {stream!r}; streams: {', '.join(STREAMS)}, "
                         "or 'gradient:<estimator name>'")
    entropy = [int(seed), STREAMS.index(base)]
    if estimator:
        entropy.append(zlib.crc32(estimator.encode()))
    state = np.random.SeedSequence(entropy).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def seed_generators(seeds: Sequence[int], stream: str, device="cpu") -> List[torch.Generator]:
    """One ``torch.Generator`` per seed for ``stream``, on ``device``."""
    return [torch.Generator(device=device).manual_seed(stream_seed(s, stream)) for s in seeds]


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {name}={value!r}")
    return value


class CategoricalVAE(nn.Module):
    """``len(seeds)`` categorical VAEs with ``latents`` variables of ``categories`` categories,
    stacked along a leading seed axis (see the module docstring).

    Shapes: images ``(S, B, 784)``; encoder logits ``(S, B, L, C)``; codes ``(S, B, L, C)``.
    Methods taking ``seed_index`` work on one member of the ensemble with any leading shape.
    """

    def __init__(self, categories: int, latents: int, seeds: Sequence[int], *,
                 device="cpu", dtype: torch.dtype = torch.float32, negative_slope: float = 0.0):
        super().__init__()
        # 0: ReLU (Tables 2, 8-11); Table 5's setting (Fan et al. 2022) uses LeakyReLU 0.2.
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) \
                or not 0.0 <= negative_slope < 1.0:
            raise ValueError(f"negative_slope must be a number in [0, 1); got "
                             f"negative_slope={negative_slope!r}")
        self.negative_slope = float(negative_slope)
        self.categories = _check_positive_int("categories", categories)
        self.latents = _check_positive_int("latents", latents)
        seeds = list(seeds)
        if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ValueError(f"seeds must be a non-empty list of non-negative integers; got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct; got {seeds!r}")
        self.seeds = seeds
        code = categories * latents
        encoder = (PIXELS,) + ENCODER_HIDDEN + (code,)
        decoder = (code,) + DECODER_HIDDEN + (PIXELS,)
        shapes = list(zip(encoder[:-1], encoder[1:])) + list(zip(decoder[:-1], decoder[1:]))
        # Each seed draws all of its layers from its own generator, on the CPU, so that a seed's
        # initial weights do not depend on the other members or on the device.
        per_seed = []
        for generator in seed_generators(seeds, "init"):
            layers = []
            for fan_in, fan_out in shapes:
                bound = 1.0 / math.sqrt(fan_in)
                weight = torch.empty(fan_in, fan_out).uniform_(-bound, bound, generator=generator)
                bias = torch.empty(1, fan_out).uniform_(-bound, bound, generator=generator)
                layers.append((weight, bias))
            per_seed.append(layers)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i][0] for layers in per_seed]).to(device, dtype))
            for i in range(len(shapes)))
        self.biases = nn.ParameterList(
            nn.Parameter(torch.stack([layers[i][1] for layers in per_seed]).to(device, dtype))
            for i in range(len(shapes)))
        self._encoder_layers = range(0, 3)
        self._decoder_layers = range(3, 6)

    # ------------------------------------------------------------------ forward pieces
    @property
    def device(self) -> torch.device:
        return self.weights[0].device

    def _mlp(self, h: Tensor, layers, seed_index: Optional[int]) -> Tensor:
        last = layers[-1]
        for i in layers:
            if seed_index is None:      # (S, B, in) -> (S, B, out), one batched product per layer
                h = torch.baddbmm(self.biases[i], h, self.weights[i])
            else:                       # one member, any leading shape
                h = torch.matmul(h, self.weights[i][seed_index]) + self.biases[i][seed_index, 0]
            if i != last:
                h = self._activation(h)
        return h

    def _activation(self, h: Tensor) -> Tensor:
        return torch.relu(h) if self.negative_slope == 0.0 else F.leaky_relu(h, self.negative_slope)

    def encode(self, x: Tensor, seed_index: Optional[int] = None) -> Tensor:
        """Encoder logits, shape ``x.shape[:-1] + (L, C)``."""
        logits = self._mlp(x, self._encoder_layers, seed_index)
        return logits.unflatten(-1, (self.latents, self.categories))

    def decode(self, codes: Tensor, seed_index: Optional[int] = None) -> Tensor:
        """Pixel logits (before the sigmoid) for codes of shape ``(..., L, C)``."""
        return self._mlp(codes.flatten(-2), self._decoder_layers, seed_index)

    def reconstruction(self, x: Tensor, codes: Tensor, seed_index: Optional[int] = None) -> Tensor:
        """Binary cross-entropy of ``x`` given ``codes``, summed over pixels: shape ``x.shape[:-1]``."""
        pixel_logits = self.decode(codes, seed_index)
        return F.binary_cross_entropy_with_logits(
            pixel_logits, x.expand_as(pixel_logits), reduction="none").sum(-1)

    def kl(self, logits: Tensor) -> Tensor:
        """KL(q || uniform) per image: sum q log q + L log C, shape ``logits.shape[:-2]``."""
        log_q = torch.log_softmax(logits, -1)
        return (log_q.exp() * log_q).sum((-2, -1)) + self.latents * math.log(self.categories)

    # ------------------------------------------------------------------ training loss
    def neg_elbo(self, x: Tensor, estimator: Callable, tau: float,
                 generators: Sequence[torch.Generator], *, noisy: bool) -> Tuple[Tensor, Tensor]:
        """The minibatch -ELBO of every member, shape ``(S,)``, with the estimator's backward.

        ``x``: ``(S, B, 784)``, a minibatch per member. The categories are drawn from each
        member's generator in ``generators`` and handed to the estimator (``sample=``); an
        estimator that draws more noise given the category (``noisy=True``: STGS, GR-MCK) is
        called once per member with that member's generator, so that no member's random numbers
        depend on another's. Returns ``(neg_elbo, reconstruction)``, both per member (batch means).
        """
        logits = self.encode(x)
        codes = relaxed_codes(estimator, logits, tau, generators, noisy=noisy)
        reconstruction = self.reconstruction(x, codes).mean(-1)
        return reconstruction + self.kl(logits).mean(-1), reconstruction

    @torch.no_grad()
    def sampled_neg_elbo(self, images: Tensor, generators: Sequence[torch.Generator],
                         chunk: int = 1000) -> Tensor:
        """Single-sample -ELBO of every member averaged over ``images`` ``(N, 784)``, shape ``(S,)``.

        This is the paper's test -ELBO: one code per image drawn from q (how it was drawn does not
        matter: every estimator's forward value is a sample from q), so it is itself stochastic.
        """
        total = torch.zeros(len(self.seeds), dtype=torch.float64, device=self.device)
        for start in range(0, len(images), chunk):
            x = images[start:start + chunk].to(self.device, self.weights[0].dtype)
            x = x.expand(len(self.seeds), *x.shape)
            logits = self.encode(x)
            index = draw_categories(torch.softmax(logits, -1), generators)
            codes = F.one_hot(index, self.categories).to(logits.dtype)
            loss = self.reconstruction(x, codes) + self.kl(logits)
            total += loss.sum(-1, dtype=torch.float64)
        return total / len(images)

    # ------------------------------------------------------------------ Figure 4
    def reconstruction_table(self, x: Tensor, seed_index: int, dtype=torch.float64) -> Tensor:
        """The reconstruction loss of each image under every code: shape ``(B, C ** L)``.

        Codes are in :func:`reinmax.theory.exact.configurations` order (variable 0 most significant).
        Computed in ``dtype`` (float64 by default): the exact gradient takes differences of these.
        """
        count = self.categories ** self.latents
        if count > MAX_ENUMERATION:
            raise ValueError(
                f"enumerating {self.categories}^{self.latents} = {count} codes exceeds "
                f"{MAX_ENUMERATION}; the exact gradient is for small code spaces such as 8x4")
        index = configurations(self.latents, self.categories).to(self.device)
        codes = F.one_hot(index, self.categories).to(dtype).flatten(-2)
        with torch.no_grad():
            h = codes
            for i in self._decoder_layers:
                h = h @ self.weights[i][seed_index].to(dtype) + self.biases[i][seed_index, 0].to(dtype)
                if i != self._decoder_layers[-1]:
                    h = self._activation(h)
            # BCE(x, sigmoid(o)) summed over pixels = sum softplus(o) - x . o: one matrix product.
            x = x.to(dtype)
            return F.softplus(h).sum(-1)[None, :] - x @ h.T

    def exact_reconstruction_gradient(self, x: Tensor, seed_index: int) -> Tuple[Tensor, Tensor]:
        """The exact gradient of the minibatch reconstruction term (KL excluded) with respect to
        the encoder logits, by enumerating every code: ``(gradient, logits)``, both ``(B, L, C)``.

        The term is ``1/B sum_b E_{q_b}[BCE_b(D)]``, as in the training loss; see
        :func:`expected_value_gradient`.
        """
        with torch.no_grad():
            logits = self.encode(x, seed_index)
        table = self.reconstruction_table(x, seed_index)
        return expected_value_gradient(table, logits) / len(x), logits

    def estimator_gradient_moments(self, x: Tensor, seed_index: int, estimator: Callable,
                                   tau: float, samples: int,
                                   generator: Optional[torch.Generator] = None,
                                   chunk_elements: int = 2 ** 22) -> Tuple[Tensor, Tensor]:
        """Mean and standard deviation (float64, ``(B, L, C)``) over ``samples`` single-sample
        estimates of the gradient of the minibatch reconstruction term w.r.t. the encoder logits.

        Each sample draws one code per image, as a training step does. ``chunk_elements`` caps
        the size of the work tensors (GR-MCK's grow with its number of Gumbel draws ``K``).
        """
        samples = _check_positive_int("samples", samples)
        with torch.no_grad():
            logits = self.encode(x, seed_index)
        K = getattr(estimator, "keywords", {}).get("K", 1)
        per_sample = logits.numel() * max(K, 1) + x.numel()
        chunk = max(1, min(samples, chunk_elements // per_sample))
        total = torch.zeros(logits.shape, dtype=torch.float64, device=logits.device)
        squares = torch.zeros_like(total)
        done = 0
        while done < samples:
            k = min(chunk, samples - done)
            theta = logits.expand(k, *logits.shape).clone().requires_grad_(True)
            codes, _ = estimator(theta, tau, generator=generator)
            loss = self.reconstruction(x, codes, seed_index).sum() / len(x)
            (grad,) = torch.autograd.grad(loss, theta)
            grad = grad.double()
            total += grad.sum(0)
            squares += (grad * grad).sum(0)
            done += k
        mean = total / samples
        std = (squares / samples - mean * mean).clamp(min=0).sqrt()
        return mean, std


# ---------------------------------------------------------------------- sampling
def draw_categories(probs: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """Category indices ``probs.shape[:-1]`` (leading axis: members), each member's from its own
    generator, by the inverse CDF the estimators use."""
    if len(generators) != probs.shape[0]:
        raise ValueError(f"need one generator per member: {probs.shape[0]}; got {len(generators)}")
    uniforms = torch.stack([
        1.0 - torch.rand(probs.shape[1:-1], generator=g, device=probs.device, dtype=torch.float32)
        for g in generators])
    return _inverse_cdf(probs, uniforms)


def relaxed_codes(estimator: Callable, logits: Tensor, tau: float,
                  generators: Sequence[torch.Generator], *, noisy: bool) -> Tensor:
    """One-hot codes ``(S, ..., L, C)`` whose backward is ``estimator``'s, with per-member random
    numbers (see :meth:`CategoricalVAE.neg_elbo`)."""
    with torch.no_grad():
        index = draw_categories(torch.softmax(logits, -1), generators)
    if not noisy:
        codes, _ = estimator(logits, tau, sample=index)
        return codes
    return torch.stack([estimator(logits[s], tau, sample=index[s], generator=g)[0]
                        for s, g in enumerate(generators)])


# ---------------------------------------------------------------------- Figure 4 helpers
def expected_value_gradient(values: Tensor, logits: Tensor) -> Tensor:
    r"""Gradient of :math:`\sum_b E_{q_b}[v_b(c)]` with respect to ``logits`` ``(B, L, C)``,
    where ``values`` ``(B, C ** L)`` lists :math:`v_b` at every configuration in
    :func:`reinmax.theory.exact.configurations` order and :math:`q_b` is the product of the softmaxes.

    The probability of each configuration is built as an outer product of the L softmaxes and
    differentiated by autograd, so no probability is ever divided by (stable for q near 0). For
    one image this is :func:`reinmax.theory.exact.exact_gradient` of ``v``; it handles a batch at once.
    """
    B, L, C = logits.shape
    if values.shape != (B, C ** L):
        raise ValueError(f"values must have shape (B, C ** L) = {(B, C ** L)}; got {tuple(values.shape)}")
    theta = logits.detach().to(values.dtype).requires_grad_(True)
    q = torch.softmax(theta, -1)
    weight = q[:, 0]
    for v in range(1, L):                      # variable 0 most significant, as configurations()
        weight = (weight[:, :, None] * q[:, v, None, :]).reshape(B, -1)
    (grad,) = torch.autograd.grad((weight * values).sum(), theta)
    return grad


def gradient_quality(exact: Tensor, mean: Tensor, std: Tensor) -> Dict[str, float]:
    """Figure 4's measures of an estimator against the exact gradient, over all entries:
    cosine similarity of exact and mean, ``|exact - mean| / |exact|`` (relative bias), the same
    over ``|mean|``, and ``|std| / |mean|`` (relative standard deviation), as the authors' script does."""
    exact, mean, std = exact.double(), mean.double(), std.double()
    diff = (exact - mean).norm()
    return {
        "cos": float((exact * mean).sum() / (exact.norm() * mean.norm())),
        "rel_bias": float(diff / exact.norm()),
        "rel_bias_mean": float(diff / mean.norm()),
        "rel_std": float(std.norm() / mean.norm()),
    }
