"""benchmarks/sweep.py runs end to end (``--quick``); no timing is asserted (the machine decides)."""
import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "sweep.py"


def test_quick_sweep_benchmark_reports_overhead_and_speedup(tmp_path):
    output = tmp_path / "sweep.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "overhead:" in done.stdout and "speed-up" in done.stdout
    result = json.loads(output.read_text())
    assert len(result["overhead"]["direct_s"]) == len(result["overhead"]["runner_s"]) == 2
    assert set(result["workers"]["seconds"]) == {"1", "2"}
