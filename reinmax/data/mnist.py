"""MNIST and Fashion-MNIST from the canonical IDX files, found by the data-location rule.

``load_mnist("train")`` returns ``(images, labels)``: float32 grey levels in [0, 1] of shape
``(N, 28, 28)`` (not binarised, as the paper's MNIST-VAE code uses them) and int64 labels.

Where the files are looked for, in order: the data root (``root=``, else ``$REINMAX_DATA``, else
the user cache; see :func:`reinmax.data.data_root`), then the user cache. If they are in neither
and ``download=True``, they are downloaded into the user cache, verified against the publishers'
checksums, and moved into place atomically, so an interrupted or corrupted download leaves
nothing behind.
"""
import gzip
import hashlib
import os
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from . import ENV_VAR, data_root, default_cache_dir

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# For MNIST: sha256 of the decompressed files (shared/data/README.md). For Fashion-MNIST: the
# md5 of the .gz files that Zalando Research publishes.
DATASETS: Dict[str, dict] = {
    "mnist": dict(
        folder="mnist",
        urls=["https://ossci-datasets.s3.amazonaws.com/mnist/"],
        check="sha256-decompressed",
        checksums={
            "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }),
    "fashion-mnist": dict(
        folder="fashion-mnist",
        urls=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        check="md5-gz",
        checksums={
            "train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310",
        }),
}


class ChecksumError(RuntimeError):
    """A data file does not match its published checksum."""


def _digest(data: bytes, check: str) -> str:
    if check == "sha256-decompressed":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as error:
            return f"<not a valid gzip file: {error}>"
        return hashlib.sha256(data).hexdigest()
    return hashlib.md5(data).hexdigest()


def verify_file(path: Path, spec: dict, stem: str) -> None:
    actual = _digest(path.read_bytes(), spec["check"])
    if actual != spec["checksums"][stem]:
        raise ChecksumError(f"{path} does not match its published checksum ({spec['check']}: "
                            f"expected {spec['checksums'][stem]}, got {actual})")


def _find(stem: str, folders) -> Optional[Path]:
    for folder in folders:
        path = folder / f"{stem}.gz"
        if path.is_file():
            return path
    return None


def download_file(url: str, destination: Path, spec: dict, stem: str, timeout: float = 60,
                  verifier=None) -> Path:
    """Download ``url`` to ``destination`` atomically: a temporary file in the same folder is
    verified (length and checksum; ``verifier(path)``, when given, replaces the checksum of
    ``spec``) and only then renamed into place."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{stem}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            received = 0
            while True:
                chunk = response.read(1 << 16)
                if not chunk:
                    break
                out.write(chunk)
                received += len(chunk)
        if expected is not None and received != int(expected):
            raise IOError(f"download of {url} was cut off: {received} of {expected} bytes")
        if verifier is not None:
            verifier(Path(temporary))
        else:
            verify_file(Path(temporary), spec, stem)
        os.replace(temporary, destination)
        return destination
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_idx(path: Path) -> np.ndarray:
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def mnist_files(split: str = "train", *, root=None, dataset: str = "mnist", download: bool = True,
                base_url: Optional[str] = None, verify: bool = True, timeout: float = 60) -> Tuple[Path, Path]:
    """Paths of the (images, labels) IDX files of one split, downloading them if needed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {sorted(SPLITS)}; got split={split!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}; got dataset={dataset!r}")
    spec = DATASETS[dataset]
    cache = default_cache_dir() / spec["folder"]
    folders = [data_root(root) / spec["folder"], cache]
    paths = []
    for stem in SPLITS[split]:
        path = _find(stem, folders)
        if path is None and download:
            errors = []
            for base in ([base_url] if base_url else spec["urls"]):
                try:
                    path = download_file(base.rstrip("/") + f"/{stem}.gz", cache / f"{stem}.gz",
                                         spec, stem, timeout)
                    break
                except (OSError, ChecksumError) as error:
                    errors.append(f"{base}: {error}")
            if path is None:
                raise FileNotFoundError(
                    f"{stem}.gz not found in {', '.join(map(str, folders))} and the download failed "
                    f"({'; '.join(errors)}). Put the IDX .gz files in a folder "
                    f"'{spec['folder']}/' under a data root and pass root= or set ${ENV_VAR}.")
        elif path is None:
            raise FileNotFoundError(
                f"{stem}.gz not found in {', '.join(map(str, folders))}; pass download=True, or put "
                f"the IDX .gz files in '{spec['folder']}/' under a data root (root= or ${ENV_VAR}).")
        elif verify:
            verify_file(path, spec, stem)
        paths.append(path)
    return paths[0], paths[1]


def load_mnist(split: str = "train", *, root=None, dataset: str = "mnist", download: bool = True,
               base_url: Optional[str] = None, verify: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images (float32 in [0, 1], shape (N, 28, 28)) and labels (int64) of MNIST or
    Fashion-MNIST (``dataset="fashion-mnist"``); see the module docstring for where files come from."""
    images_path, labels_path = mnist_files(split, root=root, dataset=dataset, download=download,
                                           base_url=base_url, verify=verify)
    images = torch.from_numpy(_read_idx(images_path).astype(np.float32) / 255.0)
    labels = torch.from_numpy(_read_idx(labels_path).astype(np.int64))
    if len(images) != len(labels):
        raise ValueError(f"{images_path} and {labels_path} hold different numbers of items")
    return images, labels
