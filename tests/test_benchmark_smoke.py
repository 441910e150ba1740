"""benchmarks/estimators.py runs end to end (``--quick``) and reports every estimator.

No timing is asserted here: speed is what the script measures, on a machine of the reader's
choosing; this test only keeps the script working.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import reinmax

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "estimators.py"


def test_quick_benchmark_prints_a_ratio_table_for_every_estimator(tmp_path):
    output = tmp_path / "benchmark.json"
    # an empty cache folder: --quick must not download, and must say the official package is absent
    environment = dict(os.environ, REINMAX_BENCH_CACHE=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1",
                           "--json", str(output)], capture_output=True, text=True, timeout=600,
                          env=environment)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert "x our ST" in text and "ms per step" in text
    assert "official reinmax 0.1.0: absent" in text
    assert "Targets" in text and "torch.multinomial" in text
    for name in reinmax.ESTIMATORS:
        if name != "GR-MCK":
            assert f"\n{name} " in text, f"no row for {name}"
    assert "GR-MCK (K=100)" in text

    record = json.loads(output.read_text())
    assert record["machine"]["torch_threads"] == 1
    assert record["machine"]["cpu_model"]
    for result in record["results"]:
        st = result["rows"]["ST"]
        assert st["x_st"]["median"] == 1.0          # ST against itself, round by round
        assert st["ms"]["median"] > 0
        for label, row in result["rows"].items():
            assert "skipped" in row or row["ms"]["n"] >= 1, label
    memory = [row["memory"] for result in record["results"] for row in result["rows"].values()
              if "memory" in row]
    assert memory and all("peak_mib" in m for m in memory), memory


def test_bad_options_are_clear_errors(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("benchmark_estimators", SCRIPT)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    for option, value in [("--rounds", "0"), ("--threads", "0"), ("--taus", "-1")]:
        with pytest.raises(SystemExit) as exit_:
            benchmark.main([option, value])
        assert exit_.value.code == 2
        assert option in capsys.readouterr().err
