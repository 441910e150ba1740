"""The ListOps experiment: config checks, Table 8 per method, the record, resume after an
interruption (same numbers as an uninterrupted run), batching."""
import os
from pathlib import Path

import pytest
import torch

from reinmax.experiments import listops
from reinmax.experiments.listops import training
import reinmax.experiments.listops.cli  # noqa: F401,E402  (listops.cli.main)

pytestmark = pytest.mark.skipif(
    not os.environ.get("REINMAX_DATA") or not (Path(os.environ["REINMAX_DATA"]) / "listops").is_dir(),
    reason="needs REINMAX_DATA with listops/")

torch.set_num_threads(1)


def _tiny(**changes):
    values = dict(methods=["ReinMax", "GR-MCK"], epochs=2, train_size=48, eval_subset=24, trees=3)
    values.update(changes)
    return listops.ListOpsConfig.preset("smoke", **values)


def test_table8_per_method_and_bad_values():
    config = listops.ListOpsConfig.preset("paper")
    assert config.unit == "char" and config.batch_size == 16 and not config.bucketed
    assert config.hyperparameters("ReinMax") == {"optimizer": "RAdam", "lr": 7e-4, "tau": 1.1}
    assert config.hyperparameters("ST") == {"optimizer": "RAdam", "lr": 1e-3, "tau": 1.4}
    assert config.method_options["GR-MCK"] == {"K": 100}
    assert listops.ListOpsConfig.preset("study").hyperparameters("STGS")["lr"] == pytest.approx(1.5e-3)
    for changes, name in [(dict(unit="word"), "unit"), (dict(hidden_dim=0), "hidden_dim"),
                          (dict(max_tokens=1), "max_tokens"), (dict(methods=["XYZ"]), "methods"),
                          (dict(train_max_tokens=1), "train_max_tokens"),
                          (dict(overrides={"ST": {"beta": 1}}), "overrides"),
                          (dict(bogus=1), "fields"), (dict(seeds="0"), "seeds")]:
        with pytest.raises(ValueError, match=name):
            listops.ListOpsConfig.preset("smoke", **changes)
    with pytest.raises(ValueError, match="preset"):
        listops.ListOpsConfig.preset("huge")


def test_bucketed_batches_cover_every_example_once():
    lengths = [5, 1, 9, 3, 3, 7, 2, 8, 4, 6] * 7
    for bucketed in (False, True):
        batches = training.training_batches(lengths, 4, bucketed, torch.Generator().manual_seed(0))
        assert sorted(i for b in batches for i in b) == list(range(70))
    spread = lambda bs: sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bs)  # noqa
    assert spread(training.training_batches(lengths, 4, True, torch.Generator().manual_seed(0))) < \
        spread(training.training_batches(lengths, 4, False, torch.Generator().manual_seed(0)))


def test_run_record_and_resume_after_interruption(tmp_path, monkeypatch):
    whole = listops.run(_tiny(out_dir=str(tmp_path / "whole")), show=False)
    assert set(whole) >= {"experiment", "config", "runs", "wall_s", "provenance", "fingerprint"}
    assert [(r["method"], r["seed"]) for r in whole["runs"]] == [("ReinMax", 0), ("GR-MCK", 0)]
    first = whole["runs"][0]
    assert len(first["history"]) == 4 and first["history"][-1]["epoch"] == pytest.approx(2.0)
    assert 0 <= first["test_accuracy"] <= 1 and first["trees"]["total"]["n"] == 24
    assert len(first["trees"]["examples"]) == 3
    assert (tmp_path / "whole" / "record.json").is_file()
    assert not list((tmp_path / "whole").glob("*.pt"))
    assert listops.read_record(tmp_path / "whole") == training.layer.read_json(tmp_path / "whole" / "record.json")
    (tmp_path / "whole" / "record.json").unlink()            # as if the run were unfinished
    partial = listops.read_record(tmp_path / "whole")
    assert partial["partial"] and partial["runs"] == whole["runs"][::-1]     # in Table 1's order
    assert partial["config"]["methods"] == ["GR-MCK", "ReinMax"] and partial["config"]["seeds"] == [0]

    calls = {"n": 0}
    real = training.training_batches

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:                        # the second epoch of the first run
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "training_batches", interrupted)
    with pytest.raises(KeyboardInterrupt):
        listops.run(_tiny(out_dir=str(tmp_path / "cut")), show=False)
    assert (tmp_path / "cut" / "ReinMax_seed0.pt").is_file()
    monkeypatch.setattr(training, "training_batches", real)
    resumed = listops.run(_tiny(out_dir=str(tmp_path / "cut")), show=False)
    for a, b in zip(whole["runs"], resumed["runs"]):
        assert a["history"] == b["history"] and a["test_accuracy"] == b["test_accuracy"]
    # finished runs are read back, not trained again; other settings in the folder are an error
    again = listops.run(_tiny(out_dir=str(tmp_path / "cut")), show=False)
    assert again["runs"][0]["train_s"] == resumed["runs"][0]["train_s"]
    with pytest.raises(ValueError, match="other settings"):
        listops.run(_tiny(out_dir=str(tmp_path / "cut"), epochs=3), show=False)


def test_readers_table_and_curves():
    record = {"runs": [{"method": m, "seed": s, "valid_accuracy": a, "test_accuracy": a / 2,
                        "history": [{"epoch": 1.0, "valid_accuracy": a}]}
                       for m, s, a in [("ST", 0, 0.5), ("ST", 1, 0.7), ("ReinMax", 0, 0.6)]]}
    table = listops.final_table(record)
    assert table["valid"]["ST"]["mean"] == pytest.approx(60.0)
    assert table["valid"]["ST"]["std"] == pytest.approx(14.142135, rel=1e-6)   # sample std
    assert table["test"]["ReinMax"]["values"] == [30.0]
    assert listops.curves(record)["ST"]["mean"] == [pytest.approx(0.6)]


def test_cli_smoke(tmp_path, capsys):
    listops.cli.main(["--preset", "smoke", "--out-dir", str(tmp_path), "--methods", "ST",
                   "--epochs", "1"])
    assert "valid ST" in capsys.readouterr().out


def test_gold_trees_as_brackets():
    from reinmax.experiments.listops import analysis
    text = "[ MAX 2 [ MIN 4 7 ] 0 ]"
    gold = analysis.gold_spans(text)
    assert (3, 8) in gold and (0, 10) in gold
    assert analysis.bracketed(text.split(), gold) == "((((([ MAX) 2) (((([ MIN) 4) 7) ])) 0) ])"
    from reinmax.data.listops import operator_spans
    assert set(operator_spans(text)) <= set(gold)


def test_a_diverged_run_is_recorded_not_lost(tmp_path, monkeypatch):
    """A non-finite gradient norm at the third step stops that run unstepped; its record says
    where, holds no final numbers, and the table counts it apart from the finished seeds."""
    clip = torch.nn.utils.clip_grad_norm_
    calls = {"n": 0}

    def failing_clip(parameters, max_norm):
        calls["n"] += 1
        norm = clip(parameters, max_norm)
        return torch.tensor(float("nan")) if calls["n"] == 3 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", failing_clip)
    config = _tiny(methods=["ReinMax"], seeds=[0, 1], out_dir=str(tmp_path))
    record = training.run(config, show=False)
    first, second = record["runs"]
    assert first["diverged"] is not None and first["diverged"]["epoch"] <= 1
    assert first["valid_accuracy"] is None and first["trees"] is None
    assert second["diverged"] is None and second["valid_accuracy"] is not None
    assert not list(tmp_path.glob("*.pt"))          # no checkpoint left behind; the run is final
    table = training.final_table(record)
    assert table["valid"]["ReinMax"]["diverged"] == 1 and table["valid"]["ReinMax"]["n"] == 1
    assert set(training.curves(training.read_record(tmp_path))) == {"ReinMax"}
    # rerunning does not train the diverged run again
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    again = training.run(config, show=False)
    assert again["runs"][0]["diverged"]["epoch"] == first["diverged"]["epoch"]
