"""The ListOps experiment's settings: Table 8's ListOps row, the parameter sets (paper, study,
book, smoke) and the validated ``ListOpsConfig``."""
import dataclasses
from typing import Any, Dict, Optional, Sequence

import reinmax
from reinmax import paper
from reinmax.data import listops as data
from reinmax.experiments import layer

METHODS = paper.table_methods("table1_listops_accuracy")
"""Table 1's five methods, in the paper's order."""

TABLE8 = paper.table8_hyperparameters("ListOps")
"""``{method: (optimizer, lr, tau)}`` from the paper's Table 8 (all RAdam)."""

DEFAULT_METHOD_OPTIONS: Dict[str, Dict[str, Any]] = {"GR-MCK": {"K": 100}}
"""GR-MCK with 100 Gumbel draws: the authors' ListOps code calls ``rao_gumbel`` without a count
suffix, which falls back to 100."""

_OWNER = "ListOpsConfig"

PARAMETER_SETS: Dict[str, Dict[str, Any]] = {
    # The authors' protocol: characters, 300-d everywhere, random batches of 16, 20 epochs,
    # 5 seeds, Table 8's rates. About 15 hours per epoch per run on one core here: not run.
    "paper": dict(unit="char", word_dim=300, hidden_dim=300, clf_hidden_dim=300, dropout=0.5,
                  batch_size=16, bucketed=False, train_size=89000, train_max_tokens=None,
                  epochs=20, seeds=[0, 1, 2, 3, 4], lr_scale=1.0, eval_subset=None),
    # The committed background record (results/listops/study): tokens, a tiny model, short
    # generated expressions, batches bucketed by length, three times Table 8's rates.
    "study": dict(unit="token", word_dim=32, hidden_dim=32, clf_hidden_dim=32, dropout=0.1,
                  batch_size=32, bucketed=True, train_size=5000, train_max_tokens=40,
                  epochs=20, seeds=[0, 1, 2], lr_scale=3.0, eval_subset=None),
    # The live run of the chapter: one seed per method, minutes in all.
    "book": dict(unit="token", word_dim=32, hidden_dim=32, clf_hidden_dim=32, dropout=0.1,
                 batch_size=32, bucketed=True, train_size=1500, train_max_tokens=30,
                 epochs=3, seeds=[0], lr_scale=3.0, eval_subset=300),
    # CI: seconds.
    "smoke": dict(unit="token", word_dim=8, hidden_dim=8, clf_hidden_dim=8, dropout=0.0,
                  batch_size=16, bucketed=True, train_size=64, train_max_tokens=20,
                  epochs=1, seeds=[0], lr_scale=1.0, eval_subset=40),
}


@dataclasses.dataclass
class ListOpsConfig:
    """What to run; validated on construction (a bad value is a ValueError naming the field, the
    value and what is allowed). Defaults: the paper's protocol (``PARAMETER_SETS["paper"]``).

    Fields::

        methods          names from reinmax.ESTIMATORS (Table 1's METHODS by default)
        seeds            distinct non-negative integers, one run each
        epochs           passes over the generated training split (paper: 20)
        unit             "char" (the reference reads characters) or "token"
        word_dim, hidden_dim, clf_hidden_dim, dropout   model sizes (paper: 300, 300, 300, 0.5)
        batch_size       training examples per step (paper: 16)
        bucketed         training batches of similar length (False: random batches, as the
                         reference); evaluation batches are always sorted by length
        train_size       generated training lines (the recipe; paper: about 89,000)
        train_seed       the generator's seed (the split is the same for every method and seed)
        train_max_tokens keep only generated lines shorter than this (None: the recipe's lines)
        max_tokens       the reference filter on every split: fewer than this many tokens (100)
        eval_subset      the first N validation and test lines (after the filter; None: all)
        eval_batch_size  examples per evaluation batch (the reference: 128)
        validations_per_epoch   validations per epoch (the reference: 2); the plateau scheduler
                         (factor 0.5, patience 4 validations) steps on validation accuracy
        lr_scale         multiplies Table 8's learning rate (1: the paper's)
        overrides        per-method changes to Table 8, {method: {"lr": .., "tau": ..}}
        method_options   estimator options, merged over DEFAULT_METHOD_OPTIONS (GR-MCK K = 100)
        clip             gradient-norm clipping (5)
        trees            how many validation expressions keep their induced merges (token unit)
        device, out_dir, data_root   as in every experiment (out_dir: records and checkpoints)
    """
    methods: Sequence[str] = METHODS
    seeds: Sequence[int] = (0, 1, 2, 3, 4)
    epochs: int = 20
    unit: str = "char"
    word_dim: int = 300
    hidden_dim: int = 300
    clf_hidden_dim: int = 300
    dropout: float = 0.5
    batch_size: int = 16
    bucketed: bool = False
    train_size: int = 89000
    train_seed: int = 1234
    train_max_tokens: Optional[int] = None
    max_tokens: int = 100
    eval_subset: Optional[int] = None
    eval_batch_size: int = 128
    validations_per_epoch: int = 2
    lr_scale: float = 1.0
    overrides: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    method_options: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    clip: float = 5.0
    trees: int = 20
    device: str = "auto"
    out_dir: Optional[str] = None
    data_root: Optional[str] = None

    def __post_init__(self):
        self.methods = layer.names(_OWNER, "methods", self.methods, list(reinmax.ESTIMATORS))
        self.seeds = layer.seeds(_OWNER, self.seeds)
        for name in ("epochs", "word_dim", "hidden_dim", "clf_hidden_dim", "batch_size",
                     "train_size", "eval_batch_size", "validations_per_epoch"):
            setattr(self, name, layer.positive_int(_OWNER, name, getattr(self, name)))
        self.train_seed = layer.non_negative_int(_OWNER, "train_seed", self.train_seed)
        self.trees = layer.non_negative_int(_OWNER, "trees", self.trees)
        if self.unit not in data.UNITS:
            layer.fail(_OWNER, "unit", self.unit, f"one of {list(data.UNITS)}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0 <= self.dropout < 1:
            layer.fail(_OWNER, "dropout", self.dropout, "a number in [0, 1)")
        if not isinstance(self.bucketed, bool):
            layer.fail(_OWNER, "bucketed", self.bucketed, "True or False")
        if self.train_max_tokens is not None:
            self.train_max_tokens = layer.positive_int(_OWNER, "train_max_tokens",
                                                       self.train_max_tokens)
            if self.train_max_tokens < 2:
                layer.fail(_OWNER, "train_max_tokens", self.train_max_tokens, "None or >= 2")
        self.max_tokens = layer.positive_int(_OWNER, "max_tokens", self.max_tokens)
        if self.max_tokens < 2:
            layer.fail(_OWNER, "max_tokens", self.max_tokens, "an integer >= 2")
        self.eval_subset = layer.positive_int(_OWNER, "eval_subset", self.eval_subset, allow_none=True)
        self.lr_scale = layer.positive_number(_OWNER, "lr_scale", self.lr_scale)
        self.clip = layer.positive_number(_OWNER, "clip", self.clip)
        if not isinstance(self.overrides, dict):
            layer.fail(_OWNER, "overrides", self.overrides, "a dict {method: {'lr'|'tau': value}}")
        clean = {}
        for method, changes in self.overrides.items():
            method = layer.names(_OWNER, "overrides key", method, list(reinmax.ESTIMATORS))[0]
            if not isinstance(changes, dict) or not set(changes) <= {"lr", "tau"}:
                layer.fail(_OWNER, f"overrides[{method!r}]", changes, "a dict with keys 'lr', 'tau'")
            clean[method] = {k: layer.positive_number(_OWNER, f"overrides[{method!r}][{k!r}]", v)
                             for k, v in changes.items()}
        self.overrides = clean
        self.method_options = layer.method_options(_OWNER, self.method_options, DEFAULT_METHOD_OPTIONS)
        self.device = layer.check_device(_OWNER, self.device)

    @classmethod
    def preset(cls, name: str, **changes) -> "ListOpsConfig":
        """One of ``PARAMETER_SETS`` ("paper", "study", "book", "smoke") with ``changes``."""
        if name not in PARAMETER_SETS:
            layer.fail(_OWNER, "preset", name, f"one of {list(PARAMETER_SETS)}")
        return cls.from_dict(dict(PARAMETER_SETS[name], **changes))

    @classmethod
    def from_dict(cls, values: dict) -> "ListOpsConfig":
        """Build from a plain dict (e.g. notebook parameters); unknown keys are an error."""
        fields = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(fields))
        if unknown:
            layer.fail(_OWNER, "fields", unknown, f"among {', '.join(fields)}")
        return cls(**values)

    def hyperparameters(self, method: str) -> Dict[str, Any]:
        """Optimizer, learning rate (times ``lr_scale``) and temperature: Table 8's ListOps row
        (a method without a row: ReinMax's), then ``overrides``."""
        optimizer, lr, tau = TABLE8.get(method, TABLE8["ReinMax"])
        values = {"optimizer": optimizer, "lr": lr * self.lr_scale, "tau": tau}
        values.update(self.overrides.get(method, {}))
        return values
