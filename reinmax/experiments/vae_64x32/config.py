"""Table 5's setting and its validated config."""
import dataclasses
from typing import Any, Dict, Optional, Sequence, Tuple

import reinmax
from reinmax import paper
from reinmax.experiments import layer
from reinmax.experiments.vae.config import TABLE8

CATEGORIES, LATENTS = 64, 32
"""C = 64 categories, L = 32 variables: the paper's text and Fan et al. (2022). The authors'
public run script passes them the other way round (C = 32, L = 64; an erratum row)."""

NEGATIVE_SLOPE = 0.2
"""LeakyReLU's slope in Fan et al.'s setting (the paper says LeakyReLU without a slope)."""

METHODS = paper.table_methods("table5_mnist_vae_32x64_train_neg_elbo")
"""Table 5's methods, in its column order."""

SCORE_METHODS = tuple(method for method in METHODS if method not in reinmax.ESTIMATORS)
"""Table 5's score-function methods: ``reinmax.rloo`` and ``reinmax.estimators.disarm_tree.disarm_tree``."""

PAPER_ONLY = ()
"""Table 5's methods quoted from the paper only (none: DisARM-Tree is ``reinmax.estimators.disarm_tree``)."""

TABLE5_HYPERPARAMETERS: Dict[str, Tuple[str, float, Optional[float]]] = dict(
    {method: TABLE8["64x8"][method] for method in METHODS if method in TABLE8["64x8"]},
    RLOO=("Adam", 1e-3, None), **{"DisARM-Tree": ("Adam", 1e-3, None)})
"""(optimizer, lr, tau) per method. The paper gives none for Table 5: the straight-through
methods use their Table 8 row of 64x8 (the other setting with 64 categories), RLOO and
DisARM-Tree Adam 1e-3 (Fan et al.'s optimizer) and no temperature."""

SCALES: Dict[str, Dict[str, Any]] = {
    "smoke": dict(steps=20, eval_every=10, seeds=[0], train_subset=2000, test_subset=500,
                  method_options={"GR-MCK": {"K": 10}}),
    "book": dict(steps=300, eval_every=150, seeds=[0], train_subset=None, test_subset=2000,
                 method_options={"GR-MCK": {"K": 100}}),
    "study": dict(steps=600, eval_every=300, seeds=[0, 1], train_subset=None, test_subset=None,
                  method_options={"GR-MCK": {"K": 10}}),
    "paper": dict(steps=500000, eval_every=3000, seeds=list(range(5)), train_subset=None,
                  test_subset=None, method_options={"GR-MCK": {"K": 1000}}),
}
"""Parameter sets: ``paper`` is 5x10^5 updates with GR-MCK's 1,000 draws (about 1.6 GB per step
at batch 200); ``study`` is what results/vae_64x32/ ran (600 updates, 2 epochs, on a shared 2-core CPU;
GR-MCK with 10 draws: 1,000 cost about 40 times a ReinMax step there)."""

_OWNER = "VAE64x32Config"


def methods():
    """The straight-through family of the registry and Table 5's score-function methods."""
    return list(reinmax.ESTIMATORS) + list(SCORE_METHODS)


@dataclasses.dataclass
class VAE64x32Config:
    """What to run (validated; a bad value is a ValueError naming field, value, what is allowed).

    Fields: ``methods`` (straight-through names of ``reinmax.ESTIMATORS`` or "RLOO"), ``seeds``,
    ``steps`` (paper: 5x10^5), ``eval_every`` (train and test -ELBO every k steps and after the
    last), ``batch_size`` (200), ``rloo_samples`` (RLOO's K: 2 evaluations per image),
    ``train_subset``/``test_subset`` (the first N images; None: all 60,000 / 10,000),
    ``method_options`` (as the registry names them, e.g. {"GR-MCK": {"K": 100}}), ``overrides``
    ({method: {"lr"|"tau": value}}), ``device``, ``out_dir``, ``data_root``.
    """
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = (0,)
    steps: int = 500000
    eval_every: int = 3000
    batch_size: int = 200
    rloo_samples: int = 2
    train_subset: Optional[int] = None
    test_subset: Optional[int] = None
    method_options: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    overrides: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    device: str = "auto"
    out_dir: Optional[str] = None
    data_root: Optional[str] = None

    def __post_init__(self):
        self.methods = layer.names(_OWNER, "methods", self.methods, methods())
        self.seeds = layer.seeds(_OWNER, self.seeds)
        self.steps = layer.positive_int(_OWNER, "steps", self.steps)
        self.eval_every = layer.positive_int(_OWNER, "eval_every", self.eval_every)
        self.batch_size = layer.positive_int(_OWNER, "batch_size", self.batch_size)
        self.rloo_samples = layer.positive_int(_OWNER, "rloo_samples", self.rloo_samples)
        if self.rloo_samples < 2:
            layer.fail(_OWNER, "rloo_samples", self.rloo_samples, "an integer >= 2")
        self.train_subset = layer.positive_int(_OWNER, "train_subset", self.train_subset,
                                               allow_none=True, maximum=60000)
        self.test_subset = layer.positive_int(_OWNER, "test_subset", self.test_subset,
                                              allow_none=True, maximum=10000)
        self.method_options = layer.method_options(_OWNER, self.method_options,
                                                   {"GR-MCK": {"K": 1000}})
        if not isinstance(self.overrides, dict):
            layer.fail(_OWNER, "overrides", self.overrides, "a dict {method: {'lr'|'tau': value}}")
        clean = {}
        for method, changes in self.overrides.items():
            method = layer.names(_OWNER, "overrides key", [method], methods())[0]
            if not isinstance(changes, dict) or not set(changes) <= {"lr", "tau"}:
                layer.fail(_OWNER, f"overrides[{method!r}]", changes,
                           "a dict with keys among 'lr', 'tau'")
            clean[method] = {k: layer.positive_number(_OWNER, f"overrides[{method!r}][{k!r}]", v)
                             for k, v in changes.items()}
        self.overrides = clean
        self.device = layer.check_device(_OWNER, self.device)

    @classmethod
    def at_scale(cls, scale: str, **changes) -> "VAE64x32Config":
        if scale not in SCALES:
            layer.fail(_OWNER, "scale", scale, f"one of {list(SCALES)}")
        values = dict(SCALES[scale])
        values.update(changes)
        return cls(**values)

    def hyperparameters(self, method: str) -> Dict[str, Any]:
        """Optimizer, lr and tau (TABLE5_HYPERPARAMETERS; a method without a row: ReinMax's),
        then ``overrides``."""
        optimizer, lr, tau = TABLE5_HYPERPARAMETERS.get(method, TABLE5_HYPERPARAMETERS["ReinMax"])
        values = {"optimizer": optimizer, "lr": lr, "tau": tau}
        values.update(self.overrides.get(method, {}))
        return values
