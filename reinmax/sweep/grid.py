"""A grid is data: an experiment's name, the values its config fields take (``axes``, every
combination is one cell) and the fields every cell shares (``fixed``).

A **cell** is one call of the experiment's training through the experiment layer and yields one
record (a cell holds all seeds of its setting as one batched model). Each experiment is described
here once, by an :class:`Experiment`: the fields a cell may set, how a cell's values become the
experiment's validated config, where its record lives (relative to the sweep's folder), how a
finished record is recognised (the experiment layer's fingerprints) and how the cell trains
(with a checkpoint in a workspace folder, so that a half-finished cell resumes).

Every cell's config is built, and so validated by the experiment, when the grid is expanded:
an unknown field, an empty axis or a value the experiment rejects is an error before anything
trains.
"""
import dataclasses
import functools
import itertools
import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from reinmax.experiments import layer

_OWNER = "Grid"


@dataclasses.dataclass(frozen=True)
class Cell:
    """One cell: its experiment, its values (the fields it sets; the experiment's defaults fill
    the rest), the path of its record relative to the sweep's folder, and its fingerprint (the
    experiment layer's hash of what decides its numbers). Plain data: it travels to workers."""
    experiment: str
    values: Dict[str, Any]
    path: str
    fingerprint: str
    index: int = 0

    def label(self) -> str:
        return ", ".join(f"{k}={_short(v)}" for k, v in self.values.items())


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------ experiments
class Experiment:
    """What the runner needs to know about one experiment (subclassed once per experiment)."""
    name = ""
    fields: Sequence[str] = ()
    metrics: Sequence[str] = ()

    def config(self, values: Dict[str, Any]):
        """The experiment's validated config for one cell (a ValueError when it rejects one)."""
        raise NotImplementedError

    def canonical(self, values: Dict[str, Any]) -> Dict[str, Any]:
        """The cell's values with fields that cannot matter made equal (cells that differ only
        there are one cell)."""
        return values

    def path(self, values: Dict[str, Any], swept: Sequence[str] = ()) -> str:
        """Where the cell's record lives, relative to the sweep's folder (``swept``: the
        fields the grid varies, which the path must tell apart)."""
        raise NotImplementedError

    def value(self, cell: Cell, field: str) -> Any:
        """The value the cell's config has for ``field`` (set by the cell or the default)."""
        raise NotImplementedError

    def fingerprint(self, values: Dict[str, Any]) -> str:
        raise NotImplementedError

    def finished(self, out_dir: Path, cell: Cell) -> Optional[dict]:
        raise NotImplementedError

    def train(self, cell: Cell, workspace: Optional[Path]) -> dict:
        raise NotImplementedError

    def metric(self, record: dict, name: str) -> float:
        raise NotImplementedError


class Polynomial(Experiment):
    """Polynomial programming: a cell is one method at one temperature on one problem, all its
    seeds batched (``PolynomialConfig`` with ``methods=[method]``, ``taus=tau``). Its record is
    where the temperature sweep has always kept it (``sweep_record_path``)."""
    name = "polynomial"
    fields = ("method", "tau", "p", "L", "batch_size", "setting", "steps", "epochs", "seeds",
              "device", "method_options")
    metrics = ("final_exact_loss",)

    def config(self, values):
        from reinmax.experiments.polynomial import PolynomialConfig
        values = dict(values)
        if "method" not in values:
            layer.fail(_OWNER, "method", None, "set for every polynomial cell (in axes or fixed)")
        method = values.pop("method")
        if not isinstance(method, str):
            layer.fail(_OWNER, "method", method, "one method name per cell")
        tau = values.pop("tau", 1.0)
        return PolynomialConfig(methods=[method], taus=tau, **values)

    def canonical(self, values):
        from reinmax.experiments.polynomial import temperature_free
        config = self.config(values)
        values = dict(values, method=config.methods[0])
        if "tau" in values:
            values["tau"] = 1.0 if temperature_free(config.methods[0]) else float(config.taus)
        return values

    def path(self, values, swept=()):
        """The temperature sweep's file name, in a folder naming any other swept field
        (``batch_size32_L16/p1.5_A_ST_tau0.1.json`` when batch size and L are swept)."""
        from reinmax.experiments.polynomial import sweep_record_path
        config = self.config(values)
        name = sweep_record_path(".", config, config.methods[0], config.taus).name
        # A method's options travel with the method the file name already holds (two option
        # sets for one method in one grid collide, and Grid.cells rejects that).
        levels = [f"{field}{_short(values[field])}" for field in swept
                  if field not in ("method", "tau", "p", "setting", "method_options")]
        return "_".join(levels) + "/" + name if levels else name

    def value(self, cell, field):
        config = self.config(cell.values)
        return {"method": config.methods[0], "tau": config.taus}.get(field) if field in (
            "method", "tau") else getattr(config, field)

    def fingerprint(self, values):
        return self.config(values).fingerprint()

    def finished(self, out_dir, cell):
        config = self.config(cell.values)
        return layer.finished_record(Path(out_dir) / cell.path, config.fingerprint(),
                                     config.device, fields=config.as_dict())

    def train(self, cell, workspace):
        from reinmax.experiments.polynomial import training
        checkpoint = None if workspace is None else Path(workspace) / "checkpoint.ckpt"
        return training.run(self.config(cell.values), progress=False, checkpoint=checkpoint)

    def metric(self, record, name="final_exact_loss"):
        from reinmax.experiments.polynomial.training import final_exact_losses
        (value,) = final_exact_losses(record).values()
        return value[0]


class VAE(Experiment):
    """The MNIST VAE: a cell is one setting ("8x4", ...) and one method at one optimizer,
    learning rate and temperature (Table 8's where the cell does not say), all seeds batched.
    Its record is ``<optimizer_X/><lr_Y/><tau_Z/><setting>_<method>.json`` (a folder level for
    each of the three the grid sweeps, then one for any other swept field: Figure 2's grid keeps
    ``tau_Z/``)."""
    name = "vae"
    hyperparameters = ("optimizer", "lr", "tau")
    fields = ("config", "method") + hyperparameters + (
        "overrides", "seeds", "epochs", "train_subset", "test_subset", "batch_size", "test_every",
        "gradient_every", "gradient_images", "gradient_samples", "gradient_methods",
        "gradient_estimators",
        "method_options", "device", "data_root")
    metrics = ("train_neg_elbo", "test_neg_elbo")

    def _parts(self, values):
        values = dict(values)
        for needed in ("config", "method"):
            if needed not in values:
                layer.fail(_OWNER, needed, None, "set for every vae cell (in axes or fixed)")
        name, method = values.pop("config"), values.pop("method")
        changes = {k: values.pop(k) for k in self.hyperparameters if k in values}
        return name, method, changes, values

    def config(self, values, out_dir=None):
        """``overrides`` (VAEConfig's, per method) may be fixed; the cell's optimizer, lr and
        tau replace its method's entries there."""
        from reinmax.experiments.vae import VAEConfig
        name, method, changes, rest = self._parts(values)
        overrides = dict(rest.pop("overrides", None) or {})
        if changes:
            overrides[method] = dict(overrides.get(method, {}), **changes)
        return VAEConfig(configs=[name], methods=[method], overrides=overrides,
                         out_dir=None if out_dir is None else str(out_dir), **rest)

    def canonical(self, values):
        config = self.config(values)
        values = dict(values, config=config.configs[0], method=config.methods[0])
        for key, value in config.overrides.get(config.methods[0], {}).items():
            values[key] = value
        return values

    def path(self, values, swept=()):
        from reinmax.experiments.vae.training import file_stem
        config = self.config(values)
        name, method = config.configs[0], config.methods[0]
        levels = [f"{key}_{_short(values[key])}" for key in self.hyperparameters if key in swept]
        levels += [f"{key}_{_short(values[key])}" for key in swept
                   if key not in self.hyperparameters + ("config", "method", "method_options")]
        if "method_options" in swept:
            # The cell's own method's options, as a folder name (a dict's repr has braces,
            # quotes and spaces): "options_eta=0.5_tau2=1", or "options_default".
            own = (values.get("method_options") or {}).get(method, {})
            levels.append("options_" + ("_".join(f"{k}={_short(v)}" for k, v in sorted(own.items()))
                                        or "default"))
        return "/".join(levels + [f"{file_stem(name, method)}.json"])

    def value(self, cell, field):
        config = self.config(cell.values)
        if field in ("config", "method"):
            return getattr(config, field + "s")[0]
        if field in self.hyperparameters:
            return config.hyperparameters(config.configs[0], config.methods[0])[field]
        return getattr(config, field)

    def fingerprint(self, values):
        from reinmax.experiments.vae.training import settings_of, setting_fingerprint
        config = self.config(values)
        return setting_fingerprint(settings_of(config, config.configs[0], config.methods[0],
                                                config.resolved_device()))

    def finished(self, out_dir, cell):
        from reinmax.experiments.vae.training import finished_setting
        config = self.config(cell.values, Path(out_dir) / Path(cell.path).parent)
        return finished_setting(config, config.configs[0], config.methods[0])

    def train(self, cell, workspace):
        from reinmax.experiments.vae import training
        config = self.config(cell.values, workspace)
        train, test = _images(config.train_subset, config.test_subset, config.data_root,
                              str(config.resolved_device()))
        return training.train_setting(config, config.configs[0], config.methods[0], train, test,
                                      progress=False)

    def metric(self, record, name="train_neg_elbo"):
        return record["final"][name]["mean"]


@functools.lru_cache(maxsize=2)
def _images(train_subset, test_subset, data_root, device):
    """MNIST for the VAE's cells, read once per process (a worker trains many cells)."""
    from reinmax.experiments.vae.training import load_images
    return (load_images("train", train_subset, data_root, device),
            load_images("test", test_subset, data_root, device))


EXPERIMENTS: Dict[str, Experiment] = {e.name: e for e in (Polynomial(), VAE())}
"""The experiments a grid can name."""


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        layer.fail(_OWNER, "experiment", name, f"one of {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


# ------------------------------------------------------------------------ the grid
@dataclasses.dataclass
class Grid:
    """``experiment`` (a name in ``EXPERIMENTS``), ``axes`` ``{field: [values]}`` (the cells are
    every combination, in the order the axes are given, the last varying fastest) and ``fixed``
    ``{field: value}`` shared by every cell. Fields are the experiment's (``fields(name)``). An
    axis over several fields that move together is keyed ``"a+b"`` with ``[[a, b], ...]`` (e.g.
    each method at its own temperature: ``{"method+tau": [["ST", 1.3], ["ReinMax", 1.5]]}``)."""
    experiment: str
    axes: Mapping[str, Sequence[Any]]
    fixed: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        spec = experiment(self.experiment)
        if not isinstance(self.axes, Mapping) or not isinstance(self.fixed, Mapping):
            layer.fail(_OWNER, "axes", self.axes, "a dict {field: [values]} (and fixed a dict)")
        for where, names in (("axes", self.axes), ("fixed", self.fixed)):
            unknown = [n for key in names for n in key.split("+") if n not in spec.fields]
            if unknown:
                layer.fail(_OWNER, where, dict(names), f"keyed by {self.experiment}'s fields "
                           f"{list(spec.fields)} ({unknown[0]!r} is not one)")
        both = sorted({n for key in self.axes for n in key.split("+")} & set(self.fixed))
        if both:
            layer.fail(_OWNER, "fixed", dict(self.fixed), f"fields not also in axes ({both})")
        for name, values in self.axes.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
                layer.fail(_OWNER, f"axes[{name!r}]", values, "a non-empty list of values "
                           "(an empty axis makes an empty grid)")
            width = len(name.split("+"))
            if width > 1 and not all(isinstance(v, (list, tuple)) and len(v) == width
                                     for v in values):
                layer.fail(_OWNER, f"axes[{name!r}]", values, f"a list of {width}-item lists "
                           "(an axis over several fields, joined by '+', moves them together)")

    def as_dict(self) -> Dict[str, Any]:
        return {"experiment": self.experiment, "axes": {k: list(v) for k, v in self.axes.items()},
                "fixed": dict(self.fixed)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Grid":
        unknown = sorted(set(data) - {"experiment", "axes", "fixed"})
        if unknown or "experiment" not in data:
            layer.fail(_OWNER, "grid", dict(data), "a dict with 'experiment', 'axes' and "
                       "optionally 'fixed'")
        return cls(data["experiment"], data.get("axes", {}), data.get("fixed", {}))

    def cells(self) -> List[Cell]:
        """Every cell, each validated by the experiment (its config built), duplicates (cells
        the experiment cannot tell apart) once; an error names the first cell it rejects."""
        spec = experiment(self.experiment)
        names = list(self.axes)
        swept = [field for name in names for field in name.split("+")]
        cells, seen, paths = [], set(), {}
        for combination in itertools.product(*(self.axes[n] for n in names)):
            values = dict(self.fixed)
            for name, value in zip(names, combination):
                values.update(zip(name.split("+"), value) if "+" in name else {name: value})
            try:
                values = spec.canonical(values)
                print_ = json.dumps(layer.json_values(values), sort_keys=True)
                path = spec.path(values, swept)
                fingerprint = spec.fingerprint(values)
            except (TypeError, ValueError) as error:
                raise ValueError(f"the {self.experiment} experiment rejects the cell "
                                 f"{dict(zip(names, combination))}: {error}") from None
            if print_ in seen:
                continue
            seen.add(print_)
            if path in paths and paths[path] != fingerprint:
                raise ValueError(f"two cells of this grid would keep their records in the same "
                                 f"file {path!r} (the file names only the swept fields of "
                                 f"{self.experiment}); sweep the others into another out_dir")
            paths[path] = fingerprint
            cells.append(Cell(self.experiment, values, path, fingerprint, len(cells)))
        return cells


def fields(name: str) -> List[str]:
    """The fields a grid over experiment ``name`` may set."""
    return list(experiment(name).fields)
