"""The Bernoulli 2x200 VAE's settings: the two protocols, the scales and the validated config."""
import dataclasses
from typing import Any, Dict, Optional, Sequence

from reinmax.experiments import layer
from . import estimators

DATASETS = ("mnist", "fashion-mnist", "omniglot")

PROTOCOLS: Dict[str, Dict[str, Any]] = {
    # Shi et al. (2022), from their code: what Table 6's baselines ran.
    "baselines": {"binarization": "dynamic", "optimizer": "Adam", "prior": "fixed",
                  "lr": {"mnist": 1e-3, "omniglot": 1e-3, "fashion-mnist": 3e-4},
                  "tau": 1.1},
    # The authors' ReinMax script (mnist_vae/reinmax_2_200_rodeo.sh): static binarization,
    # RAdam over every parameter, a learned prior, lr 3e-4 and tau 1.1 (Omniglot K=3: 5e-4, 1.2).
    "reinmax-script": {"binarization": "static", "optimizer": "RAdam", "prior": "learned",
                       "lr": {"mnist": 3e-4, "omniglot": 3e-4, "fashion-mnist": 3e-4},
                       "tau": 1.1},
}
"""The two protocols Table 6 puts side by side. Differences of ours from the script in
``reinmax-script``: the learned prior is properly normalised (theirs pairs the wrong entries, a
looser bound), the encoder's output is one logit per latent (theirs a pair (p, 1 - p), i.e.
P(b=1) = sigmoid(2p - 1), a reparametrisation), and the decoder's likelihood is computed from
logits (theirs sigmoid then BCE). Under ``baselines`` the temperature of a straight-through
method is not a part of Shi et al.'s protocol: 1.1, the script's, unless ``overrides`` says."""

SPLIT_SIZES = {"mnist": (50000, 10000, 10000), "fashion-mnist": (50000, 10000, 10000),
               "omniglot": (23000, 1345, 8070)}
"""(train, validation, test) images. MNIST and Fashion-MNIST: the first 50,000 training images
of the IDX file, the last 10,000 as validation, the test file (Shi et al. take TFDS's
train[:50000] and train[50000:], which are in TFDS's hash order: the same sizes, another split).
Omniglot 28x28 (``chardata.mat``): the first 23,000 of ``data`` and its last 1,345; ``testdata``."""

SCALES: Dict[str, Dict[str, Any]] = {
    "smoke": dict(steps=40, eval_every=20, seeds=[0], train_subset=2000, eval_subset=500),
    "book": dict(steps=1500, eval_every=500, seeds=[0], train_subset=None, eval_subset=2000),
    "study": dict(steps=10000, eval_every=1000, seeds=[0, 1, 2], train_subset=None,
                  eval_subset=10000),
    "paper": dict(steps=1000000, eval_every=1000, seeds=[1, 2, 3, 4, 5], train_subset=None,
                  eval_subset=None),
}
"""Parameter sets. ``paper`` is Shi et al.'s (10^6 steps, metrics every 1,000, seeds 1-5, every
image); ``study`` is what results/bernoulli_vae/ ran in the background; ``book`` the chapter's
live run; ``smoke`` CI's."""

_OWNER = "BernoulliVAEConfig"


@dataclasses.dataclass
class BernoulliVAEConfig:
    """What to run; validated on construction (a bad value is a ValueError naming the field,
    the value and what is allowed).

    Fields::

        dataset        "mnist", "fashion-mnist" or "omniglot" (the last two need a download)
        protocol       "baselines" (Shi et al.) or "reinmax-script" (the authors'), see PROTOCOLS
        methods        straight-through ("ReinMax", "ST", "STGS", "GR-MCK") or score-family
                       names (estimators.methods())
        evaluations    K, the evaluations of f (codes) per image and step; a list, e.g. [2, 3]
        seeds          a list of distinct non-negative integers
        steps          parameter updates (paper: 10^6)
        eval_every     metrics every k steps and after the last (paper: 1,000)
        batch_size     images per step (paper: 100)
        train_subset   train on the first N training images (None: all)
        eval_subset    the train metric, validation and test on the first N images of each
                       (None: all)
        overrides      {method: {"lr": ..., "tau": ...}} over the protocol's
        device, out_dir, data_root   as in the other experiments; with out_dir every run
                       checkpoints at each evaluation and resumes
    """
    dataset: str = "mnist"
    protocol: str = "baselines"
    methods: Sequence[str] = ("ReinMax",)
    evaluations: Sequence[int] = (2,)
    seeds: Sequence[int] = (0,)
    steps: int = 1000000
    eval_every: int = 1000
    batch_size: int = 100
    train_subset: Optional[int] = None
    eval_subset: Optional[int] = None
    overrides: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    device: str = "auto"
    out_dir: Optional[str] = None
    data_root: Optional[str] = None

    def __post_init__(self):
        if self.dataset not in DATASETS:
            layer.fail(_OWNER, "dataset", self.dataset, f"one of {list(DATASETS)}")
        if self.protocol not in PROTOCOLS:
            layer.fail(_OWNER, "protocol", self.protocol, f"one of {list(PROTOCOLS)}")
        self.methods = layer.names(_OWNER, "methods", self.methods, estimators.methods())
        if isinstance(self.evaluations, int):
            self.evaluations = [self.evaluations]
        if not isinstance(self.evaluations, (list, tuple)) or not self.evaluations or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.evaluations) \
                or len(set(self.evaluations)) != len(self.evaluations):
            layer.fail(_OWNER, "evaluations", self.evaluations,
                       "a non-empty list of distinct integers >= 1 (Table 6: [2, 3])")
        self.evaluations = [int(k) for k in self.evaluations]
        for method in self.methods:
            for K in self.evaluations:
                need = estimators.check_evaluations(method, K)
                if need is not None:
                    layer.fail(_OWNER, "evaluations", self.evaluations,
                               f"values that {method} accepts: K={K} must be {need}")
        self.seeds = layer.seeds(_OWNER, self.seeds)
        self.steps = layer.positive_int(_OWNER, "steps", self.steps)
        self.eval_every = layer.positive_int(_OWNER, "eval_every", self.eval_every)
        self.batch_size = layer.positive_int(_OWNER, "batch_size", self.batch_size)
        train, valid, test = SPLIT_SIZES[self.dataset]
        self.train_subset = layer.positive_int(_OWNER, "train_subset", self.train_subset,
                                               allow_none=True, maximum=train)
        self.eval_subset = layer.positive_int(_OWNER, "eval_subset", self.eval_subset,
                                              allow_none=True, maximum=max(train, valid, test))
        if not isinstance(self.overrides, dict):
            layer.fail(_OWNER, "overrides", self.overrides, "a dict {method: {'lr'|'tau': value}}")
        clean = {}
        for method, changes in self.overrides.items():
            method = layer.names(_OWNER, "overrides key", [method], estimators.methods())[0]
            if not isinstance(changes, dict) or not set(changes) <= {"lr", "tau"}:
                layer.fail(_OWNER, f"overrides[{method!r}]", changes,
                           "a dict with keys among 'lr', 'tau'")
            clean[method] = {k: layer.positive_number(_OWNER, f"overrides[{method!r}][{k!r}]", v)
                             for k, v in changes.items()}
        self.overrides = clean
        self.device = layer.check_device(_OWNER, self.device)

    @classmethod
    def at_scale(cls, scale: str, **changes) -> "BernoulliVAEConfig":
        """The parameter set ``scale`` (one of SCALES) with ``changes`` over it."""
        if scale not in SCALES:
            layer.fail(_OWNER, "scale", scale, f"one of {list(SCALES)}")
        values = dict(SCALES[scale])
        values.update(changes)
        return cls(**values)

    def hyperparameters(self, method: str, K: int) -> Dict[str, Any]:
        """Optimizer, learning rate and (straight-through methods) temperature of one run."""
        protocol = PROTOCOLS[self.protocol]
        lr, tau = protocol["lr"][self.dataset], protocol["tau"]
        if self.protocol == "reinmax-script" and self.dataset == "omniglot" and K == 3:
            lr, tau = 5e-4, 1.2
        values = {"optimizer": protocol["optimizer"], "lr": lr,
                  "tau": tau if estimators.family(method) == "straight-through" else None}
        values.update(self.overrides.get(method, {}))
        return values

    def resolved_device(self):
        return layer.resolve_device(self.device)
