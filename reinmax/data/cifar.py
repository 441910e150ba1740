"""CIFAR-10 and CIFAR-100 from the publisher's Python archives, verified by checksum.

``load_cifar("cifar10", "train")`` returns ``(images, labels)``: float32 in [0, 1] of shape
``(N, 3, 32, 32)`` and int64 labels (CIFAR-100: the 100 fine labels). The archive
(``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``) is looked for in
``<data root>/<cifar10|cifar100>/``, then in the user cache (see :func:`reinmax.data.data_root`);
if absent and ``download=True`` it is downloaded from the University of Toronto into the user
cache, checked against the md5 the publisher's page lists, and moved into place atomically. The
batches inside are Python pickles; they are read only from an archive whose checksum matched.
(torchvision does the same, but the torchvision wheel on PyPI does not import beside this
project's torch, so the book does not depend on it.)
"""
import io
import pickle
import tarfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from . import data_root, default_cache_dir
from .mnist import ChecksumError, verify_file, download_file

URL = "https://www.cs.toronto.edu/~kriz/"
DATASETS: Dict[str, dict] = {
    "cifar10": dict(archive="cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
                    members={"train": [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)],
                             "test": ["cifar-10-batches-py/test_batch"]},
                    label_key=b"labels"),
    "cifar100": dict(archive="cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
                     members={"train": ["cifar-100-python/train"], "test": ["cifar-100-python/test"]},
                     label_key=b"fine_labels"),
}

__all__ = ["DATASETS", "cifar_archive", "load_cifar", "ChecksumError"]


def _spec(name: str) -> dict:
    info = DATASETS[name]
    return {"check": "md5-gz", "checksums": {info["archive"]: info["md5"]}}


def cifar_archive(name: str = "cifar10", *, root=None, download: bool = True,
                  base_url: Optional[str] = None, verify: bool = True) -> Path:
    """The verified archive of ``name`` ("cifar10" or "cifar100"), downloaded if needed."""
    if name not in DATASETS:
        raise ValueError(f"name must be one of {list(DATASETS)}; got name={name!r}")
    archive = DATASETS[name]["archive"]
    folders = [data_root(root) / name, default_cache_dir() / name]
    for folder in folders:
        path = folder / archive
        if path.is_file():
            if verify:
                verify_file(path, _spec(name), archive)
            return path
    if not download:
        raise FileNotFoundError(f"{archive} is in none of {[str(f) for f in folders]}; pass "
                                f"download=True or put it in {folders[0]}")
    return download_file((base_url or URL) + archive, folders[-1] / archive, _spec(name), archive)


def load_cifar(name: str = "cifar10", split: str = "train", *, root=None, download: bool = True,
               base_url: Optional[str] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 3, 32, 32)`` in [0, 1] and int64 labels of ``split`` ("train" or "test")."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got split={split!r}")
    path = cifar_archive(name, root=root, download=download, base_url=base_url)
    info = DATASETS[name]
    images, labels = [], []
    with tarfile.open(path, "r:gz") as tar:
        for member in info["members"][split]:
            handle = tar.extractfile(member)
            if handle is None:
                raise ValueError(f"{path} has no file {member}")
            batch = pickle.load(io.BytesIO(handle.read()), encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[info["label_key"]], dtype=np.int64))
    return (torch.from_numpy(np.concatenate(images).astype(np.float32) / 255.0),
            torch.from_numpy(np.concatenate(labels)))
