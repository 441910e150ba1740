"""Omniglot at 28x28 as the VAE literature uses it: Burda et al.'s ``chardata.mat``.

``load_omniglot28()`` returns ``(data, testdata)``, float32 grey levels in [0, 1] of shapes
``(24345, 784)`` and ``(8070, 784)``. Shi et al. (2022) train on the first 23,000 rows of ``data``
and validate on the last 1,345; ``testdata`` is the test set.

The file is looked for as ``omniglot/chardata.mat`` under the data root (``root=``, else
``$REINMAX_DATA``), then in the user cache; otherwise it is downloaded from the IWAE repository
(yburda/iwae, ``datasets/OMNIGLOT/chardata.mat``). It has no published checksum, so it is
verified by its **git blob SHA-1** (SHA-1 of ``b"blob <size>\\0" + content``, the id git gives the
file in that repository): ``BLOB_SHA1``. A file that does not match is an error, never used.

The file is MATLAB 5 format; :func:`read_mat5` reads the numeric matrices of such a file with the
standard library (no SciPy): compressed or plain elements, real numeric classes. The pixels are
read in C order, as Shi et al. read them (IWAE reorders to Fortran order; for an MLP the pixel
order does not matter).
"""
import hashlib
import struct
import zlib
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from . import ENV_VAR, data_root, default_cache_dir
from .mnist import download_file

FILE = "chardata.mat"
URL = "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat"
BLOB_SHA1 = "016a3536ffe5e1d38e42563a18d7a78bfaf643ec"
"""git's blob id of yburda/iwae's ``datasets/OMNIGLOT/chardata.mat``."""
SHAPES = {"data": 24345, "testdata": 8070}


def git_blob_sha1(data: bytes) -> str:
    """The id git gives a file's content: SHA-1 of ``b"blob <size>\\0" + data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _verify_blob(path: Path) -> None:
    from .mnist import ChecksumError
    actual = git_blob_sha1(path.read_bytes())
    if actual != BLOB_SHA1:
        raise ChecksumError(f"{path} does not match the git blob SHA-1 of yburda/iwae's "
                            f"{FILE} (expected {BLOB_SHA1}, got {actual})")


# MAT 5 numeric element types -> numpy dtypes (little-endian files; big-endian handled by '>').
_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8",
          13: "u8"}
_MATRIX, _COMPRESSED = 14, 15


def _elements(buffer: bytes, endian: str):
    """(type, payload) of each data element in ``buffer`` (small elements unpacked)."""
    offset = 0
    while offset + 8 <= len(buffer):
        kind, size = struct.unpack(endian + "II", buffer[offset:offset + 8])
        if kind >> 16:                               # small data element: 4 bytes of data inline
            kind, size = kind & 0xFFFF, kind >> 16
            yield kind, buffer[offset + 4:offset + 4 + size]
            offset += 8
            continue
        payload = buffer[offset + 8:offset + 8 + size]
        offset += 8 + size
        if kind != _COMPRESSED:
            offset += (-size) % 8                    # elements are 8-byte aligned
        yield kind, payload


def read_mat5(raw: bytes) -> Dict[str, np.ndarray]:
    """The real numeric matrices of a MATLAB 5 file, ``{name: array}`` in MATLAB's shape."""
    if len(raw) < 128 or raw[:6] == b"\x89HDF\r\n" or raw[126:128] not in (b"IM", b"MI"):
        raise ValueError("not a MATLAB 5 .mat file (v7.3/HDF5 and v4 files are not read here)")
    endian = "<" if raw[126:128] == b"IM" else ">"
    found = {}
    pending = [raw[128:]]
    while pending:
        for kind, payload in _elements(pending.pop(), endian):
            if kind == _COMPRESSED:
                pending.append(zlib.decompress(payload))
            elif kind == _MATRIX:
                parts = list(_elements(payload, endian))
                flags, dims, name = parts[0][1], parts[1][1], parts[2][1]
                matrix_class = struct.unpack(endian + "I", flags[:4])[0] & 0xFF
                if matrix_class < 6 or len(parts) < 4:     # cells, structs, chars, sparse: skip
                    continue
                shape = np.frombuffer(dims, dtype=endian + "i4")
                kind_real, real = parts[3]
                values = np.frombuffer(real, dtype=endian + _TYPES[kind_real])
                found[name.decode("ascii")] = values.reshape(tuple(shape), order="F")
    return found


def omniglot28_file(root=None, *, download: bool = True, timeout: float = 120) -> Path:
    """The verified path of ``chardata.mat`` (see the module docstring)."""
    folders = [data_root(root) / "omniglot", default_cache_dir() / "omniglot"]
    for folder in folders:
        path = folder / FILE
        if path.is_file():
            _verify_blob(path)
            return path
    if not download:
        raise FileNotFoundError(f"{FILE} not found in {', '.join(map(str, folders))}; pass "
                                f"download=True or put it in 'omniglot/' under a data root "
                                f"(root= or ${ENV_VAR})")
    destination = folders[1] / FILE
    try:
        return download_file(URL, destination, {}, FILE, timeout, verifier=_verify_blob)
    except OSError as error:
        raise FileNotFoundError(
            f"{FILE} (28x28 Omniglot) is not in {', '.join(map(str, folders))} and could not be "
            f"downloaded from {URL} ({error}); offline, put the file in 'omniglot/' under a "
            f"data root") from error


def load_omniglot28(root=None, *, download: bool = True) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(data, testdata)``: float32 in [0, 1], ``(24345, 784)`` and ``(8070, 784)``."""
    matrices = read_mat5(omniglot28_file(root, download=download).read_bytes())
    out = []
    for name, rows in SHAPES.items():
        if name not in matrices:
            raise ValueError(f"{FILE} has no matrix {name!r} (found {sorted(matrices)})")
        array = np.asarray(matrices[name], dtype=np.float32)
        if array.shape == (784, rows):               # MATLAB stores it pixels x images
            array = array.T
        if array.shape != (rows, 784):
            raise ValueError(f"{FILE}'s {name!r} has shape {array.shape}; expected (784, {rows})")
        out.append(torch.from_numpy(np.ascontiguousarray(array)))
    return out[0], out[1]
