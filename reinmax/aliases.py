"""Old module paths, kept working by one mechanism.

The package was reorganised into layers (``reinmax.estimators``, ``reinmax.theory``,
``reinmax.experiments``, ``reinmax.sweep``, ``reinmax.reporting``). Code written against the
earlier flat layout (``import reinmax.exact``, ``from reinmax import registry``,
``reinmax.results.read_json``) still runs: each old path in :data:`MOVED` is the *same module
object* as its new one (not a copy), so a patch through either name is seen through both, and
pickles that name an old path still load. New code should use the new paths.
"""
import importlib
import importlib.abc
import importlib.machinery
import sys

MOVED = {
    "reinmax.registry": "reinmax.estimators.registry",
    "reinmax.sampling": "reinmax.estimators.sampling",
    "reinmax._checks": "reinmax.estimators.checks",
    "reinmax._binary": "reinmax.estimators.two_category",
    "reinmax.bernoulli": "reinmax.estimators.bernoulli",
    "reinmax.score": "reinmax.estimators.categorical_score",
    "reinmax.binary_score": "reinmax.estimators.bernoulli_score",
    "reinmax.disarm_tree": "reinmax.estimators.disarm_tree",
    "reinmax.nn": "reinmax.estimators.nn",
    "reinmax.schedules": "reinmax.estimators.schedules",
    "reinmax.exact": "reinmax.theory.exact",
    "reinmax.bias": "reinmax.theory.bias",
    "reinmax.ode": "reinmax.theory.ode",
    "reinmax.symbolic": "reinmax.theory.symbolic",
    "reinmax.reference": "reinmax.theory.algorithms",
    "reinmax.results": "reinmax.experiments.records",
    "reinmax.report": "reinmax.reporting.tables",
    "reinmax.plots": "reinmax.reporting.figures",
    "reinmax.params": "reinmax.reporting.params",
    "reinmax.experiments.bernoulli_vae.model": "reinmax.models.bernoulli_vae",
}
"""Old dotted path -> new dotted path, for every module that moved."""

MOVED_NAMES = {
    **{f"reinmax.experiments.polynomial{module}.{name}": f"reinmax.sweep.polynomial.{name}"
       for module in ("", ".sweeps")
       for name in ("sweep_cell", "temperature_sweep", "temperature_sweeps")},
    **{f"reinmax.experiments.vae{module}.temperature_grid": "reinmax.sweep.vae.temperature_grid"
       for module in ("", ".grid")},
}
"""Old dotted name -> new dotted name, for functions that moved to another module (running a
sweep moved above the experiments, into :mod:`reinmax.sweep`)."""


class MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old path as its new module: the module object is shared, not re-executed."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(MOVED[spec.name])
        # The import system stamps the alias's spec on the module it gets; keep the real one.
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module):
        module.__spec__ = self.real_spec


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once)."""
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())


def old_attribute(module: str, name: str):
    """``module.name`` for a module or function that moved away from ``module`` (the module's
    ``__getattr__`` calls this), or AttributeError as usual."""
    old = f"{module}.{name}"
    if old in MOVED:
        return importlib.import_module(old)
    if old in MOVED_NAMES:
        where, _, attribute = MOVED_NAMES[old].rpartition(".")
        return getattr(importlib.import_module(where), attribute)
    raise AttributeError(f"module {module!r} has no attribute {name!r}")
