r"""The REINFORCE family for binary latent variables (one logit per variable): REINFORCE, RLOO,
DisARM, ARMS, Double CV, RELAX and RODEO, as Shi et al. (2022) implement them for their
Bernoulli VAE, each checked unbiased by exact enumeration (``tests/test_score_family.py``).

**The calling contract** (one for the whole family)::

    from reinmax.estimators.bernoulli_score import build_binary_score_estimator
    est = build_binary_score_estimator("RODEO", num_samples=2)   # a torch.nn.Module
    out = est(logits, f, generator=None)     # a BinaryScoreEstimate
    loss = est.surrogate(logits, out) + out.values.mean()   # encoder + decoder (f's parameters)
    est.variance_backward(out)               # gradients of the control parts (their own optimiser)
    loss.backward()

* ``logits``: a floating tensor ``(*batch, D)``, Bernoulli logits ``eta`` with
  ``P(b_d = 1) = sigmoid(eta_d)``, one per binary variable (the last dimension holds the ``D``
  variables of one example; a 0-d tensor is refused). Categorical logits (one per category)
  belong to :func:`reinmax.reinforce` and :func:`reinmax.rloo` in ``reinmax.estimators.categorical_score``.
* ``f(b)``: called with a float tensor ``(n, *batch, D)`` and returning one floating value per
  row, shape ``(n, *batch)`` (a loss: lower is better; any other shape is a ValueError naming
  both, an integer or bool tensor a TypeError).
  ``n`` is ``K = num_samples`` with 0/1 samples, except for RELAX, which calls f once with its
  ``K`` samples and once with ``2K`` continuous relaxations in (0, 1). Double CV and RODEO take
  ``grad_b f`` at the samples, and RELAX differentiates f at the relaxations, by autograd: for
  them f must be differentiable in ``b`` (a decoder is). An f whose values do not depend
  differentiably on its argument (detached, computed under ``torch.no_grad``, or from a copy of
  ``b``) is refused by all three with the same ValueError (RELAX would otherwise return a
  biased estimate: its control variate would lose f).
* Learned control parts are parameters of the module: Double CV's ``alpha``; RODEO's ``alpha``,
  ``beta`` and its control network (both coefficients start at 0, where RODEO is RLOO); RELAX's
  log-temperature (``log(0.1)``), scale (1) and surrogate network. REINFORCE, RLOO, DisARM and
  ARMS have none.
* ``out.grad`` ``(*batch, D)``: each example's estimate of ``d E_q[f] / d eta``, the score part
  only: f must not depend on the logits except through ``b``; a direct dependence (the VAE's
  ``-log q(b)``) has zero mean and is dropped, as the baselines drop it (pass f with ``eta``
  detached). It is differentiable with respect to ``est.parameters()`` and detached from the
  logits. ``out.values`` ``(K, *batch)``: f at the samples with f's own graph (the decoder's
  gradient); ``out.samples`` ``(K, *batch, D)``: the 0/1 samples.
* ``est.surrogate(logits, out)``: ``(logits * out.grad.detach()).sum() / batch``, whose
  gradient pushes each example's estimate through the encoder (the mean over the batch).
* ``est.variance_loss(out)``: the mean over batch and D of ``out.grad ** 2``, which the baselines
  minimise (by Adam, learning rate 1e-3) to train the control parts; ``est.variance_backward(out)``
  puts its gradient into ``est.parameters()`` only (RELAX's estimate also depends on f's
  parameters through the relaxations, which must not receive it).
* ``samples=`` (``(K, *batch, D)`` 0/1) fixes the samples instead of drawing them: the exact tests
  enumerate every tuple with it, weighted by :meth:`BinaryScoreEstimator.tuple_probability` (the
  joint law of the tuple: independent draws, or the coupling of DisARM and ARMS). RELAX also
  takes ``noise=(u, v)``, the two uniforms ``(K, *batch, D)`` that make its relaxations.

Half-precision logits (float16, bfloat16): RELAX works in float32 inside (f still receives
``b`` and the relaxations in the logits' dtype), since its temperature 0.1 and the second
derivatives of the variance loss overflow float16; the variance loss is squared in float32.

Sample counts (checked when the module is built, by the registry's ``OptionRule`` s):
REINFORCE ``K >= 1``; RLOO, ARMS, Double CV ``K >= 2``; DisARM an even ``K``
(``K/2`` antithetic pairs; the baselines use ``K = 2``); RODEO ``K`` in {2, 3} (Shi et al.'s two
forms of the control function); RELAX ``K >= 1`` samples at three evaluations of f each.
"""
import dataclasses
import itertools
import math
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor, nn

from .checks import check_generator
from .registry import EstimatorSpec, OptionRule, get_spec, register

__all__ = ["BinaryScoreEstimate", "BinaryScoreEstimator", "build_binary_score_estimator",
           "BINARY_SCORE_NAMES", "exact_moments", "exact_gradient", "all_tuples", "relax_quadrature_mean"]

BINARY_SCORE_NAMES = {"REINFORCE": "REINFORCE-Bernoulli", "RLOO": "RLOO-Bernoulli",
                      "DisARM": "DisARM", "ARMS": "ARMS", "DoubleCV": "DoubleCV",
                      "RELAX": "RELAX", "RODEO": "RODEO"}
"""The contract's short names -> their registry names (REINFORCE and RLOO are registered under
``-Bernoulli`` names, the plain names being the categorical estimators of ``reinmax.estimators.categorical_score``)."""


@dataclasses.dataclass
class BinaryScoreEstimate:
    """What an estimator returns: ``grad`` ``(*batch, D)``, ``values`` ``(K, *batch)``,
    ``samples`` ``(K, *batch, D)`` (see the module docstring)."""
    grad: Tensor
    values: Tensor
    samples: Tensor


# ------------------------------------------------------------------------------ checks
def _check_logits(logits) -> None:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor of Bernoulli logits (*batch, D); got "
                        f"{type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must have a floating dtype; got {logits.dtype}")
    if logits.dim() < 1:
        raise ValueError("logits must have at least one dimension (*batch, D), the last holding "
                         "one Bernoulli logit per binary variable; got a 0-d tensor")
    if logits.numel() and not torch.isfinite(logits.detach()).all():
        raise ValueError("logits must be finite (the score b - sigmoid(logits) and the couplings "
                         "need 0 < sigmoid(logits) < 1)")


def _check_samples(samples, logits: Tensor, K: int) -> Tensor:
    expected = (K,) + tuple(logits.shape)
    if not isinstance(samples, torch.Tensor):
        raise TypeError(f"samples must be a tensor of 0/1 values, shape {expected}; got "
                        f"{type(samples).__name__}")
    if tuple(samples.shape) != expected:
        raise ValueError(f"samples must have shape {expected} (num_samples, then the logits' "
                         f"shape); got {tuple(samples.shape)}")
    samples = samples.to(dtype=logits.dtype, device=logits.device)
    if samples.numel() and not ((samples == 0) | (samples == 1)).all():
        raise ValueError("samples must hold only 0 and 1")
    return samples


def _call_f(f: Callable, b: Tensor) -> Tensor:
    """f at ``b`` ``(n, *batch, D)``, checked to return one floating value per row, ``(n, *batch)``."""
    values = f(b)
    expected = tuple(b.shape[:-1])
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != expected:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ValueError(f"f must return one value per sample, shape {expected} (the shape of "
                         f"its argument {tuple(b.shape)} without the last dimension D); got {got}")
    if not values.is_floating_point():
        # An integer or bool loss would reach the estimators' means and differences as an
        # integer tensor (ARMS's mean fails inside PyTorch, others round): say so here.
        raise TypeError(f"f must return floating values (one loss per sample); got a tensor of "
                        f"dtype {values.dtype}: convert it, e.g. f(b).to(b.dtype)")
    return values


def _needs_gradient_error(name: str) -> ValueError:
    return ValueError(
        f"{name} needs the gradient of f at its argument (by autograd), and f's values do not "
        f"depend differentiably on b (computed without gradient, detached, or from a copy of b): "
        f"pass an f differentiable in b (a decoder is), or use an estimator that needs f's "
        f"values only (REINFORCE, RLOO, DisARM, ARMS)")


def _values_and_gradient(name: str, f: Callable, b: Tensor) -> Tuple[Tensor, Tensor]:
    """f at ``b`` (checked as :func:`_call_f`) and ``grad_b sum f`` (kept differentiable where the
    caller records a graph), or the one error of every estimator that needs f's gradient."""
    values = _call_f(f, b)
    grad = None
    if values.requires_grad:
        grad, = torch.autograd.grad(values.sum(), b, retain_graph=True, allow_unused=True)
    if grad is None:
        raise _needs_gradient_error(name)
    return values, grad


def _loo_mean(x: Tensor) -> Tensor:
    """Leave-one-out mean over the first dimension: entry k is the mean of the others."""
    K = x.shape[0]
    return (x.sum(0, keepdim=True) - x) / (K - 1)


# ------------------------------------------------------------------------------ the base
class BinaryScoreEstimator(nn.Module):
    """Base class: draws ``K`` samples, evaluates f, and asks ``_estimate`` for the gradient.
    Subclasses set ``name`` and ``needs_grad`` (whether grad_b f at the samples is used) and may
    override ``_draw`` and :meth:`tuple_probability` (a coupled law)."""
    name = "?"
    needs_grad = False
    min_samples = 1

    def __init__(self, num_samples: int = 2):
        super().__init__()
        if isinstance(num_samples, bool) or not isinstance(num_samples, int):
            raise TypeError(f"{self.name}: num_samples must be an integer; got {num_samples!r}")
        if num_samples < self.min_samples:
            raise ValueError(f"{self.name} needs num_samples >= {self.min_samples}; got "
                             f"num_samples={num_samples}")
        self.num_samples = num_samples

    def extra_repr(self) -> str:
        return f"num_samples={self.num_samples}"

    # -- sampling and its law
    def _draw(self, theta: Tensor, generator) -> Tensor:
        u = torch.rand((self.num_samples,) + tuple(theta.shape), generator=generator,
                       dtype=theta.dtype, device=theta.device)
        return (u > 1 - theta).to(theta.dtype)        # the baselines' b = 1[u > 1 - theta]

    def tuple_probability(self, samples: Tensor, logits: Tensor) -> Tensor:
        """The probability of the sample tuple ``samples`` ``(K, *batch, D)`` under the law the
        estimator draws it from, per example ``(*batch)``: here K independent draws."""
        theta = torch.sigmoid(logits)
        p = samples * theta + (1 - samples) * (1 - theta)
        return p.prod(-1).prod(0)

    # -- the estimate
    def forward(self, logits: Tensor, f: Callable, generator: Optional[torch.Generator] = None,
                *, samples: Optional[Tensor] = None) -> BinaryScoreEstimate:
        """The estimate for Bernoulli ``logits`` (``(*batch, D)``) and ``f`` (module docstring);
        ``samples`` (``(K, *batch, D)``, 0/1) replaces the draw."""
        _check_logits(logits)
        check_generator(generator)
        eta = logits.detach()
        theta = torch.sigmoid(eta)
        if samples is None:
            with torch.no_grad():
                samples = self._draw(theta, generator)
        else:
            samples = _check_samples(samples, eta, self.num_samples)
        if self.needs_grad:
            b = samples.clone().requires_grad_(True)
            with torch.enable_grad():
                values, grad_b = _values_and_gradient(self.name, f, b)
            grad_b = grad_b.detach()
        else:
            values, grad_b = _call_f(f, samples), None
        grad = self.estimate(eta, theta, samples, values.detach(), grad_b)
        return BinaryScoreEstimate(grad=grad, values=values, samples=samples)

    def estimate(self, eta, theta, samples, f, grad_b) -> Tensor:
        raise NotImplementedError

    # -- training helpers
    @staticmethod
    def surrogate(logits: Tensor, out: BinaryScoreEstimate) -> Tensor:
        """A scalar whose gradient with respect to ``logits`` is ``out.grad`` divided by the
        number of examples: ``(logits * out.grad.detach()).sum() / batch``."""
        batch = max(1, logits[..., 0].numel())
        return (logits * out.grad.detach()).sum() / batch

    @staticmethod
    def variance_loss(out: BinaryScoreEstimate) -> Tensor:
        """The mean over batch and D of ``out.grad ** 2``: what the baselines minimise to train
        the control parts (the mean gradient does not depend on them, so this is the variance
        up to a constant). Squared in float32 at least: in half precision an estimate above
        256 would square to inf."""
        return out.grad.to(torch.promote_types(out.grad.dtype, torch.float32)).pow(2).mean()

    def variance_backward(self, out: BinaryScoreEstimate) -> None:
        """Accumulate the gradient of :meth:`variance_loss` into this module's parameters only
        (a no-op for estimators without learned parts)."""
        params = [p for p in self.parameters() if p.requires_grad]
        if params and out.grad.requires_grad:
            torch.autograd.backward(self.variance_loss(out), inputs=params)


# ------------------------------------------------------------------------------ plain ones
class Reinforce(BinaryScoreEstimator):
    """REINFORCE: mean over the K samples of f(x_k) (x_k - theta)."""
    name = "REINFORCE"

    def __init__(self, num_samples: int = 1):
        super().__init__(num_samples)

    def estimate(self, eta, theta, samples, f, grad_b):
        return (f.unsqueeze(-1) * (samples - theta)).mean(0)


class RLOO(BinaryScoreEstimator):
    """REINFORCE leave-one-out: each sample's baseline is the mean of the others' f."""
    name = "RLOO"
    min_samples = 2

    def estimate(self, eta, theta, samples, f, grad_b):
        return ((f - _loo_mean(f)).unsqueeze(-1) * (samples - theta)).mean(0)


class DisARM(BinaryScoreEstimator):
    """DisARM (Dong et al. 2020): antithetic pairs b = 1[u > 1 - theta], b~ = 1[u < theta] from
    one uniform u; the estimate 1/2 (f(b) - f(b~)) (-1)^b~ 1[b != b~] ``sigmoid(|eta|)``, averaged
    over K/2 independent pairs (samples k and k + K/2 form a pair)."""
    name = "DisARM"
    min_samples = 2

    def __init__(self, num_samples: int = 2):
        super().__init__(num_samples)
        if num_samples % 2:
            raise ValueError(f"DisARM draws antithetic pairs: num_samples must be even; got "
                             f"num_samples={num_samples}")

    def _draw(self, theta, generator):
        u = torch.rand((self.num_samples // 2,) + tuple(theta.shape), generator=generator,
                       dtype=theta.dtype, device=theta.device)
        return torch.cat([(u > 1 - theta), (u < theta)]).to(theta.dtype)

    def tuple_probability(self, samples, logits):
        theta = torch.sigmoid(logits)
        half = self.num_samples // 2
        b, anti = samples[:half], samples[half:]
        both = (2 * theta - 1).clamp(min=0)              # P(b = 1, b~ = 1)
        one = torch.minimum(theta, 1 - theta)            # P(1, 0) = P(0, 1)
        none = (1 - 2 * theta).clamp(min=0)              # P(0, 0)
        p = torch.where(b == anti, torch.where(b == 1, both, none), one)
        return p.prod(-1).prod(0)

    def estimate(self, eta, theta, samples, f, grad_b):
        half = self.num_samples // 2
        b, anti = samples[:half], samples[half:]
        weight = (1 - 2 * anti) * (b != anti).to(b.dtype) * torch.sigmoid(eta.abs())
        return (0.5 * (f[:half] - f[half:]).unsqueeze(-1) * weight).mean(0)


def _arms_pair_below(p: Tensor, K: int) -> Tensor:
    """P(b_j = 1, b_k = 1) for two of ARMS's K coupled samples when P(b = 1) = p <= 1/2."""
    return (2 * p.pow(1 / (K - 1)) - 1).clamp(min=0).pow(K - 1)


def _arms_pair_probability(theta: Tensor, K: int) -> Tensor:
    """P(b_j = 1, b_k = 1) for two of ARMS's K coupled samples (Dimitriev and Zhou 2021)."""
    return torch.where(theta < 0.5, _arms_pair_below(theta, K),
                       2 * theta - 1 + _arms_pair_below(1 - theta, K))


class ARMS(BinaryScoreEstimator):
    """ARMS (Dimitriev and Zhou 2021): per variable, K uniforms coupled through a Dirichlet
    copula (negatively correlated samples); the estimate
    1/(K-1) sum_k (f_k - mean f) (x_k - theta) theta (1 - theta) / (theta - P11)."""
    name = "ARMS"
    min_samples = 2

    def _draw(self, theta, generator):
        K = self.num_samples
        u = torch.rand((K,) + tuple(theta.shape), generator=generator, dtype=theta.dtype,
                       device=theta.device)
        e = -torch.log1p(-u)                              # Exp(1) (log1p(-u): u = 0 is safe)
        d = e / e.sum(0, keepdim=True)                    # Dirichlet(1, ..., 1)
        copula = (1 - d).pow(K - 1)                       # each U(0, 1), jointly antithetic
        copula = torch.where(theta < 0.5, copula, 1 - copula)
        return (copula < theta).to(theta.dtype)

    def tuple_probability(self, samples, logits):
        # Per variable the K bits are exchangeable. For theta < 1/2, P(every bit in a set S is
        # 1) = (1 - |S| (1 - theta^(1/(K-1))))_+^(K-1) (Dirichlet(1..1) is uniform on the
        # simplex); a pattern's probability follows by inclusion-exclusion. For theta >= 1/2
        # the bits are the complements of those for 1 - theta.
        K = self.num_samples
        theta = torch.sigmoid(logits)
        low = theta < 0.5
        t = torch.where(low, theta, 1 - theta)
        bits = torch.where(low, samples, 1 - samples)     # (K, *batch, D)
        ones = bits.sum(0)                                # |S| per variable
        a = 1 - t.pow(1 / (K - 1))
        p = torch.zeros_like(t)
        for extra in range(K + 1):                        # T = S plus `extra` more bits
            size = ones + extra
            count = torch.tensor([math.comb(K - int(s), extra) if s + extra <= K else 0
                                  for s in range(K + 1)], dtype=t.dtype, device=t.device)
            ways = count[ones.long()]
            prob_all = (1 - size * a).clamp(min=0).pow(K - 1)
            prob_all = torch.where(size == 0, torch.ones_like(prob_all), prob_all)
            p = p + (-1) ** extra * ways * prob_all
        return p.clamp(min=0).prod(-1)

    def estimate(self, eta, theta, samples, f, grad_b):
        K = self.num_samples
        # theta (1 - theta) / (theta - P11) is, on both sides of 1/2, t (1 - t) / (t - P11(t))
        # with t = min(theta, 1 - theta) = sigmoid(-|eta|). Taken from eta, t stays exact where
        # theta rounds to 1 (float32: eta above about 16.6); from theta it was 0 / 0 there, a
        # NaN estimate that stopped a K = 3 Bernoulli VAE run. At t = 0 (eta beyond the
        # float's range) the value is its limit, 1 (P11 vanishes for t < 2^-(K-1)).
        t = torch.sigmoid(-eta.abs()).to(theta.dtype)
        gap = t - _arms_pair_below(t, K)
        debias = torch.where(gap > 0, t * (1 - t) / torch.where(gap > 0, gap, torch.ones_like(t)),
                             1 - t)
        centred = (f - f.mean(0, keepdim=True)).unsqueeze(-1)
        return (centred * (samples - theta)).sum(0) * debias / (K - 1)


# ------------------------------------------------------------------------------ learned ones
class DoubleCV(BinaryScoreEstimator):
    """Double control variates (Titsias and Shi 2022): RLOO with a first-order Taylor control
    variate around the other samples, alpha * gbar_{-k} . (x_k - theta), and its exact mean
    alpha * gbar * theta (1 - theta) subtracted (gbar: the mean of grad_b f at the samples)."""
    name = "DoubleCV"
    needs_grad = True
    min_samples = 2

    def __init__(self, num_samples: int = 2):
        super().__init__(num_samples)
        self.alpha = nn.Parameter(torch.zeros(()))

    def estimate(self, eta, theta, samples, f, grad_b):
        alpha = self.alpha.to(theta.dtype)
        score = samples - theta
        g_loo = _loo_mean(grad_b)
        cv = alpha * (g_loo * score).sum(-1)              # (K, *batch)
        c = f + cv
        estimate = ((f + cv - _loo_mean(c)).unsqueeze(-1) * score).mean(0)
        return estimate - alpha * grad_b.mean(0) * theta * (1 - theta)


class SteinControlNet(nn.Module):
    """RODEO's control network: Dense(100) of the linearised value plus Dense(100) of the other
    sample's f, LeakyReLU(0.3), Dense(2) (Glorot-uniform weights, zero biases, as Keras)."""

    def __init__(self, hidden: int = 100):
        super().__init__()
        self.dense_lin, self.dense_f = nn.Linear(1, hidden), nn.Linear(1, hidden)
        self.out = nn.Linear(hidden, 2)
        for layer in (self.dense_lin, self.dense_f, self.out):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, lin: Tensor, f: Tensor) -> Tensor:
        """The control network's two outputs at the linear features ``lin`` and values ``f``."""
        hidden = self.dense_lin(lin.unsqueeze(-1)) + self.dense_f(f.unsqueeze(-1))
        return self.out(nn.functional.leaky_relu(hidden, 0.3))


class RODEO(BinaryScoreEstimator):
    r"""RODEO (Shi et al. 2022): control variates from a discrete Stein operator (random-scan
    Gibbs: ``(A h)(x) = 1/D sum_i w_i(x) [h(x^(i)) - h(x)]``, ``x^(i)`` with bit i flipped,
    ``w_i`` the conditional probability of the flipped bit), applied to a control function
    ``H_k(y) = mean_{j != k} NN(g_j . (y - x_j), f(x_j))`` built from the *other* samples (so
    that ``E[A H_k(x_k)] = 0``). With ``c_j = f_j + alpha (A H_{j,0})(x_j)`` and
    ``G_k(y) = H_{k,1}(y) (y - theta)``:
    ``g = 1/K sum_k [(f_k - mean_{j != k} c_j) (x_k - theta) + beta (A G_k)(x_k)]``."""
    name = "RODEO"
    needs_grad = True
    min_samples = 2

    def __init__(self, num_samples: int = 2, hidden: int = 100):
        super().__init__(num_samples)
        if num_samples not in (2, 3):
            raise ValueError(f"RODEO is defined here for num_samples in {{2, 3}} (Shi et al.'s "
                             f"two forms of the control function); got num_samples={num_samples}")
        self.alpha = nn.Parameter(torch.zeros(()))
        self.beta = nn.Parameter(torch.zeros(()))
        self.control = SteinControlNet(hidden)
        # H_k's own sample is never used: `_others` lists, for each k, the j != k.
        self._others = [[j for j in range(num_samples) if j != k] for k in range(num_samples)]

    def _control(self, theta, samples, f, grad_b, own: bool = False):
        """H_k at x_k (last index D) and at its D neighbours (indices 0..D-1): (K, *batch, D+1, 2).
        ``own=True`` includes j = k (a biased variant, for the tests)."""
        K = self.num_samples
        pairs = [(k, j) for k in range(K) for j in range(K) if own or j != k]
        ks = torch.tensor([k for k, _ in pairs], device=theta.device)
        js = torch.tensor([j for _, j in pairs], device=theta.device)
        x_k, g_j, x_j = samples[ks], grad_b[js], samples[js]            # (P, *batch, D)
        lin_x = (g_j * (x_k - x_j)).sum(-1, keepdim=True)                  # l_j(x_k)
        lin_nbr = lin_x + g_j * (1 - 2 * x_k)                              # l_j at one flip
        lin = torch.cat([lin_nbr, lin_x], -1)                              # (P, *batch, D+1)
        net = self.control
        wdtype = net.out.weight.dtype
        # Dense(100) of the linearisation plus Dense(100) of f(x_j): the second is one row per
        # pair, broadcast over the D+1 points (the same sum Shi et al.'s network forms).
        hidden = (lin.to(wdtype).unsqueeze(-1) * net.dense_lin.weight[:, 0]
                  + (net.dense_lin.bias + net.dense_f(f[js].to(wdtype).unsqueeze(-1))).unsqueeze(-2))
        out = net.out(nn.functional.leaky_relu(hidden, 0.3)).to(theta.dtype)   # (P, *b, D+1, 2)
        out = out.reshape((K, len(pairs) // K) + tuple(out.shape[1:]))
        return out.mean(1)

    def estimate(self, eta, theta, samples, f, grad_b, own: bool = False):
        D = samples.shape[-1]
        alpha, beta = self.alpha.to(theta.dtype), self.beta.to(theta.dtype)
        H = self._control(theta, samples, f, grad_b, own)                  # (K, *b, D+1, 2)
        h0_nbr, h0_x = H[..., :D, 0], H[..., D, 0]
        h1_nbr, h1_x = H[..., :D, 1], H[..., D, 1]
        w = torch.where(samples == 0, theta, 1 - theta)                    # (K, *batch, D)
        score = samples - theta
        stein_h0 = (w * (h0_nbr - h0_x.unsqueeze(-1))).sum(-1) / D         # (A H_{k,0})(x_k)
        # (A G_k)(x_k)_d, with x^(i)_d - theta_d = score_d + [i = d] (1 - 2 x_d)
        stein_g = (score * ((w * h1_nbr).sum(-1, keepdim=True) - h1_x.unsqueeze(-1) * w.sum(-1, keepdim=True))
                   + w * h1_nbr * (1 - 2 * samples)) / D
        c = f + alpha * stein_h0
        return ((f - _loo_mean(c)).unsqueeze(-1) * score + beta * stein_g).mean(0)


class RELAX(BinaryScoreEstimator):
    r"""RELAX (Grathwohl et al. 2018) as Shi et al. run it: z = eta + logit(u), b = 1[z > 0],
    z~ = eta + logit(v') drawn from z given b; with the control
    c(z) = s [f(sigmoid(z / lambda)) - r_psi([context, z])],
    the estimate (f(b) - c(z~)) (b - theta) + d/d eta [c(z) - c(z~)], averaged over K samples.
    Learned: lambda (as its log, init log 0.1), the scale s (init 1) and the surrogate r_psi
    (Dense(137), LeakyReLU(0.3), Dense(1)), whose input is z (``num_latents`` of them) and, when
    ``context_features > 0``, the example's ``context`` (Shi et al. feed it the data x)."""
    name = "RELAX"
    min_samples = 1

    def __init__(self, num_samples: int = 1, num_latents: int = 200, context_features: int = 0,
                 hidden: int = 137):
        super().__init__(num_samples)
        for label, value, low in (("num_latents", num_latents, 1), ("context_features", context_features, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"RELAX: {label} must be an integer >= {low}; got {label}={value!r}")
        self.num_latents, self.context_features = num_latents, context_features
        self.log_temperature = nn.Parameter(torch.tensor(math.log(0.1)))
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.surrogate_net = nn.Sequential(nn.Linear(num_latents + context_features, hidden),
                                           nn.LeakyReLU(0.3), nn.Linear(hidden, 1))

    def extra_repr(self) -> str:
        return (f"num_samples={self.num_samples}, num_latents={self.num_latents}, "
                f"context_features={self.context_features}")

    def _r(self, z: Tensor, context: Optional[Tensor]) -> Tensor:
        x = z
        if self.context_features:
            x = torch.cat([context.to(z.dtype).expand(z.shape[:-1] + (context.shape[-1],)), z], -1)
        dtype = self.surrogate_net[0].weight.dtype
        return self.surrogate_net(x.to(dtype)).squeeze(-1).to(z.dtype)

    def forward(self, logits: Tensor, f: Callable, generator: Optional[torch.Generator] = None,
                *, samples: Optional[Tensor] = None, noise: Optional[Tuple[Tensor, Tensor]] = None,
                context: Optional[Tensor] = None, drop_conditional: bool = False) -> BinaryScoreEstimate:
        """RELAX's estimate (module docstring); ``noise`` (the two uniform tensors) replaces the
        draw, ``context`` feeds the surrogate (e.g. the image)."""
        _check_logits(logits)
        check_generator(generator)
        K, D = self.num_samples, logits.shape[-1]
        if D != self.num_latents:
            raise ValueError(f"RELAX was built for num_latents={self.num_latents}; the logits have "
                             f"D={D} (last dimension)")
        if self.context_features:
            expected = tuple(logits.shape[:-1]) + (self.context_features,)
            if context is None or tuple(context.shape) != expected:
                got = None if context is None else tuple(context.shape)
                raise ValueError(f"RELAX with context_features={self.context_features} needs "
                                 f"context= of shape {expected}; got {got}")
        # Half-precision logits are worked on in float32 (f still receives its arguments in
        # the logits' dtype): at lambda = 0.1, z / lambda and the second derivatives the variance
        # loss takes overflow float16, and one inf * 0 is a NaN in every learned part.
        work = torch.float64 if logits.dtype == torch.float64 else torch.float32
        eta = logits.detach().to(work).clone().requires_grad_(True)
        shape = (K,) + tuple(eta.shape)
        if noise is None:
            u = torch.rand(shape, generator=generator, dtype=eta.dtype, device=eta.device)
            v = torch.rand(shape, generator=generator, dtype=eta.dtype, device=eta.device)
        else:
            u, v = (n.to(dtype=eta.dtype, device=eta.device) for n in noise)
            if tuple(u.shape) != shape or tuple(v.shape) != shape:
                raise ValueError(f"noise must be two uniform tensors of shape {shape}; got "
                                 f"{tuple(u.shape)} and {tuple(v.shape)}")
        tiny = torch.finfo(eta.dtype).tiny
        u, v = u.clamp(tiny, 1 - torch.finfo(eta.dtype).eps), v.clamp(tiny, 1 - torch.finfo(eta.dtype).eps)
        with torch.enable_grad():
            theta = torch.sigmoid(eta)
            z = eta + torch.logit(u)
            b = (z > 0).to(eta.dtype).detach()
            if samples is not None:
                raise ValueError("RELAX draws its sample from its noise: pass noise=(u, v), not samples=")
            v_prime = b * (v * theta + 1 - theta) + (1 - b) * v * (1 - theta)
            # In float32, v' rounds to exactly 1 (b = 1, v near 1) or falls to a subnormal
            # (b = 0, v near 0) once in a few million draws: logit is then infinite, or its second
            # derivative (the variance loss differentiates d_eta) overflows, and one NaN ruins
            # every learned part. Keep v' a rounding step inside (0, 1).
            eps = torch.finfo(eta.dtype).eps
            v_prime = v_prime.clamp(eps, 1 - eps)
            z_tilde = eta + torch.logit(v_prime)
            values = _call_f(f, b.to(logits.dtype))
            temperature = self.log_temperature.exp().to(eta.dtype)
            x = torch.sigmoid(torch.cat([z, z_tilde]) / temperature).to(logits.dtype)
            relaxed = _call_f(f, x).to(eta.dtype)
            scale = self.scale.to(eta.dtype)
            c_z = scale * (relaxed[:K] - self._r(z, context))
            c_zt = scale * (relaxed[K:] - self._r(z_tilde, context))
            reparam = c_z if drop_conditional else c_z - c_zt     # drop_conditional: a biased variant
            # The gradient in x comes with the same pass: None when f ignores its argument's
            # graph, where RELAX's control variate would have lost its f part (a biased estimate).
            d_eta, d_x = torch.autograd.grad(reparam.sum(), (eta, x), create_graph=True,
                                             allow_unused=True)
            if d_x is None:
                raise _needs_gradient_error(self.name)
            score = (b - theta).detach()
            grad = ((values.detach().to(eta.dtype) - c_zt).unsqueeze(-1) * score).mean(0) + d_eta / K
        return BinaryScoreEstimate(grad=grad.to(logits.dtype), values=values, samples=b.to(logits.dtype))

    def tuple_probability(self, samples, logits):
        raise NotImplementedError("RELAX's estimate depends on continuous noise besides the "
                                  "sample; it cannot be enumerated (check it by quadrature or "
                                  "Monte Carlo)")


# ------------------------------------------------------------------------------ registry
_CLASSES = {"REINFORCE": Reinforce, "RLOO": RLOO, "DisARM": DisARM, "ARMS": ARMS,
            "DoubleCV": DoubleCV, "RELAX": RELAX, "RODEO": RODEO}
_DESCRIPTIONS = {
    "REINFORCE": "REINFORCE (Williams 1992) for Bernoulli logits, num_samples draws",
    "RLOO": "REINFORCE leave-one-out (Kool et al. 2019) for Bernoulli logits",
    "DisARM": "DisARM (Dong et al. 2020): antithetic pairs, num_samples/2 of them",
    "ARMS": "ARMS (Dimitriev and Zhou 2021): K samples coupled by a Dirichlet copula",
    "DoubleCV": "Double control variates (Titsias and Shi 2022), learned alpha",
    "RELAX": "RELAX (Grathwohl et al. 2018), learned temperature, scale and surrogate",
    "RODEO": "RODEO (Shi et al. 2022): discrete Stein operator control variates, K in {2, 3}"}
_STYLES = {"REINFORCE": dict(color="#0b6e7a", linestyle=":"),
           "RLOO": dict(color="#a0467f", linestyle=":"),
           "DisARM": dict(color="#000000", linestyle="--"),
           "ARMS": dict(color="#9edae5", linestyle="--"),
           "DoubleCV": dict(color="#c49c94", linestyle="-."),
           "RELAX": dict(color="#dbdb8d", linestyle="-."),
           "RODEO": dict(color="#e6550d", linestyle="-")}

for _short, _cls in _CLASSES.items():
    _options = {"num_samples": 2 if _short not in ("REINFORCE", "RELAX") else 1}
    # What each option accepts, checked when the module is built (the constructors check again).
    _rules = {"num_samples": OptionRule("int", low=_cls.min_samples,
                                        high=3 if _short == "RODEO" else None,
                                        multiple_of=2 if _short == "DisARM" else None)}
    if _short == "RELAX":
        _options.update(num_latents=200, context_features=0, hidden=137)
        _rules.update(num_latents=OptionRule("int", low=1), context_features=OptionRule("int", low=0),
                      hidden=OptionRule("int", low=1))
    if _short == "RODEO":
        _options.update(hidden=100)
        _rules.update(hidden=OptionRule("int", low=1))
    register(EstimatorSpec(
        name=BINARY_SCORE_NAMES[_short], family="bernoulli-score", factory=_cls,
        options=_options, rules=_rules, description=_DESCRIPTIONS[_short], style=_STYLES[_short],
        # Given the samples (samples=) and the module's parameters, only RELAX draws more
        # (its relaxations' noise).
        draws_noise=_short == "RELAX", sample_only_backward=_short != "RELAX"))


def build_binary_score_estimator(name: str, **options) -> BinaryScoreEstimator:
    """A new estimator module by its short name (REINFORCE, RLOO, DisARM, ARMS, DoubleCV, RELAX,
    RODEO; case-insensitive) or registry name, with options checked by the registry when it
    is built (``num_samples``; RELAX also ``num_latents``, ``context_features`` and ``hidden``,
    RODEO ``hidden``: what each accepts is its ``OptionRule`` in ``get_spec(name).rules``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got {name!r}")
    short = {k.lower(): v for k, v in BINARY_SCORE_NAMES.items()}.get(name.strip().lower(), name)
    return get_spec(short, "bernoulli-score").build(**options)


# ------------------------------------------------------------------------------ enumeration
def all_tuples(K: int, D: int, dtype=torch.float64) -> Tensor:
    """Every K-tuple of binary vectors of length D: ``(K, 2^(K D), D)``."""
    configs = torch.tensor(list(itertools.product((0.0, 1.0), repeat=D)), dtype=dtype)
    index = torch.tensor(list(itertools.product(range(2 ** D), repeat=K)))
    return configs[index].transpose(0, 1).contiguous()


def exact_gradient(f: Callable, logits: Tensor) -> Tensor:
    """``d E_q[f(b)] / d logits`` for one example's logits ``(D,)`` and f of b only, by
    enumeration: ``sum_b q(b) f(b) (b - theta)``."""
    D = logits.shape[-1]
    b = all_tuples(1, D, logits.dtype)                    # (1, 2^D, D)
    theta = torch.sigmoid(logits.detach())
    q = (b * theta + (1 - b) * (1 - theta)).prod(-1)[0]
    values = _call_f(f, b)[0].detach()
    return ((q * values).unsqueeze(-1) * (b[0] - theta)).sum(0)


def exact_moments(estimator: BinaryScoreEstimator, f: Callable, logits: Tensor,
                  max_tuples: int = 2 ** 16, **kwargs):
    """The exact mean and per-coordinate variance of ``estimator``'s estimate for one example's
    logits ``(D,)``, by enumerating every sample tuple with its probability under the
    estimator's law (:meth:`~BinaryScoreEstimator.tuple_probability`), with the estimator's
    parameters as they are. Returns ``(mean, variance)``, each ``(D,)``; ``kwargs`` go to the
    estimator's ``_estimate`` (the tests' biased variants)."""
    if logits.dim() != 1:
        raise ValueError(f"exact_moments takes one example's logits, shape (D,); got "
                         f"{tuple(logits.shape)}")
    K, D = estimator.num_samples, logits.shape[0]
    if 2 ** (K * D) > max_tuples:
        raise ValueError(f"enumerating {2 ** (K * D)} tuples (K={K}, D={D}) exceeds "
                         f"max_tuples={max_tuples}")
    samples = all_tuples(K, D, logits.dtype)              # (K, N, D)
    N = samples.shape[1]
    eta = logits.detach().expand(N, D)
    weights = estimator.tuple_probability(samples, eta)   # (N,)
    with torch.no_grad():
        if kwargs:
            theta = torch.sigmoid(eta)
            if estimator.needs_grad:
                b = samples.clone().requires_grad_(True)
                with torch.enable_grad():
                    values = _call_f(f, b)
                    grad_b, = torch.autograd.grad(values.sum(), b)
            else:
                values, grad_b = _call_f(f, samples), None
            grads = estimator.estimate(eta, theta, samples, values.detach(), grad_b, **kwargs)
        else:
            grads = estimator(eta, f, samples=samples).grad
    mean = (weights.unsqueeze(-1) * grads).sum(0)
    variance = (weights.unsqueeze(-1) * (grads - mean) ** 2).sum(0)
    return mean, variance


# ------------------------------------------------------------------------------ RELAX at D = 1
def _tanh_sinh(a, b, h=1 / 16, tmax=3.2):
    t = torch.arange(-tmax, tmax + h / 2, h, dtype=torch.float64)
    s = math.pi / 2 * torch.sinh(t)
    x = a + (b - a) * (1 + torch.tanh(s)) / 2
    w = (b - a) / 2 * h * (math.pi / 2 * torch.cosh(t)) / torch.cosh(s) ** 2
    return x, w


def _pieces(cuts, lo, hi):
    points = sorted({lo, hi, *[c for c in cuts if lo < c < hi]})
    nodes = [_tanh_sinh(a, b) for a, b in zip(points[:-1], points[1:])]
    return torch.cat([n for n, _ in nodes]), torch.cat([w for _, w in nodes])


def relax_quadrature_mean(est: "RELAX", f: Callable, logit: Tensor, drop_conditional: bool = False) -> Tensor:
    """The exact mean of RELAX's estimate at D = 1 (no context), by tanh-sinh quadrature over
    its two uniforms (u, v), split at b's threshold and at the surrogate's LeakyReLU kinks (where
    a hidden unit's input changes sign), so that each piece is smooth: the mean of a
    one-variable RELAX to about 1e-12 with ~100 nodes per piece and axis."""
    if not isinstance(est, RELAX) or est.num_latents != 1 or est.num_samples != 1 or est.context_features:
        raise ValueError("relax_quadrature_mean takes a RELAX built with num_latents=1, "
                         "num_samples=1 and no context")
    lin = est.surrogate_net[0]
    if lin.out_features > 32:
        raise ValueError(f"the surrogate has {lin.out_features} hidden units, each a kink to split "
                         f"at; the product grid would be too large (use at most 32)")
    eta = float(logit)
    theta = 1 / (1 + math.exp(-eta))
    kinks_z = (-lin.bias / lin.weight[:, 0]).detach().tolist()
    kinks = [1 / (1 + math.exp(-(z - eta))) for z in kinks_z]       # u (or v') at a kink
    total = torch.zeros(1, dtype=torch.float64)
    for b, (lo, hi) in ((1, (1 - theta, 1.0)), (0, (0.0, 1 - theta))):
        u, wu = _pieces(kinks, lo, hi)
        vk = [(k - (1 - theta)) / theta for k in kinks] if b else [k / (1 - theta) for k in kinks]
        v, wv = _pieces(vk, 0.0, 1.0)
        U, V = torch.meshgrid(u, v, indexing="ij")
        W = (wu[:, None] * wv[None, :]).reshape(-1)
        noise = (U.reshape(1, -1, 1), V.reshape(1, -1, 1))
        logits = torch.full((W.shape[0], 1), eta, dtype=torch.float64)
        with torch.no_grad():
            grads = est(logits, f, noise=noise, drop_conditional=drop_conditional).grad
        total += (W[:, None] * grads).sum(0)
    return total
