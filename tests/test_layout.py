"""The package's layout: no import cycle, no import against the layers, no private name used
across modules (tools/layout.py reads the source), and every old path still imports as the same
module as its new one."""
import importlib
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import layout  # noqa: E402

from reinmax import aliases  # noqa: E402


def test_no_import_cycle_in_the_package():
    assert layout.cycles(layout.graph()) == []


def test_the_cycle_finder_finds_cycles():
    # A check that cannot fail checks nothing: a hand-made graph with two loops.
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}}
    assert sorted(layout.cycles(edges)) == [["a", "b", "c"], ["d", "e"]]


def test_imports_inside_functions_count():
    edges = layout.graph()
    # reinmax.sweep.named imports the experiments inside functions only.
    assert "reinmax.experiments.polynomial" in edges["reinmax.sweep.named"]


def test_no_import_runs_against_the_layers():
    assert layout.against_layers(layout.graph()) == []
    # And the check sees one: an experiment importing the sweep runner.
    assert layout.against_layers({"reinmax.experiments.vae.grid": {"reinmax.sweep.run"}}) == [
        ("reinmax.experiments.vae.grid", "reinmax.sweep.run")]


def test_no_private_name_crosses_a_module_boundary():
    crossings = layout.private_crossings()
    assert crossings == [], "\n".join(crossings)


def test_the_private_name_scan_sees_a_crossing(tmp_path, monkeypatch):
    source = ("from reinmax.estimators import categorical as c\n"
              "from reinmax.data.mnist import _hidden\n"
              "c._gr_tau_limit\n"
              "class Mine(c.Base):\n    def _estimate(self):\n        pass\n")
    monkeypatch.setattr(layout, "python_sources", lambda: [("example.py", source)])
    found = layout.private_crossings()
    assert len(found) == 3, found


def test_the_layout_command_exits_zero():
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "layout.py")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("old, new", sorted(aliases.MOVED.items()))
def test_an_old_module_path_is_the_new_module(old, new):
    old_module = importlib.import_module(old)
    new_module = importlib.import_module(new)
    assert old_module is new_module
    assert new_module.__spec__.name == new          # the alias did not take the module's name
    parent, _, name = old.rpartition(".")
    assert getattr(importlib.import_module(parent), name) is new_module


@pytest.mark.parametrize("old, new", sorted(aliases.MOVED_NAMES.items()))
def test_a_moved_function_is_found_at_its_old_name(old, new):
    old_module, _, old_name = old.rpartition(".")
    new_module, _, new_name = new.rpartition(".")
    assert (getattr(importlib.import_module(old_module), old_name)
            is getattr(importlib.import_module(new_module), new_name))


def test_old_from_imports_work():
    from reinmax import bias, exact, nn, ode, registry, report, results, sampling, schedules  # noqa: F401
    from reinmax.experiments.polynomial import temperature_sweep  # noqa: F401
    from reinmax.report import welch_test
    from reinmax.statistics import welch_test as new
    assert welch_test is new
    assert results.RESULTS_DIR == ROOT / "results"


def test_a_pickle_naming_an_old_path_loads():
    from reinmax.estimators.schedules import constant
    data = pickle.dumps(constant(1.5), protocol=0).replace(b"reinmax.estimators.schedules", b"reinmax.schedules")
    assert b"reinmax.schedules" in data
    assert pickle.loads(data)(3) == 1.5


def test_unknown_attributes_still_raise():
    import reinmax
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        reinmax.nonexistent
