"""A found cell's accuracies in NATS-Bench's topology benchmark, as Table 4 reports them.

NATS-Bench evaluates a searched cell by lookup, not by retraining: the benchmark holds every one
of the 15,625 cells trained for 200 epochs on each data set. This needs two things this package
does not ship: the ``nats_bench`` package (an optional dependency, pinned to ``NATS_BENCH_VERSION``:
``pip install nats_bench==1.8``) and the benchmark folder ``NATS-tss-v1_0-3ffb9-simple`` (the
archive ``NATS-tss-v1_0-3ffb9-simple.tar``, about 0.5 GB unpacked, from the links in
https://github.com/D-X-Y/NATS-Bench#preparation-and-download; no public URL with a checksum).

Table 4's columns (NATS-Bench's ``get_more_info(arch, dataset, hp="200", is_random=False)``,
the mean over the benchmark's training seeds): CIFAR-10 validation = ``cifar10-valid``'s
valid-accuracy (trained on half the training set, tested on the other half), CIFAR-10 test =
``cifar10``'s test-accuracy (trained on all 50,000); CIFAR-100 and ImageNet16-120: valid- and
test-accuracy (the two halves of their test sets).
"""
import os
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from reinmax.models.nas import genotype_from_str, genotype_to_str

NATS_BENCH_VERSION = "1.8"
BENCHMARK = "NATS-tss-v1_0-3ffb9-simple"
WHERE = ("download NATS-tss-v1_0-3ffb9-simple.tar from the links in "
         "https://github.com/D-X-Y/NATS-Bench#preparation-and-download and unpack it")
TABLE4_COLUMNS = (("cifar10", "cifar10-valid", "valid-accuracy"), ("cifar10", "cifar10", "test-accuracy"),
                  ("cifar100", "cifar100", "valid-accuracy"), ("cifar100", "cifar100", "test-accuracy"),
                  ("ImageNet16-120", "ImageNet16-120", "valid-accuracy"),
                  ("ImageNet16-120", "ImageNet16-120", "test-accuracy"))


def default_benchmark_dir() -> Path:
    """Where ``nats_bench`` itself looks: ``$TORCH_HOME/NATS-tss-v1_0-3ffb9-simple`` (TORCH_HOME
    defaulting to ``~/.torch``)."""
    home = os.environ.get("TORCH_HOME") or os.path.join(os.path.expanduser("~"), ".torch")
    return Path(home) / BENCHMARK


def open_benchmark(benchmark_dir: Optional[Union[str, os.PathLike]] = None):
    """NATS-Bench's topology API over ``benchmark_dir`` (fast mode: one file per cell, read when
    asked). Clear errors when the package or the folder is missing."""
    try:
        import nats_bench
    except ImportError as error:
        raise ImportError(f"looking up cells needs the optional package nats_bench "
                          f"(pip install nats_bench=={NATS_BENCH_VERSION}) and its benchmark "
                          f"folder ({WHERE})") from error
    if nats_bench.version() != f"v{NATS_BENCH_VERSION}":
        raise ImportError(f"nats_bench {nats_bench.version()} is installed; this lookup is "
                          f"written for v{NATS_BENCH_VERSION} (pip install nats_bench=={NATS_BENCH_VERSION})")
    folder = Path(benchmark_dir) if benchmark_dir is not None else default_benchmark_dir()
    if not (folder / "meta.pickle.pbz2").is_file():
        raise FileNotFoundError(f"no NATS-Bench topology benchmark at {folder} (meta.pickle.pbz2 "
                                f"missing): {WHERE}, then pass benchmark_dir= or set TORCH_HOME")
    return nats_bench.create(str(folder), "tss", fast_mode=True, verbose=False)


def table4_accuracies(genotype: Union[str, Sequence[str]], api=None, *,
                      benchmark_dir=None) -> Dict[str, Dict[str, float]]:
    """``{"cifar10": {"valid": .., "test": ..}, "cifar100": .., "ImageNet16-120": ..}`` in
    percent, for a cell given as NATS-Bench's string or a sequence of six operation names."""
    text = genotype if isinstance(genotype, str) else genotype_to_str(genotype)
    genotype_from_str(text)                                    # a clear error for a bad string
    api = api if api is not None else open_benchmark(benchmark_dir)
    index = api.query_index_by_arch(text)
    if index < 0:
        raise ValueError(f"the cell {text} is not in the benchmark")
    folder = Path(api.archive_dir)
    if not (folder / f"{index:06d}.pickle.pbz2").is_file():
        raise FileNotFoundError(f"the benchmark at {folder} has no file for cell #{index} ({text}): "
                                f"a partial copy? {WHERE}")
    out: Dict[str, Dict[str, float]] = {}
    for column, dataset, key in TABLE4_COLUMNS:
        info = api.get_more_info(index, dataset, hp="200", is_random=False)
        out.setdefault(column, {})["valid" if key.startswith("valid") else "test"] = float(info[key])
    return out
