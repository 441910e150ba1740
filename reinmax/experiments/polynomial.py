r"""Polynomial programming (Section 6.1, Appendix F.4 and F.6; Figures 1 and 7-10).

``L`` independent binary variables, ``X_i ~ Multinomial(softmax(theta_i))`` with ``theta_i`` in
R^2 (``X_i`` is the indicator of category 0), minimise ``E[ ||X - c||_p^p / L ]`` with Adam
(lr 1e-3), ``theta`` initialised Uniform(-0.01, 0.01). Setting A: ``c_i = 0.45``; setting B:
``c_i = (i - 0.5) / L``.

All seeds of a method are trained as one tensor program: ``theta`` has shape ``(seeds, L, 2)``,
the Adam state the same, and one step draws ``(seeds, batch, L, 2)`` one-hot samples through the
public estimator (``reinmax.get_estimator``), called with the categories at dim 1 so that a
two-category estimator lays the samples out as two contiguous planes (see ``reinmax._binary``):
the batched program then streams through contiguous memory in every pass. The seeds are independent problems: each one's
loss enters the summed objective once, and Adam is elementwise, so every seed follows exactly the
updates a separate run would make (given the same random numbers).

Two losses are recorded per epoch and seed: the **logged loss**, the mean over the epoch's steps of
the minibatch loss (what the authors' script prints), and the **exact expected loss**
``sum_i [sigmoid(a_i) |1 - c_i|^p + sigmoid(-a_i) |c_i|^p] / L`` at the end of the epoch (closed
form: the problem is separable). The optimum is ``mean_i min(c_i^p, (1 - c_i)^p)``.
"""
import dataclasses
import json
import math
import os
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

import reinmax
from reinmax import results as _results
from reinmax.experiments import progress_bar

TABLE7_TEMPERATURES: Tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)
"""The temperature grid of the paper's Table 7, over which each method's tau is tuned."""

FIGURE1_METHODS: Tuple[str, ...] = ("ReinMax", "STGS", "GR-MCK", "ST", "GST-1.0")
SETTINGS = ("A", "B")
DEVICES = ("auto", "cpu", "cuda")
LEARNING_RATE = 1e-3       # the paper fixes it (Appendix F.2); only the temperature is tuned
INIT_RANGE = 0.01          # theta ~ Uniform(-0.01, 0.01)


# ------------------------------------------------------------------------ the methods
# A method turns (logits of shape (seeds, batch, L, 2), f, tau, generator, config) into
# (surrogate, values): the per-sample tensor whose gradient is the estimator, and f's values
# (what is logged). New estimators (DisARM, RODEO) join by adding an entry here.
MethodFunction = Callable[..., Tuple[torch.Tensor, torch.Tensor]]


def _straight_through(name: str) -> MethodFunction:
    def method(logits, f, tau, generator, config):
        options = {"K": config.gr_mck_samples} if name == "GR-MCK" else {}
        # The categories go to dim 1, (seeds, 2, batch, L): a two-category estimator then lays
        # its one-hot out as two contiguous planes (reinmax._binary), so that the loss and every
        # backward pass read and write contiguous memory. Same random numbers, same samples.
        y_hard, _ = reinmax.get_estimator(name, **options)(logits.movedim(-1, 1), tau, dim=1,
                                                            generator=generator)
        values = f(y_hard.movedim(1, -1))
        return values, values
    method.__name__ = name
    return method


def _reinforce(logits, f, tau, generator, config):
    # The authors' script uses no baseline; tau has no role in REINFORCE.
    return reinmax.reinforce(logits, f, generator=generator)


def _rloo(logits, f, tau, generator, config):
    # The batch is split into groups of `rloo_group` draws (default: the whole batch is one
    # group); each draw's baseline is the mean of f over the other draws of its group.
    seeds, batch, L, n = logits.shape
    group = config.rloo_group or batch
    grouped = logits.narrow(1, 0, batch // group)   # rows are copies of theta: keep batch/group
    surrogate, values = reinmax.rloo(grouped, f, num_samples=group, generator=generator)
    return surrogate.movedim(0, 2), values.movedim(0, 2)   # (group, seeds, groups) -> (seeds, groups, group)


METHODS = reinmax.registry.MethodTable(_straight_through, "straight-through")
METHODS.update({"REINFORCE": _reinforce, "RLOO": _rloo})
"""Every method the experiment can train, by the names the paper prints."""

TEMPERATURE_FREE = ("REINFORCE", "RLOO")


# ------------------------------------------------------------------------ the config
def _fail(name: str, value: Any, allowed: str) -> None:
    raise ValueError(f"PolynomialConfig: {name} must be {allowed}; got {name}={value!r}")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(name, value, "an integer >= 1")


def _temperature(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        _fail(name, value, "a number in (0, inf)")
    return float(value)


@dataclasses.dataclass
class PolynomialConfig:
    """One polynomial-programming run: one ``p``, one problem, several methods and seeds.

    ``taus`` is one temperature for every method or a dict ``{method: tau}`` (methods missing
    from the dict use 1.0; REINFORCE and RLOO ignore it). ``seeds`` is a count: seeds 0, 1, ...,
    seeds - 1 (the paper's 0-9 for 10). ``steps`` is the number of steps per epoch.
    ``gr_mck_samples`` is GR-MCK's ``K``: ``"quadrature"`` (the two-category limit K -> inf,
    see ``reinmax.gumbel_rao``) or an integer number of Monte Carlo draws.
    ``rloo_group`` is RLOO's number of draws per group (None: the whole batch is one group).
    """
    p: float = 2.0
    L: int = 128
    batch_size: int = 256
    setting: str = "A"
    methods: Sequence[str] = FIGURE1_METHODS
    taus: Union[float, Dict[str, float]] = 1.0
    steps: int = 200
    epochs: int = 40
    seeds: int = 10
    device: str = "auto"
    gr_mck_samples: Union[int, str] = "quadrature"
    rloo_group: Optional[int] = None

    def __post_init__(self):
        if isinstance(self.p, bool) or not isinstance(self.p, (int, float)) or not (0 < self.p < math.inf):
            _fail("p", self.p, "a number > 0")
        self.p = float(self.p)
        _positive_int("L", self.L)
        _positive_int("batch_size", self.batch_size)
        if self.setting not in SETTINGS:
            _fail("setting", self.setting, "'A' (c_i = 0.45) or 'B' (c_i = (i - 0.5) / L)")
        if isinstance(self.methods, str):
            self.methods = [self.methods]
        if not isinstance(self.methods, (list, tuple)) or not self.methods:
            _fail("methods", self.methods, f"a non-empty list of names from {list(METHODS)}")
        for method in self.methods:
            if method not in METHODS:
                _fail("methods", self.methods, f"a list of names from {list(METHODS)} "
                      f"({method!r} is not one)")
        if len(set(self.methods)) != len(self.methods):
            _fail("methods", self.methods, "a list without repeated names")
        self.methods = list(self.methods)
        if isinstance(self.taus, dict):
            for method, tau in self.taus.items():
                if method not in METHODS:
                    _fail("taus", self.taus, f"a number or a dict keyed by method names from "
                          f"{list(METHODS)} ({method!r} is not one)")
                _temperature(f"taus[{method!r}]", tau)
            self.taus = {method: float(tau) for method, tau in self.taus.items()}
        else:
            self.taus = _temperature("taus", self.taus)
        for name in ("steps", "epochs", "seeds"):
            _positive_int(name, getattr(self, name))
        if self.device not in DEVICES:
            _fail("device", self.device, f"one of {list(DEVICES)}")
        if self.device == "cuda" and not torch.cuda.is_available():
            _fail("device", self.device, "'auto' or 'cpu' on a machine without CUDA")
        if not (self.gr_mck_samples == "quadrature" or (
                isinstance(self.gr_mck_samples, int) and not isinstance(self.gr_mck_samples, bool)
                and self.gr_mck_samples >= 1)):
            _fail("gr_mck_samples", self.gr_mck_samples, "'quadrature' or an integer >= 1")
        if self.rloo_group is not None:
            _positive_int("rloo_group", self.rloo_group)
            if self.rloo_group < 2 or self.batch_size % self.rloo_group:
                _fail("rloo_group", self.rloo_group,
                      f"None or an integer >= 2 that divides batch_size={self.batch_size}")
        elif "RLOO" in self.methods and self.batch_size < 2:
            _fail("batch_size", self.batch_size, "at least 2 when RLOO is trained")

    def tau(self, method: str) -> float:
        """The temperature this run uses for ``method``."""
        if isinstance(self.taus, dict):
            return self.taus.get(method, 1.0)
        return self.taus

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


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


def initial_theta(seeds: int, L: int, dtype=torch.float32) -> torch.Tensor:
    """theta for seeds 0..seeds-1, each from its own generator: the same seed, the same start."""
    rows = []
    for seed in range(seeds):
        generator = torch.Generator().manual_seed(seed)
        rows.append(torch.empty(L, 2, dtype=dtype).uniform_(-INIT_RANGE, INIT_RANGE, generator=generator))
    return torch.stack(rows)


class BatchedAdam:
    """Adam (PyTorch's defaults: betas 0.9, 0.999, eps 1e-8, no weight decay) on a tensor whose
    leading dimension holds independent seeds. Adam is elementwise, so this is exactly one
    optimizer per seed; written out so that its state is plain tensors to checkpoint. The update
    follows ``torch.optim.Adam``'s single-tensor code line by line (tests hold them equal)."""

    def __init__(self, param: torch.Tensor, lr: float = LEARNING_RATE, betas=(0.9, 0.999),
                 eps: float = 1e-8):
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self.step_count = 0

    @torch.no_grad()
    def step(self) -> None:
        grad = self.param.grad
        beta1, beta2 = self.betas
        self.step_count += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** self.step_count
        bias_correction2 = 1 - beta2 ** self.step_count
        step_size = self.lr / bias_correction1
        denom = (self.exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(self.eps)
        self.param.addcdiv_(self.exp_avg, denom, value=-step_size)

    def state(self) -> Dict[str, Any]:
        return {"exp_avg": self.exp_avg.clone(), "exp_avg_sq": self.exp_avg_sq.clone(),
                "step_count": self.step_count}

    def load(self, state: Dict[str, Any]) -> None:
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
        self.step_count = int(state["step_count"])


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _generator_seed(config: PolynomialConfig, method: str) -> int:
    """One sampling stream per (method, problem, seeds): a stable hash, not Python's salted hash()."""
    key = f"polynomial|{method}|p={config.p}|L={config.L}|setting={config.setting}|seeds={config.seeds}"
    return zlib.crc32(key.encode())


class Interrupted(RuntimeError):
    """Raised by ``run(..., stop_after_steps=N)``: a stand-in for a killed job, for tests."""


# ------------------------------------------------------------------------ training
def train_method(config: PolynomialConfig, method: str, *, state: Optional[Dict[str, Any]] = None,
                 checkpoint: Optional[Callable[[Dict[str, Any]], None]] = None,
                 checkpoint_every: int = 5, progress: bool = True,
                 stop_after_steps: Optional[int] = None) -> Dict[str, Any]:
    """Train every seed of one method; returns its metrics (and its state, while unfinished).

    ``state`` resumes a run from a checkpointed state; ``checkpoint(state)`` is called every
    ``checkpoint_every`` epochs with everything needed to resume exactly (theta, Adam's state,
    the random generator's state, the metrics so far).
    """
    device = resolve_device(config.device)
    tau = config.tau(method)
    step_function = METHODS[method]
    c = target(config).to(device=device, dtype=torch.float32)
    p = config.p
    f = lambda one_hot: polynomial_loss(one_hot, c, p)      # noqa: E731 - one line reads best

    generator = torch.Generator(device=device)
    theta = initial_theta(config.seeds, config.L).to(device).requires_grad_(True)
    adam = BatchedAdam(theta)
    if state is None:
        generator.manual_seed(_generator_seed(config, method))
        state = {"epoch": 0, "logged_loss": [], "exact_loss": [exact_loss(theta, c, p).tolist()],
                 "wall_time_s": 0.0}
    else:
        with torch.no_grad():
            theta.copy_(state["theta"].to(device))
        adam.load({k: (v.to(device) if torch.is_tensor(v) else v) for k, v in state["adam"].items()})
        generator.set_state(state["generator"])
    shape = (config.seeds, config.batch_size, config.L, 2)
    bar = None
    if progress:
        bar = progress_bar(total=config.epochs * config.steps, initial=state["epoch"] * config.steps,
                   desc=f"{method} p={p:g} tau={tau:g}", leave=False)
    steps_done = 0
    started = time.perf_counter()
    try:
        for epoch in range(state["epoch"], config.epochs):
            epoch_sum = torch.zeros(config.seeds, dtype=torch.float64, device=device)
            for _ in range(config.steps):
                if stop_after_steps is not None and steps_done >= stop_after_steps:
                    raise Interrupted(f"stopped after {steps_done} steps, as asked")
                logits = theta.unsqueeze(1).expand(shape)
                surrogate, values = step_function(logits, f, tau, generator, config)
                theta.grad = None
                # Seeds are independent: the sum of their minibatch means gives each its own gradient.
                surrogate.reshape(config.seeds, -1).mean(-1).sum().backward()
                adam.step()
                epoch_sum += values.detach().reshape(config.seeds, -1).mean(-1)
                steps_done += 1
                if bar is not None and steps_done % 20 == 0:
                    bar.update(20)
            state["logged_loss"].append((epoch_sum / config.steps).tolist())
            state["exact_loss"].append(exact_loss(theta, c, p).tolist())
            state["epoch"] = epoch + 1
            if checkpoint is not None and (state["epoch"] % checkpoint_every == 0
                                           or state["epoch"] == config.epochs):
                state["wall_time_s"] += time.perf_counter() - started
                started = time.perf_counter()
                checkpoint(dict(state, theta=theta.detach().cpu().clone(),
                                adam={k: (v.cpu() if torch.is_tensor(v) else v)
                                      for k, v in adam.state().items()},
                                generator=generator.get_state()))
    finally:
        if bar is not None:
            bar.close()
    state["wall_time_s"] += time.perf_counter() - started
    total_steps = config.epochs * config.steps
    return {"tau": None if method in TEMPERATURE_FREE else tau,
            # per seed lists: logged_loss[seed][epoch - 1], exact_loss[seed][epoch] (epoch 0 = init)
            "logged_loss": [list(row) for row in zip(*state["logged_loss"])],
            "exact_loss": [list(row) for row in zip(*state["exact_loss"])],
            "wall_time_s": state["wall_time_s"],
            "ms_per_step": 1e3 * state["wall_time_s"] / total_steps}


def _save_checkpoint(path: Path, payload: Dict[str, Any]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def run(config: PolynomialConfig, progress: bool = True, *,
        checkpoint: Union[str, Path, None] = None, checkpoint_every: int = 5,
        stop_after_steps: Optional[int] = None) -> Dict[str, Any]:
    """Train every method of ``config`` on all its seeds; return the results record.

    With ``checkpoint`` (a file path), the run saves its progress there after every
    ``checkpoint_every`` epochs and after each method, and a later call with the same config
    resumes from it without redoing finished work, giving the same numbers as an uninterrupted
    run. ``stop_after_steps`` interrupts the run (raises ``Interrupted``) after that many
    optimisation steps in this call, to test resuming.
    """
    if not isinstance(config, PolynomialConfig):
        raise TypeError(f"run needs a PolynomialConfig; got {type(config).__name__}")
    device = resolve_device(config.device)
    path = Path(checkpoint) if checkpoint is not None else None
    saved: Dict[str, Any] = {"config": config.as_dict(), "finished": {}, "partial": None}
    if path is not None and path.exists():
        saved = torch.load(path, weights_only=False)
        if saved["config"] != config.as_dict():
            raise ValueError(f"the checkpoint {path} belongs to another config "
                             f"({saved['config']}); remove it or pass a different path")
    started = time.perf_counter()
    # Provenance is taken when the run starts: the code that runs is the code imported then.
    provenance = _results.provenance(device)
    budget = stop_after_steps
    for method in config.methods:
        if method in saved["finished"]:
            continue
        partial = saved["partial"] if saved["partial"] and saved["partial"]["method"] == method else None
        steps_before = partial["epoch"] * config.steps if partial else 0

        def save_partial(state, method=method):
            saved["partial"] = dict(state, method=method)
            if path is not None:
                _save_checkpoint(path, saved)

        result = train_method(config, method, state=partial, progress=progress,
                              checkpoint=save_partial if path is not None else None,
                              checkpoint_every=checkpoint_every, stop_after_steps=budget)
        if budget is not None:
            budget -= config.epochs * config.steps - steps_before
        saved["finished"][method] = result
        saved["partial"] = None
        if path is not None:
            _save_checkpoint(path, saved)
    return {
        "experiment": "polynomial programming (Section 6.1)",
        "config": config.as_dict(),
        "optimum": optimum(config),
        "c": target(config).tolist() if config.setting == "B" else 0.45,
        "methods": {method: saved["finished"][method] for method in config.methods},
        "provenance": dict(provenance, finished_at=_results.provenance()["written_at"]),
        "wall_time_s": sum(saved["finished"][m]["wall_time_s"] for m in config.methods),
        "wall_time_this_call_s": time.perf_counter() - started,
    }


# ------------------------------------------------------------------------ summaries
def final_exact_losses(record: Dict[str, Any]) -> Dict[str, Tuple[float, float]]:
    """Mean and standard deviation over seeds of each method's final exact expected loss."""
    summary = {}
    for method, result in record["methods"].items():
        final = torch.tensor([row[-1] for row in result["exact_loss"]], dtype=torch.float64)
        summary[method] = (final.mean().item(), final.std().item() if len(final) > 1 else 0.0)
    return summary


def epochs_to_reach(record: Dict[str, Any], method: str, level: float) -> Optional[int]:
    """The first epoch at which the seed-mean exact loss is at or below ``level`` (None: never)."""
    curve = torch.tensor(record["methods"][method]["exact_loss"], dtype=torch.float64).mean(0)
    hits = (curve <= level).nonzero()
    return int(hits[0]) if len(hits) else None


def section_6_1_claims(record: Dict[str, Any]) -> Dict[str, Tuple[bool, str]]:
    """Section 6.1's claims about Figure 1, checked on one run: ``{claim: (holds, numbers)}``.

    Thresholds are fractions of the initial gap to the optimum (the largest method's seed-mean
    exact loss at epoch 0 minus the optimum): ReinMax ends within 2% of it, converges (to 5% of
    it) no later than any other method, ST and GST-1.0 stall (end 10% or more above the optimum),
    and STGS and GR-MCK end within 5% of ReinMax.
    """
    opt = record["optimum"]
    final = {m: v[0] for m, v in final_exact_losses(record).items()}
    start = {m: torch.tensor(r["exact_loss"], dtype=torch.float64).mean(0)[0].item()
             for m, r in record["methods"].items()}
    gap0 = max(start.values()) - opt
    speed = {m: epochs_to_reach(record, m, opt + 0.05 * gap0) for m in record["methods"]}
    never = record["config"]["epochs"] + 1
    out: Dict[str, Tuple[bool, str]] = {}
    if "ReinMax" not in final:
        return out
    out["ReinMax reaches near-optimal loss"] = (
        final["ReinMax"] - opt <= 0.02 * gap0,
        f"final gap {final['ReinMax'] - opt:.5f}, 2% of initial gap {0.02 * gap0:.5f}")
    others = {m: (speed[m] if speed[m] is not None else never) for m in speed if m != "ReinMax"}
    first = speed["ReinMax"] if speed["ReinMax"] is not None else never
    out["ReinMax converges fastest"] = (
        all(first <= s for s in others.values()) and first < never,
        f"epochs to 5% of gap: ReinMax {speed['ReinMax']}, " + ", ".join(f"{m} {speed[m]}" for m in others))
    for m in ("ST", "GST-1.0"):
        if m in final:
            out[f"{m} stalls"] = (final[m] - opt >= 0.10 * gap0,
                                  f"final gap {final[m] - opt:.5f}, 10% of initial gap {0.10 * gap0:.5f}")
    for m in ("STGS", "GR-MCK"):
        if m in final:
            out[f"{m} close to ReinMax at the end"] = (
                abs(final[m] - final["ReinMax"]) <= 0.05 * gap0,
                f"|{final[m]:.5f} - {final['ReinMax']:.5f}| vs 5% of gap {0.05 * gap0:.5f}")
    return out


def sweep_record_path(out_dir: Union[str, Path], config: PolynomialConfig, method: str,
                      tau: float) -> Path:
    """Where the sweep keeps the record of ``method`` at ``tau`` on ``config``'s problem."""
    return Path(out_dir) / f"p{config.p:g}_{config.setting}_{method}_tau{float(tau):g}.json"


def _same_config(found: Dict[str, Any], config: PolynomialConfig) -> bool:
    """Whether a record's config is ``config``. With ``device="auto"`` a record trained on any
    device answers it (its provenance names the device; the numbers are draws of the same
    experiment), as a finished MNIST-VAE record does."""
    expected = json.loads(json.dumps(_results._plain(config.as_dict())))
    return _results.equal_apart_from(found, expected,
                                     *(("device",) if config.device == "auto" else ()))


def sweep_cell(config: PolynomialConfig, method: str, tau: float, *,
               out_dir: Union[str, Path, None] = None, progress: bool = True) -> Dict[str, Any]:
    """One cell of the sweep: train ``method`` at ``tau`` on ``config``; return its record.

    With ``out_dir`` the record is written there (atomically) and a later call returns it
    instead of training again, so an interrupted sweep resumes cell by cell.
    """
    one = dataclasses.replace(config, methods=[method], taus=float(tau))
    path = sweep_record_path(out_dir, config, method, tau) if out_dir is not None else None
    if path is not None and path.is_file():
        record = _results.read_json(path)
        if not _same_config(record["config"], one):
            raise ValueError(f"{path} holds a run of another config ({record['config']}); "
                             "remove it or pass another out_dir")
        return record
    record = run(one, progress=progress)
    if path is not None:
        _results.write_json(path, record)
    return record


def _sweep_cells(configs: Sequence[PolynomialConfig], taus: Sequence[float]):
    return [(config, method, float(tau)) for config in configs for method in config.methods
            if method not in TEMPERATURE_FREE for tau in taus]


def _sweep_worker(cell) -> None:
    torch.set_num_threads(1)        # the workers share the cores; one thread each
    config, method, tau, out_dir = cell
    sweep_cell(config, method, tau, out_dir=out_dir, progress=False)


def temperature_sweep(config: PolynomialConfig, taus: Sequence[float] = TABLE7_TEMPERATURES,
                      progress: bool = True, *, out_dir: Union[str, Path, None] = None,
                      workers: int = 1) -> Dict[str, Any]:
    """Train each method of ``config`` at every temperature of ``taus``; choose by final exact loss.

    Returns ``{"taus": [...], "final": {method: {tau: mean final exact loss}}, "chosen":
    {method: tau}}`` plus the config and provenance. REINFORCE and RLOO have no temperature.
    With ``out_dir`` every (method, tau) cell keeps its record there and the sweep resumes
    after an interruption; ``workers`` > 1 trains that many cells at once in separate
    processes (one thread each; needs ``out_dir``).
    """
    return temperature_sweeps([config], taus, progress, out_dir=out_dir, workers=workers)[0]


def temperature_sweeps(configs: Sequence[PolynomialConfig],
                       taus: Sequence[float] = TABLE7_TEMPERATURES, progress: bool = True, *,
                       out_dir: Union[str, Path, None] = None, workers: int = 1
                       ) -> List[Dict[str, Any]]:
    """:func:`temperature_sweep` for several configs (e.g. each ``p``), sharing the workers."""
    _positive_int("workers", workers)
    taus = [_temperature("taus", tau) for tau in taus]
    if workers > 1:
        if out_dir is None:
            _fail("out_dir", out_dir, "a folder for the cells' records when workers > 1")
        import multiprocessing
        cells = [cell + (out_dir,) for cell in _sweep_cells(configs, taus)
                 if not sweep_record_path(out_dir, *cell).is_file()]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in progress_bar(pool.imap_unordered(_sweep_worker, cells), total=len(cells),
                                  desc="temperature sweep", disable=not progress):
                pass
    sweeps = []
    for config in configs:
        final: Dict[str, Dict[str, float]] = {}
        wall = 0.0
        trained_on = set()
        for _, method, tau in _sweep_cells([config], taus):
            record = sweep_cell(config, method, tau, out_dir=out_dir, progress=progress)
            final.setdefault(method, {})[str(tau)] = final_exact_losses(record)[method][0]
            wall += record["wall_time_s"]
            trained_on.add((record["provenance"]["git_commit"], record["provenance"]["platform"],
                            record["provenance"]["device"]))
        chosen = {method: float(min(values, key=values.get)) for method, values in final.items()}
        sweeps.append({
            "experiment": "polynomial programming temperature sweep " + (
                "(Table 7 grid)" if tuple(taus) == TABLE7_TEMPERATURES else "(temperatures given)"),
            "config": config.as_dict(), "taus": taus, "final": final, "chosen": chosen,
            "optimum": optimum(config), "provenance": _results.provenance(),
            "cells_trained_by": [dict(zip(("git_commit", "platform", "device"), t))
                                 for t in sorted(trained_on, key=str)],
            "wall_time_s": wall})
    return sweeps


# ------------------------------------------------------------------------ paper-scale runs
def run_figure(configs: Sequence[PolynomialConfig], path: Union[str, Path], *,
               progress: bool = True, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run several configs (e.g. Figure 1's three values of p) into one results file.

    Each config checkpoints to ``<path>.<index>.ckpt`` so that an interrupted job, started
    again with the same arguments, resumes where it stopped. The file at ``path`` holds
    ``{"runs": [record, ...], **extra}`` and is rewritten (atomically) after every config.
    """
    path = Path(path)
    record: Dict[str, Any] = {"runs": [], **(extra or {})}
    for index, config in enumerate(configs):
        checkpoint = path.with_name(f"{path.name}.{index}.ckpt")
        record["runs"].append(run(config, progress=progress, checkpoint=checkpoint))
        _results.write_json(path, record)
    for index in range(len(configs)):
        path.with_name(f"{path.name}.{index}.ckpt").unlink(missing_ok=True)
    return record


def chosen_temperatures(sweep_file: Union[str, Path], p: float, setting: str = "A"
                        ) -> Dict[str, float]:
    """The temperatures a sweep file chose for problem ``(p, setting)``."""
    sweeps = _results.read_json(sweep_file)["sweeps"]
    for sweep in sweeps:
        if sweep["config"]["p"] == float(p) and sweep["config"]["setting"] == setting:
            return dict(sweep["chosen"])
    swept = [(s["config"]["p"], s["config"]["setting"]) for s in sweeps]
    raise ValueError(f"{sweep_file} has no sweep for p={p:g}, setting={setting!r}; "
                     f"it has (p, setting) = {swept}")


def _main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(description="Polynomial programming at paper scale.")
    parser.add_argument("what", choices=["sweep", "figure1"])
    parser.add_argument("--out", required=True, help="results JSON file")
    parser.add_argument("--sweep", help="(figure1) the sweep's results file: each p's chosen taus")
    parser.add_argument("--records", help="(sweep) folder for each cell's record, to resume "
                        "(default: <out without .json>_records)")
    parser.add_argument("--workers", type=int, default=1,
                        help="(sweep) cells trained at once, one process and thread each")
    parser.add_argument("--taus", type=float, nargs="+", default=list(TABLE7_TEMPERATURES),
                        help="(sweep) the temperatures tried (default: Table 7's grid)")
    parser.add_argument("--p", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    parser.add_argument("--methods", nargs="+", default=list(FIGURE1_METHODS))
    parser.add_argument("--L", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--setting", default="A")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    common = dict(L=args.L, batch_size=args.batch_size, setting=args.setting, methods=args.methods,
                  epochs=args.epochs, steps=args.steps, seeds=args.seeds, device=args.device)
    if args.what == "sweep":
        out = Path(args.out)
        records = args.records or out.with_name(out.stem + "_records")
        sweeps = temperature_sweeps([PolynomialConfig(p=p, **common) for p in args.p], args.taus,
                                    out_dir=records, workers=args.workers)
        _results.write_json(out, {"sweeps": sweeps})
        return
    configs = [PolynomialConfig(p=p, taus=chosen_temperatures(args.sweep, p, args.setting)
                                if args.sweep else 1.0, **common) for p in args.p]
    run_figure(configs, args.out, extra={"temperature_source": args.sweep})


if __name__ == "__main__":
    _main()
