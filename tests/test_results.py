"""Results files: atomic writes, provenance, and the paper's tables as data."""
import json
import math

import pytest
import torch

from reinmax import results


def test_write_json_is_atomic_and_round_trips(tmp_path):
    path = tmp_path / "sub" / "record.json"
    record = {"loss": [0.25, 0.125], "tensor": torch.tensor([1.0, 2.0]), "tuple": (1, 2),
              "nan": math.nan, "inf": math.inf}
    results.write_json(path, record)
    assert results.read_json(path) == {"loss": [0.25, 0.125], "tensor": [1.0, 2.0],
                                       "tuple": [1, 2], "nan": None, "inf": "inf"}
    # A second write replaces the file and leaves no temporary file behind.
    results.write_json(path, {"loss": [1.0]})
    assert results.read_json(path) == {"loss": [1.0]}
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "record.json"
    results.write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        results.write_json(path, {"a": object()})      # not JSON: the write fails midway
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_read_json_names_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results file"):
        results.read_json(tmp_path / "missing.json")


def test_provenance_says_where_and_with_what():
    record = results.provenance("cpu")
    from reinmax import __version__
    assert record["package_version"] == __version__
    assert record["torch_version"] == torch.__version__
    assert record["device"] == "cpu"
    commit = record["git_commit"]
    assert commit is None or len(commit.split("+")[0]) == 40


def test_paper_tables_hold_the_papers_numbers():
    # Entries checked by hand against the paper's Tables 1, 2, 3 and 7.
    assert results.paper_table("table2_mnist_vae_train_neg_elbo")["ReinMax"]["8x4"] == {
        "mean": 124.66, "std": 0.88}
    assert results.paper_table("table1_listops_accuracy")["test"]["ReinMax"]["mean"] == 68.07
    assert results.paper_table("table3_time_per_epoch_s_and_peak_memory")[
        "QP_128_binary_latents_batch_512"][-1] == "6.6s/3Gb"
    assert results.paper_table("table7_search_space")["temperature"] == [
        0.1, 0.3, 0.5, 0.7, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]


def test_unknown_paper_table_lists_the_known_ones():
    with pytest.raises(KeyError, match="table7_search_space"):
        results.paper_table("table99")


def test_agreement_measures_distance_in_the_papers_standard_deviations():
    paper = {"mean": 124.66, "std": 0.88}
    near = results.agreement(125.08, paper)
    assert near["within"] and abs(near["z"] - 0.42 / 0.88) < 1e-12
    far = results.agreement(124.66 + 2.01 * 0.88, paper)
    assert not far["within"] and far["difference"] > 0
    assert results.agreement(124.66 - 2.0 * 0.88 + 1e-9, paper)["within"]
    assert not results.agreement(126.0, paper, k=1)["within"]
    with pytest.raises(ValueError, match="k must be"):
        results.agreement(1.0, paper, k=0)
    with pytest.raises(ValueError, match="std must be positive"):
        results.agreement(1.0, {"mean": 1.0, "std": 0.0})
