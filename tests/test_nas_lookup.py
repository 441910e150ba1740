"""Looking up a found cell in NATS-Bench, on the NATS-Bench repository's own test fixture
(tests/fixtures/nats_bench: three of the 15,625 cells and the meta file, MIT licence, copied
unchanged from D-X-Y/NATS-Bench@1d4a304 fake_torch_dir/). Needs the optional, pinned nats_bench
(requirements.txt); skipped with the reason when it is not installed."""
from pathlib import Path

import pytest

from reinmax.experiments.nas import lookup

FIXTURE = Path(__file__).parent / "fixtures" / "nats_bench" / lookup.BENCHMARK
CELL_11 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_missing_package_or_folder_is_a_clear_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "nats_bench", None)       # as if not installed
    with pytest.raises(ImportError, match=r"pip install nats_bench==1\.8"):
        lookup.open_benchmark(FIXTURE)


try:
    import nats_bench  # noqa: F401
    HAVE_NATS_BENCH = True
except ImportError:
    HAVE_NATS_BENCH = False
needs_nats_bench = pytest.mark.skipif(not HAVE_NATS_BENCH, reason="the optional nats_bench==1.8 is "
                                      "not installed (pip install nats_bench==1.8; requirements.txt pins it)")


@needs_nats_bench
def test_missing_benchmark_folder_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="NATS-tss-v1_0-3ffb9-simple.tar"):
        lookup.open_benchmark(tmp_path)


@needs_nats_bench
def test_table4_columns_of_a_cell_in_the_fixture():
    api = lookup.open_benchmark(FIXTURE)
    assert len(api) == 15625 and api.arch(11) == CELL_11
    got = lookup.table4_accuracies(CELL_11, api)
    # Each column is the documented field of NATS-Bench's own record, read by its own API.
    assert got["cifar10"]["valid"] == api.get_more_info(11, "cifar10-valid", hp="200",
                                                        is_random=False)["valid-accuracy"]
    assert got["cifar10"]["test"] == api.get_more_info(11, "cifar10", hp="200",
                                                       is_random=False)["test-accuracy"]
    assert got["cifar10"]["valid"] == pytest.approx(87.94, abs=0.01)
    assert got["cifar10"]["test"] == pytest.approx(91.58, abs=0.01)
    assert got["cifar100"] == pytest.approx({"valid": 67.45, "test": 67.61}, abs=0.01)
    assert got["ImageNet16-120"] == pytest.approx({"valid": 30.41, "test": 30.17}, abs=0.01)
    # The same cell given as six operation names.
    from reinmax.models.nas import genotype_from_str
    assert lookup.table4_accuracies(genotype_from_str(CELL_11), api) == got


@needs_nats_bench
def test_a_cell_missing_from_a_partial_copy_is_a_clear_error():
    api = lookup.open_benchmark(FIXTURE)
    with pytest.raises(FileNotFoundError, match="no file for cell #1651"):
        lookup.table4_accuracies("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", api)
    with pytest.raises(ValueError, match="genotype string"):
        lookup.table4_accuracies("|conv~0|", api)
