"""The MNIST-VAE experiment's settings: the paper's configurations, methods, Table 8, and the
validated ``VAEConfig``."""
import dataclasses
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

import reinmax
from reinmax import paper
from reinmax.experiments import layer

CONFIGURATIONS: Dict[str, Tuple[int, int]] = {
    "8x4": (8, 4), "4x24": (4, 24), "8x16": (8, 16),
    "16x12": (16, 12), "64x8": (64, 8), "10x30": (10, 30),
}
"""The paper's settings, ``"CxL"`` -> (categories C, latent variables L), as its tables name them."""

METHODS = paper.table_methods("table2_mnist_vae_train_neg_elbo")
"""The five methods of Table 2, in the paper's column order."""

FIGURE6_METHODS = ("ReinMax-1/n", "ReinMax-1/n-authors")
"""Figure 6's ReinMax with the uniform baseline (1/n) sum_i f(I_i) instead of E[f(D)]: the
estimator derived in the book's protocols appendix (``book/appendix/``;
``reinmax.reinmax_uniform_baseline``) and the authors' variant
that the published figure measured (``reinmax.reinmax_uniform_baseline_authors``). They train with
ReinMax's Table 8 row (``HYPERPARAMETERS_OF``)."""

ALL_METHODS = METHODS + FIGURE6_METHODS
"""Table 2's five methods, then Figure 6's two (the order tables and figures list them in).
Any estimator of the straight-through family in ``reinmax.ESTIMATORS`` trains (``methods()``)."""

HYPERPARAMETERS_OF = {"ReinMax-1/n": "ReinMax", "ReinMax-1/n-authors": "ReinMax"}
"""Methods without a Table 8 row of their own, and the method whose row they use (any other
method without a row uses ReinMax's too, see ``VAEConfig.hyperparameters``)."""

TEMPERATURES = paper.figure2_temperatures()
"""Figure 2's temperature grid (Section 6.6), read from the paper's tables (``reinmax.paper``)."""

FIGURE2_CONFIGS = ("4x24", "8x16", "16x12", "64x8")
"""Figure 2's settings: the four with a latent space of 2^48 points."""

PAPER_TEMPERATURE_SIDE = {"STGS": "tau <= 1", "GST-1.0": "tau <= 1", "GR-MCK": "tau <= 1",
                          "ST": "tau >= 1", "ReinMax": "tau >= 1"}
"""Section 6.6 / Figure 2's claim: which side of tau = 1 each method's best temperature is on."""

OPTIMIZERS = {"Adam": torch.optim.Adam, "RAdam": torch.optim.RAdam}

NOISY_METHODS = reinmax.estimators.registry.NameSet(draws_noise=True)
"""Methods that draw Gumbel noise beyond the sampled category (called once per seed)."""

TABLE8: Dict[str, Dict[str, Tuple[str, float, float]]] = paper.table8_hyperparameters()
"""The paper's Table 8, ``{setting: {method: (optimizer, learning rate, temperature)}}``, read from
the paper's tables (``reinmax.paper``)."""

TRAIN_SIZE, TEST_SIZE = 60000, 10000
HYPERPARAMETER_KEYS = ("optimizer", "lr", "tau")


DEFAULT_METHOD_OPTIONS: Dict[str, Dict[str, Any]] = {"GR-MCK": {"K": 1000}}
"""GR-MCK with the paper's 1,000 Gumbel draws unless a config says otherwise; a config's
``method_options`` are merged over these."""

_OWNER = "VAEConfig"


def methods() -> List[str]:
    """Every method the VAE can train: the registry's straight-through family, read now, so that a
    newly registered estimator is trainable without editing this module."""
    return list(reinmax.ESTIMATORS)


def _canonical(name, allowed: Sequence[str], what: str) -> str:
    """``name`` spelled as in ``allowed`` (case-insensitive), or a ValueError listing them."""
    if isinstance(name, str):
        for candidate in allowed:
            if candidate.lower() == name.strip().lower():
                return candidate
    layer.fail(_OWNER, what, name, f"one of {list(allowed)}")


@dataclasses.dataclass
class VAEConfig:
    """What to run. Validated on construction: a bad value is a ValueError naming the field,
    the value and what is allowed. The defaults are the paper's protocol for 8x4 with 10 seeds.

    Fields::

        configs        settings "CxL" among CONFIGURATIONS (8x4, 4x24, 8x16, 16x12, 64x8, 10x30)
        methods        names from reinmax.ESTIMATORS (Table 2's METHODS, Figure 6's
                       FIGURE6_METHODS, or any registered later); case-insensitive
        seeds          a list of distinct non-negative integers; all seeds of a setting train as
                       one batched model
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
        gradient_estimators  estimators measured at each analysis of an analysed run besides the
                       one it trains with, each at its own Table 8 temperature for the setting and
                       its method_options (None: only the run's own); the run's training is the
                       same either way (the analysis draws from its own random stream)
        method_options estimator options as the registry names them, {method: {option: value}},
                       merged over DEFAULT_METHOD_OPTIONS (GR-MCK's K: 1,000, the paper's)
        overrides      per-method changes to Table 8, e.g. {"ReinMax": {"tau": 1.0}}; keys
                       optimizer ("Adam", "RAdam"), lr, tau
        device         "auto" (CUDA when present), "cpu", "cuda" or "cuda:N"
        out_dir        checkpoints and per-setting results here (None: nothing is written)
        data_root      where MNIST is found (None: $REINMAX_DATA, then the user cache)
        keep_checkpoints  keep each setting's last checkpoint after it finishes (they are large)
    """
    configs: Sequence[str] = ("8x4",)
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = tuple(range(10))
    epochs: int = 160
    train_subset: Optional[int] = None
    test_subset: Optional[int] = None
    batch_size: int = 100
    test_every: int = 1
    gradient_every: int = 0
    gradient_images: int = 100
    gradient_samples: int = 1024
    gradient_methods: Optional[Sequence[str]] = None
    gradient_estimators: Optional[Sequence[str]] = None
    method_options: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    overrides: Dict[str, Dict[str, object]] = dataclasses.field(default_factory=dict)
    device: str = "auto"
    out_dir: Optional[str] = None
    data_root: Optional[str] = None
    keep_checkpoints: bool = False

    def __post_init__(self):
        trainable = methods()
        self.configs = layer.names(_OWNER, "configs", self.configs, tuple(CONFIGURATIONS))
        self.methods = layer.names(_OWNER, "methods", self.methods, trainable)
        self.seeds = layer.seeds(_OWNER, self.seeds)
        self.epochs = layer.positive_int(_OWNER, "epochs", self.epochs)
        self.train_subset = layer.positive_int(_OWNER, "train_subset", self.train_subset,
                                               allow_none=True, maximum=TRAIN_SIZE)
        self.test_subset = layer.positive_int(_OWNER, "test_subset", self.test_subset,
                                              allow_none=True, maximum=TEST_SIZE)
        self.batch_size = layer.positive_int(_OWNER, "batch_size", self.batch_size)
        self.test_every = layer.non_negative_int(_OWNER, "test_every", self.test_every)
        self.gradient_every = layer.non_negative_int(_OWNER, "gradient_every", self.gradient_every)
        self.gradient_images = layer.positive_int(_OWNER, "gradient_images", self.gradient_images)
        self.gradient_samples = layer.positive_int(_OWNER, "gradient_samples", self.gradient_samples)
        self.method_options = layer.method_options(_OWNER, self.method_options,
                                                   DEFAULT_METHOD_OPTIONS)
        if self.gradient_methods is not None:
            self.gradient_methods = layer.names(_OWNER, "gradient_methods", self.gradient_methods,
                                                trainable)
        if self.gradient_estimators is not None:
            self.gradient_estimators = layer.names(_OWNER, "gradient_estimators",
                                                   self.gradient_estimators, trainable)
        if self.gradient_estimators is not None and not self.gradient_every:
            layer.fail(_OWNER, "gradient_estimators", self.gradient_estimators,
                       "None unless gradient_every > 0 (they are measured at the analyses)")
        if self.gradient_every:
            if self.gradient_images > self.batch_size:
                layer.fail(_OWNER, "gradient_images", self.gradient_images,
                           f"at most batch_size={self.batch_size}: the analysis uses the first "
                           "minibatch")
            for name in self.configs:
                C, L = CONFIGURATIONS[name]
                if C ** L > 2 ** 16:
                    layer.fail(_OWNER, "gradient_every", self.gradient_every,
                               f"0 unless every setting's code space is small enough to "
                               f"enumerate; {name} has {C}^{L} codes (use configs=['8x4'] for "
                               "Figure 4)")
        if not isinstance(self.overrides, dict):
            layer.fail(_OWNER, "overrides", self.overrides, "a dict {method: {key: value}}")
        overrides = {}
        for method, changes in self.overrides.items():
            method = _canonical(method, trainable, "overrides key")
            if not isinstance(changes, dict):
                layer.fail(_OWNER, f"overrides[{method!r}]", changes,
                           f"a dict with keys {', '.join(HYPERPARAMETER_KEYS)}")
            clean = {}
            for key, value in changes.items():
                if key not in HYPERPARAMETER_KEYS:
                    layer.fail(_OWNER, f"overrides[{method!r}]", changes,
                               f"a dict with keys among {', '.join(HYPERPARAMETER_KEYS)} "
                               f"({key!r} is not one)")
                if key == "optimizer":
                    clean[key] = _canonical(value, tuple(OPTIMIZERS), f"overrides[{method!r}]['optimizer']")
                else:
                    clean[key] = layer.positive_number(_OWNER, f"overrides[{method!r}][{key!r}]", value)
            overrides[method] = clean
        self.overrides = overrides
        self.device = layer.check_device(_OWNER, self.device)
        if not isinstance(self.keep_checkpoints, bool):
            layer.fail(_OWNER, "keep_checkpoints", self.keep_checkpoints, "True or False")

    @classmethod
    def from_dict(cls, values: dict) -> "VAEConfig":
        """Build from a plain dict (e.g. notebook parameters); unknown keys are an error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            layer.fail(_OWNER, "fields", unknown, f"among {', '.join(fields)}")
        return cls(**values)

    @classmethod
    def paper_scale(cls, **changes) -> "VAEConfig":
        """The paper's protocol: all six settings, 160 epochs, all 60,000 images, seeds 0-9."""
        values = dict(configs=list(CONFIGURATIONS), seeds=list(range(10)), epochs=160,
                      train_subset=None, test_subset=None)
        values.update(changes)
        return cls(**values)

    def hyperparameters(self, config: str, method: str) -> Dict[str, object]:
        """Optimizer, learning rate and temperature of one setting: Table 8 (Figure 6's methods,
        and any method without a row of its own: ReinMax's row), then ``overrides``."""
        row = HYPERPARAMETERS_OF.get(method, method if method in TABLE8[config] else "ReinMax")
        optimizer, lr, tau = TABLE8[config][row]
        values = {"optimizer": optimizer, "lr": lr, "tau": tau}
        values.update(self.overrides.get(method, {}))
        return values

    def resolved_device(self) -> torch.device:
        return layer.resolve_device(self.device)


