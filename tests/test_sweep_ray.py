"""The sweep runner on a Ray cluster (a head and a second worker node) that the test starts and
stops itself, inside a private network namespace with only a loopback interface (``unshare
--net``; CI runs as root), so every Ray process binds and talks to 127.0.0.1 only. The cluster
script is tests/sweep_ray_cluster.py; here its records are held equal, bit for bit, to the local
engine's (torch pinned to one thread in both), after a worker process is killed and after the
worker node is removed mid-sweep: every record written exactly once, none lost."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reinmax.sweep import Grid, run_sweep
from sweep_helpers import TINY, numbers

HERE = Path(__file__).resolve().parent


def _why_not() -> str:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (make test installs the optional extra: pip install '.[ray]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare or ip is missing: no private network namespace can be made"
    made = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    if made.returncode != 0:
        return ("cannot make a private network namespace (unshare --net needs root or user "
                f"namespaces): {made.stderr.strip()}")
    return ""


WHY_NOT = _why_not()


@pytest.fixture(scope="module")
def cluster_run(tmp_path_factory):
    if WHY_NOT:
        pytest.skip(WHY_NOT)
    out = tmp_path_factory.mktemp("ray")
    environment = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", OMP_NUM_THREADS="1",
                       PYTHONPATH=os.pathsep.join([str(HERE.parent)] + [
                           p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run(["unshare", "--net", sys.executable, str(HERE / "sweep_ray_cluster.py"),
                           str(out)], env=environment, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    return {c.path: numbers(r) for c, r in run_sweep(TINY, tmp_path_factory.mktemp("local"),
                                                     progress=False)}


def test_the_cluster_is_two_nodes_on_loopback_only(cluster_run):
    assert cluster_run["node_count"] == 2 and cluster_run["nodes"] == ["127.0.0.1"]


def test_ray_records_equal_the_local_engines_bit_for_bit(cluster_run, local):
    plain = cluster_run["plain"]
    assert plain["records"] == local
    assert sorted(plain["journal"]) == sorted(local) and len(plain["journal"]) == len(local)
    assert plain["returned"] == [c.path for c in Grid.from_dict(TINY).cells()]


@pytest.mark.parametrize("scenario", ["kill_worker", "remove_node"])
def test_a_fault_mid_sweep_loses_nothing_and_writes_nothing_twice(cluster_run, local, scenario):
    run = cluster_run[scenario]
    assert run["claimed"], f"no cell carried out the {scenario} fault"
    assert sorted(run["journal"]) == sorted(local) and len(run["journal"]) == len(local)
    assert run["records"] == local                   # equal to an uninterrupted run
    if scenario == "remove_node":
        assert cluster_run["held_on"] == cluster_run["removed"]     # the worker node went
        assert cluster_run["alive_after"] == 1
