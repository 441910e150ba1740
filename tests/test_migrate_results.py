"""The committed results survive the move to the experiment layer.

1. tools/migrate_results.py moves and renames fields only: every number of a record as it was
   committed before the migration (read from git history, or the small fixture copies here) is
   in the migrated record, at its new place, with the same value and the same text.
2. The committed files are the migration's output.
3. Re-running every committed configuration returns its committed record without training.
"""
import dataclasses
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from reinmax.experiments import polynomial as P
from reinmax.experiments import vae as V
import reinmax.experiments.vae.cli  # noqa: F401  (V.cli.main)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
BEFORE = "d36685f"          # the last commit before the migration
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "results_before_migration"

spec = importlib.util.spec_from_file_location("migrate_results", ROOT / "tools" / "migrate_results.py")
migrate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(migrate)


def _leaves(value, path=()):
    """Every number (bools excluded) in a JSON value, as (path, number)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, path + (index,))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def _new_path(path, old):
    """Where the migration puts the leaf at ``path`` of the old record ``old`` (written out here
    independently of the migration, from the renames it promises)."""
    path = list(path)
    out, node = [], old
    i = 0
    while i < len(path):
        key = path[i]
        if key == "methods" and isinstance(node.get("methods"), dict):       # polynomial record
            method = path[i + 1]
            out += ["runs", list(node["methods"]).index(method)]
            rest = ["wall_s" if k == "wall_time_s" and j == 0 else k for j, k in enumerate(path[i + 2:])]
            return tuple(out + rest)
        if key == "wall_time_s":
            key = "wall_s"
        elif key == "wall_time_this_call_s":
            key = "wall_s_this_call"
        elif key == "gr_mck_samples":
            return tuple(out + ["method_options", "GR-MCK", "K"])
        elif key == "rloo_group":
            return tuple(out + ["method_options", "RLOO", "num_samples"])
        elif key == "grmck_samples" and out and out[-1] == "settings":
            return tuple(out[:-1] + ["settings", "method_options", "K"])
        elif key == "grmck_samples":
            return tuple(out + ["method_options", "GR-MCK", "K"])
        elif key == "fingerprint":
            key = "settings"
        out.append(key)
        node = node[path[i]] if isinstance(node, (dict, list)) else None
        i += 1
    return tuple(out)


def _get(value, path):
    for key in path:
        value = value[key]
    return value


def _old_records():
    """(relative path, old record) for every committed file: git history when it has the commit
    before the migration, else the fixture copies."""
    has_history = subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT,
                                 capture_output=True).returncode == 0
    if has_history:
        for path in migrate.committed_files(RESULTS):
            relative = path.relative_to(ROOT).as_posix()
            text = subprocess.run(["git", "show", f"{BEFORE}:{relative}"], cwd=ROOT,
                                  capture_output=True, text=True, check=True).stdout
            yield relative, json.loads(text)
    for path in sorted(FIXTURES.rglob("*.json")):
        yield "fixture/" + path.relative_to(FIXTURES).as_posix(), json.loads(path.read_text())


def _check_moved_only(old, new):
    hit = set()
    for path, number in _leaves(old):
        if path and path[-1] == "seeds" and isinstance(number, int):
            assert _get(new, _new_path(path, old)) == list(range(number))
            hit.update(_new_path(path, old) + (i,) for i in range(number))
            continue
        target = _new_path(path, old)
        moved = _get(new, target)
        assert type(moved) is type(number) and repr(moved) == repr(number), (path, target)
        hit.add(target)
    extra = [path for path, _ in _leaves(new) if path not in hit]
    assert not extra, f"numbers the old record did not have: {extra[:5]}"


def test_migration_moves_fields_only_and_keeps_every_number(tmp_path):
    checked = 0
    for relative, old in _old_records():
        where = tmp_path / relative
        where.parent.mkdir(parents=True, exist_ok=True)
        where.write_text(json.dumps(old))
        new = migrate.migrate_file(where)
        _check_moved_only(old, new)
        assert migrate.migrate_record(new, where) == new      # a second run changes nothing
        checked += 1
    assert checked >= 3


def test_committed_results_are_the_migrations_output():
    for path in migrate.committed_files(RESULTS):
        record = json.loads(path.read_text())
        assert migrate.migrate_file(path) == record, path
        text = json.dumps(record)
        assert "wall_time_s" not in text and "grmck_samples" not in text
        assert "gr_mck_samples" not in text and "rloo_group" not in text


# --------------------------------------------------------------------- re-running trains nothing
@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a committed configuration was trained again")
    monkeypatch.setattr(P.training, "train_method", refuse)
    monkeypatch.setattr(P.sweeps, "run", refuse)
    monkeypatch.setattr(V.training, "train_setting", refuse)
    monkeypatch.setattr(V.training, "load_images", refuse)


def _polynomial_config(config):
    """The committed config; one trained on CUDA is asked for with device="auto" on a machine
    without it (a record trained on another device answers "auto")."""
    if config["device"].startswith("cuda") and not torch.cuda.is_available():
        config = dict(config, device="auto")
    return P.PolynomialConfig(**config)


def test_every_committed_sweep_cell_is_returned_without_training(no_training):
    folder = RESULTS / "polynomial" / "temperature_sweep_records"
    files = sorted(folder.glob("*.json"))
    assert len(files) == 158
    for path in files:
        record = json.loads(path.read_text())
        config = _polynomial_config(record["config"])
        (method,) = config.methods
        assert P.sweep_record_path(folder, config, method, config.taus) == path
        assert P.sweep_cell(config, method, config.taus, out_dir=folder, progress=False) == record


@pytest.mark.parametrize("name", ["temperature_sweep.json", "temperature_below_grid.json"])
def test_the_committed_sweeps_are_rebuilt_from_their_cells_without_training(no_training, name):
    committed = json.loads((RESULTS / "polynomial" / name).read_text())
    for sweep in committed["sweeps"]:
        again = P.temperature_sweep(_polynomial_config(sweep["config"]), sweep["taus"],
                                    progress=False,
                                    out_dir=RESULTS / "polynomial" / "temperature_sweep_records")
        for key in sweep:
            if key != "provenance":
                assert again[key] == sweep[key], key


def test_figure1_at_paper_scale_is_returned_without_training(no_training, tmp_path):
    committed = json.loads((RESULTS / "polynomial" / "figure1_paper_scale.json").read_text())
    path = tmp_path / "figure1_paper_scale.json"
    shutil.copy(RESULTS / "polynomial" / "figure1_paper_scale.json", path)
    configs = [_polynomial_config(r["config"]) for r in committed["runs"]]
    again = P.run_figure(configs, path, progress=False,
                         extra={"temperature_source": committed["temperature_source"]})
    assert again == committed


def test_the_committed_vae_run_is_returned_without_training(no_training, tmp_path):
    committed = json.loads((RESULTS / "vae" / "paper_8x4" / "results.json").read_text())
    folder = tmp_path / "paper_8x4"
    shutil.copytree(RESULTS / "vae" / "paper_8x4", folder)
    config = V.VAEConfig.from_dict(dict(committed["config"], out_dir=str(folder)))
    again = V.run(config, progress=False)
    assert again["runs"] == committed["runs"]
    ours, theirs = dict(again["config"], out_dir=None), dict(committed["config"], out_dir=None)
    # Fields added to VAEConfig since the record was written must sit at their defaults (which
    # change nothing a record holds); every field the record has must be unchanged.
    defaults = {f.name: f.default for f in dataclasses.fields(V.VAEConfig)}
    assert {k: v for k, v in ours.items() if k not in theirs} == \
        {k: defaults[k] for k in ours if k not in theirs}
    assert {k: v for k, v in ours.items() if k in theirs} == theirs
    for run in committed["runs"]:
        name = f"{run['config']}_{run['method'].replace('/', '_')}.json"
        assert json.loads((RESULTS / "vae" / "paper_8x4" / name).read_text()) == run


def test_the_documented_vae_command_returns_the_committed_records_without_training(no_training,
                                                                                 tmp_path):
    """results/vae/README.md's command for paper_8x4, pointed at a copy of it."""
    committed = json.loads((RESULTS / "vae" / "paper_8x4" / "results.json").read_text())
    folder = tmp_path / "paper_8x4"
    shutil.copytree(RESULTS / "vae" / "paper_8x4", folder)
    again = V.cli.main(["--out-dir", str(folder), "--configs", "8x4", "--methods", "STGS", "GR-MCK",
                     "GST-1.0", "ST", "ReinMax", "--seeds", "0", "1", "2"])
    assert again["runs"] == committed["runs"]
