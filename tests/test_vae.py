"""The categorical MNIST-VAE: Table 8 as data, config validation, the batched ensemble equals
single-seed runs, resuming after an interruption, and Figure 4's exact gradient by enumeration.

Runs on real MNIST (``$REINMAX_DATA``, else the user cache) with a few hundred images; skipped
only where the data cannot be found.
"""
import json
import math
import statistics
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import reinmax
from reinmax.theory.exact import exact_gradient, expected_estimate
from reinmax.experiments import vae
from reinmax.experiments.vae import TABLE8, VAEConfig, final_table, run
from reinmax.models.vae import CategoricalVAE, expected_value_gradient
from reinmax.experiments.records import paper_table

from conftest import needs_mnist

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(configs=("8x4",), epochs=1, train_subset=300, test_subset=200)


def tiny(**changes) -> VAEConfig:
    values = dict(TINY)
    values.update(changes)
    return VAEConfig(**values)


# ---------------------------------------------------------------- Table 8 and validation
def test_table8_is_the_papers_table():
    paper = paper_table("table8_selected_hyperparameters")
    assert set(TABLE8) == set(vae.CONFIGURATIONS)
    for config, methods in TABLE8.items():
        assert set(methods) == set(vae.METHODS)
        for method, (optimizer, lr, tau) in methods.items():
            printed = paper[config][method]
            assert (optimizer, lr, tau) == (printed["optimizer"], printed["lr"], printed["tau"]), (config, method)


def test_configurations_are_categories_by_latents():
    assert vae.CONFIGURATIONS["8x4"] == (8, 4) and vae.CONFIGURATIONS["10x30"] == (10, 30)
    assert CategoricalVAE(8, 4, [0]).encode(torch.rand(1, 5, 784)).shape == (1, 5, 4, 8)


@pytest.mark.parametrize("changes, message", [
    (dict(configs=("8x5",)), "configs must be a non-empty list of distinct names from "
     "['8x4', '4x24', '8x16', '16x12', '64x8', '10x30'] ('8x5' is not one)"),
    (dict(methods=("ST", "Reinforce")), "('Reinforce' is not one)"),
    (dict(overrides={"ReinMax": {"optimizer": "SGD"}}),
     "overrides['ReinMax']['optimizer'] must be one of ['Adam', 'RAdam']; got"),
    (dict(overrides={"ReinMax": {"momentum": 0.9}}), "('momentum' is not one)"),
    (dict(overrides={"ReinMax": {"tau": -1}}), "overrides['ReinMax']['tau'] must be a number in (0, inf)"),
    (dict(epochs=0), "VAEConfig: epochs must be an integer >= 1; got epochs=0"),
    (dict(seeds=(1, 1)), "seeds must be a non-empty list of distinct non-negative integers; got seeds=(1, 1)"),
    (dict(seeds=(-1,)), "seeds must be a non-empty list of distinct non-negative integers"),
    (dict(seeds="[0, 1]"), "pass lists with -y"),
    (dict(train_subset=70000), "train_subset must be an integer >= 1 and <= 60000 or None"),
    (dict(configs=("4x24",), gradient_every=1), "4^24 codes"),
    (dict(gradient_estimators=("ST",)), "gradient_estimators must be None unless gradient_every > 0"),
    (dict(gradient_every=1, gradient_estimators=("ST", "Nope")), "('Nope' is not one)"),
    (dict(device="tpu"), "device must be one of 'auto', 'cpu', 'cuda', 'cuda:N'"),
    (dict(method_options={"GR-MCK": {"K": 0}}), "method_options['GR-MCK'] must be options that GR-MCK accepts"),
    (dict(method_options={"GR-MCK": {"samples": 10}}), "method_options['GR-MCK'] must be"),
    (dict(method_options={"Nope": {}}), "('Nope' is not one)"),
])
def test_bad_config_is_a_clear_error(changes, message):
    with pytest.raises(ValueError) as error:
        VAEConfig(**changes)
    assert message in str(error.value)


def test_config_names_are_case_insensitive_and_unknown_fields_are_listed():
    config = VAEConfig(methods=("reinmax", "gr-mck"), overrides={"st": {"optimizer": "radam"}})
    assert config.methods == ["ReinMax", "GR-MCK"]
    assert config.hyperparameters("8x4", "ST") == {"optimizer": "RAdam", "lr": 1e-3, "tau": 1.3}
    with pytest.raises(ValueError, match=r"VAEConfig: fields must be among configs.*got fields=\['epoch'\]"):
        VAEConfig.from_dict({"epoch": 3})
    paper = VAEConfig.paper_scale()
    assert paper.epochs == 160 and paper.seeds == list(range(10)) and len(paper.configs) == 6


# ---------------------------------------------------------------- model pieces
def test_loss_terms_match_their_definitions():
    model = CategoricalVAE(4, 3, [0], dtype=torch.float64)
    x = torch.rand(5, 784, dtype=torch.float64)
    codes = F.one_hot(torch.randint(4, (5, 3)), 4).double()
    pixels = torch.sigmoid(model.decode(codes, 0))
    expected = F.binary_cross_entropy(pixels, x, reduction="none").sum(-1)
    assert torch.allclose(model.reconstruction(x, codes, 0), expected, rtol=1e-10)
    logits = torch.randn(5, 3, 4, dtype=torch.float64)
    q = torch.softmax(logits, -1)
    assert torch.allclose(model.kl(logits), (q * q.log()).sum((-2, -1)) + 3 * math.log(4))
    assert model.kl(torch.zeros(2, 3, 4)).abs().max() < 1e-6          # q uniform: KL = 0


def test_batched_gradient_enumeration_equals_reinmax_exact():
    """Figure 4's exact gradient for a batch, checked image by image against reinmax.theory.exact."""
    model = CategoricalVAE(8, 4, [7, 3], dtype=torch.float64)
    x = torch.rand(3, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    gradient, logits = model.exact_reconstruction_gradient(x, 1)
    for b in range(len(x)):
        f = lambda D: model.reconstruction(x[b], D, 1)  # noqa: E731
        expected = exact_gradient(f, logits[b]) / len(x)
        assert torch.allclose(gradient[b], expected, rtol=1e-9, atol=1e-12)


def test_enumeration_rejects_wrong_shapes_and_large_spaces():
    with pytest.raises(ValueError, match="values must have shape"):
        expected_value_gradient(torch.zeros(2, 10), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match="4\\^24"):
        CategoricalVAE(4, 24, [0]).exact_reconstruction_gradient(torch.rand(1, 784), 0)


def test_estimator_moments_converge_to_the_exact_expectation():
    """The Monte Carlo mean of ST and ReinMax equals their exact expectation (reinmax.theory.exact)."""
    model = CategoricalVAE(3, 2, [0], dtype=torch.float64)
    x = torch.rand(2, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model.encode(x, 0)
    samples = 20000
    for name, tau in (("ST", 1.3), ("ReinMax", 1.3)):
        estimator = reinmax.get_estimator(name)
        mean, std = model.estimator_gradient_moments(x, 0, estimator, tau, samples,
                                                     torch.Generator().manual_seed(2))
        for b in range(len(x)):
            f = lambda D: model.reconstruction(x[b], D, 0) / len(x)  # noqa: E731
            exact_mean = expected_estimate(estimator, f, logits[b], tau)
            error = (mean[b] - exact_mean).abs()
            assert (error <= 5 * std[b] / samples ** 0.5 + 1e-9).all(), (name, error.max())


# ---------------------------------------------------------------- training
@needs_mnist
def test_batched_ensemble_equals_single_seed_runs():
    """Two seeds trained as one batched model = each seed trained alone (Adam and RAdam,
    a sample-only estimator and a Gumbel one), to float tolerance."""
    common = dict(methods=("ReinMax", "STGS"), overrides={"STGS": {"optimizer": "RAdam"}})
    both = run(tiny(seeds=(3, 5), **common), progress=False)
    for position, seed in enumerate((3, 5)):
        alone = run(tiny(seeds=(seed,), **common), progress=False)
        for batched, single in zip(both["runs"], alone["runs"]):
            for key in ("train_neg_elbo", "test_neg_elbo"):
                b = [epoch[position] for epoch in batched["history"][key]]
                s = [epoch[0] for epoch in single["history"][key]]
                assert b == pytest.approx(s, rel=1e-5), (batched["method"], key)


@needs_mnist
def test_resume_after_interruption_loses_nothing(tmp_path):
    config = dict(seeds=(0, 1), epochs=3, train_subset=200, test_subset=100, methods=("ReinMax",),
                  gradient_every=2, gradient_images=4, gradient_samples=8)
    reference = run(tiny(**config), progress=False)["runs"][0]

    class Interrupted(Exception):
        pass

    def stop_at_epoch_2(name, method, epoch, history):
        if epoch == 2:
            raise Interrupted

    out = tmp_path / "run"
    with pytest.raises(Interrupted):
        run(tiny(out_dir=str(out), **config), progress=False, on_epoch_end=stop_at_epoch_2)
    assert (out / "8x4_ReinMax.ckpt").is_file() and not (out / "8x4_ReinMax.json").exists()

    epochs_run = []
    resumed = run(tiny(out_dir=str(out), **config), progress=False,
                  on_epoch_end=lambda *a: epochs_run.append(a[2]))
    assert epochs_run == [3]                                  # only the missing epoch ran
    record = resumed["runs"][0]
    for key in ("train_neg_elbo", "test_neg_elbo", "train_reconstruction"):
        assert record["history"][key] == reference["history"][key], key
    assert record["history"]["gradient"] == reference["history"]["gradient"]
    assert not (out / "8x4_ReinMax.ckpt").exists()            # removed once finished

    saved = json.loads((out / "results.json").read_text())
    for key in ("package_version", "git_commit", "torch_version", "device"):
        assert key in saved["provenance"]
    assert saved["runs"][0]["final"]["train_neg_elbo"]["n"] == 2 and saved["wall_s"] > 0

    epochs_run.clear()                                        # finished: nothing reruns
    again = run(tiny(out_dir=str(out), **config), progress=False,
                on_epoch_end=lambda *a: epochs_run.append(a[2]))
    assert epochs_run == [] and again["runs"][0]["history"] == record["history"]
    with pytest.raises(ValueError, match="epochs: found 3, now 4"):
        run(tiny(out_dir=str(out), **dict(config, epochs=4)), progress=False)


@needs_mnist
def test_other_estimators_measured_on_a_run_change_neither_its_training_nor_its_own_analysis():
    """Figure 4 extended: measuring more estimators at a run's analyses leaves the run (its
    losses) and its own method's numbers exactly as without them, records every estimator's, and
    each at its own Table 8 temperature, so that ST's cosine there is ST's, not ReinMax's."""
    config = dict(seeds=(0, 1), epochs=2, train_subset=200, test_subset=100, methods=("ReinMax",),
                  gradient_every=1, gradient_images=4, gradient_samples=8)
    alone = run(tiny(**config), progress=False)["runs"][0]
    others = ("ST", "ReinMax-Rao")
    measured = run(tiny(gradient_estimators=others, **config), progress=False)["runs"][0]
    for key in ("train_neg_elbo", "test_neg_elbo", "train_reconstruction", "gradient"):
        assert measured["history"][key] == alone["history"][key], key
    by_estimator = measured["history"]["gradient_estimators"]
    assert list(by_estimator) == ["ReinMax", "ST", "ReinMax-Rao"]
    assert {k: by_estimator["ReinMax"][k] for k in ("cos", "rel_std")} == \
        {k: alone["history"]["gradient"][k] for k in ("cos", "rel_std")}
    for name in others:
        values = by_estimator[name]
        assert len(values["cos"]) == 2 and all(len(row) == 2 for row in values["cos"])
        assert values["cos"] != by_estimator["ReinMax"]["cos"], name
    chosen = measured["settings"]["gradient"]["estimators"]
    assert chosen["ST"]["tau"] == TABLE8["8x4"]["ST"][2]
    assert chosen["ReinMax-Rao"]["tau"] == TABLE8["8x4"]["ReinMax"][2]   # Table 8's ReinMax row
    assert "estimators" not in alone["settings"]["gradient"]             # old fingerprints hold


@needs_mnist
def test_a_finished_record_from_another_device_answers_auto_only(tmp_path):
    """A record trained on a GPU completes a CPU run's results when device="auto" (it names
    its device); with device="cpu" it is a mismatch, as a checkpoint would be."""
    config = dict(seeds=(0,), epochs=1, train_subset=100, test_subset=50, methods=("ST",),
                  out_dir=str(tmp_path))
    run(tiny(**config), progress=False)
    path = tmp_path / "8x4_ST.json"
    record = json.loads(path.read_text())
    record["settings"]["device_type"] = "cuda"             # as if trained on a GPU
    record["provenance"]["device"] = "cuda"
    record["final"]["train_neg_elbo"]["mean"] = 12345.0
    path.write_text(json.dumps(record))
    combined = run(tiny(device="auto", **config), progress=False)
    assert combined["runs"][0]["final"]["train_neg_elbo"]["mean"] == 12345.0
    with pytest.raises(ValueError, match="was trained on cuda, and device='cpu' asks for cpu"):
        run(tiny(device="cpu", **config), progress=False)


@needs_mnist
def test_training_lowers_the_loss_for_every_method():
    results = run(tiny(seeds=(0,), epochs=2, train_subset=500, method_options={"GR-MCK": {"K": 10}}), progress=False)
    assert [r["method"] for r in results["runs"]] == list(vae.METHODS)
    for record in results["runs"]:
        curve = [epoch[0] for epoch in record["history"]["train_neg_elbo"]]
        assert curve[1] < curve[0] < 560, (record["method"], curve)   # 784 log 2 = 543 at chance
        assert all(math.isfinite(v) for v in record["history"]["test_neg_elbo"][-1])


# ---------------------------------------------------------------- Figure 6's methods
def test_figure6_methods_use_the_uniform_baseline_estimators_and_reinmax_hyperparameters():
    config = VAEConfig(methods=("reinmax-1/n", "ReinMax-1/n-Authors"))
    assert tuple(config.methods) == vae.FIGURE6_METHODS == ("ReinMax-1/n", "ReinMax-1/n-authors")
    assert vae.estimator_for("ReinMax-1/n", config) is reinmax.ESTIMATORS["ReinMax-1/n"]
    assert vae.estimator_for("ReinMax-1/n-authors", config) is reinmax.ESTIMATORS["ReinMax-1/n-authors"]
    assert vae.estimator_for("ReinMax", config) is reinmax.ESTIMATORS["ReinMax"]
    for name in vae.CONFIGURATIONS:
        for method in vae.FIGURE6_METHODS:
            assert config.hyperparameters(name, method) == config.hyperparameters(name, "ReinMax")
    assert VAEConfig(methods=("ReinMax-1/n",), overrides={"reinmax-1/n": {"tau": 1.0}}
                     ).hyperparameters("8x4", "ReinMax-1/n")["tau"] == 1.0
    with pytest.raises(ValueError, match=r"methods must be a non-empty list of distinct names "
                                         r"from \[.*'ReinMax-1/n-authors'.*\('ReinMax-1/m' is not one\)"):
        VAEConfig(methods=("ReinMax-1/m",))


def test_fingerprint_of_the_five_methods_is_unchanged():
    """Runs already on disk (results/vae/paper_8x4) resume only if these settings stay the same
    (their hash is the record's fingerprint; tests/test_migrate_results.py re-runs them)."""
    config = VAEConfig.paper_scale(configs=["8x4"], seeds=[0, 1, 2], out_dir="unused")
    assert vae.settings_of(config, "8x4", "ReinMax", torch.device("cpu")) == {
        "config": "8x4", "method": "ReinMax",
        "hyperparameters": {"optimizer": "Adam", "lr": 5e-4, "tau": 1.3}, "seeds": [0, 1, 2],
        "epochs": 160, "train_subset": None, "test_subset": None, "batch_size": 100,
        "test_every": 1, "gradient": None, "method_options": {}, "device_type": "cpu"}
    assert vae.settings_of(config, "8x4", "GR-MCK", torch.device("cpu"))["method_options"] == {"K": 1000}


@needs_mnist
def test_figure6_methods_train_and_are_written_under_file_safe_names(tmp_path):
    config = tiny(seeds=(0,), epochs=2, train_subset=300, methods=vae.FIGURE6_METHODS,
                  out_dir=str(tmp_path))
    results = run(config, progress=False)
    assert [r["method"] for r in results["runs"]] == list(vae.FIGURE6_METHODS)
    for record in results["runs"]:
        curve = [epoch[0] for epoch in record["history"]["train_neg_elbo"]]
        assert all(math.isfinite(v) for v in curve) and curve[-1] < 560, (record["method"], curve)
        assert record["hyperparameters"] == {"optimizer": "Adam", "lr": 5e-4, "tau": 1.3}
    assert sorted(p.name for p in tmp_path.glob("8x4_*.json")) == [
        "8x4_ReinMax-1_n-authors.json", "8x4_ReinMax-1_n.json"]


# ---------------------------------------------------------------- Figure 2: temperature grid
@pytest.mark.parametrize("taus, message", [
    ([], "taus must be a non-empty list of distinct positive finite numbers"),
    (1.0, "got taus=1.0"),
    ("0.5", "got taus='0.5'"),
    ([0.5, 0], "(not allowed: [0])"),
    ([0.5, -1.0, float("nan")], "(not allowed: [-1.0, nan])"),
    ([True], "(not allowed: [True])"),
    ([1, 1.0], "(these repeat one)"),
    ((0.5, 1.0), None),
])
def test_bad_temperatures_are_clear_errors(taus, message):
    if message is None:                                   # a tuple is a list of temperatures too
        assert vae.check_temperatures(taus) == taus
        return
    with pytest.raises(ValueError) as error:
        vae.check_temperatures(taus)
    assert message in str(error.value)
    with pytest.raises(ValueError):
        vae.temperature_grid(tiny(), taus, progress=False)


def test_temperature_grid_needs_a_config_and_the_paper_grid_is_figure_2s():
    assert vae.TEMPERATURES == (0.1, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 4.0, 5.0)
    assert vae.FIGURE2_CONFIGS == ("4x24", "8x16", "16x12", "64x8")
    assert all(C ** L == 2 ** 48 for C, L in (vae.CONFIGURATIONS[c] for c in vae.FIGURE2_CONFIGS))
    with pytest.raises(TypeError, match="config must be a VAEConfig; got dict"):
        vae.temperature_grid({"configs": ["4x24"]})


def _grid_record(values):
    """A temperature_grid-shaped record from {(config, method, tau): mean}."""
    return {"runs": [{"config": c, "method": m, "hyperparameters": {"tau": t},
                      "final": {"train_neg_elbo": {"mean": v, "std": 0.0, "n": 1, "per_seed": [v]}}}
                     for (c, m, t), v in values.items()]}


def test_temperature_preferences_read_the_best_temperature():
    record = _grid_record({("4x24", "STGS", 0.5): 10.0, ("4x24", "STGS", 1.0): 11.0,
                           ("4x24", "STGS", 2.0): 12.0,
                           ("4x24", "ReinMax", 0.5): 9.0, ("4x24", "ReinMax", 1.0): 11.0,
                           ("4x24", "ReinMax", 2.0): 10.0,
                           ("4x24", "ST", 1.0): 8.0, ("4x24", "ST", 2.0): 8.5,
                           ("4x24", "ReinMax-1/n", 2.0): 7.0})
    found = vae.temperature_preferences(record)
    assert found["4x24", "STGS"] == {"best_tau": 0.5, "best": 10.0, "best_low": 10.0,
                                     "best_high": 11.0, "paper_side": "tau <= 1"}
    assert found["4x24", "ReinMax"]["best_tau"] == 0.5 and found["4x24", "ReinMax"]["paper_side"] == "tau >= 1"
    assert found["4x24", "ST"]["best_low"] == found["4x24", "ST"]["best_high"] == 8.0   # tau = 1: both sides
    assert found["4x24", "ReinMax-1/n"]["paper_side"] is None
    assert math.isnan(found["4x24", "ReinMax-1/n"]["best_low"])
    methods, taus, values = vae.temperature_matrix(record, "4x24")
    assert methods == ["STGS", "ST", "ReinMax", "ReinMax-1/n"] and taus == [0.5, 1.0, 2.0]
    assert values[2].tolist() == [9.0, 11.0, 10.0] and math.isnan(values[1, 0])
    with pytest.raises(ValueError, match="config '8x16' is not in this temperature grid; it has: 4x24"):
        vae.temperature_matrix(record, "8x16")
    with pytest.raises(ValueError, match="metric must be"):
        vae.temperature_table(record, "loss")


@needs_mnist
def test_a_tiny_temperature_grid_runs_and_resumes(tmp_path):
    config = tiny(configs=("4x24",), seeds=(0,), train_subset=200, test_subset=100,
                  methods=("ST", "ReinMax-1/n"), overrides={"ST": {"lr": 2e-3, "tau": 9.0}},
                  out_dir=str(tmp_path))
    results = vae.temperature_grid(config, [2, 0.5], progress=False)
    assert results["taus"] == [2.0, 0.5] and len(results["runs"]) == 4
    seen = {(r["config"], r["method"], r["hyperparameters"]["tau"]): r for r in results["runs"]}
    assert set(seen) == {("4x24", m, t) for m in ("ST", "ReinMax-1/n") for t in (0.5, 2.0)}
    assert seen["4x24", "ST", 0.5]["hyperparameters"] == {"optimizer": "RAdam", "lr": 2e-3, "tau": 0.5}
    assert seen["4x24", "ReinMax-1/n", 2.0]["hyperparameters"]["lr"] == 5e-4     # ReinMax's row
    for record in results["runs"]:
        assert len(record["history"]["train_neg_elbo"]) == 1
        assert math.isfinite(record["final"]["train_neg_elbo"]["mean"])
    assert (tmp_path / "tau_0.5" / "4x24_ReinMax-1_n.json").is_file()
    assert (tmp_path / "temperature_grid.json").is_file()
    table = vae.temperature_table(results)
    assert table["4x24", "ST", 2.0] == seen["4x24", "ST", 2.0]["final"]["train_neg_elbo"]
    again = vae.temperature_grid(config, [2, 0.5], progress=False)     # finished: read back
    assert [r["history"] for r in again["runs"]] == [r["history"] for r in results["runs"]]
    assert [r["wall_s"] for r in again["runs"]] == [r["wall_s"] for r in results["runs"]]


@needs_mnist
def test_a_record_carries_the_provenance_of_the_code_that_trained_it(monkeypatch):
    # A paper-scale run lasts hours; the commit at the end may not be the one that trained.
    calls = []

    def fake_provenance(device=None):
        calls.append(len(calls))
        return {"call": len(calls) - 1}

    monkeypatch.setattr(vae.training.layer, "provenance", fake_provenance)
    results = run(tiny(seeds=(0,), methods=("ST",), train_subset=100, test_subset=50), progress=False)
    assert results["runs"][0]["provenance"] == {"call": 0}      # taken before training
    assert results["provenance"]["call"] > 0                    # the combined record: at the end


def test_the_command_line_runs_figure2s_grid_and_resumes(tmp_path, monkeypatch):
    """``--taus`` runs the temperature grid (one record per method and temperature, test -ELBO
    after the last epoch only); the same command again reads every record back."""
    pytest.importorskip("reinmax.experiments.vae.cli")
    from reinmax.experiments.vae import cli, training
    argv = ["--out-dir", str(tmp_path), "--configs", "8x4", "--methods", "ST", "ReinMax",
            "--seeds", "0", "--epochs", "1", "--train-subset", "200", "--test-subset", "100",
            "--taus", "0.5", "2", "--device", "cpu"]
    try:
        first = cli.main(argv)
    except FileNotFoundError as error:      # no MNIST here
        pytest.skip(str(error))
    assert sorted((r["method"], r["hyperparameters"]["tau"]) for r in first["runs"]) == [
        ("ReinMax", 0.5), ("ReinMax", 2.0), ("ST", 0.5), ("ST", 2.0)]
    assert first["config"]["test_every"] == 0 and (tmp_path / "temperature_grid.json").is_file()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished grid cell was trained again")
    monkeypatch.setattr(training, "train_setting", no_training)
    # the grid runs through reinmax.sweep, which calls training.train_setting by its module
    again = cli.main(argv)
    assert [r["final"] for r in again["runs"]] == [r["final"] for r in first["runs"]]


def test_final_table_shows_sample_sds_from_the_per_seed_values():
    # The records store numpy's ddof = 0; every ± the book shows is ddof = 1 (test policy).
    record = json.loads((ROOT / "results" / "vae" / "paper_8x4" / "8x4_ReinMax.json").read_text())
    entry = final_table({"runs": [record]}, "train_neg_elbo")["8x4", "ReinMax"]
    values = record["final"]["train_neg_elbo"]["per_seed"]
    assert entry["per_seed"] == values and entry["n"] == 3
    assert math.isclose(entry["std"], statistics.stdev(values), rel_tol=1e-12)
    assert math.isclose(entry["std"], record["final"]["train_neg_elbo"]["std"] * math.sqrt(3 / 2), rel_tol=1e-9)
