"""Training the 2x200 Bernoulli VAE (Table 6, Figure 5): one run per (K, method, seed).

Per step: a minibatch of ``batch_size`` images (a fresh permutation every epoch), binarised by
Bernoulli(grey level) drawn anew each step (``baselines``: dynamic binarization) or once for all
(``reinmax-script``: static), K codes per image, one update (Adam or RAdam by protocol; a
score estimator's learned control parts by their own Adam, 1e-3).

Every ``eval_every`` steps and after the last, at fixed parameters (Shi et al.'s metrics):

* ``train_neg_elbo``: the single-sample -ELBO averaged over K codes per image and one pass over
  the training images (a fresh binarization under ``baselines``): Table 6's "train -ELBO";
* ``valid_neg_elbo`` / ``test_neg_elbo``: the K-sample bound (log-mean-exp of K single-sample
  ELBOs) on the statically binarised validation and test images;
* ``train_running``: the mean of the minibatch -ELBOs since the previous evaluation, while the
  weights change (what the authors' script prints as its training figure).

With ``out_dir`` a run checkpoints at each evaluation (atomically) and resumes there; a finished
run is ``<out_dir>/<dataset>_<protocol>_K<K>_<method>_seed<s>.json`` and is skipped later.
"""
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from reinmax.data.mnist import load_mnist
from reinmax.experiments import layer, progress_bar
from reinmax.models.vae import seed_generators, stream_seed
from . import estimators
from .config import PROTOCOLS, SPLIT_SIZES, BernoulliVAEConfig
from reinmax.models.bernoulli_vae import BernoulliVAE, iwae_bound

EXPERIMENT = "bernoulli_vae"
BINARIZATION_SEED = 0
"""Static binarizations (validation and test always; training under ``reinmax-script``) are
drawn once from this seed, the same for every run, so that every method sees the same images."""
CONTROL_LR = 1e-3
"""Adam's learning rate for a score estimator's learned control parts (Shi et al.)."""
EVAL_CHUNK = 2500


# ------------------------------------------------------------------------- data
def load_splits(dataset: str, root=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train, validation, test) grey levels in [0, 1], each ``(N, 784)`` float32 (see
    ``config.SPLIT_SIZES`` for the splits). Fashion-MNIST and Omniglot are downloaded and
    verified where they are not in the data root; offline that is a FileNotFoundError saying so."""
    if dataset in ("mnist", "fashion-mnist"):
        train, _ = load_mnist("train", root=root, dataset=dataset)
        test, _ = load_mnist("test", root=root, dataset=dataset)
        train, test = train.reshape(len(train), -1), test.reshape(len(test), -1)
        n_train = SPLIT_SIZES[dataset][0]
        return train[:n_train], train[n_train:], test
    if dataset == "omniglot":
        from reinmax.data.omniglot28 import load_omniglot28
        data, test = load_omniglot28(root=root)
        n_train = SPLIT_SIZES[dataset][0]
        return data[:n_train], data[n_train:], test
    raise ValueError(f"dataset must be one of {list(SPLIT_SIZES)}; got dataset={dataset!r}")


def binarize(images: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Bernoulli(grey level) for every pixel, 0.0/1.0."""
    u = torch.rand(images.shape, generator=generator, device=images.device)
    return (u < images).to(images.dtype)


def data_available(dataset: str, root=None) -> Optional[str]:
    """None when ``dataset`` can be loaded here, else the reason (e.g. offline, not in the data
    root): notebooks and tests skip such a data set with this message."""
    try:
        load_splits(dataset, root)
    except (FileNotFoundError, OSError, RuntimeError) as error:
        return f"{dataset} is not available here: {error}"
    return None


# ------------------------------------------------------------------------- one run
def _stem(config: BernoulliVAEConfig, K: int, method: str, seed: int) -> str:
    return f"{config.dataset}_{config.protocol}_K{K}_{method}_seed{seed}"


def _settings(config: BernoulliVAEConfig, K: int, method: str, seed: int) -> dict:
    """Everything that decides one run's numbers (its hash is the run's fingerprint)."""
    return {"dataset": config.dataset, "protocol": config.protocol, "method": method, "K": K,
            "seed": seed, "hyperparameters": config.hyperparameters(method, K),
            "steps": config.steps, "eval_every": config.eval_every,
            "batch_size": config.batch_size, "train_subset": config.train_subset,
            "eval_subset": config.eval_subset, "device_type": config.resolved_device().type}


def _fingerprint(settings: dict) -> str:
    return layer.fingerprint({k: v for k, v in settings.items() if k != "device_type"})


def finished_run(config: BernoulliVAEConfig, K: int, method: str, seed: int) -> Optional[dict]:
    if config.out_dir is None:
        return None
    settings = _settings(config, K, method, seed)
    path = Path(config.out_dir) / f"{_stem(config, K, method, seed)}.json"
    return layer.finished_record(path, _fingerprint(settings), config.device, fields=settings,
                                 stored_as="settings")


def _make_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    return (torch.optim.Adam if name == "Adam" else torch.optim.RAdam)(list(parameters), lr=lr)


@torch.no_grad()
def evaluate(model: BernoulliVAE, images: torch.Tensor, K: int, generator, *,
             iwae: bool) -> float:
    """Mean over images of the single-sample -ELBO averaged over K codes (``iwae=False``) or of
    the K-sample bound (``iwae=True``)."""
    total = 0.0
    for start in range(0, len(images), EVAL_CHUNK):
        bounds = model.sampled_bounds(images[start:start + EVAL_CHUNK], K, generator)
        per_image = iwae_bound(bounds) if iwae else bounds.double().mean(0)
        total += float(per_image.sum())
    return total / len(images)


def train_run(config: BernoulliVAEConfig, K: int, method: str, seed: int,
              data: Tuple[torch.Tensor, torch.Tensor, torch.Tensor], *, progress: bool = True,
              on_eval: Optional[Callable] = None) -> dict:
    """Train one (K, method, seed) and return its record (see the module docstring);
    ``data`` is ``load_splits``'s (train, validation, test) on the device.
    ``on_eval(run_stem, history)`` is called after each evaluation."""
    record = finished_run(config, K, method, seed)
    if record is not None:
        return record
    device = config.resolved_device()
    settings = _settings(config, K, method, seed)
    fingerprint = _fingerprint(settings)
    stem = _stem(config, K, method, seed)
    out = Path(config.out_dir) if config.out_dir is not None else None
    checkpoint_path = out / f"{stem}.ckpt" if out else None
    trained_by = layer.provenance(device)
    protocol = PROTOCOLS[config.protocol]
    hp = config.hyperparameters(method, K)

    init, = seed_generators([seed], "init")
    model = BernoulliVAE(init, learn_prior=protocol["prior"] == "learned").to(device)
    optimizer = _make_optimizer(hp["optimizer"], model.parameters(), hp["lr"])
    score = estimators.family(method) == "score"
    estimator = estimators.build_score(method, K).to(device) if score else None
    controls = [p for p in estimator.parameters() if p.requires_grad] if score else []
    control_optimizer = torch.optim.Adam(controls, lr=CONTROL_LR) if controls else None
    streams = {"data": seed_generators([seed], "data", device)[0],
               "noise": seed_generators([seed], "noise", device)[0],
               "test": seed_generators([seed], "test", device)[0]}

    train, valid, test = data
    if config.train_subset is not None:
        train = train[:config.train_subset]
    fixed = torch.Generator(device=device).manual_seed(stream_seed(BINARIZATION_SEED, "data"))
    static_train = binarize(train, fixed) if protocol["binarization"] == "static" else None
    n_eval = config.eval_subset
    valid_b = binarize(valid[:n_eval], fixed)
    test_b = binarize(test[:n_eval], fixed)
    train_eval = train[:n_eval]

    history = {"steps": [], "train_neg_elbo": [], "train_running": [], "valid_neg_elbo": [],
               "test_neg_elbo": [], "wall_s": []}
    step, wall, order, position = 0, 0.0, None, 0
    state = layer.load_checkpoint(checkpoint_path, fingerprint, device) if out else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if estimator is not None:
            estimator.load_state_dict(state["estimator"])
        if control_optimizer is not None:
            control_optimizer.load_state_dict(state["control_optimizer"])
        for key, saved in state["generators"].items():
            streams[key].set_state(saved)
        history, step, wall = state["history"], state["step"], state["wall_s"]
        order, position = state["order"].to(device), state["position"]

    N, B = len(train), config.batch_size
    running, running_n = 0.0, 0
    began = time.perf_counter()
    bar = progress_bar(range(step, config.steps), desc=f"{method} K={K} seed {seed}",
                       disable=not progress, leave=False, initial=step, total=config.steps)
    for step in bar:
        if order is None or position + B > N:       # a new epoch: a fresh permutation
            order = torch.randperm(N, generator=streams["data"], device=device)
            position = 0
        index = order[position:position + B]
        position += B
        x = (static_train[index] if static_train is not None
             else binarize(train[index], streams["data"]))
        optimizer.zero_grad(set_to_none=True)
        if score:
            loss, value, estimate = estimators.score_loss(model, estimator, x, streams["noise"])
            if control_optimizer is not None:
                control_optimizer.zero_grad(set_to_none=True)
                # The variance's gradient goes into the control parts only (RELAX's estimate
                # also depends on the decoder through its relaxations).
                estimator.variance_backward(estimate)
        else:
            loss, value = estimators.straight_through_loss(model, x, method, hp["tau"], K,
                                                           streams["noise"])
        loss.backward()
        optimizer.step()
        if score and control_optimizer is not None:
            control_optimizer.step()
        running += float(value)
        running_n += 1

        done = step + 1
        if done % config.eval_every == 0 or done == config.steps:
            model.eval()
            source = (binarize(train_eval, streams["test"]) if static_train is None
                      else static_train[:n_eval])
            history["steps"].append(done)
            history["train_neg_elbo"].append(evaluate(model, source, K, streams["test"],
                                                      iwae=False))
            history["train_running"].append(running / running_n)
            history["valid_neg_elbo"].append(evaluate(model, valid_b, K, streams["test"],
                                                      iwae=True))
            history["test_neg_elbo"].append(evaluate(model, test_b, K, streams["test"],
                                                     iwae=True))
            now = time.perf_counter()
            wall += now - began
            began = now
            history["wall_s"].append(wall)
            running, running_n = 0.0, 0
            model.train()
            if checkpoint_path is not None and done < config.steps:
                layer.save_checkpoint(checkpoint_path, {
                    "fingerprint": fingerprint, "device_type": device.type, "step": done,
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "estimator": estimator.state_dict() if estimator is not None else None,
                    "control_optimizer": (control_optimizer.state_dict()
                                          if control_optimizer is not None else None),
                    "generators": {k: g.get_state() for k, g in streams.items()},
                    "order": order.cpu(), "position": position, "history": history,
                    "wall_s": wall})
            bar.set_postfix(train=f"{history['train_neg_elbo'][-1]:.2f}")
            if on_eval is not None:
                on_eval(stem, history)
    bar.close()

    record = {"dataset": config.dataset, "protocol": config.protocol, "method": method, "K": K,
              "seed": seed, "hyperparameters": hp, "steps": config.steps,
              "estimator_module": estimators.estimator_module(method),
              "train_images": N, "history": history,
              "final": {key: history[key][-1] for key in
                        ("train_neg_elbo", "train_running", "valid_neg_elbo", "test_neg_elbo")},
              "seconds_per_step": wall / config.steps,     # evaluations included
              "wall_s": wall, "settings": settings, "fingerprint": fingerprint,
              "provenance": trained_by}
    if out is not None:
        layer.write_json(out / f"{stem}.json", record)
        checkpoint_path.unlink(missing_ok=True)
    return record


# ------------------------------------------------------------------------- every run
def run(config: BernoulliVAEConfig, *, progress: bool = True,
        on_eval: Optional[Callable] = None) -> dict:
    """Every (K, method, seed) of ``config``; the record's ``runs`` hold one record each.
    With ``out_dir`` the combined record is also ``<out_dir>/results.json``."""
    if not isinstance(config, BernoulliVAEConfig):
        raise TypeError(f"config must be a BernoulliVAEConfig; got {type(config).__name__}")
    began = time.perf_counter()
    device = config.resolved_device()
    data = None
    runs = []
    for K in config.evaluations:
        for method in config.methods:
            for seed in config.seeds:
                record = finished_run(config, K, method, seed)
                if record is None:
                    if data is None:
                        data = tuple(t.to(device) for t in load_splits(config.dataset,
                                                                       config.data_root))
                    record = train_run(config, K, method, seed, data, progress=progress,
                                       on_eval=on_eval)
                runs.append(record)
    return layer.finish(EXPERIMENT, config, runs, began, device)


def final_table(results: dict, metric: str = "train_neg_elbo") -> Dict[Tuple[int, str], dict]:
    """``{(K, method): {"mean", "std", "n", "per_seed"}}`` of the last evaluation's ``metric``
    (std is numpy's, ddof=0, as the paper's +- are read)."""
    metrics = ("train_neg_elbo", "train_running", "valid_neg_elbo", "test_neg_elbo")
    if metric not in metrics:
        raise ValueError(f"metric must be one of {list(metrics)}; got metric={metric!r}")
    grouped: Dict[Tuple[int, str], List[float]] = {}
    for r in results["runs"]:
        grouped.setdefault((r["K"], r["method"]), []).append(r["final"][metric])
    return {key: {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v),
                  "per_seed": v} for key, v in grouped.items()}
