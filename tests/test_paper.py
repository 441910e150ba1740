"""The paper's tables as package data (reinmax.paper): one source, read the same way installed
or from a checkout, and the experiments' retyped constants equal to what it holds."""
import json
from importlib import resources
from pathlib import Path

import pytest

from reinmax import paper, results
from reinmax.experiments import polynomial, vae

ROOT = Path(__file__).resolve().parent.parent


def test_results_copy_is_byte_equal_to_the_package_data():
    shipped = resources.files("reinmax.paper").joinpath("tables.json").read_bytes()
    assert (ROOT / "results" / "paper" / "tables.json").read_bytes() == shipped, (
        "results/paper/tables.json must be a copy of reinmax/paper/tables.json; copy the package's "
        "file over it after editing")


def test_package_data_is_declared_for_non_editable_installs():
    # Without this entry a wheel would not carry the file, and reinmax.paper would fail installed.
    tomllib = pytest.importorskip("tomllib")   # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "tables.json" in config["tool"]["setuptools"]["package-data"]["reinmax.paper"]


def test_results_reads_the_package_data():
    assert results.paper_tables() == json.loads(paper.tables_text())
    assert results.paper_table("table2_mnist_vae_train_neg_elbo") == paper.table("table2_mnist_vae_train_neg_elbo")


def test_a_caller_cannot_change_what_the_next_caller_reads():
    first = paper.tables()
    first["table2_mnist_vae_train_neg_elbo"]["ReinMax"]["8x4"]["mean"] = 0.0
    assert paper.table("table2_mnist_vae_train_neg_elbo")["ReinMax"]["8x4"]["mean"] == 124.66


def test_unknown_table_lists_the_known_ones():
    with pytest.raises(KeyError, match="no paper table named 'table99'; known tables: table1_listops"):
        paper.table("table99")


def test_table7_temperatures_are_the_polynomial_experiments_grid():
    # Typed from the paper's Table 7 by hand, independently of tables.json.
    assert paper.table7_temperatures() == polynomial.TABLE7_TEMPERATURES == (
        0.1, 0.3, 0.5, 0.7, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5)
    assert all(type(t) is float for t in paper.table7_temperatures())
    space = paper.table7_search_space()
    assert space["optimizer"] == ("Adam", "RAdam")
    assert space["learning_rate"] == (0.001, 0.0007, 0.0005, 0.0003)


def test_figure2_temperatures_are_the_vae_grid():
    assert paper.figure2_temperatures() == vae.TEMPERATURES == (0.1, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 4.0, 5.0)


TABLE8_AS_PRINTED = {
    # Typed from the paper's Table 8 by hand, independently of tables.json:
    # setting: method: (optimizer, learning rate, temperature)
    "8x4": {"STGS": ("Adam", 3e-4, 0.5), "GR-MCK": ("Adam", 5e-4, 0.5),
            "GST-1.0": ("Adam", 5e-4, 0.7), "ST": ("Adam", 1e-3, 1.3),
            "ReinMax": ("Adam", 5e-4, 1.3)},
    "4x24": {"STGS": ("RAdam", 5e-4, 0.3), "GR-MCK": ("RAdam", 5e-4, 0.3),
             "GST-1.0": ("RAdam", 5e-4, 0.5), "ST": ("RAdam", 1e-3, 1.5),
             "ReinMax": ("RAdam", 5e-4, 1.5)},
    "8x16": {"STGS": ("RAdam", 5e-4, 0.5), "GR-MCK": ("RAdam", 7e-4, 0.7),
             "GST-1.0": ("RAdam", 7e-4, 0.5), "ST": ("RAdam", 1e-3, 1.5),
             "ReinMax": ("RAdam", 7e-4, 1.5)},
    "16x12": {"STGS": ("RAdam", 7e-4, 0.7), "GR-MCK": ("Adam", 5e-4, 1.0),
              "GST-1.0": ("RAdam", 7e-4, 0.5), "ST": ("Adam", 5e-4, 1.5),
              "ReinMax": ("RAdam", 7e-4, 1.5)},
    "64x8": {"STGS": ("RAdam", 7e-4, 0.7), "GR-MCK": ("Adam", 7e-4, 2.0),
             "GST-1.0": ("RAdam", 7e-4, 0.7), "ST": ("Adam", 5e-4, 1.5),
             "ReinMax": ("RAdam", 5e-4, 1.5)},
    "10x30": {"STGS": ("RAdam", 5e-4, 0.5), "GR-MCK": ("RAdam", 5e-4, 1.0),
              "GST-1.0": ("RAdam", 5e-4, 0.5), "ST": ("RAdam", 7e-4, 1.4),
              "ReinMax": ("RAdam", 5e-4, 1.3)},
}


def test_table8_hyperparameters_equal_the_vae_experiments_table():
    table8 = paper.table8_hyperparameters()
    assert table8 == vae.TABLE8 == TABLE8_AS_PRINTED
    assert list(table8) == list(vae.CONFIGURATIONS) == list(paper.MNIST_VAE_SETTINGS)
    for setting, methods in table8.items():
        assert list(methods) == list(vae.METHODS), setting
        for optimizer, lr, tau in methods.values():
            assert optimizer in ("Adam", "RAdam") and type(lr) is float and type(tau) is float


def test_table8_listops_row():
    # Table 8's last row, as printed: (optimizer, learning rate, temperature) per method.
    assert paper.table8_hyperparameters("ListOps") == {
        "STGS": ("RAdam", 0.0005, 0.1), "GR-MCK": ("RAdam", 0.0005, 0.3),
        "GST-1.0": ("RAdam", 0.001, 0.1), "ST": ("RAdam", 0.001, 1.4),
        "ReinMax": ("RAdam", 0.0007, 1.1)}


def test_table8_unknown_experiment_is_a_clear_error():
    with pytest.raises(ValueError, match=r"experiment must be 'MNIST-VAE' or 'ListOps'.*got experiment='8x4'"):
        paper.table8_hyperparameters("8x4")
