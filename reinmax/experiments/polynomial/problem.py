r"""Polynomial programming (Section 6.1, Appendix F.4 and F.6; Figures 1 and 7-10): the config
and the problem.

``L`` independent binary variables, ``X_i ~ Multinomial(softmax(theta_i))`` with ``theta_i`` in
R^2 (``X_i`` is the indicator of category 0), minimise ``E[ ||X - c||_p^p / L ]`` with Adam
(lr 1e-3), ``theta`` initialised Uniform(-0.01, 0.01). Setting A: ``c_i = 0.45``; setting B:
``c_i = (i - 0.5) / L``.

Two losses are recorded per epoch and seed: the **logged loss**, the mean over the epoch's steps of
the minibatch loss (what the authors' script prints), and the **exact expected loss**
``sum_i [sigmoid(a_i) |1 - c_i|^p + sigmoid(-a_i) |c_i|^p] / L`` at the end of the epoch (closed
form: the problem is separable). The optimum is ``mean_i min(c_i^p, (1 - c_i)^p)``.
"""
import dataclasses
from typing import Any, Dict, List, Sequence, Tuple, Union

import torch

import reinmax
from reinmax import paper
from reinmax.experiments import layer

TABLE7_TEMPERATURES: Tuple[float, ...] = paper.table7_temperatures()
"""The temperature grid of the paper's Table 7, over which each method's tau is tuned (read from
the paper's tables, ``reinmax.paper``)."""

FIGURE1_METHODS: Tuple[str, ...] = paper.figure_methods("figure1")
SETTINGS = ("A", "B")
LEARNING_RATE = 1e-3       # the paper fixes it (Appendix F.2); only the temperature is tuned
INIT_RANGE = 0.01          # theta ~ Uniform(-0.01, 0.01)

DEFAULT_METHOD_OPTIONS: Dict[str, Dict[str, Any]] = {"GR-MCK": {"K": "quadrature"}}
"""GR-MCK at the two-category limit K -> inf (see ``reinmax.gumbel_rao``) unless a config says
otherwise; a config's ``method_options`` are merged over these."""

_OWNER = "PolynomialConfig"


def methods() -> List[str]:
    """Every method the experiment can train: the registry's straight-through and score families
    and the binary score family (``reinmax.estimators.bernoulli_score``: DisARM, RODEO, ...; one logit per
    variable, ``theta_i0 - theta_i1``), read now, so that a newly registered estimator is
    trainable without editing this module."""
    return list(layer.method_families()) + binary_score_methods()


def binary_score_methods() -> List[str]:
    """The registry's ``"bernoulli-score"`` family (modules with learned control parts)."""
    return reinmax.estimators.registry.names("bernoulli-score")


def temperature_free(method: str) -> bool:
    """The score families (REINFORCE, RLOO, DisARM, RODEO, ...) have no temperature."""
    return layer.method_families().get(method) == "score" or method in binary_score_methods()


BINARY_CONTROL_LR = 1e-3
"""The learning rate of the Adam that trains a binary score estimator's control parts (RODEO's
network and coefficients, Double CV's alpha, RELAX's), as the baselines train them; a config's
``method_options[name]["control_lr"]`` overrides it."""


@dataclasses.dataclass
class PolynomialConfig:
    """One polynomial-programming run: one ``p``, one problem, several methods and seeds.

    ``taus`` is one temperature for every method or a dict ``{method: tau}`` (methods missing
    from the dict use 1.0; the score family ignores it). ``seeds`` is a list of distinct
    non-negative integers (the paper's 0-9). ``steps`` is the number of steps per epoch.
    ``method_options`` mirrors the estimator registry, ``{method: {option: value}}``, merged
    over ``DEFAULT_METHOD_OPTIONS``: e.g. ``{"GR-MCK": {"K": 1000}}`` (K is ``"quadrature"``,
    the two-category limit, or a number of Monte Carlo draws) or ``{"RLOO": {"num_samples": 4}}``
    (a score estimator with ``num_samples`` splits the batch into groups of that many draws per
    evaluation; without it the whole batch is one group). The binary score family
    (``binary_score_methods()``: DisARM, RODEO, ...) always works in groups of its
    ``num_samples`` (registry default 2; ``batch_size // num_samples`` groups); its options are
    the estimator's, plus ``control_lr`` (the Adam learning rate of its learned control parts,
    default ``BINARY_CONTROL_LR``). Its control parts are one module shared by the seeds, trained
    on their pooled squared estimates: each seed's gradient stays unbiased, but the seeds' runs
    are coupled through it.

    Random numbers: each seed starts from its own ``theta`` (``initial_theta``); the samples of
    all seeds come from one stream per (method, problem, seed list). For ``seeds = [0, ..., n-1]``
    that stream is keyed exactly as it was when ``seeds`` was the count ``n``, so those runs give
    the numbers they always gave; any other list gets a stream of its own, so a seed's samples
    depend on the whole list, not on the seed alone.
    """
    p: float = 2.0
    L: int = 128
    batch_size: int = 256
    setting: str = "A"
    methods: Sequence[str] = FIGURE1_METHODS
    taus: Union[float, Dict[str, float]] = 1.0
    steps: int = 200
    epochs: int = 40
    seeds: Sequence[int] = tuple(range(10))
    device: str = "auto"
    method_options: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        trainable = methods()
        self.p = layer.positive_number(_OWNER, "p", self.p)
        self.L = layer.positive_int(_OWNER, "L", self.L)
        self.batch_size = layer.positive_int(_OWNER, "batch_size", self.batch_size)
        if self.setting not in SETTINGS:
            layer.fail(_OWNER, "setting", self.setting, "'A' (c_i = 0.45) or 'B' (c_i = (i - 0.5) / L)")
        self.methods = layer.names(_OWNER, "methods", self.methods, trainable)
        if isinstance(self.taus, dict):
            for method, tau in self.taus.items():
                if method not in trainable:
                    layer.fail(_OWNER, "taus", self.taus, f"a number or a dict keyed by method "
                               f"names from {trainable} ({method!r} is not one)")
                layer.positive_number(_OWNER, f"taus[{method!r}]", tau)
            self.taus = {method: float(tau) for method, tau in self.taus.items()}
        else:
            self.taus = layer.positive_number(_OWNER, "taus", self.taus)
        self.steps = layer.positive_int(_OWNER, "steps", self.steps)
        self.epochs = layer.positive_int(_OWNER, "epochs", self.epochs)
        self.seeds = layer.seeds(_OWNER, self.seeds)
        self.device = layer.check_device(_OWNER, self.device)
        if not isinstance(self.method_options, dict):
            layer.fail(_OWNER, "method_options", self.method_options,
                       "a dict {method: {option: value}}, e.g. {'GR-MCK': {'K': 1000}}")
        binary = {m: o for m, o in self.method_options.items() if m in binary_score_methods()}
        self.method_options = layer.method_options(
            _OWNER, {m: o for m, o in self.method_options.items() if m not in binary},
            DEFAULT_METHOD_OPTIONS)
        for method, options in binary.items():
            self.method_options[method] = _binary_options(method, options)
        for method in self.methods:
            if method in binary_score_methods():
                group = self.binary_num_samples(method)
                if group > self.batch_size:
                    layer.fail(_OWNER, "batch_size", self.batch_size,
                               f"at least {method}'s num_samples={group}")
        for method in self.method_options:
            if method in binary_score_methods():
                continue
            group = self.num_samples(method)
            if temperature_free(method) and group is not None and (
                    group < 2 or self.batch_size % group):
                layer.fail(_OWNER, f"method_options[{method!r}]['num_samples']", group,
                           f"an integer >= 2 that divides batch_size={self.batch_size}")
        if "RLOO" in self.methods and self.batch_size < 2:
            layer.fail(_OWNER, "batch_size", self.batch_size, "at least 2 when RLOO is trained")

    def tau(self, method: str) -> float:
        """The temperature this run uses for ``method``."""
        if isinstance(self.taus, dict):
            return self.taus.get(method, 1.0)
        return self.taus

    def num_samples(self, method: str):
        """A score estimator's draws per evaluation (None: the whole batch)."""
        return self.method_options.get(method, {}).get("num_samples")

    def binary_num_samples(self, method: str) -> int:
        """A binary score estimator's samples per group (its option, or the registry default)."""
        spec = reinmax.estimators.registry.get_spec(method, "bernoulli-score")
        return int(self.method_options.get(method, {}).get("num_samples",
                                                            spec.options["num_samples"]))

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """The hash of what decides this run's numbers: every field but the device."""
        return layer.fingerprint({k: v for k, v in self.as_dict().items() if k != "device"})


def _binary_options(method: str, options: Any) -> Dict[str, Any]:
    """A binary score method's options, checked by building the estimator once."""
    from reinmax.estimators.bernoulli_score import build_binary_score_estimator
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        layer.fail(_OWNER, f"method_options[{method!r}]", options, "a dict {option: value}")
    options = dict(options)
    lr = options.get("control_lr", BINARY_CONTROL_LR)
    layer.positive_number(_OWNER, f"method_options[{method!r}]['control_lr']", lr)
    try:
        build_binary_score_estimator(method, **{k: v for k, v in options.items() if k != "control_lr"})
    except (TypeError, ValueError) as error:
        layer.fail(_OWNER, f"method_options[{method!r}]", options,
                   f"options that {method} accepts ({error})")
    return options


# ------------------------------------------------------------------------ the problem
def target(config: PolynomialConfig) -> torch.Tensor:
    """The vector c of the setting (float64)."""
    if config.setting == "A":
        return torch.full((config.L,), 0.45, dtype=torch.float64)
    return (torch.arange(1, config.L + 1, dtype=torch.float64) - 0.5) / config.L


def optimum(config: PolynomialConfig) -> float:
    """The smallest expected loss: every X_i set to whichever of 0, 1 is nearer to c_i."""
    c = target(config)
    return torch.minimum(c ** config.p, (1 - c) ** config.p).mean().item()


class _PowerLoss(torch.autograd.Function):
    """``mean_i |D_i0 - c_i|^p`` with its derivative ``p |x - c|^(p-1) sign(x - c)`` written as
    ``p v / (x - c)``: one power instead of autograd's two (the power dominates the step).

    Takes the whole ``D`` and returns its gradient in ``D``'s memory layout (zero for category
    1), instead of autograd's select and mean backward, which would build a tensor of zeros
    shaped like ``D`` in the default layout and copy the gradient into it."""

    @staticmethod
    def forward(ctx, D, c, p):
        difference = D[..., 0] - c
        value = difference.abs().pow_(p)          # in place: fresh tensors cost page faults
        ctx.p = p
        ctx.save_for_backward(D, difference, value)
        return value.mean(-1)

    @staticmethod
    def backward(ctx, grad):
        D, difference, value = ctx.saved_tensors
        grad_D = torch.empty_like(D)              # D's layout (empty_like keeps its strides)
        slope = torch.div(value, difference, out=grad_D[..., 0]).mul_(ctx.p)
        if ctx.p >= 1:       # at x = c, 0 / 0: the derivative is 0 for p > 1 (autograd's sign(0) = 0 at p = 1)
            slope.nan_to_num_(nan=0.0)
        slope.mul_(grad.unsqueeze(-1) / D.shape[-2])     # the mean's gradient, as autograd forms it
        grad_D[..., 1].zero_()
        return grad_D, None, None


def polynomial_loss(x: torch.Tensor, c: torch.Tensor, p: float) -> torch.Tensor:
    """``f(D) = sum_i |D_i0 - c_i|^p / L`` for one-hot ``D`` of shape ``(..., L, 2)``.

    Written as the function itself (not a table of its two values at 0 and 1), so that its
    gradient at the sample, the ``df/dD`` every straight-through estimator uses, is the true
    derivative (tests hold it equal to autograd's of ``(x - c).abs().pow(p)``).
    """
    return _PowerLoss.apply(x, c, p)


def exact_loss(theta: torch.Tensor, c: torch.Tensor, p: float) -> torch.Tensor:
    """E[f(X)] in closed form for ``theta`` of shape ``(..., L, 2)``: one value per leading index."""
    theta = theta.detach().to(torch.float64)
    c = c.to(theta.device)
    first = torch.sigmoid(theta[..., 0] - theta[..., 1])
    return (first * (1 - c).abs() ** p + (1 - first) * c.abs() ** p).mean(-1)


def initial_theta(seeds: Union[int, Sequence[int]], L: int, dtype=torch.float32) -> torch.Tensor:
    """theta for each seed (a list, or a count n for seeds 0..n-1), each from its own generator:
    the same seed, the same start."""
    rows = []
    for seed in (range(seeds) if isinstance(seeds, int) else seeds):
        generator = torch.Generator().manual_seed(seed)
        rows.append(torch.empty(L, 2, dtype=dtype).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator))
    return torch.stack(rows)
