"""The categorical MNIST-VAE experiment (Section 6.3, 6.6, Appendix F.2/F.5; Tables 2, 8-11;
Figures 2, 4 and 6).

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
:func:`temperature_grid`: every method of a config at every temperature of a grid, resumable the
same way; :func:`temperature_table`, :func:`temperature_matrix` and
:func:`temperature_preferences` read its record.
"""
import dataclasses
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import get_estimator, registry
from ..data.mnist import load_mnist
from ..models.vae import CategoricalVAE, gradient_quality, seed_generators
from ..results import equal_apart_from, provenance, read_json, write_json
from . import progress_bar

CONFIGURATIONS: Dict[str, Tuple[int, int]] = {
    "8x4": (8, 4), "4x24": (4, 24), "8x16": (8, 16),
    "16x12": (16, 12), "64x8": (64, 8), "10x30": (10, 30),
}
"""The paper's settings, ``"CxL"`` -> (categories C, latent variables L), as its tables name them."""

METHODS = ("STGS", "GR-MCK", "GST-1.0", "ST", "ReinMax")
"""The five methods of Table 2, in the paper's column order."""

FIGURE6_METHODS = ("ReinMax-1/n", "ReinMax-1/n-authors")
"""Figure 6's ReinMax with the uniform baseline (1/n) sum_i f(I_i) instead of E[f(D)]: the
estimator derived in PROTOCOLS.md (``reinmax.reinmax_uniform_baseline``) and the authors' variant
that the published figure measured (``reinmax.reinmax_uniform_baseline_authors``). They train with
ReinMax's Table 8 row (``HYPERPARAMETERS_OF``)."""

ALL_METHODS = METHODS + FIGURE6_METHODS
"""Every method the experiment runs: Table 2's five, then Figure 6's two."""

HYPERPARAMETERS_OF = {"ReinMax-1/n": "ReinMax", "ReinMax-1/n-authors": "ReinMax"}
"""Methods without a Table 8 row of their own, and the method whose row they use."""

TEMPERATURES = (0.1, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 4.0, 5.0)
"""Figure 2's temperature grid (Section 6.6)."""

FIGURE2_CONFIGS = ("4x24", "8x16", "16x12", "64x8")
"""Figure 2's settings: the four with a latent space of 2^48 points."""

PAPER_TEMPERATURE_SIDE = {"STGS": "tau <= 1", "GST-1.0": "tau <= 1", "GR-MCK": "tau <= 1",
                          "ST": "tau >= 1", "ReinMax": "tau >= 1"}
"""Section 6.6 / Figure 2's claim: which side of tau = 1 each method's best temperature is on."""

OPTIMIZERS = {"Adam": torch.optim.Adam, "RAdam": torch.optim.RAdam}

NOISY_METHODS = registry.NameSet(draws_noise=True)
"""Methods that draw Gumbel noise beyond the sampled category (called once per seed)."""

TABLE8: Dict[str, Dict[str, Tuple[str, float, float]]] = {
    # configuration: method: (optimizer, learning rate, temperature)   -- the paper's Table 8
    "8x4": {"STGS": ("Adam", 3e-4, 0.5), "GR-MCK": ("Adam", 5e-4, 0.5),
            "GST-1.0": ("Adam", 5e-4, 0.7), "ST": ("Adam", 1e-3, 1.3),
            "ReinMax": ("Adam", 5e-4, 1.3)},
    "4x24": {"STGS": ("RAdam", 5e-4, 0.3), "GR-MCK": ("RAdam", 5e-4, 0.3),
             "GST-1.0": ("RAdam", 5e-4, 0.5), "ST": ("RAdam", 1e-3, 1.5),
             "ReinMax": ("RAdam", 5e-4, 1.5)},
    "8x16": {"STGS": ("RAdam", 5e-4, 0.5), "GR-MCK": ("RAdam", 7e-4, 0.7),
             "GST-1.0": ("RAdam", 7e-4, 0.5), "ST": ("RAdam", 1e-3, 1.5),
             "ReinMax": ("RAdam", 7e-4, 1.5)},
    "16x12": {"STGS": ("RAdam", 7e-4, 0.7), "GR-MCK": ("Adam", 5e-4, 1.0),
              "GST-1.0": ("RAdam", 7e-4, 0.5), "ST": ("Adam", 5e-4, 1.5),
              "ReinMax": ("RAdam", 7e-4, 1.5)},
    "64x8": {"STGS": ("RAdam", 7e-4, 0.7), "GR-MCK": ("Adam", 7e-4, 2.0),
             "GST-1.0": ("RAdam", 7e-4, 0.7), "ST": ("Adam", 5e-4, 1.5),
             "ReinMax": ("RAdam", 5e-4, 1.5)},
    "10x30": {"STGS": ("RAdam", 5e-4, 0.5), "GR-MCK": ("RAdam", 5e-4, 1.0),
              "GST-1.0": ("RAdam", 5e-4, 0.5), "ST": ("RAdam", 7e-4, 1.4),
              "ReinMax": ("RAdam", 5e-4, 1.3)},
}

TRAIN_SIZE, TEST_SIZE = 60000, 10000
HYPERPARAMETER_KEYS = ("optimizer", "lr", "tau")


def _canonical(name, allowed: Sequence[str], what: str) -> str:
    """``name`` spelled as in ``allowed`` (case-insensitive), or a ValueError listing them."""
    if isinstance(name, str):
        for candidate in allowed:
            if candidate.lower() == name.strip().lower():
                return candidate
    raise ValueError(f"unknown {what} {name!r}; available: {', '.join(allowed)}")


def _names(value, allowed, what: str, field: str) -> Tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{field} must be a list of names; got {value!r}") from None
    if not value:
        raise ValueError(f"{field} must not be empty; available: {', '.join(allowed)}")
    names = tuple(_canonical(v, allowed, what) for v in value)
    if len(set(names)) != len(names):
        raise ValueError(f"{field} lists a name twice: {value!r}")
    return names


def _positive_int(field: str, value, allow_none: bool = False, maximum: Optional[int] = None):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        allowed = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(f"{field} must be {allowed}; got {field}={value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{field} must be at most {maximum}; got {field}={value!r}")
    return int(value)


def _non_negative_int(field: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{field} must be a non-negative integer; got {field}={value!r}")
    return int(value)


@dataclasses.dataclass
class VAEConfig:
    """What to run. Validated on construction: a bad value is a ValueError naming the field,
    the value and what is allowed. The defaults are the paper's protocol for 8x4 with 10 seeds.

    Fields::

        configs        settings "CxL" among CONFIGURATIONS (8x4, 4x24, 8x16, 16x12, 64x8, 10x30)
        methods        among METHODS, or FIGURE6_METHODS (ReinMax's Table 8 row); case-insensitive
        seeds          distinct non-negative integers; all seeds of a setting train as one batched model
        epochs         passes over the training images (paper: 160)
        train_subset   use the first N training images (None: all 60,000)
        test_subset    use the first N test images (None: all 10,000)
        batch_size     images per step (paper: 100)
        test_every     test -ELBO every k epochs and after the last (0: only after the last)
        gradient_every Figure 4's analysis every k epochs, at epoch 1, 1 + k, ... (0: never);
                       needs a code space small enough to enumerate (8x4)
        gradient_images, gradient_samples   images of the first minibatch analysed (paper: 100) and
                       single-sample estimates averaged (paper: 1,024)
        gradient_methods  methods analysed (None: all of methods)
        grmck_samples  GR-MCK's number of Gumbel draws K (paper: 1,000)
        overrides      per-method changes to Table 8, e.g. {"ReinMax": {"tau": 1.0}}; keys
                       optimizer ("Adam", "RAdam"), lr, tau
        device         "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
        out_dir        checkpoints and per-setting results here (None: nothing is written)
        data_root      where MNIST is found (None: $REINMAX_DATA, then the user cache)
        keep_checkpoints  keep each setting's last checkpoint after it finishes (they are large)
    """
    configs: Tuple[str, ...] = ("8x4",)
    methods: Tuple[str, ...] = METHODS
    seeds: Tuple[int, ...] = tuple(range(10))
    epochs: int = 160
    train_subset: Optional[int] = None
    test_subset: Optional[int] = None
    batch_size: int = 100
    test_every: int = 1
    gradient_every: int = 0
    gradient_images: int = 100
    gradient_samples: int = 1024
    gradient_methods: Optional[Tuple[str, ...]] = None
    grmck_samples: int = 1000
    overrides: Dict[str, Dict[str, object]] = dataclasses.field(default_factory=dict)
    device: str = "auto"
    out_dir: Optional[str] = None
    data_root: Optional[str] = None
    keep_checkpoints: bool = False

    def __post_init__(self):
        self.configs = _names(self.configs, tuple(CONFIGURATIONS), "configuration C x L", "configs")
        self.methods = _names(self.methods, ALL_METHODS, "method", "methods")
        seeds = (self.seeds,) if isinstance(self.seeds, (int, np.integer)) else self.seeds
        try:
            seeds = tuple(seeds)
        except TypeError:
            raise ValueError(f"seeds must be a list of non-negative integers; got {self.seeds!r}") from None
        if not seeds:
            raise ValueError("seeds must not be empty")
        self.seeds = tuple(_non_negative_int("seeds", s) for s in seeds)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct; got seeds={self.seeds!r}")
        self.epochs = _positive_int("epochs", self.epochs)
        self.train_subset = _positive_int("train_subset", self.train_subset, True, TRAIN_SIZE)
        self.test_subset = _positive_int("test_subset", self.test_subset, True, TEST_SIZE)
        self.batch_size = _positive_int("batch_size", self.batch_size)
        self.test_every = _non_negative_int("test_every", self.test_every)
        self.gradient_every = _non_negative_int("gradient_every", self.gradient_every)
        self.gradient_images = _positive_int("gradient_images", self.gradient_images)
        self.gradient_samples = _positive_int("gradient_samples", self.gradient_samples)
        self.grmck_samples = _positive_int("grmck_samples", self.grmck_samples)
        if self.gradient_methods is not None:
            self.gradient_methods = _names(self.gradient_methods, ALL_METHODS, "method",
                                           "gradient_methods")
        if self.gradient_every:
            if self.gradient_images > self.batch_size:
                raise ValueError(f"gradient_images={self.gradient_images} exceeds batch_size="
                                 f"{self.batch_size}: the analysis uses the first minibatch")
            for name in self.configs:
                C, L = CONFIGURATIONS[name]
                if C ** L > 2 ** 16:
                    raise ValueError(f"gradient_every needs a code space small enough to enumerate; "
                                     f"{name} has {C}^{L} codes (use configs=('8x4',) for Figure 4)")
        if not isinstance(self.overrides, dict):
            raise ValueError(f"overrides must be a dict {{method: {{key: value}}}}; got {self.overrides!r}")
        overrides = {}
        for method, changes in self.overrides.items():
            method = _canonical(method, ALL_METHODS, "method in overrides")
            if not isinstance(changes, dict):
                raise ValueError(f"overrides[{method!r}] must be a dict with keys "
                                 f"{', '.join(HYPERPARAMETER_KEYS)}; got {changes!r}")
            clean = {}
            for key, value in changes.items():
                if key not in HYPERPARAMETER_KEYS:
                    raise ValueError(f"unknown key {key!r} in overrides[{method!r}]; allowed: "
                                     f"{', '.join(HYPERPARAMETER_KEYS)}")
                if key == "optimizer":
                    value = _canonical(value, tuple(OPTIMIZERS), "optimizer")
                elif (isinstance(value, bool) or not isinstance(value, (int, float))
                      or not math.isfinite(value) or value <= 0):
                    raise ValueError(f"overrides[{method!r}][{key!r}] must be a positive number; got {value!r}")
                clean[key] = value if key == "optimizer" else float(value)
            overrides[method] = clean
        self.overrides = overrides
        if not isinstance(self.device, str) or not (
                self.device in ("auto", "cpu", "cuda") or
                (self.device.startswith("cuda:") and self.device[5:].isdigit())):
            raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'; got device={self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available here; use 'auto' or 'cpu'")
        if not isinstance(self.keep_checkpoints, bool):
            raise ValueError(f"keep_checkpoints must be True or False; got {self.keep_checkpoints!r}")

    @classmethod
    def from_dict(cls, values: dict) -> "VAEConfig":
        """Build from a plain dict (e.g. notebook parameters); unknown keys are an error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise ValueError(f"unknown VAEConfig field(s) {', '.join(map(repr, unknown))}; "
                             f"fields: {', '.join(fields)}")
        return cls(**values)

    @classmethod
    def paper_scale(cls, **changes) -> "VAEConfig":
        """The paper's protocol: all six settings, 160 epochs, all 60,000 images, seeds 0-9."""
        values = dict(configs=tuple(CONFIGURATIONS), seeds=tuple(range(10)), epochs=160,
                      train_subset=None, test_subset=None)
        values.update(changes)
        return cls(**values)

    def hyperparameters(self, config: str, method: str) -> Dict[str, object]:
        """Optimizer, learning rate and temperature of one setting: Table 8 (Figure 6's methods:
        ReinMax's row), then ``overrides``."""
        optimizer, lr, tau = TABLE8[config][HYPERPARAMETERS_OF.get(method, method)]
        values = {"optimizer": optimizer, "lr": lr, "tau": tau}
        values.update(self.overrides.get(method, {}))
        return values

    def resolved_device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


# ------------------------------------------------------------------------- running
def _fingerprint(config: VAEConfig, name: str, method: str, device: torch.device) -> dict:
    """Everything that decides one setting's numbers; a checkpoint resumes only if it matches."""
    analysed = config.gradient_every > 0 and method in (config.gradient_methods or config.methods)
    return {
        "config": name, "method": method, "hyperparameters": config.hyperparameters(name, method),
        "seeds": list(config.seeds), "epochs": config.epochs, "train_subset": config.train_subset,
        "test_subset": config.test_subset, "batch_size": config.batch_size,
        "test_every": config.test_every,
        "gradient": ({"every": config.gradient_every, "images": config.gradient_images,
                      "samples": config.gradient_samples} if analysed else None),
        "grmck_samples": config.grmck_samples if method == "GR-MCK" else None,
        "device_type": device.type,
    }


def _same_result(found: dict, expected: dict, device: str) -> bool:
    """Whether a finished record answers this configuration. With ``device="auto"`` a record
    trained on another kind of device answers it too (the numbers are draws of the same
    experiment, and the record names its device); a checkpoint must match exactly, because
    random-generator states do not move between devices."""
    return equal_apart_from(found, expected, *(("device_type",) if device == "auto" else ()))


def _mismatch(found: dict, expected: dict) -> str:
    keys = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    return "; ".join(f"{k}: found {found.get(k)!r}, now {expected.get(k)!r}" for k in keys)


def _make_optimizer(name: str, parameters, lr: float) -> torch.optim.Optimizer:
    """Adam or RAdam over the stacked parameters. Both are element-wise, so each seed's slice is
    updated exactly as if alone. Adam uses PyTorch's fused kernel where the device has one (on
    CPU it halves the step time of this model); RAdam has no fused kernel and uses foreach."""
    parameters = list(parameters)
    if name == "Adam":
        try:
            return torch.optim.Adam(parameters, lr=lr, fused=True)
        except (RuntimeError, TypeError, ValueError):
            return torch.optim.Adam(parameters, lr=lr, foreach=True)
    return torch.optim.RAdam(parameters, lr=lr, foreach=True)


def _estimator(method: str, config: VAEConfig) -> Callable:
    return get_estimator(method, K=config.grmck_samples) if method == "GR-MCK" else get_estimator(method)


def _atomic_torch_save(obj, path: Path) -> None:
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _summary(per_seed: List[float]) -> dict:
    values = np.asarray(per_seed, dtype=float)
    return {"mean": float(values.mean()), "std": float(values.std()), "n": int(len(values)),
            "per_seed": values.tolist()}


def _file_stem(name: str, method: str) -> str:
    """``<name>_<method>`` with "/" (in "ReinMax-1/n") spelled "_", so that it is one file name."""
    return f"{name}_{method.replace('/', '_')}"


def load_images(split: str, subset: Optional[int], root, device) -> torch.Tensor:
    """MNIST grey levels in [0, 1] as ``(N, 784)`` float32 on ``device``; the first ``subset``."""
    images, _ = load_mnist(split, root=root)
    if subset is not None:
        images = images[:subset]
    return images.reshape(len(images), -1).to(device)


def train_setting(config: VAEConfig, name: str, method: str, train: torch.Tensor,
                  test: torch.Tensor, *, progress: bool = True,
                  on_epoch_end: Optional[Callable] = None) -> dict:
    """Train all seeds of one setting (``name`` e.g. "8x4", ``method``) as one ensemble.

    Resumes from ``<out_dir>/<name>_<method>.ckpt`` and returns the finished record from
    ``<out_dir>/<name>_<method>.json`` when they exist and match this configuration.
    ``on_epoch_end(name, method, epoch, history)`` is called after each epoch's checkpoint.
    """
    device = config.resolved_device()
    fingerprint = _fingerprint(config, name, method, device)
    out = Path(config.out_dir) if config.out_dir is not None else None
    record_path = out / f"{_file_stem(name, method)}.json" if out else None
    checkpoint_path = out / f"{_file_stem(name, method)}.ckpt" if out else None
    if record_path is not None and record_path.is_file():
        record = read_json(record_path)
        if not _same_result(record.get("fingerprint", {}), fingerprint, config.device):
            raise ValueError(f"{record_path} holds a finished run with other settings "
                             f"({_mismatch(record.get('fingerprint', {}), fingerprint)}); "
                             "use another out_dir or remove the file")
        return record

    # Provenance of the code that trains, taken now: a run lasts hours, and the tree (its commit,
    # its uncommitted changes) may move on before the record is written.
    trained_by = provenance(device)
    C, L = CONFIGURATIONS[name]
    hp = config.hyperparameters(name, method)
    seeds = list(config.seeds)
    model = CategoricalVAE(C, L, seeds, device=device)
    optimizer = _make_optimizer(hp["optimizer"], model.parameters(), hp["lr"])
    estimator = _estimator(method, config)
    noisy = method in NOISY_METHODS
    streams = {"data": seed_generators(seeds, "data", "cpu"),
               "noise": seed_generators(seeds, "noise", device),
               "test": seed_generators(seeds, "test", device),
               "gradient": seed_generators(seeds, "gradient", device)}
    history = {"train_neg_elbo": [], "train_reconstruction": [], "test_epochs": [],
               "test_neg_elbo": [], "epoch_wall_s": [],
               "gradient": {"epochs": [], "cos": [], "rel_bias": [], "rel_bias_mean": [],
                            "rel_std": []}}
    start, wall = 0, 0.0
    if checkpoint_path is not None and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise ValueError(f"checkpoint {checkpoint_path} is for other settings "
                             f"({_mismatch(state['fingerprint'], fingerprint)}); "
                             "use another out_dir or remove the file")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        for stream, states in state["generators"].items():
            for generator, saved in zip(streams[stream], states):
                generator.set_state(saved)
        history, start, wall = state["history"], state["epoch"], state["wall_s"]

    N, B = len(train), config.batch_size
    steps = math.ceil(N / B)
    analysed = fingerprint["gradient"] is not None
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
                _analyse(model, x[:, :config.gradient_images], estimator, hp["tau"],
                         config.gradient_samples, streams["gradient"], epoch + 1,
                         history["gradient"])
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
            checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save({"fingerprint": fingerprint, "epoch": epoch + 1,
                                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                "generators": {k: [g.get_state() for g in v]
                                               for k, v in streams.items()},
                                "history": history, "wall_s": wall}, checkpoint_path)
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
        "wall_s": wall, "fingerprint": fingerprint, "provenance": trained_by,
    }
    if record_path is not None:
        write_json(record_path, record)
        if not config.keep_checkpoints:
            checkpoint_path.unlink(missing_ok=True)
    return record


def _analyse(model, x, estimator, tau, samples, generators, epoch, into) -> None:
    """Figure 4 for every seed on the minibatch ``x`` ``(S, b, 784)``, before its update."""
    rows = {key: [] for key in ("cos", "rel_bias", "rel_bias_mean", "rel_std")}
    for s, generator in enumerate(generators):
        exact, _ = model.exact_reconstruction_gradient(x[s], s)
        mean, std = model.estimator_gradient_moments(x[s], s, estimator, tau, samples, generator)
        for key, value in gradient_quality(exact, mean, std).items():
            rows[key].append(value)
    into["epochs"].append(epoch)
    for key, values in rows.items():
        into[key].append(values)


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
    train = load_images("train", config.train_subset, config.data_root, device)
    test = load_images("test", config.test_subset, config.data_root, device)
    runs = [train_setting(config, name, method, train, test, progress=progress,
                          on_epoch_end=on_epoch_end)
            for name in config.configs for method in config.methods]
    results = {"experiment": "mnist_vae", "config": dataclasses.asdict(config), "runs": runs,
               "wall_s": time.perf_counter() - began, "provenance": provenance(device)}
    if config.out_dir is not None:
        write_json(Path(config.out_dir) / "results.json", results)
    return results


def final_table(results: dict, metric: str = "train_neg_elbo") -> Dict[Tuple[str, str], dict]:
    """``{(config, method): {"mean", "std", "n", "per_seed"}}`` of the last epoch's ``metric``
    ("train_neg_elbo" or "test_neg_elbo")."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    return {(r["config"], r["method"]): r["final"][metric] for r in results["runs"]}


# ------------------------------------------------------------------------- Figure 2
def check_temperatures(taus) -> Tuple[float, ...]:
    """``taus`` as a tuple of distinct positive finite floats, or a ValueError that names the
    parameter, the value and what is allowed."""
    allowed = "a non-empty list of distinct positive finite numbers, e.g. [0.1, 0.5, 1, 2]"
    if isinstance(taus, (str, bytes)) or isinstance(taus, (int, float)):
        raise ValueError(f"taus must be {allowed}; got taus={taus!r}")
    try:
        taus = tuple(taus)
    except TypeError:
        raise ValueError(f"taus must be {allowed}; got taus={taus!r}") from None
    bad = [t for t in taus if isinstance(t, bool) or not isinstance(t, (int, float, np.floating,
                                                                        np.integer))
           or not math.isfinite(t) or t <= 0]
    if not taus or bad:
        raise ValueError(f"taus must be {allowed}; got taus={taus!r}"
                         + (f" (not allowed: {bad!r})" if bad else ""))
    taus = tuple(float(t) for t in taus)
    if len(set(taus)) != len(taus):
        raise ValueError(f"taus must be distinct; got taus={taus!r}")
    return taus


def temperature_grid(config: VAEConfig, taus: Sequence[float] = TEMPERATURES, *,
                     progress: bool = True) -> dict:
    """Figure 2: every (configuration, method) of ``config`` trained at every temperature of
    ``taus``, everything else as ``config`` says (Table 8's optimizer and learning rate, and any
    ``overrides`` other than ``tau``, which the grid replaces).

    Each temperature is one ``train_setting`` call with ``overrides={method: {"tau": tau}}``, so
    with ``out_dir`` set every run checkpoints and resumes as :func:`run`'s do, under
    ``<out_dir>/tau_<tau>/``; the combined record is written to
    ``<out_dir>/temperature_grid.json``. Returns ``{"experiment", "taus", "config", "runs",
    "wall_s", "provenance"}`` with one record per (configuration, method, temperature), whose
    ``hyperparameters["tau"]`` says which; :func:`temperature_table` reads it.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig; got {type(config).__name__}")
    taus = check_temperatures(taus)
    began = time.perf_counter()
    device = config.resolved_device()
    train = load_images("train", config.train_subset, config.data_root, device)
    test = load_images("test", config.test_subset, config.data_root, device)
    jobs = [(tau, name, method) for name in config.configs for method in config.methods
            for tau in taus]
    runs = []
    bar = progress_bar(jobs, desc="temperature grid", disable=not progress)
    for tau, name, method in bar:
        bar.set_postfix_str(f"{name} {method} tau={tau:g}")
        overrides = dict(config.overrides)
        overrides[method] = dict(overrides.get(method, {}), tau=tau)
        out_dir = None if config.out_dir is None else str(Path(config.out_dir) / f"tau_{tau:g}")
        at_tau = dataclasses.replace(config, overrides=overrides, out_dir=out_dir)
        runs.append(train_setting(at_tau, name, method, train, test, progress=progress))
    results = {"experiment": "mnist_vae_temperature_grid", "taus": list(taus),
               "config": dataclasses.asdict(config), "runs": runs,
               "wall_s": time.perf_counter() - began, "provenance": provenance(device)}
    if config.out_dir is not None:
        write_json(Path(config.out_dir) / "temperature_grid.json", results)
    return results


def temperature_table(results: dict, metric: str = "train_neg_elbo"
                      ) -> Dict[Tuple[str, str, float], dict]:
    """``{(config, method, tau): {"mean", "std", "n", "per_seed"}}`` of the last epoch's
    ``metric`` ("train_neg_elbo" or "test_neg_elbo") in a :func:`temperature_grid` record."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    return {(r["config"], r["method"], float(r["hyperparameters"]["tau"])): r["final"][metric]
            for r in results["runs"]}


def temperature_matrix(results: dict, config: str, metric: str = "train_neg_elbo"
                       ) -> Tuple[List[str], List[float], np.ndarray]:
    """One Figure 2 panel: ``(methods, taus, values)`` with ``values[i, j]`` the mean over seeds
    of ``metric`` for ``methods[i]`` at ``taus[j]`` (NaN where that run is missing)."""
    table = temperature_table(results, metric)
    configs = sorted({c for c, _, _ in table})
    if config not in configs:
        raise ValueError(f"config {config!r} is not in this temperature grid; it has: "
                         f"{', '.join(configs)}")
    methods = [m for m in ALL_METHODS if any(c == config and mm == m for c, mm, _ in table)]
    taus = sorted({t for c, _, t in table if c == config})
    values = np.full((len(methods), len(taus)), np.nan)
    for i, method in enumerate(methods):
        for j, tau in enumerate(taus):
            entry = table.get((config, method, tau))
            if entry is not None:
                values[i, j] = entry["mean"]
    return methods, taus, values


def temperature_preferences(results: dict, metric: str = "train_neg_elbo"
                            ) -> Dict[Tuple[str, str], dict]:
    """Section 6.6's claim per (configuration, method) of a :func:`temperature_grid` record:
    ``best_tau`` (lowest mean ``metric``), ``best`` (that mean), ``best_low`` and ``best_high``
    (the lowest mean over tau <= 1 and over tau >= 1; NaN if the grid has none there), the side of
    tau = 1 the paper says the method prefers (``paper_side``, None for methods it does not
    discuss) and whether ``best_tau`` is on it (``agrees``; None without a ``paper_side``)."""
    table = temperature_table(results, metric)
    found: Dict[Tuple[str, str], dict] = {}
    for (config, method, tau), entry in table.items():
        found.setdefault((config, method), {})[tau] = entry["mean"]
    preferences = {}
    for key, by_tau in found.items():
        best_tau = min(by_tau, key=by_tau.get)
        low = [v for t, v in by_tau.items() if t <= 1]
        high = [v for t, v in by_tau.items() if t >= 1]
        side = PAPER_TEMPERATURE_SIDE.get(key[1])
        agrees = None if side is None else (best_tau <= 1 if side == "tau <= 1" else best_tau >= 1)
        preferences[key] = {"best_tau": best_tau, "best": by_tau[best_tau],
                            "best_low": min(low) if low else math.nan,
                            "best_high": min(high) if high else math.nan,
                            "paper_side": side, "agrees": agrees}
    return preferences
