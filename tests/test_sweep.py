"""The sweep runner on the local engine: grids as data, bad input before anything trains,
idempotence (a finished cell is never trained again), records equal across engines, a killed
driver's rerun finishing only the missing cells, selection, and the committed records."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from reinmax import sweep
from reinmax.experiments import polynomial as P
from reinmax.experiments import vae as V
from reinmax.sweep import Grid, run_sweep
from sweep_helpers import TINY, journal, numbers, records

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")
    monkeypatch.setattr(P.training, "run", refuse)
    monkeypatch.setattr(P.training, "train_method", refuse)
    monkeypatch.setattr(V.training, "train_setting", refuse)
    monkeypatch.setattr(V.training, "load_images", refuse)


# --------------------------------------------------------------------- the grid
def test_a_grid_expands_to_validated_cells_in_order():
    cells = Grid.from_dict(TINY).cells()
    assert len(cells) == 9 and [c.index for c in cells] == list(range(9))
    assert [(c.values["method"], c.values["tau"]) for c in cells[:4]] == [
        ("ST", 0.5), ("ST", 1.0), ("ST", 2.0), ("ReinMax", 0.5)]
    assert cells[0].path == "p2_A_ST_tau0.5.json"
    # the fingerprint is the experiment layer's: the one a direct run's record carries
    config = P.PolynomialConfig(methods=["ST"], taus=0.5, **TINY["fixed"])
    assert cells[0].fingerprint == config.fingerprint()
    # temperature-free methods are one cell whatever the temperature axis says
    grid = Grid("polynomial", {"method": ["REINFORCE", "ST"], "tau": [0.5, 1.0]}, TINY["fixed"])
    assert [c.path for c in grid.cells()] == [
        "p2_A_REINFORCE_tau1.json", "p2_A_ST_tau0.5.json", "p2_A_ST_tau1.json"]
    # fields moving together; other swept fields name a folder
    grid = Grid("polynomial", {"batch_size+L": [[16, 8], [32, 4]], "method+tau": [["ST", 0.5]]},
                {"steps": 2, "epochs": 1, "seeds": [0]})
    assert [c.path for c in grid.cells()] == ["batch_size16_L8/p2_A_ST_tau0.5.json",
                                             "batch_size32_L4/p2_A_ST_tau0.5.json"]


@pytest.mark.parametrize("grid, message", [
    (dict(experiment="nope", axes={}), "experiment must be one of ['polynomial', 'vae']"),
    (dict(experiment="polynomial", axes={"metod": ["ST"]}), "('metod' is not one)"),
    (dict(experiment="polynomial", axes={"method": []}), "an empty axis makes an empty grid"),
    (dict(experiment="polynomial", axes={"method": "ST"}), "a non-empty list of values"),
    (dict(experiment="polynomial", axes={"method": ["ST", "Bogus"]}),
     "rejects the cell {'method': 'Bogus'}"),
    (dict(experiment="polynomial", axes={"tau": [1.0, -1.0]}, fixed={"method": "ST"}),
     "taus must be a number in (0, inf); got taus=-1.0"),
    (dict(experiment="polynomial", axes={"method": ["ST"]}, fixed={"method": "ST"}),
     "fields not also in axes"),
    (dict(experiment="polynomial", axes={"method+tau": [["ST"]]}), "a list of 2-item lists"),
    ([dict(experiment="polynomial", axes={"tau": [1.0]}, fixed={"method": "ST", "epochs": e})
      for e in (1, 2)], "cells keep their records in distinct files (p2_A_ST_tau1.json twice)"),
    (dict(experiment="vae", axes={"method": ["ST"], "lr": [0.0]}, fixed={"config": "8x4"}),
     "overrides['ST']['lr'] must be a number in (0, inf)"),
])
def test_bad_grids_are_clear_errors_before_anything_trains(grid, message, no_training, tmp_path):
    with pytest.raises(ValueError) as error:
        run_sweep(grid, tmp_path, progress=False)
    assert message in str(error.value)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("kwargs, message", [
    (dict(engine="spark"), "engine must be one of ['local', 'ray']"),
    (dict(workers=0), "workers must be an integer >= 1"),
    (dict(address="127.0.0.1:1"), "address must be None with engine='local'"),
])
def test_bad_engine_arguments_are_clear_errors(kwargs, message, tmp_path):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(")):
        run_sweep(TINY, tmp_path, progress=False, **kwargs)


# --------------------------------------------------------------------- running
def test_local_sweep_writes_each_record_once_and_never_trains_a_finished_cell(tmp_path,
                                                                             monkeypatch):
    results = run_sweep(TINY, tmp_path, progress=False)
    cells = Grid.from_dict(TINY).cells()
    assert [c.path for c, _ in results] == [c.path for c in cells]
    assert journal(tmp_path) == [c.path for c in cells]
    assert not (tmp_path / ".partial").exists()              # workspaces go once written
    written = records(tmp_path)
    # each record is the experiment's own: a direct run of that cell gives the same numbers
    cell = cells[4]
    config = P.PolynomialConfig(methods=[cell.values["method"]], taus=cell.values["tau"],
                                **TINY["fixed"])
    torch.set_num_threads(1)
    assert numbers(P.run(config, progress=False)) == numbers(written[cell.path])
    # a second run trains nothing and writes nothing
    monkeypatch.setattr(P.training, "run", lambda *a, **k: pytest.fail("trained again"))
    again = run_sweep(TINY, tmp_path, progress=False)
    assert [r for _, r in again] == [written[c.path] for c in cells]
    assert journal(tmp_path) == [c.path for c in cells]


def test_two_local_workers_give_the_records_of_one(tmp_path):
    one = run_sweep(TINY, tmp_path / "one", progress=False)
    two = run_sweep(TINY, tmp_path / "two", workers=2, progress=False)
    assert [numbers(r) for _, r in two] == [numbers(r) for _, r in one]
    assert sorted(journal(tmp_path / "two")) == sorted(journal(tmp_path / "one"))


def test_without_out_dir_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    grid = dict(TINY, axes={"method": ["ST"], "tau": [0.5]})
    ((cell, record),) = run_sweep(grid, None, progress=False)
    assert record["fingerprint"] == cell.fingerprint and not any(tmp_path.iterdir())


def _cli(*args, env=None, check=True):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1", **(env or {}))
    return subprocess.run([sys.executable, "-m", "reinmax.sweep", *args], capture_output=True,
                          text=True, env=environment, check=check, cwd=ROOT)


def test_a_killed_driver_reruns_only_the_missing_cells(tmp_path):
    """The cell of index 4 kills the driver (the CLI's process, which trains in-process): four
    records are kept; the same command again trains only the other five."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    marker = tmp_path / "marker"
    # the marker names the driver's pid: the driver writes it into the marker as it starts
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    environment[sweep.run.FAULT_ENV] = str(marker)
    marker.write_text(json.dumps({"action": "kill-driver", "from_cell": 4, "driver_pid": -1}))
    code = ("import json, os, sys; from pathlib import Path; "
            f"m = Path({str(marker)!r}); o = json.loads(m.read_text()); "
            "o['driver_pid'] = os.getpid(); m.write_text(json.dumps(o)); "
            "from reinmax.sweep.__main__ import main; sys.exit(main(sys.argv[1:]))")
    killed = subprocess.run([sys.executable, "-c", code, "run", "--grid", str(grid), "--out",
                             str(out), "--quiet"], env=environment, capture_output=True,
                            text=True, cwd=ROOT)
    assert killed.returncode == -9, killed.stderr
    cells = Grid.from_dict(TINY).cells()
    first = journal(out)
    assert first == [c.path for c in cells[:4]]
    done = _cli("run", "--grid", str(grid), "--out", str(out), "--quiet")
    assert "9 cells finished" in done.stdout
    assert journal(out)[4:] == [c.path for c in cells[4:]]      # only the missing ones
    reference = run_sweep(TINY, tmp_path / "reference", progress=False)
    assert {p: numbers(r) for p, r in records(out).items()} == {
        c.path: numbers(r) for c, r in reference}


@pytest.mark.parametrize("workers, signum", [(1, signal.SIGTERM), (2, signal.SIGINT)])
def test_a_signal_stops_the_driver_at_once_and_keeps_every_finished_record(tmp_path, workers,
                                                                           signum):
    """SIGTERM or SIGINT to the driver alone while a cell of index >= 4 is running (held by the
    fault hook: it would sleep 120 s): the driver stops its workers at once (the held one too),
    keeps every record it received with its journal line, prints one line and exits 128 + the
    signal's number; the same command again trains only the missing cells."""
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(TINY))
    out = tmp_path / "out"
    marker = tmp_path / "marker"
    marker.write_text(json.dumps({"action": "hold", "from_cell": 4}))
    held = Path(str(marker) + ".held")
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    environment[sweep.run.FAULT_ENV] = str(marker)
    driver = subprocess.Popen([sys.executable, "-m", "reinmax.sweep", "run", "--grid", str(grid),
                               "--out", str(out), "--quiet", "--workers", str(workers)],
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=ROOT, start_new_session=True,
                              # A shell that starts a job in the background (CI scripts, `cmd &`)
                              # ignores SIGINT and children inherit that: give the driver SIGINT
                              # as a terminal would deliver it.
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120                 # a guard against a hang, not a timing
        while not held.exists() and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held.exists(), driver.communicate()[1] if driver.poll() is not None else "no hold"
        driver.send_signal(signum)
        # the old driver waited for the held cell's 120 s (SIGINT) or died without a word (SIGTERM)
        _, stderr = driver.communicate(timeout=60)
    finally:                      # a driver that did not stop: it and its workers (its group)
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.communicate()
    assert driver.returncode == 128 + signum, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"stopped: {signal.Signals(signum).name} stopped the sweep: "), stderr
    cells = Grid.from_dict(TINY).cells()
    holding = json.loads(held.read_text())
    first = journal(out)
    assert len(first) == len(set(first)) and set(first) == set(records(out))   # journal == disk
    assert holding["cell"] not in first and len(first) < len(cells)
    assert f"{len(first)} of {len(cells)} cells finished" in lines[0]
    if workers == 1:
        assert first == [c.path for c in cells[:4]]
    else:                                                 # the held worker is gone with its driver
        with pytest.raises(ProcessLookupError):
            os.kill(holding["pid"], 0)
    assert len(run_sweep(TINY, out, progress=False)) == len(cells)
    assert journal(out)[len(first):] == [c.path for c in cells if c.path not in first]


def test_the_command_line_documents_itself_and_rejects_bad_input(tmp_path, capsys):
    from reinmax.sweep.__main__ import main
    for args in (["--help"], ["run", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
    shown = capsys.readouterr().out
    for word in ("run", "status", "list", "--grid", "--experiment", "--axis", "--fixed", "--out",
                 "--engine", "--workers", "--address", "--select"):
        assert word in shown
    assert main(["run", "--experiment", "polynomial", "--axis", "metod=ST", "--out",
                 str(tmp_path)]) == 2
    assert "('metod' is not one)" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "polynomial-table7" in listed and "150 cells" in listed and "vae-book" in listed
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(TINY))
    assert main(["run", "--grid", str(grid), "--out", str(tmp_path / "out"), "--quiet",
                 "--select", "polynomial"]) == 0
    assert "method=ReinMax" in capsys.readouterr().out
    assert main(["status", "--grid", str(grid), "--out", str(tmp_path / "out")]) == 0
    assert "9 of 9 cells finished" in capsys.readouterr().out


# --------------------------------------------------------------------- selection
def test_selection_picks_the_lowest_metric_per_group():
    results = run_sweep(TINY, None, progress=False)
    table = sweep.select_by(results, "polynomial")
    for method in ("ST", "ReinMax", "STGS"):
        mine = [(c.values["tau"], P.final_exact_losses(r)[method][0]) for c, r in results
                if c.values["method"] == method]
        best_tau, best = min(mine, key=lambda m: m[1])
        assert table[2.0, "A", method] == {"chosen": {"tau": best_tau}, "value": best, "cells": 3}
    with pytest.raises(ValueError, match="metric must be one of"):
        sweep.select(results, "train_neg_elbo", ["method"])


def test_vae_selection_is_by_train_elbo_for_table8_and_test_elbo_for_table10():
    def cell_and_record(method, lr, train, test):
        cell = Grid("vae", {"lr": [lr]}, {"config": "8x4", "method": method}).cells()[0]
        final = {"train_neg_elbo": {"mean": train}, "test_neg_elbo": {"mean": test}}
        return cell, {"final": final}
    results = [cell_and_record("ST", 1e-3, 100.0, 120.0), cell_and_record("ST", 5e-4, 101.0, 110.0)]
    rows = sweep.beside_paper(results, "table8")
    assert rows[0]["chosen"] == {"lr": 1e-3} and rows[0]["value"] == 100.0
    assert rows[0]["paper_chosen"] == {"optimizer": "Adam", "lr": 0.001, "tau": 1.3}
    assert rows[0]["paper_value"] == pytest.approx(116.72, abs=50)     # Table 2's, read from data
    rows = sweep.beside_paper(results, "table10")
    assert rows[0]["chosen"] == {"lr": 5e-4} and rows[0]["value"] == 110.0
    assert "ST" in sweep.format_rows(rows)


# --------------------------------------------------------------------- the committed records
def test_the_committed_temperature_sweep_is_the_runners_grid_and_trains_nothing(no_training):
    folder = RESULTS / "polynomial" / "temperature_sweep_records"
    results = run_sweep(sweep.named_grid("polynomial-table7"), folder, progress=False)
    assert len(results) == 150
    for cell, record in results:
        assert record == json.loads((folder / cell.path).read_text())
    assert not (folder / "sweep_journal.jsonl").exists()


def test_figure8_10_runs_rodeo_with_figure7s_settings_and_its_256x128_panel_is_figure7s():
    """RODEO's cells carry Figure 7's committed choice (16-unit control network); every other
    cell has no options, so its file and fingerprint are those of a plain config. The (256, 128)
    cells of a method are exactly that method's run in a Figure 7 setting-A panel."""
    from reinmax.experiments.polynomial import figure7 as F7
    chosen = json.loads((RESULTS / "polynomial" / "figure7_rodeo_grid.json").read_text())["chosen"]
    cells = sweep.named_grid("figure8-10").cells()
    rodeo = [c for c in cells if c.values["method"] == "RODEO"]
    assert rodeo and all(c.values["method_options"] == {"RODEO": chosen} for c in rodeo)
    st = next(c for c in cells if c.values["method"] == "ST")
    assert "method_options" not in st.path and st.values["method_options"] == {}
    plain = P.PolynomialConfig(**{k: v for k, v in st.values.items()
                                  if k not in ("method", "tau", "method_options")},
                               methods=["ST"], taus=st.values["tau"])
    assert st.fingerprint == plain.fingerprint()
    big = next(c for c in rodeo if (c.values["batch_size"], c.values["L"]) == (256, 128))
    panel = F7.panel_config(big.values["p"], "A", rodeo=chosen)
    assert panel.method_options["RODEO"] == big.values["method_options"]["RODEO"]
    assert (panel.epochs, panel.steps, panel.seeds) == (40, 200, list(range(10)))
    # two option sets for one method in one grid would share a file: rejected
    twice = Grid("polynomial", {"method+method_options": [["RODEO", {}], ["RODEO", {"RODEO": chosen}]]},
                 {"L": 8, "batch_size": 8})
    with pytest.raises(ValueError, match="same file"):
        twice.cells()


def test_vae_option_grid_names_each_cell_by_its_own_methods_options():
    """The estimators-after-ReinMax grid: one folder per option set of the cell's own method,
    readable as a path (a dict's repr would put braces, quotes and spaces in it), every cell a
    file of its own, its options reaching the cell's config, and seeds outside the paper's 0-9."""
    from reinmax.sweep.named import BEYOND_OPTION_GRID, vae_beyond
    cells = vae_beyond().cells()
    assert len(cells) == sum(len(v) for v in BEYOND_OPTION_GRID.values())
    assert len({c.path for c in cells}) == len(cells)
    assert "options_eta=0.5_tau2=1/8x4_ReinMax-CV.json" in {c.path for c in cells}
    assert "options_default/8x4_ReinMax.json" in {c.path for c in cells}
    assert all(set(c.path) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._=/-x")
               for c in cells)
    spec = sweep.grid.experiment("vae")
    redge = next(c for c in cells if c.path == "options_t_1=0.9/8x4_ReDGE.json")
    assert spec.config(redge.values).method_options["ReDGE"] == {"t_1": 0.9}
    assert not set(spec.config(redge.values).seeds) & set(range(10))


def test_the_committed_figure2_grid_is_found_by_the_runner(no_training, tmp_path):
    committed = json.loads((RESULTS / "vae" / "figure2_study_4x24" / "temperature_grid.json")
                           .read_text())
    config = V.VAEConfig(**dict(committed["config"],
                                out_dir=str(RESULTS / "vae" / "figure2_study_4x24")))
    fixed = {k: v for k, v in committed["config"].items()
             if k not in ("configs", "methods", "out_dir", "keep_checkpoints")}
    grid = Grid("vae", {"config": config.configs, "method": config.methods,
                        "tau": committed["taus"]}, fixed)
    results = run_sweep(grid, config.out_dir, progress=False)
    assert [r for _, r in results] == committed["runs"]


def test_ray_is_an_optional_extra_that_make_test_installs_and_make_book_does_not():
    makefile = (ROOT / "Makefile").read_text()
    targets = {line.split(":")[0]: line for line in makefile.splitlines()
               if line and not line[0].isspace() and ":" in line and "=" not in line}
    assert "$(RAY_STAMP)" in targets["test"] and "$(RAY_STAMP)" not in targets["book"]
    assert (ROOT / "requirements-ray.txt").read_text().split("\n")[-2] == "ray==2.60.0"
    assert 'ray = ["ray==2.60.0"]' in (ROOT / "pyproject.toml").read_text()
    assert "ray" not in (ROOT / "requirements.txt").read_text()


def test_a_half_finished_cell_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A cell interrupted after 27 steps (its checkpoint holds epoch 5) is reported as failed, the
    others are written; the rerun resumes it from epoch 5 and gives an uninterrupted run's numbers."""
    grid = dict(TINY, axes={"method": ["ST", "ReinMax"], "tau": [1.0]},
                fixed=dict(TINY["fixed"], epochs=6, steps=5))
    original_run, original_train = P.training.run, P.training.train_method

    def interrupted(config, *args, **kwargs):
        if config.methods == ["ReinMax"]:
            kwargs["stop_after_steps"] = 27
        return original_run(config, *args, **kwargs)
    monkeypatch.setattr(P.training, "run", interrupted)
    with pytest.raises(sweep.SweepFailed, match="p2_A_ReinMax_tau1.json: Interrupted"):
        run_sweep(grid, tmp_path, progress=False)
    assert journal(tmp_path) == ["p2_A_ST_tau1.json"]
    assert (tmp_path / ".partial" / "p2_A_ReinMax_tau1" / "checkpoint.ckpt").is_file()
    resumed_from = []

    def watch(config, method, *, state=None, **kwargs):
        resumed_from.append(None if state is None else state["epoch"])
        return original_train(config, method, state=state, **kwargs)
    monkeypatch.setattr(P.training, "run", original_run)
    monkeypatch.setattr(P.training, "train_method", watch)
    run_sweep(grid, tmp_path, progress=False)
    assert resumed_from == [5] and journal(tmp_path)[1:] == ["p2_A_ReinMax_tau1.json"]
    reference = run_sweep(grid, None, progress=False)
    assert {p: numbers(r) for p, r in records(tmp_path).items()} == {
        c.path: numbers(r) for c, r in reference}
    assert not (tmp_path / ".partial").exists()


def test_chapter_11s_paper_scale_command_runs_the_options_its_committed_grid_chose():
    """Chapter 11 types the --method-options of the 8x4 paper-scale run; they must be what Table
    8's rule selects from the committed option grid (results/vae/beyond_options_8x4), and the
    page's remark that ReDGE's choice is its smallest t_1 must stay true."""
    import re
    from reinmax.sweep.named import BEYOND_OPTION_GRID, vae_beyond
    page = (ROOT / "book" / "11_beyond_reinmax.md").read_text()
    typed = [json.loads(t) for t in re.findall(r"--method-options '([^']+)'", page)]
    assert len(typed) == 2                 # the 8x4 runs and Figure 4 extended's ReinMax run
    found, missing = sweep.finished_cells(vae_beyond(), RESULTS / "vae" / "beyond_options_8x4")
    assert not missing
    chosen = {method: entry["chosen"]["method_options"][method]
              for (_, method), entry in sweep.select_by(found, "table8").items() if entry["cells"] > 1}
    assert all(options == chosen for options in typed)
    assert chosen["ReDGE"]["t_1"] == min(o["t_1"] for o in BEYOND_OPTION_GRID["ReDGE"])
