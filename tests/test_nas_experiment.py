"""The architecture-search experiment: config checks, the search's records, resume after an
interruption giving the uninterrupted numbers, retraining, the CLI."""
import json

import pytest
import torch

from reinmax.experiments import layer
from reinmax.experiments.nas import ARMS, NASConfig, run, search, search_split
from reinmax.experiments.nas import training
from reinmax.models.nas import genotype_from_str

torch.set_num_threads(1)

TINY = dict(channels=2, cells=1, epochs=2, batch_size=32, search_images=128, retrain_epochs=1,
            retrain_images=64, test_images=100, device="cpu")


@pytest.mark.parametrize("field, value, message", [
    ("dataset", "ImageNet16-120", "NATS-Bench"), ("dataset", "svhn", "one of"),
    ("arms", ["GDAS+Gumbel"], "not one"), ("seeds", "0 1", "-y"), ("channels", 0, ">= 1"),
    ("search_images", 1, ">= 2"), ("tau_min", 20.0, "tau_max"), ("device", "tpu", "one of"),
])
def test_bad_config_is_a_clear_error(field, value, message):
    with pytest.raises(ValueError, match=message) as error:
        NASConfig(**{**TINY, field: value})
    assert field in str(error.value)


def test_paper_scale_is_nats_bench_protocol():
    config = NASConfig.paper_scale()
    assert (config.dataset, config.channels, config.cells, config.epochs, config.batch_size) == \
        ("cifar10", 16, 5, 100, 64)
    assert config.seeds == [777, 888, 999] and config.retrain_epochs == 0
    assert repr(config.schedule("GDAS+STGS")) == "gdas_linear(epochs=100, tau_max=10.0, tau_min=0.1)"
    assert config.schedule("GDAS+ReinMax")(99) == 1.0
    assert ARMS["GDAS+ReinMax"]["arch_weight_decay"] == 0.09


def test_search_record_and_the_temperature(tmp_path):
    config = NASConfig(**TINY, arms=["GDAS+STGS"], out_dir=str(tmp_path))
    data = lambda: search_split(config)
    record = search(config, "GDAS+STGS", 0, data, progress=False)
    history = record["history"]
    assert history["tau"] == pytest.approx([10.0, 0.1], rel=1e-12)
    assert record["weight_images"] == record["arch_images"] == 64
    assert len(history["alpha"]) == 2 and len(history["entropy"][0]) == 6
    assert genotype_from_str(record["genotype"]) == genotype_from_str(history["genotype"][-1])
    assert history["alpha"][-1] != history["alpha_init"]          # the architecture moved
    saved = json.loads((tmp_path / "search" / "GDAS+STGS_s0.json").read_text())
    assert saved["fingerprint"] == record["fingerprint"]
    assert not (tmp_path / "search" / "GDAS+STGS_s0.ckpt").exists()
    # A finished record is returned without training (data is never loaded).
    again = search(config, "GDAS+STGS", 0, lambda: pytest.fail("trained again"), progress=False)
    assert again["history"] == saved["history"]
    # Other settings in the same folder: an error that says what differs.
    other = NASConfig(**{**TINY, "epochs": 3}, arms=["GDAS+STGS"], out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="epochs"):
        search(other, "GDAS+STGS", 0, data, progress=False)


def test_resume_after_an_interruption_gives_the_same_numbers(tmp_path, monkeypatch):
    whole = NASConfig(**TINY, out_dir=str(tmp_path / "whole"))
    cut = NASConfig(**TINY, out_dir=str(tmp_path / "cut"))
    data = lambda: search_split(whole)
    expected = search(whole, "GDAS+ReinMax", 1, data, progress=False)
    save = layer.save_checkpoint

    def save_then_stop(path, payload):
        save(path, payload)
        raise KeyboardInterrupt
    monkeypatch.setattr(layer, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        search(cut, "GDAS+ReinMax", 1, data, progress=False)
    monkeypatch.setattr(layer, "save_checkpoint", save)
    assert (tmp_path / "cut" / "search" / "GDAS+ReinMax_s1.ckpt").exists()
    resumed = search(cut, "GDAS+ReinMax", 1, data, progress=False)
    for key in ("alpha", "weight_loss", "arch_loss", "genotype", "tau"):
        assert resumed["history"][key] == expected["history"][key], key


def test_run_retrains_found_and_random_cells_once_each(tmp_path):
    config = NASConfig(**TINY, arms=["GDAS+STGS", "GDAS+ReinMax"], random_cells=2,
                       out_dir=str(tmp_path))
    record = run(config, progress=False)
    assert record["experiment"] == "nas_gdas" and len(record["runs"]) == 2
    assert len(record["random_cells"]) == 2
    for r in record["runs"] + record["random_cells"]:
        accuracy = (r["retrain"] if "retrain" in r else r)["test_accuracy"]
        assert 0.0 <= accuracy <= 1.0
    files = sorted(p.name for p in (tmp_path / "retrain").iterdir())
    distinct = {r["genotype"] for r in record["runs"]} | {r["genotype"] for r in record["random_cells"]}
    assert len(files) == len(distinct)
    assert json.loads((tmp_path / "results.json").read_text())["config"]["random_cells"] == 2


def test_cli_resumes_into_the_same_folder(tmp_path):
    from reinmax.experiments.nas.cli import main as _main
    argv = ["--out-dir", str(tmp_path), "--arms", "GDAS+ReinMax-wd1e-3", "--seeds", "3",
            "--channels", "2", "--epochs", "1", "--batch-size", "32", "--search-images", "64",
            "--retrain-epochs", "0", "--device", "cpu"]
    first = _main(argv)
    second = _main(argv)
    assert first["runs"][0]["history"] == second["runs"][0]["history"]
    assert first["runs"][0]["arch_weight_decay"] == 1e-3


def test_cifar_augmentation_keeps_shape_and_content():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 32, 32)
    out = training.augment(x, "cifar10", generator)
    assert out.shape == x.shape
    assert training.augment(x, "mnist", generator) is x


def test_benchmark_script_times_both_estimators(tmp_path):
    """benchmarks/nas.py runs end to end (no timing asserted: speed is what it measures)."""
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "nas.py"
    spec = importlib.util.spec_from_file_location("nas_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--steps", "1", "--warmup", "0", "--device", "cpu",
                          "--json", str(tmp_path / "b.json")])
    assert set(result["ms_per_step"]) == {"STGS", "ReinMax"} and result["reinmax_over_stgs"] > 0
    assert json.loads((tmp_path / "b.json").read_text())["setting"] == "mnist"
