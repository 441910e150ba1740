"""benchmarks/listops.py runs end to end (--quick) and reports both evaluation paths. No timing
is asserted: the script measures speed; this test keeps it working."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "listops.py"


@pytest.mark.skipif(not os.environ.get("REINMAX_DATA") or
                    not (Path(os.environ["REINMAX_DATA"]) / "listops").is_dir(),
                    reason="needs REINMAX_DATA with listops/")
def test_quick_benchmark(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "eval reference" in done.stdout and "reuse" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {r["preset"] for r in rows} == {"study", "book"}
    assert all(r["train_examples_per_s"] > 0 and r["eval_examples_per_s_reuse"] > 0 for r in rows)


def test_bad_options():
    done = subprocess.run([sys.executable, str(SCRIPT), "--batches", "0"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "--batches" in done.stderr
