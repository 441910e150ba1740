r"""ReinMax-Rao and ReinMax-CV (Wang & Bui 2026, "Beyond ReinMax"), as the authors' public code
defines them where it could be read, and as our labelled reading where it could not.

Notation: theta the logits of one variable, pi = softmax(theta), D the one-hot sample,
g = dL/dD, J(p) = diag(p) - p p^T, theta' = log((pi + D)/2).

**ReinMax-Rao** (their mode ``reinmax_v3``): forward D ~ Cat(pi) as ReinMax; backward
``2 Jbar g - 1/2 J(pi) g`` with ``Jbar = (1/R) sum_r J(softmax((theta' + G_r)/tau))/tau`` over R
Gumbel draws conditioned on argmax(theta' + G) = D. Their code forms R full C x C Jacobians; here
the average is applied to g without forming any matrix (GR-MCK's kernel at theta': O(R C) per
variable). Its mean is ``E_D[2 M(D) g - 1/2 J(pi) g]`` with ``M(D) = E_{G|D} J(...)/tau``: NOT
ReinMax's mean (ReinMax's backward is already deterministic given D; Rao-Blackwellisation
applies to a Gumbel-softmax term that ReinMax does not have), and its bias does not vanish as f
becomes smooth (``reinmax.theory.beyond`` measures it). ``R="quadrature"`` (two categories):
the R -> infinity limit by a tanh-sinh quadrature (no noise; exact enumeration then applies).

**ReinMax-CV** (their mode ``reinmax_cv``), OUR READING: the stored code calls a helper that is
not in the repository and feeds its Gumbel-softmax term the soft sample where the noise belongs.
We implement the clean form ``ReinMax(tau) - eta [J(q_0)/tau2 - (1/R) sum_r J(q_r)/tau2] g``
with ``q_k = softmax((theta' + G_k)/tau2)``, where G_0 is the forward's Gumbel noise and
G_1..G_R are further draws from THE SAME law: Gumbel at theta conditioned on
argmax(theta + G) = D. The control then has mean zero given D, so E[ReinMax-CV] = E[ReinMax]
exactly, for every eta and tau2. (The stored code conditions the averaged term at theta'
instead: its control has a nonzero mean; :func:`reinmax_cv_stored_reading` computes that version,
not registered.) ``tau`` is ReinMax's temperature (the stored code fixes it at 1). The control's
value is zero, so only its backward is computed: GR-MCK's fused kernel makes the R + 1
relaxations in place from the same draws (one copy, no graph of R + 1 softmaxes); the definition
written in autograd runs under torch.func transforms, forward mode and torch.compile.
``R="quadrature"`` (two categories): the R -> infinity limit, the averaged term replaced by its
conditional mean given D (a quadrature), the forward's draw kept: still ReinMax's mean.

Both two-category limits compute a row's quadrature once per distinct row (a parameter broadcast
over a batch, as in polynomial programming) for each possible sample and pick it per sample: at
Figure 1's shape that is tens of times cheaper than R = 100 draws per variable.
"""
import math
from typing import Optional, Union

import torch

from .categorical import (fused_gumbel_control_at, fused_gumbel_rao_applies, fused_gumbel_rao_at,
                          gumbel_rao, reinmax)
from .checks import (check_generator, check_logits, check_positive_int, check_softmax_rows, check_tau,
                     mark_invalid)
from .registry import EstimatorSpec, OptionRule, register
from .sampling import draw_index_unchecked, exponential, one_hot, working_dtype
from .two_category import distinct_rows

Tensor = torch.Tensor

__all__ = ["reinmax_rao", "reinmax_cv", "reinmax_cv_stored_reading", "rao_pivot",
           "conditional_gumbels", "two_category_rao_weight"]


def _no_soft_form(name: str, hard: bool) -> None:
    if not hard:
        raise ValueError(f"{name} has no soft (relaxed) form: hard must be True; got hard={hard!r}")


def rao_pivot(theta: Tensor, D: Tensor) -> Tensor:
    """theta' = log((softmax(theta) + D) / 2), detached (categories last); -inf where masked.
    (theta.detach(): no_grad does not stop forward-mode AD, which would otherwise differentiate
    the pivot, where the estimators pass the identity.)"""
    with torch.no_grad():
        return torch.log(0.5 * (torch.softmax(theta.detach(), -1) + D))


def _through_identity(value: Tensor, theta: Tensor) -> Tensor:
    """``value`` in the forward pass, the identity to ``theta`` in the backward pass (0 at masked
    logits, where theta - theta would be NaN)."""
    shift = torch.where(torch.isneginf(theta), torch.zeros_like(theta), theta)
    return value + (shift - shift.detach())


def conditional_gumbels(theta: Tensor, index: Tensor, exponentials: Tensor) -> Tensor:
    """Gumbel noise G at ``theta`` conditioned on argmax(theta + G) = index, from Exp(1) draws
    (the exponential trick of Paulus et al. 2021; any leading sample dimensions): the maximum is
    logsumexp(theta) - log E_index, every other coordinate -log(E_i exp(-theta_i) + exp(-max)).
    Masked (-inf) categories get zero noise."""
    log_e = exponentials.log()
    log_z = torch.logsumexp(theta, -1, keepdim=True)
    top = log_z - log_e.gather(-1, index.expand(log_e.shape[:-1]).unsqueeze(-1))
    others = -torch.logaddexp(log_e - theta, -top)
    perturbed = torch.where(one_hot(index, theta).bool(), top, others)
    return torch.where(torch.isneginf(theta), torch.zeros_like(perturbed), perturbed - theta)


# ------------------------------------------------------------------ two categories, R -> inf
_TS_STEP, _TS_RANGE = 1.0 / 24, 3.6


def two_category_rao_weight(mu: Tensor, tau: float, shift: Union[float, Tensor] = 0.0) -> Tensor:
    r"""E[sigma(S/tau) sigma(-S/tau) | Delta < 0] with S = Delta + shift, for Delta = mu + a
    standard logistic: with ``shift`` 0, the entry of M(D) = weight/tau * [[1, -1], [-1, 1]] for
    two categories, mu = theta'_o - theta'_d (o the other category); ReinMax-CV's averaged term
    draws Delta at theta (mu = theta_o - theta_d) and evaluates it at theta', shift
    log(pi_d / (1 + pi_d)). Substituting Delta = mu + logit(sigma(-mu) v) maps the conditional law
    to v ~ U(0, 1); a tanh-sinh rule in v (double-exponential convergence, also at v -> 0 where the
    integrand behaves like v^(1/tau)). 0 where mu = -inf (no other choice)."""
    t = torch.arange(-_TS_RANGE, _TS_RANGE + _TS_STEP / 2, _TS_STEP, dtype=torch.float64,
                     device=mu.device)
    arg = math.pi * torch.sinh(t)
    logsig = torch.nn.functional.logsigmoid
    # v = 1/2 (1 + tanh(pi/2 sinh t)) = sigmoid(pi sinh t), and dv/dt.
    dv = _TS_STEP * math.pi * torch.cosh(t) * torch.sigmoid(arg) * torch.sigmoid(-arg)
    m = mu.to(torch.float64).unsqueeze(-1)
    finite = torch.isfinite(m)
    m0 = torch.where(finite, m, torch.zeros_like(m))
    # Delta = m + log u - log(1 - u) with u = sigma(-m) v, in logs (v near 0 and near 1):
    # 1 - u = sigma(m) + sigma(-m) (1 - v).
    log_u = logsig(-m0) + logsig(arg)
    log_1mu = torch.logaddexp(logsig(m0), logsig(-m0) + logsig(-arg))
    delta = m0 + log_u - log_1mu
    if not (isinstance(shift, float) and shift == 0.0):
        delta = delta + torch.as_tensor(shift, dtype=torch.float64, device=mu.device).unsqueeze(-1)
    phi = torch.sigmoid(delta / tau) * torch.sigmoid(-delta / tau)
    weight = (phi * dv).sum(-1, keepdim=True)
    return torch.where(finite, weight, torch.zeros_like(weight)).squeeze(-1).to(mu.dtype)


def _two_category_surrogate(theta: Tensor, coefficient: Tensor) -> Tensor:
    """Zero in the forward pass; backward ``coefficient * [[1, -1], [-1, 1]] g`` to ``theta``
    (two categories): ``coefficient * (u - sg u)`` with u = (theta_0 - theta_1, theta_1 - theta_0)."""
    shift = torch.where(torch.isneginf(theta), torch.zeros_like(theta), theta)
    u = torch.stack([shift[..., 0] - shift[..., 1], shift[..., 1] - shift[..., 0]], -1)
    return coefficient.to(theta.dtype).unsqueeze(-1) * (u - u.detach())


def _per_sample(index: Tensor, given_first: Tensor, given_second: Tensor) -> Tensor:
    """A per-row value for each of the two possible samples, picked by the sample drawn."""
    return torch.where(index == 0, given_first, given_second)


def _rao_two_category_quadrature(theta: Tensor, index: Tensor, tau: float) -> Tensor:
    """2 M(D) g as a surrogate. The weight depends on the row's logits and the sample only, so
    it is computed for both samples once per distinct row (a parameter broadcast over a batch,
    as in polynomial programming, costs one quadrature per parameter row) and picked per sample."""
    with torch.no_grad():
        rows = distinct_rows(theta.detach())
        pi = torch.softmax(rows.to(working_dtype(theta)), -1)
        # mu = theta'_o - theta'_d = log(pi_o / 2) - log((1 + pi_d) / 2)
        log_pi = pi.log()
        w_first = two_category_rao_weight(log_pi[..., 1] - torch.log1p(pi[..., 0]), tau)
        w_second = two_category_rao_weight(log_pi[..., 0] - torch.log1p(pi[..., 1]), tau)
        weight = _per_sample(index, w_first, w_second)
    return _two_category_surrogate(theta, (2.0 / tau) * weight)


def _cv_two_category_quadrature(theta: Tensor, index: Tensor, tau2: float, eta: float,
                                e0: Tensor) -> Tensor:
    """ReinMax-CV's control for two categories at R -> inf: the single term from the forward's
    draw G_0 (Exp(1) draws ``e0``, as :func:`conditional_gumbels` uses them), minus the averaged
    term's conditional mean given D by quadrature (so the control has mean zero given D, as for
    every finite R). Both terms need only the perturbed logit difference, and every quantity of a
    row's logits is computed once per distinct row (a parameter broadcast over a batch)."""
    with torch.no_grad():
        work = theta.detach().to(working_dtype(theta))
        rows = distinct_rows(work)
        pi = torch.softmax(rows, -1)
        # L = (theta_o + G_o) - (theta_d + G_d) given D is gap + logistic, conditioned < 0;
        # the terms are evaluated at theta', i.e. at L + shift_d, shift_d = log(pi_d / (1 + pi_d)).
        gap = rows[..., 1] - rows[..., 0]
        shift = pi.log() - torch.log1p(pi)
        averaged = _per_sample(index, two_category_rao_weight(gap, tau2, shift[..., 0]),
                               two_category_rao_weight(-gap, tau2, shift[..., 1]))
        first = index == 0
        log_e = e0.to(work.dtype).log()
        log_z = torch.logsumexp(rows, -1)
        top = log_z - torch.where(first, log_e[..., 0], log_e[..., 1])     # theta_d + G_d
        theta_o = torch.where(first, rows[..., 1], rows[..., 0])
        log_e_o = torch.where(first, log_e[..., 1], log_e[..., 0])
        other = -torch.logaddexp(log_e_o - theta_o, -top)                  # theta_o + G_o
        z = (other - top + _per_sample(index, shift[..., 0], shift[..., 1])) / tau2
        single = torch.sigmoid(z) * torch.sigmoid(-z)
    return _two_category_surrogate(theta, (-eta / tau2) * (single - averaged))


# ------------------------------------------------------------------------ ReinMax-Rao
def reinmax_rao(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
                sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
                R: Union[int, str] = 100):
    r"""ReinMax-Rao (module docstring): forward a one-hot D ~ softmax(logits); backward
    ``2 Jbar g - 1/2 J(pi) g`` (plus ``J(pi) s`` for y_soft's gradient s), ``Jbar`` the average of
    ``J(softmax((theta' + G_r)/tau))/tau`` over ``R`` conditional Gumbel draws at
    ``theta' = log((pi + D)/2)``, applied to g without forming a C x C matrix (GR-MCK's fused
    kernel, :func:`reinmax.gumbel_rao`, at theta' with its gradient passed to theta).
    ``R="quadrature"``: two categories only, the R -> infinity limit (no noise).
    Its mean is not ReinMax's (module docstring)."""
    _no_soft_form("reinmax_rao", hard)
    check_generator(generator)
    dim = check_logits(logits, dim)
    tau = check_tau(tau)
    if not (R == "quadrature" or (isinstance(R, int) and not isinstance(R, bool) and R >= 1)):
        raise ValueError(f"R must be a positive integer or 'quadrature'; got R={R!r}")
    theta = logits.movedim(dim, -1)
    if R == "quadrature" and theta.shape[-1] != 2:
        raise ValueError(f"R='quadrature' needs two categories; got {theta.shape[-1]} (use an integer R)")
    pi = torch.softmax(theta, -1)                 # y_soft, and the -1/2 J(pi) g term: one softmax
    with torch.no_grad():
        probs = pi.detach()
        check_softmax_rows(probs, theta)
        index, invalid = draw_index_unchecked(probs, theta, sample, generator)
    D = one_hot(index, theta)
    if R == "quadrature":
        rao = _rao_two_category_quadrature(theta, index, tau)
    elif fused_gumbel_rao_applies(theta, tau):
        # GR-MCK's kernel drawn at p' = (pi + D)/2 = softmax(theta'), its gradient to theta:
        # no log, no second softmax, no pass through gumbel_rao's checks and draws of the index.
        with torch.no_grad():
            p_mid = 0.5 * (probs.to(working_dtype(theta)) + D)
        y_gr = fused_gumbel_rao_at(theta, p_mid, index, tau, R, generator)
        rao = 2.0 * (y_gr - y_gr.detach())
    else:                                         # torch.func transforms, forward mode: unfused
        pivot = _through_identity(rao_pivot(theta, D).to(theta.dtype), theta)
        y_gr, _ = gumbel_rao(pivot, tau, sample=index, generator=generator, K=R)
        rao = 2.0 * (y_gr - y_gr.detach())
    y = D + rao - 0.5 * (pi - pi.detach())
    return mark_invalid(y, invalid).movedim(-1, dim), pi.movedim(-1, dim)


# ------------------------------------------------------------------------ ReinMax-CV
def _check_number(name: str, value, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (positive and value <= 0):
        allowed = "a positive finite number" if positive else "a finite number"
        raise ValueError(f"{name} must be {allowed}; got {name}={value!r}")
    return float(value)


def _cv_setup(logits, tau, hard, dim, sample, generator, eta, tau2, R, exponentials, name,
              draw=True):
    """Checks, the sample, and the R + 1 Exp(1) draws (given, drawn when ``draw``, else None);
    also softmax(theta)."""
    _no_soft_form(name, hard)
    check_generator(generator)
    dim = check_logits(logits, dim)
    tau = check_tau(tau)
    eta = _check_number("eta", eta)
    tau2 = _check_number("tau2", tau2, positive=True)
    theta = logits.movedim(dim, -1)
    if R == "quadrature":
        if theta.shape[-1] != 2:
            raise ValueError(f"R='quadrature' needs two categories; got {theta.shape[-1]} (use an integer R)")
        draws, count = 1, "1"           # the forward's draw only; the average is exact
    else:
        try:
            R = check_positive_int("R", R)
        except ValueError:
            raise ValueError(f"R must be a positive integer or 'quadrature'; got R={R!r}") from None
        draws, count = R + 1, "R + 1"
    with torch.no_grad():
        # once per distinct row (a parameter broadcast over a batch), broadcast back
        probs = torch.softmax(distinct_rows(theta), -1).expand(theta.shape)
        check_softmax_rows(probs, theta)
        index, invalid = draw_index_unchecked(probs, theta, sample, generator)
        if exponentials is None:
            if draw:
                exponentials = exponential((draws,) + tuple(theta.shape), theta, generator)
        else:
            expected = (draws,) + tuple(theta.shape)
            if not isinstance(exponentials, Tensor) or tuple(exponentials.movedim(dim + 1, -1).shape) != expected:
                got = tuple(exponentials.shape) if isinstance(exponentials, Tensor) else type(exponentials).__name__
                raise ValueError(f"exponentials must be Exp(1) draws of shape ({count}, *logits.shape) "
                                 f"= {(draws,) + tuple(logits.shape)}; got {got}")
            exponentials = exponentials.movedim(dim + 1, -1).to(working_dtype(theta))
    return dim, tau, eta, tau2, R, theta, index, invalid, exponentials, probs


def reinmax_cv(logits: Tensor, tau: float = 1.0, hard: bool = True, *, dim: int = -1,
               sample: Optional[Tensor] = None, generator: Optional[torch.Generator] = None,
               eta: float = 0.5, tau2: float = 1.0, R: Union[int, str] = 100,
               exponentials: Optional[Tensor] = None):
    r"""ReinMax-CV, OUR READING (module docstring): ReinMax at ``tau`` minus ``eta`` times a
    control ``[J(q_0) - mean_r J(q_r)] g / tau2`` whose R + 1 Gumbel draws all follow the
    forward's conditional law (Gumbel at theta given argmax = D), evaluated at
    ``theta' = log((pi + D)/2)`` with temperature ``tau2``. Given D the control has mean zero,
    so the estimator has ReinMax's mean exactly. ``exponentials``: the Exp(1) draws behind the
    R + 1 Gumbel vectors, shape ``(R + 1, *logits.shape)``, draw 0 the forward's (tests fix them);
    drawn from ``generator`` otherwise. ``R="quadrature"`` (two categories): the R -> infinity
    limit, the averaged term replaced by its conditional mean given D by quadrature (the control
    still has mean zero given D; only the forward's draw is random: ``exponentials`` of shape
    ``(1, *logits.shape)``)."""
    dim, tau, eta, tau2, R, theta, index, invalid, e, probs = _cv_setup(
        logits, tau, hard, dim, sample, generator, eta, tau2, R, exponentials, "reinmax_cv",
        draw=R == "quadrature" and eta != 0.0)
    y, soft = reinmax(theta, tau, sample=index)
    if eta != 0.0 and R == "quadrature":
        y = y + _cv_two_category_quadrature(theta, index, tau2, eta, e[0])
    elif eta != 0.0 and fused_gumbel_rao_applies(theta, tau2):
        # The control's value is 0; only its backward matters, and GR-MCK's fused kernel gives
        # it from one copy of the R + 1 relaxations. q_k = softmax((theta' + G_k)/tau2) with
        # theta' - theta = log(1/2) off the sample and log((pi_d + 1)/(2 pi_d)) at it, so
        # relative to the sample q_k's weights are GR-MCK's at theta (noise at theta, tau2)
        # times (pi_d / (1 + pi_d))^(1/tau2) off the sample: a tilt of the same draws.
        with torch.no_grad():
            work = working_dtype(theta)
            pi = probs if probs.dtype == work else torch.softmax(theta.detach().to(work), -1)
            at = index.unsqueeze(-1)
            pi_d = pi.gather(-1, at)
            tilt = (pi_d / (1.0 + pi_d)).pow(1.0 / tau2).expand(pi.shape).scatter(-1, at, 1.0)
        y = y + fused_gumbel_control_at(theta, pi, index, tau2, R + 1, generator, -eta,
                                        exponentials=e, tilt=tilt)
    elif eta != 0.0:       # torch.func transforms, forward mode, torch.compile: the definition
        with torch.no_grad():
            if e is None:
                e = exponential((R + 1,) + tuple(theta.shape), theta, generator)
            work = theta.detach().to(e.dtype)
            noise = conditional_gumbels(work, index, e).to(theta.dtype)
        pivot = _through_identity(rao_pivot(theta, one_hot(index, theta)).to(theta.dtype), theta)
        q = torch.softmax((pivot + noise) / tau2, -1)                   # (R + 1, ..., C)
        control = q[0] - q[1:].mean(0)
        y = y - eta * (control - control.detach())
    return mark_invalid(y, invalid).movedim(-1, dim), soft.movedim(-1, dim)


def reinmax_cv_stored_reading(logits: Tensor, tau: float = 1.0, hard: bool = True, *,
                              dim: int = -1, sample: Optional[Tensor] = None,
                              generator: Optional[torch.Generator] = None, eta: float = 0.5,
                              tau2: float = 1.0, R: int = 100):
    r"""ReinMax-CV as the stored code reads (not registered; for measurement): the same single
    term ``J(softmax((theta' + G_0)/tau2))/tau2 g`` with the forward's noise G_0 (Gumbel at theta),
    but the averaged term conditioned at theta' (Gumbel at theta' given argmax(theta' + G) = D,
    GR-MCK at theta'). The two terms then have different means given D, so this version is
    biased relative to ReinMax (``reinmax.theory.beyond.cv_stored_bias`` measures it)."""
    dim, tau, eta, tau2, R, theta, index, invalid, e, _ = _cv_setup(
        logits, tau, hard, dim, sample, generator, eta, tau2, R, None, "reinmax_cv_stored_reading")
    y, soft = reinmax(theta, tau, sample=index)
    with torch.no_grad():
        noise = conditional_gumbels(theta.detach().to(e.dtype), index, e[0]).to(theta.dtype)
    D = one_hot(index, theta)
    pivot = _through_identity(rao_pivot(theta, D).to(theta.dtype), theta)
    single = torch.softmax((pivot + noise) / tau2, -1)
    averaged, _ = gumbel_rao(pivot, tau2, sample=index, generator=generator, K=R)
    y = y - eta * (single - single.detach()) + eta * (averaged - averaged.detach())
    return mark_invalid(y, invalid).movedim(-1, dim), soft.movedim(-1, dim)


# ------------------------------------------------------------------------ the registry
register(EstimatorSpec(
    name="ReinMax-Rao", family="straight-through", function=reinmax_rao, options={"R": 100},
    rules={"R": OptionRule("int", low=1, choices=("quadrature",))},
    draws_noise=True, noise_free_with={"R": "quadrature"},
    description="ReinMax-Rao (Wang & Bui 2026): ReinMax's midpoint term Rao-Blackwellised over "
                "R conditional Gumbel draws at log((pi + D)/2); not ReinMax's mean",
    style=dict(color="#e7969c", linestyle="-.")))
register(EstimatorSpec(
    name="ReinMax-CV", family="straight-through", function=reinmax_cv,
    options={"eta": 0.5, "tau2": 1.0, "R": 100}, draws_noise=True,
    rules={"eta": OptionRule("real"), "tau2": OptionRule("real", low=0, open_low=True),
           "R": OptionRule("int", low=1, choices=("quadrature",))},
    description="ReinMax-CV (Wang & Bui 2026), our reading: ReinMax minus eta times a "
                "Gumbel-softmax control with mean zero given the sample (ReinMax's mean)",
    style=dict(color="#ad494a", linestyle=(0, (3, 1, 1, 1, 1, 1)))))
