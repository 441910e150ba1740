"""GDAS's search and retraining from scratch (Section 6.4, Table 4).

``search(config, arm, seed, data)``: one GDAS search of the NATS-Bench cell. Every step is a
weight update on a batch of the weight half of the data, then an architecture update on a batch
of the other half, each with its own architecture sample (NATS-Bench's ``search-cell.py``).
Recorded per epoch: the temperature, the losses and accuracies of both updates, the architecture
logits, the per-edge entropy of ``softmax(alpha)`` and the argmax cell. Checkpointed after every
epoch and resumed from there; a finished search is ``<out_dir>/search/<arm>_s<seed>.json``.

``retrain(config, genotype, data)``: a fixed cell trained from scratch with ordinary batch norms,
tested on the test images: ``<out_dir>/retrain/<cell>_s<retrain_seed>.json`` (one per distinct
cell, so a cell found twice is trained once; a retraining is short and restarts if interrupted).

``run(config) -> record``: every arm and seed searched, every found cell and ``random_cells``
random cells retrained; the combined record at ``<out_dir>/results.json``.
"""
import math
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from reinmax.experiments import layer, progress_bar
from reinmax.models.nas import (OPS, NASNetwork, architecture_entropy, count_parameter_free,
                                gdas_weights, genotype_from_str, genotype_to_str, random_genotype)
from .config import ARMS, DATASETS, NASConfig

EXPERIMENT = "nas_gdas"
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = {"cifar10": (0.4914, 0.4822, 0.4465), "cifar100": (0.5071, 0.4865, 0.4409)}
CIFAR_STD = {"cifar10": (0.2470, 0.2435, 0.2616), "cifar100": (0.2673, 0.2564, 0.2762)}
SHORT = {"none": "no", "skip_connect": "sk", "nor_conv_1x1": "c1", "nor_conv_3x3": "c3",
         "avg_pool_3x3": "ap"}


# ------------------------------------------------------------------------- data
def load_split(dataset: str, split: str, root=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Normalised images ``(N, channels, H, W)`` and labels of ``split`` ("train" or "test")."""
    if dataset == "mnist":
        from reinmax.data.mnist import load_mnist
        images, labels = load_mnist(split, root=root)
        return ((images - MNIST_MEAN) / MNIST_STD).unsqueeze(1), labels
    from reinmax.data.cifar import load_cifar
    images, labels = load_cifar(dataset, split, root=root)
    mean = torch.tensor(CIFAR_MEAN[dataset]).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR_STD[dataset]).view(1, 3, 1, 1)
    return (images - mean) / std, labels


def search_split(config: NASConfig) -> Dict[str, Tuple[torch.Tensor, torch.Tensor]]:
    """The weight half and the architecture half. MNIST (and CIFAR with ``search_images`` set):
    the first ``search_images`` training images, first half / second half. CIFAR at ``None``
    (NATS-Bench's sizes; its own split files are not reproduced): CIFAR-10, the 50,000 training
    images halved by a fixed permutation; CIFAR-100, all 50,000 for the weights and 5,000 of the
    test images (a fixed permutation's first half) for the architecture."""
    images, labels = load_split(config.dataset, "train", config.data_root)
    if config.search_images is not None:
        n = min(config.search_images, len(images))
        half = n // 2
        return {"weights": (images[:half], labels[:half]),
                "arch": (images[half:2 * half], labels[half:2 * half])}
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    if config.dataset == "cifar10":
        a, b = order[:len(order) // 2], order[len(order) // 2:]
        return {"weights": (images[a], labels[a]), "arch": (images[b], labels[b])}
    test_images, test_labels = load_split(config.dataset, "test", config.data_root)
    valid = torch.randperm(len(test_images), generator=torch.Generator().manual_seed(0))
    valid = valid[:len(valid) // 2]
    return {"weights": (images, labels), "arch": (test_images[valid], test_labels[valid])}


def augment(x: torch.Tensor, dataset: str, generator: torch.Generator) -> torch.Tensor:
    """CIFAR: random crop with 4 pixels of zero padding and a random horizontal flip (NATS-Bench's
    augmentation); MNIST: none."""
    if dataset == "mnist":
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=generator)
    dx = torch.randint(0, 9, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    out = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])
    out[flip] = out[flip].flip(-1)
    return out


# ------------------------------------------------------------------------- helpers
def cell_stem(genotype) -> str:
    """A file-name form of a cell, one short code per edge: ``c3-c3-ap-sk-c3-sk``."""
    return "-".join(SHORT[op] for op in genotype)


def _generators(seed: int, device: torch.device) -> Dict[str, torch.Generator]:
    streams = {}
    for offset, name in enumerate(("init", "data", "arch")):
        where = device if name == "arch" else "cpu"
        streams[name] = torch.Generator(device=where).manual_seed(seed * 1000 + offset)
    return streams


def build_network(config: NASConfig, genotype, seed: int, device: torch.device) -> NASNetwork:
    spec = DATASETS[config.dataset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = NASNetwork(config.channels, config.cells, spec["classes"], spec["channels"],
                             genotype=genotype)
    return network.to(device)


def weight_optimizer(config: NASConfig, network: NASNetwork, total_steps: int):
    optimizer = torch.optim.SGD(network.weights(), lr=config.weight_lr, momentum=0.9,
                                nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1),
                                                           eta_min=config.weight_lr_min)
    return optimizer, scheduler


def search_settings(config: NASConfig, arm: str, seed: int) -> dict:
    """What decides one search's numbers (its hash is the record's fingerprint)."""
    return {"arm": arm, **ARMS[arm], "seed": seed, "dataset": config.dataset,
            "channels": config.channels, "cells": config.cells, "epochs": config.epochs,
            "batch_size": config.batch_size, "search_images": config.search_images,
            "weight_lr": config.weight_lr, "weight_lr_min": config.weight_lr_min,
            "arch_lr": config.arch_lr, "schedule": repr(config.schedule(arm))}


def retrain_settings(config: NASConfig, genotype) -> dict:
    return {"genotype": genotype_to_str(genotype), "seed": config.retrain_seed,
            "dataset": config.dataset, "channels": config.channels, "cells": config.cells,
            "epochs": config.retrain_epochs, "batch_size": config.batch_size,
            "train_images": config.retrain_images, "test_images": config.test_images,
            "weight_lr": config.weight_lr, "weight_lr_min": config.weight_lr_min}


def _paths(config: NASConfig, folder: str, stem: str):
    if config.out_dir is None:
        return None, None
    out = Path(config.out_dir) / folder
    return out / f"{stem}.json", out / f"{stem}.ckpt"


def search_stem(arm: str, seed: int) -> str:
    return f"{arm}_s{seed}"


# ------------------------------------------------------------------------- search
def search_step(network: NASNetwork, estimator: Callable, tau: float, w_opt, a_opt, batch,
                arch_batch, generator=None) -> np.ndarray:
    """One GDAS step: the weight update on ``batch = (x, y)``, then the architecture update on
    ``arch_batch``, each on its own architecture sample. Returns the summed losses and correct
    counts ``[weight loss, weight correct, arch loss, arch correct]`` (losses times batch size)."""
    (x, y), (xv, yv) = batch, arch_batch
    logits = network(x, estimator, tau, generator)
    loss = F.cross_entropy(logits, y)
    w_opt.zero_grad(set_to_none=True)
    loss.backward()
    w_opt.step()
    out = [loss.item() * len(y), (logits.argmax(-1) == y).sum().item()]
    logits = network(xv, estimator, tau, generator)
    loss = F.cross_entropy(logits, yv)
    a_opt.zero_grad(set_to_none=True)
    network.zero_grad(set_to_none=True)
    loss.backward()
    a_opt.step()
    return np.array(out + [loss.item() * len(yv), (logits.argmax(-1) == yv).sum().item()])


def arch_optimizer(network: NASNetwork, config: NASConfig, arm: str) -> torch.optim.Adam:
    """NATS-Bench's Adam for the architecture logits, with the arm's weight decay."""
    return torch.optim.Adam([network.alpha], lr=config.arch_lr, betas=(0.5, 0.999),
                            weight_decay=ARMS[arm]["arch_weight_decay"], eps=1e-8)


def search(config: NASConfig, arm: str, seed: int, data: Callable[[], dict], *,
           progress: bool = True) -> dict:
    """One GDAS search (see the module docstring); ``data()`` returns :func:`search_split`'s
    halves (called only when there is training to do)."""
    device = config.resolved_device()
    settings = search_settings(config, arm, seed)
    fingerprint = layer.fingerprint(settings)
    record_path, checkpoint_path = _paths(config, "search", search_stem(arm, seed))
    if record_path is not None:
        found = layer.finished_record(record_path, fingerprint, config.device, fields=settings,
                                      stored_as="settings")
        if found is not None:
            return found
    trained_by = layer.provenance(device)
    split = data()
    (xw, yw), (xa, ya) = split["weights"], split["arch"]
    estimator = layer.estimator(ARMS[arm]["method"])
    schedule = config.schedule(arm)
    streams = _generators(seed, device)
    network = build_network(config, None, seed, device)
    B = config.batch_size
    steps = math.ceil(len(xw) / B)
    w_opt, w_sched = weight_optimizer(config, network, steps * config.epochs)
    a_opt = arch_optimizer(network, config, arm)
    history = {key: [] for key in ("tau", "weight_loss", "weight_accuracy", "arch_loss",
                                   "arch_accuracy", "alpha", "entropy", "genotype", "epoch_wall_s")}
    history["alpha_init"] = network.alpha.detach().cpu().tolist()
    start, wall = 0, 0.0
    state = layer.load_checkpoint(checkpoint_path, fingerprint, device) if checkpoint_path else None
    if state is not None:
        network.load_state_dict(state["network"])
        w_opt.load_state_dict(state["w_opt"])
        w_sched.load_state_dict(state["w_sched"])
        a_opt.load_state_dict(state["a_opt"])
        for name, saved in state["generators"].items():
            streams[name].set_state(saved)
        history, start, wall = state["history"], state["epoch"], state["wall_s"]

    network.train()
    bar = progress_bar(range(start, config.epochs), desc=f"search {arm} s{seed}", leave=False,
                       disable=not progress, initial=start, total=config.epochs)
    for epoch in bar:
        began = time.perf_counter()
        tau = schedule(epoch)
        w_order = torch.randperm(len(xw), generator=streams["data"])
        # The architecture half is cycled when it is smaller (CIFAR-100: 5,000 vs 50,000).
        a_order = torch.cat([torch.randperm(len(xa), generator=streams["data"])
                             for _ in range(math.ceil(len(xw) / len(xa)))])
        sums = np.zeros(4)
        for step in range(steps):
            wi, ai = w_order[step * B:(step + 1) * B], a_order[step * B:(step + 1) * B]
            x = augment(xw[wi], config.dataset, streams["data"]).to(device)
            y = yw[wi].to(device)
            xv = augment(xa[ai], config.dataset, streams["data"]).to(device)
            yv = ya[ai].to(device)
            sums += search_step(network, estimator, tau, w_opt, a_opt, (x, y), (xv, yv),
                                streams["arch"])
            w_sched.step()
        n = len(xw)
        history["tau"].append(tau)
        history["weight_loss"].append(sums[0] / n)
        history["weight_accuracy"].append(sums[1] / n)
        history["arch_loss"].append(sums[2] / n)
        history["arch_accuracy"].append(sums[3] / n)
        history["alpha"].append(network.alpha.detach().cpu().tolist())
        history["entropy"].append(architecture_entropy(network.alpha).tolist())
        history["genotype"].append(genotype_to_str(network.genotype()))
        elapsed = time.perf_counter() - began
        history["epoch_wall_s"].append(elapsed)
        wall += elapsed
        if checkpoint_path is not None:
            layer.save_checkpoint(checkpoint_path, {
                "fingerprint": fingerprint, "device_type": device.type, "epoch": epoch + 1,
                "network": network.state_dict(), "w_opt": w_opt.state_dict(),
                "w_sched": w_sched.state_dict(), "a_opt": a_opt.state_dict(),
                "generators": {k: g.get_state() for k, g in streams.items()},
                "history": history, "wall_s": wall})
        bar.set_postfix(tau=f"{tau:.2f}", arch_acc=f"{history['arch_accuracy'][-1]:.3f}")
    bar.close()
    genotype = network.genotype()
    record = {"arm": arm, **ARMS[arm], "seed": seed, "epochs": config.epochs,
              "steps": steps * config.epochs, "weight_images": len(xw), "arch_images": len(xa),
              "history": history, "genotype": genotype_to_str(genotype),
              "parameter_free": count_parameter_free(genotype), "wall_s": wall,
              "settings": settings, "fingerprint": fingerprint, "provenance": trained_by}
    if record_path is not None:
        layer.write_json(record_path, record)
        if not config.keep_checkpoints:
            checkpoint_path.unlink(missing_ok=True)
    return record


# ------------------------------------------------------------------------- retraining
@torch.no_grad()
def _accuracy(network, x, y, device, batch: int = 500) -> float:
    network.eval()
    correct = 0
    for i in range(0, len(x), batch):
        correct += (network(x[i:i + batch].to(device)).argmax(-1).cpu() == y[i:i + batch]).sum().item()
    network.train()
    return correct / len(x)


def retrain(config: NASConfig, genotype, data: Callable[[], dict], *, progress: bool = True) -> dict:
    """Train the fixed cell ``genotype`` from scratch and test it (see the module docstring);
    ``data()`` returns ``{"train": (x, y), "test": (x, y)}``."""
    if isinstance(genotype, str):
        genotype = genotype_from_str(genotype)
    if not config.retrain_epochs:
        layer.fail("retrain", "config.retrain_epochs", config.retrain_epochs, ">= 1 to retrain")
    device = config.resolved_device()
    settings = retrain_settings(config, genotype)
    fingerprint = layer.fingerprint(settings)
    record_path, _ = _paths(config, "retrain", f"{cell_stem(genotype)}_s{config.retrain_seed}")
    if record_path is not None:
        found = layer.finished_record(record_path, fingerprint, config.device, fields=settings,
                                      stored_as="settings")
        if found is not None:
            return found
    trained_by = layer.provenance(device)
    began = time.perf_counter()
    loaded = data()
    (x, y), (xt, yt) = loaded["train"], loaded["test"]
    streams = _generators(config.retrain_seed, device)
    network = build_network(config, genotype, config.retrain_seed, device)
    B = config.batch_size
    steps = math.ceil(len(x) / B)
    optimizer, scheduler = weight_optimizer(config, network, steps * config.retrain_epochs)
    losses = []
    network.train()
    for epoch in progress_bar(range(config.retrain_epochs), desc=f"retrain {cell_stem(genotype)}",
                              leave=False, disable=not progress):
        order = torch.randperm(len(x), generator=streams["data"])
        total = 0.0
        for step in range(steps):
            i = order[step * B:(step + 1) * B]
            loss = F.cross_entropy(network(augment(x[i], config.dataset, streams["data"]).to(device)),
                                   y[i].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(i)
        losses.append(total / len(x))
    record = {"genotype": genotype_to_str(genotype), "parameter_free": count_parameter_free(genotype),
              "parameters": sum(p.numel() for p in network.parameters()),
              "train_loss": losses, "test_accuracy": _accuracy(network, xt, yt, device),
              "train_images": len(x), "test_images": len(xt),
              "wall_s": time.perf_counter() - began, "settings": settings,
              "fingerprint": fingerprint, "provenance": trained_by}
    if record_path is not None:
        layer.write_json(record_path, record)
    return record


def random_cells(config: NASConfig) -> List[Tuple[str, ...]]:
    """The ``random_cells`` reference cells, drawn uniformly with ``random_seed``."""
    generator = torch.Generator().manual_seed(config.random_seed)
    return [random_genotype(generator) for _ in range(config.random_cells)]


# ------------------------------------------------------------------------- the study
class _Lazy:
    def __init__(self, load):
        self.load, self.value = load, None

    def __call__(self):
        if self.value is None:
            self.value = self.load()
        return self.value


def run(config: NASConfig, *, progress: bool = True) -> dict:
    """Every arm and seed searched, then (``retrain_epochs > 0``) each found cell and the random
    cells retrained. ``record["runs"]``: one search record per (arm, seed), with ``retrain`` (the
    found cell's retraining record) added; ``record["random_cells"]``: the random cells'
    retraining records."""
    if not isinstance(config, NASConfig):
        raise TypeError(f"config must be a NASConfig; got {type(config).__name__}")
    began = time.perf_counter()
    device = config.resolved_device()
    searching = _Lazy(lambda: search_split(config))

    def retrain_data():
        x, y = load_split(config.dataset, "train", config.data_root)
        xt, yt = load_split(config.dataset, "test", config.data_root)
        n, nt = config.retrain_images or len(x), config.test_images or len(xt)
        return {"train": (x[:n], y[:n]), "test": (xt[:nt], yt[:nt])}
    retraining = _Lazy(retrain_data)
    runs = []
    for arm in config.arms:
        for seed in config.seeds:
            runs.append(dict(search(config, arm, seed, searching, progress=progress)))
    randoms = []
    if config.retrain_epochs:
        for r in runs:
            r["retrain"] = retrain(config, r["genotype"], retraining, progress=progress)
        randoms = [retrain(config, g, retraining, progress=progress) for g in random_cells(config)]
    return layer.finish(EXPERIMENT, config, runs, began, device, random_cells=randoms)
