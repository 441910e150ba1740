"""Polynomial programming: training. All seeds of a method are trained as one tensor program:
``theta`` has shape ``(seeds, L, 2)``, the Adam state the same, and one step draws
``(seeds, batch, L, 2)`` one-hot samples through the public estimator (``reinmax.get_estimator``),
called with the categories at dim 1 so that a two-category estimator lays the samples out as two
contiguous planes (see ``reinmax.estimators.two_category``): the batched program then streams through contiguous
memory in every pass. The seeds are independent problems: each one's loss enters the summed
objective once, and Adam is elementwise, so every seed follows exactly the updates a separate run
would make (given the same random numbers).
"""
import math
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import torch

import reinmax
from reinmax.experiments import layer, progress_bar
from .problem import (BINARY_CONTROL_LR, LEARNING_RATE, PolynomialConfig, binary_score_methods,
                      exact_loss, initial_theta, optimum, polynomial_loss, target, temperature_free)

EXPERIMENT = "polynomial programming (Section 6.1)"


# ------------------------------------------------------------------------ the methods
# A method turns (logits of shape (seeds, batch, L, 2), f, tau, generator, config) into
# (surrogate, values): the per-sample tensor whose gradient is the estimator, and f's values
# (what is logged). Every estimator in the registry's two families has one (method_step).
MethodFunction = Callable[..., Tuple[torch.Tensor, torch.Tensor]]


def _straight_through(name: str) -> MethodFunction:
    def method(logits, f, tau, generator, config):
        estimator = layer.estimator(name, config.method_options.get(name))
        # The categories go to dim 1, (seeds, 2, batch, L): a two-category estimator then lays
        # its one-hot out as two contiguous planes (reinmax.estimators.two_category), so that the loss and every
        # backward pass read and write contiguous memory. Same random numbers, same samples.
        y_hard, _ = estimator(logits.movedim(-1, 1), tau, dim=1, generator=generator)
        values = f(y_hard.movedim(1, -1))
        return values, values
    method.__name__ = name
    return method


def _score(name: str) -> MethodFunction:
    def method(logits, f, tau, generator, config):
        # tau has no role in the score family (the authors' REINFORCE uses no baseline).
        options = dict(config.method_options.get(name, {}))
        if "num_samples" not in options and "num_samples" not in _parameters(name):
            # f returns one value per (seed, draw): the first two dimensions are samples.
            return layer.estimator(name, options)(logits, f, generator=generator, batch_dims=2)
        # The batch is split into groups of num_samples draws (default: the whole batch is one
        # group); e.g. RLOO's baseline for a draw is the mean of f over the others of its group.
        seeds, batch, L, n = logits.shape
        # An estimator whose name fixes its draws (DisARM-Tree: one pair) gets groups of those.
        fixed = reinmax.estimators.registry.get_spec(name).fixed.get("num_samples")
        group = options.setdefault("num_samples", fixed or batch)
        grouped = logits.narrow(1, 0, batch // group)   # rows are copies of theta: keep batch/group
        surrogate, values = layer.estimator(name, options)(grouped, f, generator=generator,
                                                           batch_dims=2)
        return surrogate.movedim(0, 2), values.movedim(0, 2)   # (group, seeds, groups) -> (seeds, groups, group)
    method.__name__ = name
    return method


def _parameters(name: str):
    import inspect
    import reinmax
    return inspect.signature(reinmax.SCORE_ESTIMATORS[name]).parameters


class _BinaryScore:
    """A binary score estimator (``reinmax.estimators.bernoulli_score``) as a method: the logit of
    ``X_i = 1`` (category 0) is ``theta_i0 - theta_i1``; the batch is split into
    ``batch // num_samples`` groups of ``num_samples`` draws, each group one estimate; after each
    estimate the learned control parts (if any) take one Adam step on the variance loss. The
    module and its optimiser are built at the first call (seeded from the sampling stream's key, so
    a run is reproducible) and travel in the checkpoint (``state``/``load``)."""

    def __init__(self, name: str):
        self.name, self.module, self.optimizer = name, None, None
        self.__name__ = name

    def _build(self, config: PolynomialConfig, device) -> None:
        from reinmax.estimators.bernoulli_score import build_binary_score_estimator
        options = dict(config.method_options.get(self.name, {}))
        lr = options.pop("control_lr", BINARY_CONTROL_LR)
        if self.name == "RELAX":
            options.setdefault("num_latents", config.L)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_generator_seed(config, self.name))
            self.module = build_binary_score_estimator(self.name, **options).to(device)
        params = list(self.module.parameters())
        self.optimizer = torch.optim.Adam(params, lr=lr) if params else None

    def __call__(self, logits, f, tau, generator, config):
        if self.module is None:
            self._build(config, logits.device)
        seeds, batch, L, _ = logits.shape
        K = self.module.num_samples
        grouped = logits.narrow(1, 0, batch // K)         # rows are copies of theta
        a = grouped[..., 0] - grouped[..., 1]             # (seeds, groups, L): logit of X_i = 1

        def f_binary(b):
            return f(torch.stack([b, 1 - b], -1))
        out = self.module(a, f_binary, generator)
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
            self.module.variance_backward(out)
            self.optimizer.step()
        surrogate = (a * out.grad.detach()).sum(-1)       # (seeds, groups): d/d theta = the estimate
        return surrogate, out.values.detach().movedim(0, -1)

    def state(self) -> Dict[str, Any]:
        if self.module is None:
            return {}
        return {"module": {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()},
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None}

    def load(self, state: Dict[str, Any], config: PolynomialConfig, device) -> None:
        if not state:
            return
        self._build(config, device)
        self.module.load_state_dict(state["module"])
        if self.optimizer is not None and state.get("optimizer") is not None:
            self.optimizer.load_state_dict(state["optimizer"])


def method_step(name: str) -> MethodFunction:
    """The training step of ``name``, by the registry family it belongs to."""
    if name in binary_score_methods():
        return _BinaryScore(name)
    return _score(name) if temperature_free(name) else _straight_through(name)


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


def _generator_seed(config: PolynomialConfig, method: str) -> int:
    """One sampling stream per (method, problem, seed list): a stable hash, not Python's salted
    hash(). Seeds 0..n-1 keep the key they had when ``seeds`` was the count n."""
    count = len(config.seeds)
    seeds = count if config.seeds == list(range(count)) else config.seeds
    key = f"polynomial|{method}|p={config.p}|L={config.L}|setting={config.setting}|seeds={seeds}"
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
    device = layer.resolve_device(config.device)
    tau = config.tau(method)
    step_function = method_step(method)
    c = target(config).to(device=device, dtype=torch.float32)
    p = config.p
    f = lambda one_hot: polynomial_loss(one_hot, c, p)      # noqa: E731 - one line reads best

    generator = torch.Generator(device=device)
    theta = initial_theta(config.seeds, config.L).to(device).requires_grad_(True)
    adam = BatchedAdam(theta)
    if state is None:
        generator.manual_seed(_generator_seed(config, method))
        state = {"epoch": 0, "logged_loss": [], "exact_loss": [exact_loss(theta, c, p).tolist()],
                 "wall_s": 0.0}
    else:
        with torch.no_grad():
            theta.copy_(state["theta"].to(device))
        adam.load({k: (v.to(device) if torch.is_tensor(v) else v) for k, v in state["adam"].items()})
        generator.set_state(state["generator"])
        if isinstance(step_function, _BinaryScore):
            step_function.load(state.get("estimator", {}), config, device)
    shape = (len(config.seeds), config.batch_size, config.L, 2)
    bar = None
    if progress:
        bar = progress_bar(total=config.epochs * config.steps, initial=state["epoch"] * config.steps,
                   desc=f"{method} p={p:g} tau={tau:g}", leave=False)
    steps_done = 0
    started = time.perf_counter()
    try:
        for epoch in range(state["epoch"], config.epochs):
            epoch_sum = torch.zeros(len(config.seeds), dtype=torch.float64, device=device)
            for _ in range(config.steps):
                if stop_after_steps is not None and steps_done >= stop_after_steps:
                    raise Interrupted(f"stopped after {steps_done} steps, as asked")
                logits = theta.unsqueeze(1).expand(shape)
                surrogate, values = step_function(logits, f, tau, generator, config)
                theta.grad = None
                # Seeds are independent: the sum of their minibatch means gives each its own gradient.
                surrogate.reshape(len(config.seeds), -1).mean(-1).sum().backward()
                adam.step()
                epoch_sum += values.detach().reshape(len(config.seeds), -1).mean(-1)
                steps_done += 1
                if bar is not None and steps_done % 20 == 0:
                    bar.update(20)
            state["logged_loss"].append((epoch_sum / config.steps).tolist())
            state["exact_loss"].append(exact_loss(theta, c, p).tolist())
            state["epoch"] = epoch + 1
            if checkpoint is not None and (state["epoch"] % checkpoint_every == 0
                                           or state["epoch"] == config.epochs):
                state["wall_s"] += time.perf_counter() - started
                started = time.perf_counter()
                checkpoint(dict(state, theta=theta.detach().cpu().clone(),
                                adam={k: (v.cpu() if torch.is_tensor(v) else v)
                                      for k, v in adam.state().items()},
                                generator=generator.get_state(),
                                **({"estimator": step_function.state()}
                                   if isinstance(step_function, _BinaryScore) else {})))
    finally:
        if bar is not None:
            bar.close()
    state["wall_s"] += time.perf_counter() - started
    total_steps = config.epochs * config.steps
    return {"method": method, "tau": None if temperature_free(method) else tau,
            # per seed lists: logged_loss[seed][epoch - 1], exact_loss[seed][epoch] (epoch 0 = init)
            "logged_loss": [list(row) for row in zip(*state["logged_loss"])],
            "exact_loss": [list(row) for row in zip(*state["exact_loss"])],
            "wall_s": state["wall_s"],
            "ms_per_step": 1e3 * state["wall_s"] / total_steps}


def run(config: PolynomialConfig, progress: bool = True, *,
        checkpoint: Union[str, Path, None] = None, checkpoint_every: int = 5,
        stop_after_steps: Optional[int] = None) -> Dict[str, Any]:
    """Train every method of ``config`` on all its seeds; return the results record,
    ``{"experiment", "config", "runs": [{"method", "tau", "logged_loss", "exact_loss", "wall_s",
    "ms_per_step"}, ...], "wall_s", "provenance", "fingerprint", "optimum", "c"}``.

    With ``checkpoint`` (a file path), the run saves its progress there after every
    ``checkpoint_every`` epochs and after each method, and a later call with the same config
    resumes from it without redoing finished work, giving the same numbers as an uninterrupted
    run. ``stop_after_steps`` interrupts the run (raises ``Interrupted``) after that many
    optimisation steps in this call, to test resuming.
    """
    if not isinstance(config, PolynomialConfig):
        raise TypeError(f"run needs a PolynomialConfig; got {type(config).__name__}")
    device = layer.resolve_device(config.device)
    fingerprint = config.fingerprint()
    path = Path(checkpoint) if checkpoint is not None else None
    saved: Dict[str, Any] = {"fingerprint": fingerprint, "device_type": device.type,
                             "finished": {}, "partial": None}
    if path is not None:
        saved = layer.load_checkpoint(path, fingerprint, device) or saved
    started = time.perf_counter()
    # Provenance is taken when the run starts: the code that runs is the code imported then.
    provenance = layer.provenance(device)
    budget = stop_after_steps
    for method in config.methods:
        if method in saved["finished"]:
            continue
        partial = saved["partial"] if saved["partial"] and saved["partial"]["method"] == method else None
        steps_before = partial["epoch"] * config.steps if partial else 0

        def save_partial(state, method=method):
            saved["partial"] = dict(state, method=method)
            layer.save_checkpoint(path, saved)

        result = train_method(config, method, state=partial, progress=progress,
                              checkpoint=save_partial if path is not None else None,
                              checkpoint_every=checkpoint_every, stop_after_steps=budget)
        if budget is not None:
            budget -= config.epochs * config.steps - steps_before
        saved["finished"][method] = result
        saved["partial"] = None
        if path is not None:
            layer.save_checkpoint(path, saved)
    runs = [saved["finished"][method] for method in config.methods]
    return layer.record(
        EXPERIMENT, config.as_dict(), runs, sum(r["wall_s"] for r in runs),
        dict(provenance, finished_at=layer.provenance()["written_at"]),
        fingerprint=fingerprint, optimum=optimum(config),
        c=target(config).tolist() if config.setting == "B" else 0.45,
        wall_s_this_call=time.perf_counter() - started)


# ------------------------------------------------------------------------ summaries
def method_run(record: Dict[str, Any], method: str) -> Dict[str, Any]:
    """The entry of ``record["runs"]`` that trained ``method``."""
    for entry in record["runs"]:
        if entry["method"] == method:
            return entry
    raise KeyError(f"this record trained {[r['method'] for r in record['runs']]}, not {method!r}")


def final_exact_losses(record: Dict[str, Any]) -> Dict[str, Tuple[float, float]]:
    """Mean and standard deviation over seeds of each method's final exact expected loss."""
    summary = {}
    for result in record["runs"]:
        method = result["method"]
        final = torch.tensor([row[-1] for row in result["exact_loss"]], dtype=torch.float64)
        summary[method] = (final.mean().item(), final.std().item() if len(final) > 1 else 0.0)
    return summary


def epochs_to_reach(record: Dict[str, Any], method: str, level: float) -> Optional[int]:
    """The first epoch at which the seed-mean exact loss is at or below ``level`` (None: never)."""
    curve = torch.tensor(method_run(record, method)["exact_loss"], dtype=torch.float64).mean(0)
    hits = (curve <= level).nonzero()
    return int(hits[0]) if len(hits) else None
