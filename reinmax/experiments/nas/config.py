"""The architecture-search experiment's settings: the three arms, the validated ``NASConfig`` and
its paper scale (NATS-Bench's GDAS protocol)."""
import dataclasses
from typing import Any, Dict, List, Optional

import torch

from reinmax.estimators import schedules
from reinmax.experiments import layer

OWNER = "NASConfig"

# The three arms. GDAS+STGS is GDAS as NATS-Bench runs it; GDAS+ReinMax is the paper's Appendix
# F.2 (temperature 1.0, weight decay of the architecture logits 0.09); the third differs from the
# first in the estimator and its temperature only and from the second in the weight decay only.
ARMS: Dict[str, Dict[str, Any]] = {
    "GDAS+STGS": {"method": "STGS", "tau": "gdas_linear", "arch_weight_decay": 1e-3},
    "GDAS+ReinMax": {"method": "ReinMax", "tau": 1.0, "arch_weight_decay": 0.09},
    "GDAS+ReinMax-wd1e-3": {"method": "ReinMax", "tau": 1.0, "arch_weight_decay": 1e-3},
}

DATASETS = {"mnist": {"classes": 10, "channels": 1},
            "cifar10": {"classes": 10, "channels": 3},
            "cifar100": {"classes": 100, "channels": 3}}
IMAGENET16 = ("ImageNet16-120 has no loader here: its files are distributed by NATS-Bench's authors "
              "(https://github.com/D-X-Y/NATS-Bench, 'Preparation and Download'), not by a public URL "
              "with a checksum; use dataset='cifar10' or 'cifar100'")


@dataclasses.dataclass
class NASConfig:
    """Everything that decides a search-and-retrain study. Defaults: the book's MNIST scale.

    * search: ``search_images`` training images (the first ones), the first half for the network's
      weights, the second half for the architecture logits (CIFAR at ``None``: NATS-Bench's
      splits, see ``reinmax.experiments.nas.training``); ``epochs`` epochs of batch ``batch_size``;
      network SGD (``weight_lr`` cosine to ``weight_lr_min`` per step, momentum 0.9, Nesterov,
      weight decay 5e-4), architecture Adam (``arch_lr``, betas (0.5, 0.999), the arm's weight
      decay); GDAS's temperature from ``tau_max`` to ``tau_min``.
    * retraining from scratch (``retrain_epochs > 0``): every found cell and ``random_cells``
      uniformly drawn cells (drawn with ``random_seed``), trained on ``retrain_images`` training
      images with seed ``retrain_seed`` and the same SGD, tested on ``test_images`` test images.
    """
    dataset: str = "mnist"
    arms: List[str] = dataclasses.field(default_factory=lambda: list(ARMS))
    seeds: List[int] = dataclasses.field(default_factory=lambda: [0])
    channels: int = 8
    cells: int = 1
    epochs: int = 10
    batch_size: int = 64
    search_images: Optional[int] = 6000
    weight_lr: float = 0.025
    weight_lr_min: float = 0.001
    arch_lr: float = 3e-4
    tau_max: float = 10.0
    tau_min: float = 0.1
    retrain_epochs: int = 3
    retrain_images: Optional[int] = 10000
    test_images: Optional[int] = 10000
    retrain_seed: int = 0
    random_cells: int = 0
    random_seed: int = 0
    device: str = "auto"
    data_root: Optional[str] = None
    out_dir: Optional[str] = None
    keep_checkpoints: bool = False

    def __post_init__(self):
        if self.dataset == "ImageNet16-120":
            layer.fail(OWNER, "dataset", self.dataset, f"one of {list(DATASETS)} ({IMAGENET16})")
        if self.dataset not in DATASETS:
            layer.fail(OWNER, "dataset", self.dataset, f"one of {list(DATASETS)}")
        self.arms = layer.names(OWNER, "arms", self.arms, list(ARMS))
        self.seeds = layer.seeds(OWNER, self.seeds)
        for name in ("channels", "cells", "epochs", "batch_size"):
            setattr(self, name, layer.positive_int(OWNER, name, getattr(self, name)))
        for name in ("search_images", "retrain_images", "test_images"):
            setattr(self, name, layer.positive_int(OWNER, name, getattr(self, name), allow_none=True))
        if self.search_images is not None and self.search_images < 2:
            layer.fail(OWNER, "search_images", self.search_images, "an integer >= 2 (split in halves) or None")
        for name in ("weight_lr", "weight_lr_min", "arch_lr", "tau_max", "tau_min"):
            setattr(self, name, layer.positive_number(OWNER, name, getattr(self, name)))
        if self.tau_min > self.tau_max:
            layer.fail(OWNER, "tau_min", self.tau_min, f"<= tau_max={self.tau_max}")
        for name in ("retrain_epochs", "retrain_seed", "random_cells", "random_seed"):
            setattr(self, name, layer.non_negative_int(OWNER, name, getattr(self, name)))
        if self.random_cells and not self.retrain_epochs:
            layer.fail(OWNER, "random_cells", self.random_cells,
                       "0 when retrain_epochs=0 (random cells are only retrained, never searched)")
        self.device = layer.check_device(OWNER, self.device)
        if not isinstance(self.keep_checkpoints, bool):
            layer.fail(OWNER, "keep_checkpoints", self.keep_checkpoints, "True or False")
        for name in ("data_root", "out_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str,)):
                value = str(value)
            setattr(self, name, value)

    @classmethod
    def paper_scale(cls, **overrides) -> "NASConfig":
        """NATS-Bench's GDAS: CIFAR-10 (25,000 / 25,000 split of the training set), C = 16,
        N = 5, 100 epochs, batch 64, NATS-Bench's three seeds; the found cells are evaluated by
        lookup in the benchmark (``reinmax.experiments.nas.lookup``), not retrained."""
        settings = dict(dataset="cifar10", channels=16, cells=5, epochs=100, batch_size=64,
                        search_images=None, seeds=[777, 888, 999], retrain_epochs=0,
                        random_cells=0)
        settings.update(overrides)
        return cls(**settings)

    def resolved_device(self) -> torch.device:
        return layer.resolve_device(self.device)

    def schedule(self, arm: str):
        """The arm's temperature as a function of the epoch."""
        tau = ARMS[arm]["tau"]
        if tau == "gdas_linear":
            return schedules.gdas_linear(self.epochs, self.tau_max, self.tau_min)
        return schedules.constant(tau)
