"""Run by tests/test_sweep_ray.py inside ``unshare --net`` (a network namespace whose only
interface is loopback): a Ray cluster of a head and a second worker node, both on 127.0.0.1,
started and stopped here; the tiny polynomial grid swept on it three times: uninterrupted, with a
worker process killed mid-sweep, and with the worker node removed mid-sweep. Faults are injected
by the runner's marker file ($REINMAX_SWEEP_FAULT): the cell that claims it acts.

Usage: python sweep_ray_cluster.py OUT_FOLDER   (writes OUT_FOLDER/summary.json)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

out = Path(sys.argv[1])
# Loopback is down in a fresh namespace; nothing else exists there.
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
marker = out / "marker"
os.environ["REINMAX_SWEEP_FAULT"] = str(marker)      # inherited by every Ray process
short = tempfile.mkdtemp(prefix="r", dir="/tmp")    # Ray's socket paths must stay short
# Ray's session files, its address file (never /tmp/ray's, which a stale cluster may have left)
# and the cells' workspaces all go under this private folder.
os.environ["RAY_TMPDIR"] = os.environ["TMPDIR"] = short
os.makedirs(os.path.join(short, "ray"))

import ray                                           # noqa: E402
from ray.cluster_utils import Cluster                # noqa: E402

from reinmax.sweep import run_sweep                  # noqa: E402
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_helpers import TINY, journal, numbers, records   # noqa: E402

NODE = {"num_cpus": 1, "node_ip_address": "127.0.0.1",
        "object_store_memory": 80 * 1024 ** 2}
# A removed node is noticed within ~2 s instead of Ray's default ~30 s.
FAST = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
        "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}

summary = {"timings": {}}
began = time.perf_counter()
cluster = Cluster(initialize_head=True,
                  head_node_args=dict(NODE, include_dashboard=False, _system_config=FAST))
try:
    worker_node = cluster.add_node(**NODE)
    ray.init(address=cluster.address, log_to_driver=False)
    head_id = ray.get_runtime_context().get_node_id()
    summary["nodes"] = sorted({n["NodeManagerAddress"] for n in ray.nodes()})
    summary["node_count"] = len(ray.nodes())
    summary["timings"]["start"] = time.perf_counter() - began

    def sweep(name):
        # Each scenario trains from scratch: the cells' workspaces (checkpoints, on the nodes'
        # disk: here both nodes share this one) of the previous scenario go.
        shutil.rmtree(os.path.join(short, "reinmax-sweep"), ignore_errors=True)
        started = time.perf_counter()
        results = run_sweep(TINY, out / name, engine="ray", progress=False, retries=3)
        summary["timings"][name] = time.perf_counter() - started
        summary[name] = {"journal": journal(out / name),
                         "records": {p: numbers(r) for p, r in records(out / name).items()},
                         "returned": [c.path for c, _ in results],
                         "claimed": (out / "marker.claimed").is_file()}
        (out / "marker.claimed").unlink(missing_ok=True)

    sweep("plain")
    marker.write_text(json.dumps({"action": "kill-worker", "from_cell": 3}))
    sweep("kill_worker")

    def remove_when_held():
        held = Path(str(marker) + ".held")
        while not held.exists():
            time.sleep(0.05)
        summary["held_on"] = json.loads(held.read_text())["node"]
        cluster.remove_node(worker_node, allow_graceful=False)
        summary["removed"] = worker_node.node_id
    watcher = threading.Thread(target=remove_when_held, daemon=True)
    watcher.start()
    marker.write_text(json.dumps({"action": "hold", "from_cell": 2, "not_node": head_id}))
    sweep("remove_node")
    watcher.join(timeout=5)
    # The head marks the removed node dead at its next failed health checks (~2 s, longer under
    # load): wait for that (at most 60 s) rather than read the table once.
    deadline = time.monotonic() + 60
    while sum(n["Alive"] for n in ray.nodes()) > 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    summary["alive_after"] = sum(n["Alive"] for n in ray.nodes())
finally:
    ray.shutdown()
    cluster.shutdown()
    shutil.rmtree(short, ignore_errors=True)
summary["timings"]["total"] = time.perf_counter() - began
(out / "summary.json").write_text(json.dumps(summary))
