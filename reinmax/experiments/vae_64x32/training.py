"""Training Table 5's setting: one ensemble of all seeds per method (``CategoricalVAE``).

Straight-through methods train as in ``reinmax.experiments.vae`` (one code per image, its
backward the estimator's, the KL in closed form). RLOO draws ``rloo_samples`` codes per image and
trains with ``reinmax.rloo``, DisARM-Tree one antithetic pair with
``reinmax.estimators.disarm_tree.disarm_tree``, on f = the single-sample -ELBO, the encoder's logits detached in
log q (that direct dependence is dropped, as the score-function baselines do); the decoder gets
f's own gradient averaged over the draws.

Recorded every ``eval_every`` steps and after the last: ``train_neg_elbo``, the mean of the
minibatch -ELBOs since the previous evaluation (the paper's training figure: the weights change
meanwhile), and ``test_neg_elbo``, the single-sample -ELBO on the test images. Images are
MNIST's grey levels in [0, 1] as in ``reinmax.experiments.vae`` (Fan et al. binarise
dynamically and train on 50,000 images: a stated difference). With ``out_dir``: a checkpoint at
each evaluation, resume, and ``<out_dir>/64x32_<method>.json`` when finished.
"""
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

import reinmax
from reinmax.experiments import layer, progress_bar
from reinmax.experiments.vae.config import NOISY_METHODS
from reinmax.experiments.vae.training import load_images, make_optimizer
from reinmax.models.vae import CategoricalVAE, seed_generators
from reinmax.estimators.disarm_tree import disarm_tree
from .config import CATEGORIES, LATENTS, NEGATIVE_SLOPE, SCORE_METHODS, VAE64x32Config

EXPERIMENT = "mnist_vae_64x32"


def _settings(config: VAE64x32Config, method: str) -> dict:
    return {"config": "64x32", "method": method, "hyperparameters": config.hyperparameters(method),
            "seeds": list(config.seeds), "steps": config.steps, "eval_every": config.eval_every,
            "batch_size": config.batch_size, "train_subset": config.train_subset,
            "test_subset": config.test_subset,
            "rloo_samples": config.rloo_samples if method == "RLOO" else None,
            "method_options": config.method_options.get(method, {}),
            "negative_slope": NEGATIVE_SLOPE,
            "device_type": layer.resolve_device(config.device).type}


def _fingerprint(settings: dict) -> str:
    return layer.fingerprint({k: v for k, v in settings.items() if k != "device_type"})


def _paths(config: VAE64x32Config, method: str):
    if config.out_dir is None:
        return None, None
    # Names built as text: Path.with_suffix would take "GST-1.0"'s ".0" for a suffix.
    folder, stem = Path(config.out_dir), f"64x32_{method.replace('/', '_')}"
    return folder / f"{stem}.json", folder / f"{stem}.ckpt"


def finished_setting(config: VAE64x32Config, method: str) -> Optional[dict]:
    record_path, _ = _paths(config, method)
    if record_path is None:
        return None
    settings = _settings(config, method)
    return layer.finished_record(record_path, _fingerprint(settings), config.device,
                                 fields=settings, stored_as="settings")


def score_neg_elbo(model: CategoricalVAE, x: torch.Tensor, method: str, samples: int,
                   generators) -> torch.Tensor:
    """Per member ``(S,)``: a loss whose gradient is the score estimator's (``method``: "RLOO"
    with ``samples`` draws, or "DisARM-Tree", one antithetic pair) for the encoder and f's own
    mean for the decoder, and whose value is the sampled -ELBO averaged over the draws and
    images."""
    logits = model.encode(x)                                       # (S, B, L, C)
    losses = []
    for s, generator in enumerate(generators):
        frozen = logits[s].detach()
        log_q_all = torch.log_softmax(frozen, -1)

        def f(codes, s=s, log_q_all=log_q_all):                    # (K, B, L, C) -> (K, B)
            log_q = (codes * log_q_all).sum((-2, -1))
            return (model.reconstruction(x[s], codes, s) + log_q
                    + model.latents * math.log(model.categories))

        if method == "RLOO":
            surrogate, _ = reinmax.rloo(logits[s], f, num_samples=samples, generator=generator,
                                        batch_dims=1)
        else:
            surrogate, _ = disarm_tree(logits[s], f, generator=generator, batch_dims=1)
        losses.append(surrogate.mean())
    return torch.stack(losses)


def rloo_neg_elbo(model: CategoricalVAE, x: torch.Tensor, samples: int, generators) -> torch.Tensor:
    """RLOO's loss (:func:`score_neg_elbo` with ``method="RLOO"``)."""
    return score_neg_elbo(model, x, "RLOO", samples, generators)


def train_setting(config: VAE64x32Config, method: str, train: torch.Tensor, test: torch.Tensor,
                  *, progress: bool = True, on_eval: Optional[Callable] = None) -> dict:
    """Train all seeds of ``method`` as one ensemble; resumes and returns finished records."""
    record = finished_setting(config, method)
    if record is not None:
        return record
    device = layer.resolve_device(config.device)
    settings = _settings(config, method)
    fingerprint = _fingerprint(settings)
    record_path, checkpoint_path = _paths(config, method)
    trained_by = layer.provenance(device)
    hp = config.hyperparameters(method)
    seeds = list(config.seeds)
    model = CategoricalVAE(CATEGORIES, LATENTS, seeds, device=device,
                           negative_slope=NEGATIVE_SLOPE)
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"])
    score = method in SCORE_METHODS
    estimator = None if score else layer.estimator(method, config.method_options.get(method))
    noisy = method in NOISY_METHODS
    streams = {"data": seed_generators(seeds, "data", "cpu"),
               "noise": seed_generators(seeds, "noise", device),
               "test": seed_generators(seeds, "test", device)}
    history = {"steps": [], "train_neg_elbo": [], "test_neg_elbo": [], "wall_s": []}
    step, wall, order, position = 0, 0.0, None, 0
    state = (layer.load_checkpoint(checkpoint_path, fingerprint, device)
             if checkpoint_path is not None else None)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for key, states in state["generators"].items():
            for generator, saved in zip(streams[key], states):
                generator.set_state(saved)
        history, step, wall = state["history"], state["step"], state["wall_s"]
        order, position = state["order"].to(device), state["position"]

    N, B = len(train), config.batch_size
    running = torch.zeros(len(seeds), dtype=torch.float64, device=device)
    running_n = 0
    began = time.perf_counter()
    bar = progress_bar(range(step, config.steps), desc=f"64x32 {method}", disable=not progress,
                       leave=False, initial=step, total=config.steps)
    for step in bar:
        if order is None or position + B > N:
            order = torch.stack([torch.randperm(N, generator=g) for g in streams["data"]]).to(device)
            position = 0
        x = train[order[:, position:position + B]]                  # (S, B, 784)
        position += B
        if score:
            loss = score_neg_elbo(model, x, method, config.rloo_samples, streams["noise"])
        else:
            loss, _ = model.neg_elbo(x, estimator, hp["tau"], streams["noise"], noisy=noisy)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()                  # members are independent: the sum separates
        optimizer.step()
        running += loss.detach().double()
        running_n += 1
        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            history["steps"].append(done)
            history["train_neg_elbo"].append((running / running_n).tolist())
            history["test_neg_elbo"].append(model.sampled_neg_elbo(test, streams["test"]).tolist())
            now = time.perf_counter()
            wall += now - began
            began = now
            history["wall_s"].append(wall)
            running.zero_()
            running_n = 0
            if checkpoint_path is not None and done < config.steps:
                layer.save_checkpoint(checkpoint_path, {
                    "fingerprint": fingerprint, "device_type": device.type, "step": done,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "generators": {k: [g.get_state() for g in v] for k, v in streams.items()},
                    "order": order.cpu(), "position": position, "history": history,
                    "wall_s": wall})
            bar.set_postfix(train=f"{np.mean(history['train_neg_elbo'][-1]):.2f}")
            if on_eval is not None:
                on_eval(method, history)
    bar.close()
    final = {key: {"mean": float(np.mean(history[key][-1])), "std": float(np.std(history[key][-1])),
                   "n": len(seeds), "per_seed": history[key][-1]}
             for key in ("train_neg_elbo", "test_neg_elbo")}
    record = {"config": "64x32", "categories": CATEGORIES, "latents": LATENTS, "method": method,
              "hyperparameters": hp, "seeds": seeds, "steps": config.steps, "train_images": N,
              "test_images": len(test), "batch_size": B, "history": history, "final": final,
              "seconds_per_step": wall / config.steps, "wall_s": wall, "settings": settings,
              "fingerprint": fingerprint, "provenance": trained_by}
    if record_path is not None:
        layer.write_json(record_path, record)
        checkpoint_path.unlink(missing_ok=True)
    return record


def run(config: VAE64x32Config, *, progress: bool = True, on_eval: Optional[Callable] = None
        ) -> dict:
    """Every method of ``config``; with ``out_dir`` also ``<out_dir>/results.json``."""
    if not isinstance(config, VAE64x32Config):
        raise TypeError(f"config must be a VAE64x32Config; got {type(config).__name__}")
    began = time.perf_counter()
    device = layer.resolve_device(config.device)
    images = None
    runs = []
    for method in config.methods:
        record = finished_setting(config, method)
        if record is None:
            if images is None:
                images = (load_images("train", config.train_subset, config.data_root, device),
                          load_images("test", config.test_subset, config.data_root, device))
            record = train_setting(config, method, *images, progress=progress, on_eval=on_eval)
        runs.append(record)
    return layer.finish(EXPERIMENT, config, runs, began, device)


def final_table(results: dict, metric: str = "train_neg_elbo") -> Dict[str, dict]:
    """``{method: {"mean", "std", "n", "per_seed"}}`` at the last evaluation."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    return {r["method"]: r["final"][metric] for r in results["runs"]}


def values_at(record: dict, step: int, metric: str = "train_neg_elbo") -> List[float]:
    """A method record's per-seed ``metric`` at update ``step`` (an evaluation point of its
    history), or ValueError naming the evaluation points it has."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    steps = list(record["history"]["steps"])
    if step not in steps:
        raise ValueError(f"step must be an evaluation point of the {record['method']} record; "
                         f"got step={step!r}; it has {steps}")
    return [float(v) for v in record["history"][metric][steps.index(step)]]


def ranking_at(records: Sequence[dict], steps: Sequence[int], metric: str = "train_neg_elbo"
               ) -> Dict[int, List[dict]]:
    """Table 5's ranking at several points of training: ``{step: [{"method", "mean", "std",
    "per_seed", "rank"}, ...]}``, lowest mean first (rank 1), std with ddof = 1 over the seeds
    (0 with one seed). Shows whether the ranking settles or still moves between the points."""
    table: Dict[int, List[dict]] = {}
    for step in steps:
        rows = []
        for record in records:
            values = values_at(record, step, metric)
            mean = sum(values) / len(values)
            std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 \
                if len(values) > 1 else 0.0
            rows.append({"method": record["method"], "mean": mean, "std": std, "per_seed": values})
        rows.sort(key=lambda row: row["mean"])
        for rank, row in enumerate(rows, 1):
            row["rank"] = rank
        table[step] = rows
    return table
