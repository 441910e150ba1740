r"""Exact mathematics by enumeration: the true gradient, the paper's targets, exact expectations.

Everything here is for a function ``f`` of one or several independent categorical variables,
small enough that every configuration can be listed. ``logits`` has shape ``(n,)`` (one
variable) or ``(m, n)`` (``m`` independent variables with ``n`` categories each). ``f`` takes a
batch of one-hot configurations of shape ``(B, *logits.shape)`` and returns ``B`` values; it must
be differentiable in its input (the estimators need :math:`\partial f / \partial D`).

For several variables every target is the one-variable definition applied to variable ``v``
with the others held at their sampled values, averaged over those values: exactly what the
expectation of the corresponding estimator gives, and the one-variable formula when ``m = 1``.
With ``c`` a configuration, ``c[v <- i]`` the same with variable ``v`` set to ``i``,
``g_v(c) = df/dD_v`` at ``c``, and ``J_v^T a = pi_v * (a - <pi_v, a>)``:

* true gradient (eq. 2/6):  sum_c p(c) J_v^T [ f(c[v<-i]) - f(c) ]_i
* first order (Def. 3.1):    sum_c p(c) w(c_v) J_v^T [ g_v(c)[i] - g_v(c)[c_v] ]_i
* second order (Def. 3.2):   sum_c p(c) w(c_v) J_v^T [ 1/2 (g_v(c) + g_v(c[v<-i])) . (I_i - I_{c_v}) ]_i

with the baseline weight ``w(j) = phi_j / pi_j`` (Remark 4.1; ``w = 1`` for the E[f(D)]
baseline the paper uses). Remark 4.2's baseline-free form is computed from its own formula.
"""
import inspect
import itertools
from typing import Callable, Optional, Union

import torch

from reinmax.estimators import registry
from reinmax.estimators.checks import check_positive_int

MAX_CONFIGURATIONS = 2 ** 20

Tensor = torch.Tensor


def _as_matrix(logits: Tensor) -> Tensor:
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = logits.dtype if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise TypeError(f"logits must be a floating-point torch.Tensor; got {got}")
    if logits.dim() not in (1, 2) or logits.shape[-1] == 0:
        raise ValueError(f"logits must have shape (n,) or (m, n) with n >= 1; got {tuple(logits.shape)}")
    if not torch.isfinite(logits).all():
        raise ValueError(f"exact computations need finite logits; got {logits.detach()}")
    return logits.detach().reshape(-1, logits.shape[-1])


def configurations(m: int, n: int, max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """All ``n ** m`` configurations as category indices, shape ``(n ** m, m)``, in mixed-radix
    order (variable 0 most significant)."""
    count = n ** m
    if count > max_configurations:
        raise ValueError(
            f"enumerating {n}^{m} = {count} configurations exceeds max_configurations="
            f"{max_configurations}; use fewer variables or categories, or raise the cap")
    return torch.tensor(list(itertools.product(range(n), repeat=m)), dtype=torch.long).reshape(count, m)


def _one_hot(index: Tensor, n: int, dtype) -> Tensor:
    return torch.nn.functional.one_hot(index, n).to(dtype)


class _Enumeration:
    """Configurations, their probabilities, f and df/dD at each of them."""

    def __init__(self, f: Callable, logits: Tensor, max_configurations: int):
        self.shape = logits.shape
        theta = _as_matrix(logits)
        self.m, self.n = theta.shape
        self.probs = torch.softmax(theta, -1)                               # (m, n)
        self.index = configurations(self.m, self.n, max_configurations).to(theta.device)
        self.weight = self.probs.gather(1, self.index.T).T.prod(-1)          # p(c), (N,)
        onehot = _one_hot(self.index, self.n, theta.dtype).requires_grad_(True)
        values = f(onehot.reshape((-1,) + tuple(self.shape)))
        if not isinstance(values, torch.Tensor):
            raise TypeError(f"f must return a tensor of {len(self.index)} values; got "
                            f"{type(values).__name__}")
        if values.shape != (len(self.index),):
            raise ValueError(f"f must return one value per configuration, shape ({len(self.index)},); "
                             f"got {tuple(values.shape)}")
        (grads,) = torch.autograd.grad(values.sum(), onehot, allow_unused=True)
        self.values = values.detach()                                        # (N,)
        self.grads = (torch.zeros_like(onehot) if grads is None else grads).detach()  # (N, m, n)
        self.strides = self.n ** torch.arange(self.m - 1, -1, -1, device=theta.device)

    def switched(self) -> Tensor:
        """Index of c[v <- i] for every configuration c, variable v and category i: (N, m, n)."""
        base = (self.index * self.strides).sum(-1)                            # (N,)
        cats = torch.arange(self.n, device=base.device)
        return (base[:, None, None]
                + (cats[None, None, :] - self.index[:, :, None]) * self.strides[None, :, None])

    def own(self, tensor: Tensor) -> Tensor:
        """tensor[c, v, c_v]: each configuration's own category entry, shape (N, m, 1)."""
        return tensor.gather(2, self.index[:, :, None])

    def vjp(self, a: Tensor) -> Tensor:
        """J_v^T a per configuration: pi_v * (a - <pi_v, a>), shape (N, m, n)."""
        p = self.probs[None]
        return p * (a - (p * a).sum(-1, keepdim=True))

    def average(self, per_config: Tensor, baseline_weight: Optional[Tensor] = None) -> Tensor:
        w = self.weight[:, None, None]
        if baseline_weight is not None:
            w = w * baseline_weight
        return (w * per_config).sum(0).reshape(self.shape)

    def baseline_weight(self, phi) -> Optional[Tensor]:
        """phi_{c_v} / pi_{c_v} per configuration and variable, shape (N, m, 1)."""
        if phi is None:
            return None
        if isinstance(phi, str):
            if phi != "uniform":
                raise ValueError(f"baseline must be None (E[f(D)]), 'uniform' or a tensor; got {phi!r}")
            phi = torch.full((self.m, self.n), 1.0 / self.n, dtype=self.probs.dtype)
        given = phi
        phi = torch.as_tensor(phi, dtype=self.probs.dtype, device=self.probs.device)
        # One distribution for all variables, (n,), or one per variable, (m, n).
        if phi.shape not in ((self.n,), (self.m, self.n)) or phi.numel() == 0:
            raise ValueError(f"baseline phi must have {self.n} entries per variable, shape "
                             f"({self.n},) or ({self.m}, {self.n}); got shape {tuple(phi.shape)}")
        phi = phi.reshape(-1, self.n).expand(self.m, self.n)
        if not torch.isfinite(phi).all() or (phi < 0).any():
            raise ValueError(f"baseline phi must be a distribution (non-negative, summing to 1); "
                             f"got {given!r}")
        totals = phi.sum(-1)
        if not torch.allclose(totals, torch.ones_like(totals)):
            sums = ", ".join(f"{total:.6g}" for total in totals.tolist())
            raise ValueError(f"baseline phi must be a distribution over the {self.n} categories "
                             f"of each variable; it sums to {sums}")
        return (phi / self.probs)[None].expand(len(self.index), -1, -1).gather(2, self.index[:, :, None])


def exact_gradient(f: Callable, logits: Tensor, *, max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """The true gradient of E[f(D)] with respect to ``logits`` (eq. 2), by enumeration."""
    e = _Enumeration(f, logits, max_configurations)
    diffs = e.values[e.switched()] - e.values[:, None, None]                 # f(c[v<-i]) - f(c)
    return e.average(e.vjp(diffs))


def expected_loss(f: Callable, logits: Tensor, *, max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """E[f(D)] by enumeration."""
    e = _Enumeration(f, logits, max_configurations)
    return (e.weight * e.values).sum()


def first_order_target(f: Callable, logits: Tensor, *, baseline=None,
                       max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """Definition 3.1 (forward Euler on eq. 6); ``baseline=phi`` gives Remark 4.1's variant
    (``'uniform'`` for phi = 1/n, or a tensor of probabilities)."""
    e = _Enumeration(f, logits, max_configurations)
    a = e.grads - e.own(e.grads)                                              # g(c).(I_i - I_{c_v})
    return e.average(e.vjp(a), e.baseline_weight(baseline))


def _heun_differences(e: "_Enumeration") -> Tensor:
    """1/2 (g_v(c) + g_v(c[v<-i])) . (I_i - I_{c_v}) for every c, v, i: shape (N, m, n)."""
    g = e.grads
    switched = e.switched()
    v = torch.arange(e.m, device=g.device)[None, :, None].expand_as(switched)
    i = torch.arange(e.n, device=g.device)[None, None, :].expand_as(switched)
    own = e.index[:, :, None].expand_as(switched)
    here = g - e.own(g)                                                       # g(c) . (I_i - I_{c_v})
    there = g[switched, v, i] - g[switched, v, own]                          # g(c[v<-i]) . (I_i - I_{c_v})
    return 0.5 * (here + there)


def second_order_target(f: Callable, logits: Tensor, *, baseline=None,
                        max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """Definition 3.2 (Heun's method on eq. 6); ``baseline=phi`` as in :func:`first_order_target`."""
    e = _Enumeration(f, logits, max_configurations)
    return e.average(e.vjp(_heun_differences(e)), e.baseline_weight(baseline))


def second_order_target_without_baseline(f: Callable, logits: Tensor, *,
                                         max_configurations: int = MAX_CONFIGURATIONS) -> Tensor:
    """Remark 4.2: Heun's rule applied to eq. 8, grad_k = pi_k sum_i pi_i (f(I_k) - f(I_i)),
    with no baseline subtraction: pi_k sum_i pi_i 1/2 (g_i + g_k) . (I_k - I_i).

    Here i is the sampled category c_v (its probability is inside p(c)) and k the component;
    unlike :func:`second_order_target` no centring <pi, .> is subtracted.
    """
    e = _Enumeration(f, logits, max_configurations)
    return e.average(e.probs[None] * _heun_differences(e))


def _accepts(function: Callable, name: str) -> bool:
    """Whether ``function`` takes a keyword argument ``name`` (or any keyword)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):         # no signature to read (some builtins)
        return False
    return any(p.name == name or p.kind == p.VAR_KEYWORD for p in parameters)


_NOISE_HELP = ("its estimate given a sample is random, so enumerating the samples does not give "
               "its distribution or its expectation; use reinmax.theory.exact.monte_carlo_estimate")


def _refuse_noise(estimator: Callable, draws_noise: Optional[bool], options):
    """Raise for an estimator that draws noise beyond the sample; return whether the estimates
    still have to be checked empirically (an unregistered estimator nobody vouched for)."""
    if draws_noise is not None and not isinstance(draws_noise, bool):
        raise TypeError(f"draws_noise must be True, False or None; got draws_noise={draws_noise!r}")
    spec = registry.spec_of(estimator)
    if spec is not None:
        noisy = spec.draws_noise_with(dict(registry.bound_options(estimator), **options))
        if draws_noise is not None and draws_noise != noisy:
            raise ValueError(f"{spec.name} is registered as drawing {'' if noisy else 'no '}noise "
                             f"beyond the sample with these options (draws_noise={noisy}); got "
                             f"draws_noise={draws_noise} (the registry's metadata decides for a "
                             f"registered estimator)")
        if noisy:
            free = "".join(f", except with {key}={value!r}"
                           for key, value in spec.noise_free_with.items())
            raise ValueError(f"{spec.name} draws noise beyond the sample (the registry says "
                             f"draws_noise=True{free}): {_NOISE_HELP}")
        return False
    if draws_noise:
        raise ValueError(f"the estimator draws noise beyond the sample (draws_noise=True): {_NOISE_HELP}")
    return draws_noise is None


def _estimates_given(estimator, f, theta, shape, index, tau, seed, options) -> Tensor:
    """Each configuration's estimate, with the global random stream (and ``generator=``, when
    the estimator takes one and the caller gave none) seeded with ``seed``; the caller's global
    random state is restored afterwards."""
    m, n = theta.shape
    device = theta.device
    rows = theta[None].expand(len(index), m, n).clone().requires_grad_(True)
    kwargs = dict(options)
    if "generator" not in kwargs and _accepts(estimator, "generator"):
        kwargs["generator"] = torch.Generator(device=device).manual_seed(seed)
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        y_hard, _ = estimator(rows, tau, sample=index, **kwargs)
    values = f(y_hard.reshape((-1,) + tuple(shape)))
    # Rows are independent copies of theta, so each row's gradient is that configuration's estimate.
    (grad,) = torch.autograd.grad(values.sum(), rows)
    return grad.reshape((-1,) + tuple(shape))


def per_sample_estimates(estimator: Callable, f: Callable, logits: Tensor, tau: float = 1.0, *,
                         max_configurations: int = MAX_CONFIGURATIONS,
                         draws_noise: Optional[bool] = None, **options):
    """Every configuration's probability and the estimate the estimator returns for it.

    Calls the public ``estimator(logits, tau, sample=c, **options)`` once for all configurations
    ``c`` (one row each). Returns ``(probability, estimate)`` of shapes ``(N,)`` and
    ``(N, *logits.shape)``, with ``N = n ** m`` configurations of ``m`` variables with ``n``
    categories.

    Meaningful only for estimators that draw no noise beyond the sample, whose estimate is a
    function of the sample; any other is a ValueError pointing to :func:`monte_carlo_estimate`.
    A registered estimator (the registry's function, what ``get_estimator`` returns, a
    ``functools.partial`` of it, an object a factory entry built) is judged by its registry
    metadata (``draws_noise``). For your own function, pass ``draws_noise=False`` to vouch that
    it draws none; by default (``None``) the estimates are computed twice, from two different
    random streams (the global one and, if the function takes it, ``generator=``), and must agree.
    """
    check_empirically = _refuse_noise(estimator, draws_noise, options)
    shape = logits.shape
    theta = _as_matrix(logits)
    m, n = theta.shape
    index = configurations(m, n, max_configurations).to(theta.device)
    probability = torch.softmax(theta, -1).gather(1, index.T).T.prod(-1)
    estimates = _estimates_given(estimator, f, theta, shape, index, tau, 1, options)
    if check_empirically:
        again = _estimates_given(estimator, f, theta, shape, index, tau, 2, options)
        tolerance = 1e3 * torch.finfo(estimates.dtype).eps
        scale = max(1.0, float(estimates.abs().nan_to_num(0.0, 0.0, 0.0).max())) if estimates.numel() else 1.0
        if not torch.allclose(estimates, again, rtol=tolerance, atol=tolerance * scale, equal_nan=True):
            name = getattr(estimator, "__name__", type(estimator).__name__)
            raise ValueError(f"the estimator {name} gave different estimates for the same samples "
                             f"from two different random streams, so it draws noise beyond the "
                             f"sample: {_NOISE_HELP} (or pass draws_noise=False if the difference is "
                             f"rounding, e.g. nondeterministic GPU reductions)")
    return probability, estimates


def expected_estimate(estimator: Callable, f: Callable, logits: Tensor, tau: float = 1.0, *,
                      max_configurations: int = MAX_CONFIGURATIONS,
                      draws_noise: Optional[bool] = None, **options) -> Tensor:
    """The exact expectation of an estimator that draws no noise beyond the sample: every
    configuration's estimate (:func:`per_sample_estimates`) weighted by its probability.

    Valid for ST, ReinMax and its baseline variants, and GST; estimators with continuous noise
    (STGS, GR-MCK) are refused: use :func:`monte_carlo_estimate`. ``draws_noise``: as in
    :func:`per_sample_estimates` (``False`` vouches for your own function and skips the check).
    """
    probability, estimates = per_sample_estimates(estimator, f, logits, tau,
                                                  max_configurations=max_configurations,
                                                  draws_noise=draws_noise, **options)
    return torch.tensordot(probability, estimates, dims=1)


def monte_carlo_estimate(estimator: Callable, f: Callable, logits: Tensor, tau: float = 1.0, *,
                         samples: int = 10000, generator: Optional[torch.Generator] = None,
                         **options):
    """Mean and standard error of an estimator over ``samples`` independent draws.

    Returns ``(mean, standard_error)``, each shaped like ``logits``.
    """
    samples = check_positive_int("samples", samples)
    e_shape = logits.shape
    theta = _as_matrix(logits)
    rows = theta[None].expand(samples, *theta.shape).clone().requires_grad_(True)
    y_hard, _ = estimator(rows, tau, generator=generator, **options)
    values = f(y_hard.reshape((-1,) + tuple(e_shape)))
    (grad,) = torch.autograd.grad(values.sum(), rows)
    mean = grad.mean(0)
    stderr = grad.std(0) / samples ** 0.5
    return mean.reshape(e_shape), stderr.reshape(e_shape)


def random_smooth_f(shape, generator: Optional[torch.Generator] = None) -> Callable:
    """A random smooth test function of independent categorical variables laid out as ``shape``
    (``(n,)`` or ``(m, n)``): f(D) = sum_v b_v . tanh(A_v D_v) + (c . D)^2 / 2 per variable v,
    summed over variables; one value per row of a batch ``D`` of shape ``(B, *shape)``.
    Its second and third derivatives do not vanish, so no approximation order is exact on it."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    n = shape[-1]
    A = torch.randn(shape[:-1] + (n, n), generator=generator, dtype=torch.float64)
    b = torch.randn(shape, generator=generator, dtype=torch.float64)
    c = torch.randn(shape, generator=generator, dtype=torch.float64)

    def f(D):
        hidden = torch.tanh((A * D.unsqueeze(-2)).sum(-1))       # A_v D_v for every variable v
        total = (b * hidden).sum(-1) + 0.5 * ((c * D).sum(-1)) ** 2
        return total.reshape(D.shape[0], -1).sum(-1)
    return f


def random_problem(shape, generator: Optional[torch.Generator] = None):
    """Random float64 logits (scale 1.5) of ``shape`` and a :func:`random_smooth_f` on them."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    logits = 1.5 * torch.randn(shape, generator=generator, dtype=torch.float64)
    return logits, random_smooth_f(shape, generator)
