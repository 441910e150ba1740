"""The categorical MNIST-VAE experiment, training (Section 6.3, 6.6, Appendix F.2/F.5; Tables 2,
8-11; Figures 2, 4 and 6).

``run(VAEConfig(...)) -> results``: for every configuration ``C x L`` and method, all seeds are
trained as one batched ensemble (``reinmax.models.vae.CategoricalVAE``) with the method's
optimizer, learning rate and temperature from the paper's Table 8 (``TABLE8``), batch 100.
Recorded per seed and epoch: the train -ELBO as the paper's figure is made (the mean of the
minibatch losses over the epoch, while the weights change), the single-sample test -ELBO on the
10,000 test images, and optionally Figure 4's gradient analysis on the epoch's first minibatch,
before its update.

With ``out_dir`` set, every ensemble checkpoints after every epoch and resumes from there after
an interruption; a finished ensemble is written as ``<out_dir>/<C>x<L>_<method>.json`` (atomic,
with provenance) and skipped by a later run with the same settings. The book runs a small
``VAEConfig``; :meth:`VAEConfig.paper_scale` is the paper's protocol.

Figure 6 is two more methods, ``FIGURE6_METHODS`` (ReinMax with the 1/n baseline, derived and as
the authors computed it), run like the others with ReinMax's Table 8 row. Figure 2 is
``grid.temperature_grid``, resumable the same way.
"""
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from reinmax import statistics
from reinmax.data.mnist import load_mnist
from reinmax.models.vae import CategoricalVAE, gradient_quality, seed_generators
from reinmax.experiments import layer, progress_bar
from .config import CONFIGURATIONS, NOISY_METHODS, VAEConfig

EXPERIMENT = "mnist_vae"


# ------------------------------------------------------------------------- running
def settings_of(config: VAEConfig, name: str, method: str, device: torch.device) -> dict:
    """Everything that decides one setting's numbers (stored in its record as ``settings``; its
    hash, without the device, is the record's ``fingerprint``)."""
    analysed = config.gradient_every > 0 and method in (config.gradient_methods or config.methods)
    return {
        "config": name, "method": method, "hyperparameters": config.hyperparameters(name, method),
        "seeds": list(config.seeds), "epochs": config.epochs, "train_subset": config.train_subset,
        "test_subset": config.test_subset, "batch_size": config.batch_size,
        "test_every": config.test_every,
        "gradient": (_gradient_settings(config, name) if analysed else None),
        "method_options": config.method_options.get(method, {}),
        "device_type": device.type,
    }


def _gradient_settings(config: VAEConfig, name: str) -> dict:
    """What decides an analysis's numbers; the other estimators' entry only when there are some
    (so that a record made without them keeps its fingerprint)."""
    settings = {"every": config.gradient_every, "images": config.gradient_images,
                "samples": config.gradient_samples}
    if config.gradient_estimators:
        settings["estimators"] = {
            estimator: {"tau": config.hyperparameters(name, estimator)["tau"],
                        "options": config.method_options.get(estimator, {})}
            for estimator in config.gradient_estimators}
    return settings


def setting_fingerprint(settings: dict) -> str:
    """The hash of a setting's ``settings`` without the device: with ``device="auto"`` a record
    trained on another kind of device answers it too (the numbers are draws of the same
    experiment, and the record names its device)."""
    return layer.fingerprint({k: v for k, v in settings.items() if k != "device_type"})


def make_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    """Adam or RAdam over the stacked parameters. Both are element-wise, so each seed's slice is
    updated exactly as if alone. Adam uses PyTorch's fused kernel where the device has one (one
    pass over the parameters instead of several; benchmarks/vae.py measures what it saves);
    RAdam has no fused kernel and uses foreach."""
    parameters = list(parameters)
    if name == "Adam":
        try:
            return torch.optim.Adam(parameters, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(parameters, lr=lr, foreach=True)
    return torch.optim.RAdam(parameters, lr=lr, foreach=True)


def estimator_for(method: str, config: VAEConfig) -> Callable:
    return layer.estimator(method, config.method_options.get(method))


def _summary(per_seed: List[float]) -> dict:
    values = np.asarray(per_seed, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "n": int(len(values)),
            "per_seed": values.tolist()}


def file_stem(name: str, method: str) -> str:
    """``<name>_<method>`` with "/" (in "ReinMax-1/n") spelled "_", so that it is one file name."""
    return f"{name}_{method.replace('/', '_')}"


def load_images(split: str, subset: Optional[int], root, device) -> torch.Tensor:
    """MNIST grey levels in [0, 1] as ``(N, 784)`` float32 on ``device``; the first ``subset``."""
    images, _ = load_mnist(split, root=root)
    if subset is not None:
        images = images[:subset]
    return images.reshape(len(images), -1).to(device)


def finished_setting(config: VAEConfig, name: str, method: str) -> Optional[dict]:
    """The finished record of one setting in ``config.out_dir`` (None when there is none); an
    error when the file there holds other settings."""
    if config.out_dir is None:
        return None
    settings = settings_of(config, name, method, config.resolved_device())
    path = Path(config.out_dir) / f"{file_stem(name, method)}.json"
    return layer.finished_record(path, setting_fingerprint(settings), config.device,
                                 fields=settings, stored_as="settings")


def train_setting(config: VAEConfig, name: str, method: str, train: torch.Tensor,
                  test: torch.Tensor, *, progress: bool = True,
                  on_epoch_end: Optional[Callable] = None) -> dict:
    """Train all seeds of one setting (``name`` e.g. "8x4", ``method``) as one ensemble.

    Resumes from ``<out_dir>/<name>_<method>.ckpt`` and returns the finished record from
    ``<out_dir>/<name>_<method>.json`` when they exist and match this configuration.
    ``on_epoch_end(name, method, epoch, history)`` is called after each epoch's checkpoint.
    """
    device = config.resolved_device()
    settings = settings_of(config, name, method, device)
    fingerprint = setting_fingerprint(settings)
    record = finished_setting(config, name, method)
    if record is not None:
        return record
    out = Path(config.out_dir) if config.out_dir is not None else None
    record_path = out / f"{file_stem(name, method)}.json" if out else None
    checkpoint_path = out / f"{file_stem(name, method)}.ckpt" if out else None

    # Provenance of the code that trains, taken now: a run lasts hours, and the tree (its commit,
    # its uncommitted changes) may move on before the record is written.
    trained_by = layer.provenance(device)
    C, L = CONFIGURATIONS[name]
    hp = config.hyperparameters(name, method)
    seeds = list(config.seeds)
    model = CategoricalVAE(C, L, seeds, device=device)
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"])
    estimator = estimator_for(method, config)
    noisy = method in NOISY_METHODS
    streams = {"data": seed_generators(seeds, "data", "cpu"),
               "noise": seed_generators(seeds, "noise", device),
               "test": seed_generators(seeds, "test", device),
               "gradient": seed_generators(seeds, "gradient", device)}
    history = {"train_neg_elbo": [], "train_reconstruction": [], "test_epochs": [],
               "test_neg_elbo": [], "epoch_wall_s": [],
               "gradient": {"epochs": [], "cos": [], "rel_bias": [], "rel_bias_mean": [],
                            "rel_std": []}}
    measured = _measured_estimators(config, name, method, estimator, hp["tau"])
    if len(measured) > 1:   # the run's own first, then the others (settings["gradient"])
        history["gradient_estimators"] = {e: {key: [] for key in _QUALITY} for e in measured}
        for other in list(measured)[1:]:   # each its own stream: no one's draws move another's
            streams[f"gradient:{other}"] = seed_generators(seeds, f"gradient:{other}", device)
    start, wall = 0, 0.0
    state = (layer.load_checkpoint(checkpoint_path, fingerprint, device)
             if checkpoint_path is not None else None)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for stream, states in state["generators"].items():
            for generator, saved in zip(streams[stream], states):
                generator.set_state(saved)
        history, start, wall = state["history"], state["epoch"], state["wall_s"]

    N, B = len(train), config.batch_size
    steps = math.ceil(N / B)
    analysed = settings["gradient"] is not None
    test_epochs = {e for e in range(1, config.epochs + 1)
                   if e == config.epochs or (config.test_every and e % config.test_every == 0)}
    bar = progress_bar(range(start, config.epochs), desc=f"{name} {method}", disable=not progress,
               leave=False, initial=start, total=config.epochs)
    for epoch in bar:
        began = time.perf_counter()
        order = torch.stack([torch.randperm(N, generator=g) for g in streams["data"]]).to(device)
        loss_sum = torch.zeros(len(seeds), dtype=torch.float64, device=device)
        rec_sum = torch.zeros_like(loss_sum)
        for step in range(steps):
            x = train[order[:, step * B:(step + 1) * B]]                      # (S, b, 784)
            if step == 0 and analysed and epoch % config.gradient_every == 0:
                _analyse(model, x[:, :config.gradient_images], measured,
                         config.gradient_samples, streams, epoch + 1, history)
            loss, reconstruction = model.neg_elbo(x, estimator, hp["tau"], streams["noise"],
                                                  noisy=noisy)
            optimizer.zero_grad(set_to_none=True)
            loss.sum().backward()                 # seeds are independent: the sum separates
            optimizer.step()
            loss_sum += loss.detach().double() * x.shape[1]
            rec_sum += reconstruction.detach().double() * x.shape[1]
        history["train_neg_elbo"].append((loss_sum / N).tolist())
        history["train_reconstruction"].append((rec_sum / N).tolist())
        if epoch + 1 in test_epochs:
            history["test_epochs"].append(epoch + 1)
            history["test_neg_elbo"].append(model.sampled_neg_elbo(test, streams["test"]).tolist())
        elapsed = time.perf_counter() - began
        history["epoch_wall_s"].append(elapsed)
        wall += elapsed
        if checkpoint_path is not None:
            layer.save_checkpoint(checkpoint_path, {
                "fingerprint": fingerprint, "device_type": device.type, "epoch": epoch + 1,
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "generators": {k: [g.get_state() for g in v] for k, v in streams.items()},
                "history": history, "wall_s": wall})
        bar.set_postfix(train=f"{np.mean(history['train_neg_elbo'][-1]):.2f}")
        if on_epoch_end is not None:
            on_epoch_end(name, method, epoch + 1, history)
    bar.close()

    record = {
        "config": name, "categories": C, "latents": L, "method": method, "hyperparameters": hp,
        "seeds": seeds, "epochs": config.epochs, "train_images": N, "test_images": len(test),
        "batch_size": B, "steps": steps * config.epochs,
        "history": history,
        "final": {"train_neg_elbo": _summary(history["train_neg_elbo"][-1]),
                  "test_neg_elbo": _summary(history["test_neg_elbo"][-1])},
        "wall_s": wall, "settings": settings, "fingerprint": fingerprint,
        "provenance": trained_by,
    }
    if record_path is not None:
        layer.write_json(record_path, record)
        if not config.keep_checkpoints:
            checkpoint_path.unlink(missing_ok=True)
    return record


_QUALITY = ("cos", "rel_bias", "rel_bias_mean", "rel_std")


def _measured_estimators(config: VAEConfig, name: str, method: str, estimator: Callable,
                         tau: float) -> Dict[str, Tuple[Callable, float]]:
    """``{estimator name: (function, temperature)}`` measured at each analysis: the run's own
    method first (its numbers do not depend on what else is measured), then
    ``config.gradient_estimators``, each at its Table 8 temperature for ``name``."""
    measured = {method: (estimator, tau)}
    for other in config.gradient_estimators or ():
        if other not in measured:
            measured[other] = (estimator_for(other, config),
                               config.hyperparameters(name, other)["tau"])
    return measured


def _analyse(model, x, measured, samples, streams, epoch, history) -> None:
    """Figure 4 for every seed on the minibatch ``x`` ``(S, b, 784)``, before its update: each
    measured estimator's mean and spread over ``samples`` estimates against the exact gradient.
    The run's own method (drawing from ``streams["gradient"]``) goes to ``history["gradient"]``,
    as Figure 4 records it; with other estimators (each drawing from its own stream
    ``"gradient:<name>"``), every one also goes to ``history["gradient_estimators"][name]``."""
    own = next(iter(measured))
    rows = {est: {key: [] for key in _QUALITY} for est in measured}
    for s in range(x.shape[0]):
        exact, _ = model.exact_reconstruction_gradient(x[s], s)
        for est, (function, tau) in measured.items():
            stream = streams["gradient" if est == own else f"gradient:{est}"]
            mean, std = model.estimator_gradient_moments(x[s], s, function, tau, samples,
                                                         stream[s])
            for key, value in gradient_quality(exact, mean, std).items():
                rows[est][key].append(value)
    history["gradient"]["epochs"].append(epoch)
    for key, values in rows[own].items():
        history["gradient"][key].append(values)
    for est, by_key in history.get("gradient_estimators", {}).items():
        for key in _QUALITY:
            by_key[key].append(rows[est][key])


class _Images:
    """The training and test images, loaded on first use."""

    def __init__(self, config: VAEConfig, device: torch.device):
        self.config, self.device, self.loaded = config, device, None

    def get(self) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.loaded is None:
            c = self.config
            self.loaded = (load_images("train", c.train_subset, c.data_root, self.device),
                           load_images("test", c.test_subset, c.data_root, self.device))
        return self.loaded


def run(config: VAEConfig, *, progress: bool = True,
        on_epoch_end: Optional[Callable] = None) -> dict:
    """Run every (configuration, method) of ``config``; returns the results record.

    ``results["runs"]`` holds one record per setting (see ``train_setting``): per-epoch
    curves per seed (``history``), the final train and test -ELBO as mean, std (numpy's, ddof=0)
    and per-seed values (``final``), hyperparameters, wall time and provenance. With ``out_dir``,
    the combined record is also written to ``<out_dir>/results.json``.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig; got {type(config).__name__}")
    began = time.perf_counter()
    device = config.resolved_device()
    images = _Images(config, device)
    runs = []
    for name in config.configs:
        for method in config.methods:
            # A finished setting is read back without loading MNIST at all.
            record = finished_setting(config, name, method)
            if record is None:
                record = train_setting(config, name, method, *images.get(), progress=progress,
                                       on_epoch_end=on_epoch_end)
            runs.append(record)
    return layer.finish(EXPERIMENT, config, runs, began, device)


def final_table(results: dict, metric: str = "train_neg_elbo") -> Dict[Tuple[str, str], dict]:
    """``{(config, method): {"mean", "std", "n", "per_seed"}}`` of the last epoch's ``metric``
    ("train_neg_elbo" or "test_neg_elbo"), as the book shows it: ``std`` is the sample standard
    deviation (ddof = 1) of the per-seed values (0 for one seed). The records store ddof = 0
    (``final[metric]["std"]``) and are not rewritten; the book's test policy shows ddof = 1."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    table = {}
    for r in results["runs"]:
        values = [float(v) for v in r["final"][metric]["per_seed"]]
        table[r["config"], r["method"]] = (statistics.summary(values, ddof=1) if len(values) > 1
                                           else {**statistics.summary(values), "std": 0.0})
    return table


