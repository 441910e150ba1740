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


TABLE3 = Path(__file__).resolve().parent.parent / "benchmarks" / "table3.py"


def test_table3_quick_run_prints_and_writes_the_papers_layout(tmp_path):
    """benchmarks/table3.py --quick: both problems, every column of the paper's Table 3 (GR-MCK
    at tiny K), ratios to ST from the same run, the paper's row beside, JSON with provenance."""
    output = tmp_path / "table3.json"
    done = subprocess.run([sys.executable, str(TABLE3), "--quick", "--threads", "1",
                           "--unfused", "QP", "--out", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "time / ST, CPU" in done.stdout and "paper (idle A6000 GPU)" in done.stdout
    record = json.loads(output.read_text())
    assert record["provenance"]["torch_threads"] == 1 and record["provenance"]["git_commit"]
    expected = ["ReinMax", "ST", "STGS", "GST-1.0", "GR-MCK2", "GR-MCK3"]
    for problem, epoch in (("QP", 200), ("MNIST-VAE", 600)):
        result = record["problems"][problem]
        assert result["steps_per_epoch"] == epoch
        unfused = ["GR-MCK2 unfused", "GR-MCK3 unfused"] if problem == "QP" else []
        assert list(result["rows"]) == expected + unfused
        for label, row in result["rows"].items():
            for clock in ("wall", "cpu"):
                assert row[clock]["seconds_per_step"] > 0
                assert row[clock]["seconds_per_epoch"] == pytest.approx(
                    epoch * row[clock]["seconds_per_step"])
        assert result["rows"]["ST"]["cpu"]["ratio_to_st"] == 1.0    # ST against itself, by round
        # (tiny QP steps can allocate less than a page: no ratio then)
        assert result["rows"]["ST"]["memory"].get("ratio_to_st", 1.0) == 1.0
        assert result["rows"]["GR-MCK2"]["memory"]["peak_mib"] >= 0
        # the paper's row, parsed from results/paper/tables.json
        paper = result["paper"]
        assert list(paper) == ["ReinMax", "ST", "STGS", "GST-1.0", "GR-MCK100", "GR-MCK300",
                               "GR-MCK1000"]
        assert paper["ST"]["time_ratio_to_st"] == 1.0
    assert record["problems"]["QP"]["paper"]["GR-MCK1000"]["seconds_per_epoch"] == 6.6
    assert record["problems"]["QP"]["paper"]["GR-MCK1000"]["memory_mb"] == 3 * 1024
    assert record["problems"]["MNIST-VAE"]["paper"]["GR-MCK100"]["memory_mb"] == 76


def test_table3_bad_options_are_clear_errors(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location("benchmark_table3", TABLE3)
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    for option, value in [("--rounds", "0"), ("--ks", "0"), ("--threads", "-1"),
                          ("--unfused", "LISTOPS"), ("--block", "0")]:
        with pytest.raises(SystemExit) as exit_:
            benchmark.main([option, value])
        assert exit_.value.code == 2
        assert option in capsys.readouterr().err


def test_vae_step_benchmark_runs_on_cpu_and_restores_the_block_size():
    """benchmarks/vae_step.py on a few images: five timed lines, in milliseconds per step."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "vae_step.py"
    done = subprocess.run([sys.executable, str(script), "--device", "cpu", "--images", "200"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "ms per step (2 steps)" in line]
    assert [line.split(":")[0] for line in lines] == [
        "warm-up", "ST", "GR-MCK one block", "GR-MCK CPU-sized blocks", "GR-MCK one block, again"]


def test_vae_ensemble_benchmark_reports_the_speed_up_and_its_bound(tmp_path):
    """benchmarks/vae.py --only ensemble: for each ensemble size, the three ways to train the
    seeds, the two parts that batching cannot remove, and the bound they imply, printed and
    written with provenance."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "vae.py"
    out = tmp_path / "vae.json"
    done = subprocess.run([sys.executable, str(script), "--seeds", "1", "2", "--steps", "1",
                           "--rounds", "1", "--only", "ensemble", "--out", str(out)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert "Table 3 style" not in done.stdout
    record = json.loads(out.read_text())
    assert [entry["seeds"] for entry in record["ensemble"]] == [1, 2]
    for entry in record["ensemble"]:
        seconds = entry["seconds_per_step"]
        assert set(seconds) == {"conventional loop", "loop of S=1", "ensemble"}
        assert set(entry["floor_seconds"]) == {"floor: matrix products", "floor: Adam update"}
        floor = sum(entry["floor_seconds"].values())
        assert entry["largest_possible_speedup"] == pytest.approx(seconds["conventional loop"] / floor)
        assert entry["speedup"]["loop of S=1"] == pytest.approx(seconds["loop of S=1"] / seconds["ensemble"])
        assert entry["speedup"]["ensemble"] == 1.0
    assert done.stdout.count("no ensemble doing these products") == 2
    assert "Ensemble speed-up by size" in done.stdout
    assert record["provenance"]["device"] == "cpu"


def test_vae_benchmark_bad_options_are_clear_errors():
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "vae.py"
    for option, value in [("--seeds", "0"), ("--seeds", "x"), ("--only", "everything"),
                          ("--config", "3x3")]:
        done = subprocess.run([sys.executable, str(script), option, value],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        assert option in done.stderr or value in done.stderr


def test_polynomial_benchmark_writes_its_ratios_as_json(tmp_path):
    """benchmarks/polynomial.py --out: the batching speed-up, the per-method step times with
    their ratios to ST and projections, and Table 3's QP costs, as JSON with provenance."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "polynomial.py"
    out = tmp_path / "polynomial.json"
    done = subprocess.run([sys.executable, str(script), "--steps", "1", "--rounds", "2",
                           "--threads", "1", "--methods", "ST", "ReinMax", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(out.read_text())
    assert record["benchmark"] == "polynomial" and record["provenance"]["torch_threads"] == 1
    speedup = record["batching"]["speedup_loop_over_batched"]
    assert set(speedup) == {"wall", "cpu"} and speedup["wall"]["n"] == 2
    assert speedup["wall"]["q1"] <= speedup["wall"]["median"] <= speedup["wall"]["q3"]
    methods = record["methods"]
    assert methods["ratio_to_st_median"]["ST"] == {"wall": 1.0, "cpu": 1.0}
    assert set(methods["paper_figure1_minutes_projected"]) == {"ST", "ReinMax"}
    table3 = record["table3"]
    assert table3["ratio_to_st_median"]["ST"] == 1.0
    assert set(table3["ratio_to_st_median"]) == {"ST", "ReinMax", "STGS", "GST-1.0", "GR-MCK"}
    bad = subprocess.run([sys.executable, str(script), "--rounds", "0"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--rounds must be positive" in bad.stderr


def test_vae_cost_benchmark_quick_run_writes_ratios_and_cpu_hours(tmp_path):
    """benchmarks/vae_cost.py (issue: Table 2's cost per cell): the 8x4 ReinMax baseline is always
    measured, its ratio is 1, and the CPU hours follow from the per-step time and the protocol."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "vae_cost.py"
    out = tmp_path / "cost.json"
    done = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    rows = {(r["setting"], r["method"]): r for r in record["rows"]}
    assert set(rows) == {("8x4", "ST"), ("8x4", "ReinMax"), ("4x24", "ST"), ("4x24", "ReinMax")}
    assert rows["8x4", "ReinMax"]["ratio_to_8x4_reinmax"] == 1.0
    for row in rows.values():
        assert row["cpu_hours_per_cell"] == pytest.approx(row["cpu_s_per_step"] * 600 * 160 / 3600)
    bad = subprocess.run([sys.executable, str(script), "--settings", "9x9"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "--settings: '9x9' is not one of" in bad.stderr


def test_stgs_benchmark_prints_its_ratio_table_and_json(tmp_path):
    """benchmarks/stgs.py --quick: every setting (shape x tau x threads x checks) in the table
    and the JSON (no timing asserted)."""
    script = SCRIPT.parent / "stgs.py"
    output = tmp_path / "stgs.json"
    done = subprocess.run([sys.executable, str(script), "--quick", "--threads", "1", "2",
                           "--out", str(output)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ours / torch" in done.stdout and "load average before" in done.stdout
    record = json.loads(output.read_text())
    settings = {(r["shape"][2], r["tau"], r["threads"], r["validate_args"])
                for r in record["results"]}
    assert settings == {(n, tau, t, c) for n in (10, 2, 64) for tau in (1.0, 0.5) for t in (1, 2)
                        for c in (True, False)}
    assert all(r["ratio_median"] > 0 and len(r["ratios"]) == 2 for r in record["results"])
    assert "load_average_after" in record["machine"] and "nice" in record["machine"]


# ---------------------------------------------------------------- benchmarks/beyond.py
BEYOND = Path(__file__).resolve().parent.parent / "benchmarks" / "beyond.py"


def _load_beyond():
    import importlib.util
    spec = importlib.util.spec_from_file_location("benchmark_beyond", BEYOND)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("chunk", [5, 2], ids=["one chunk", "chunks"])
@pytest.mark.parametrize("broken", [False, True], ids=["authors", "broken"])
def test_the_authors_form_is_reinmax_rao_given_the_same_draws(monkeypatch, chunk, broken):
    """The benchmark's reference (the authors' C x C form) computes the registry's estimator:
    fed the Exp(1) draws that ReinMax-Rao makes from the same generator state, the gradients
    agree to float64 rounding, in one chunk and in several. A broken reference (its Jacobians
    without the 1/tau) does not."""
    import torch
    from reinmax.estimators import rao
    beyond = _load_beyond()
    if broken:
        original = beyond.authors_mean_jacobian
        monkeypatch.setattr(beyond, "authors_mean_jacobian",
                            lambda logits, D, tau, E: original(logits, D, tau, E) * tau)
    R, shape, tau = 16, (5, 3, 4), 0.7
    logits = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    index = torch.randint(0, shape[-1], shape[:-1], generator=torch.Generator().manual_seed(1))
    g = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    leaf = logits.clone().requires_grad_(True)
    y, _ = rao.reinmax_rao(leaf, tau, sample=index, generator=torch.Generator().manual_seed(3), R=R)
    ours, = torch.autograd.grad((y * g).sum(), leaf)
    # ReinMax-Rao's draws: uniforms (R, *shape) in order from its generator, E = -log(1 - U)
    u = torch.rand((R,) + shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    E = (-torch.log1p(-u)).clamp(min=torch.finfo(torch.float64).tiny).movedim(0, -1)   # (..., C, R)
    D = torch.nn.functional.one_hot(index, shape[-1]).to(logits.dtype)
    pi = torch.softmax(logits, -1).reshape(-1, shape[-1])
    parts = iter(E.split(chunk))
    theirs = beyond.authors_backward(logits, D, pi, g, torch.zeros_like(g), tau,
                                     lambda part: next(parts), chunk)
    assert ((theirs - ours).abs().max() < 1e-10) != broken


def test_quick_beyond_benchmark_writes_its_record(tmp_path):
    output = tmp_path / "beyond.json"
    done = subprocess.run([sys.executable, str(BEYOND), "--quick", "--out", str(output)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "authors' form / ReinMax-Rao" in done.stdout and "IQR" in done.stdout
    record = json.loads(output.read_text())
    assert record["threads"] == 1 and record["rounds"] == 2
    for row in record["shapes"]:
        for clock in ("wall", "cpu"):
            for key in ("authors_over_rao", "rao_over_grmck"):
                assert row[clock][key]["q25"] <= row[clock][key]["median"] <= row[clock][key]["q75"]
