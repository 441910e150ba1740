"""The 28x28 Omniglot file: the git blob id that verifies it, and the MAT-5 reader on files
written here by an independent writer (plain and compressed elements, both byte orders)."""
import struct
import zlib

import numpy as np
import pytest

from reinmax.data import omniglot28 as O


def test_git_blob_sha1_matches_git():
    # `printf 'hello\n' | git hash-object --stdin`
    assert O.git_blob_sha1(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


def _element(kind, payload, endian, small=False):
    if small and len(payload) <= 4:                  # MATLAB's packed form for tiny elements
        return struct.pack(endian + "I", (len(payload) << 16) | kind) + payload.ljust(4, b"\0")
    pad = (-len(payload)) % 8
    return struct.pack(endian + "II", kind, len(payload)) + payload + b"\0" * pad


def _matrix(name, array, endian, compress):
    flags = _element(6, struct.pack(endian + "II", 6, 0), endian)          # mxDOUBLE_CLASS
    dims = _element(5, struct.pack(endian + "ii", *array.shape), endian)
    label = _element(1, name.encode(), endian, small=len(name) <= 4)
    real = _element(9, array.astype(endian + "f8").tobytes(order="F"), endian)
    element = _element(14, flags + dims + label + real, endian)
    if compress:
        data = zlib.compress(element)
        return struct.pack(endian + "II", 15, len(data)) + data
    return element


def _mat_file(arrays, endian="<", compress=True):
    header = b"MATLAB 5.0 MAT-file, test".ljust(116, b" ") + b"\0" * 8
    header += struct.pack(endian + "H", 0x0100) + (b"IM" if endian == "<" else b"MI")
    return header + b"".join(_matrix(n, a, endian, compress) for n, a in arrays.items())


@pytest.mark.parametrize("endian,compress", [("<", True), ("<", False), (">", False)])
def test_read_mat5(endian, compress):
    a = np.arange(12, dtype=float).reshape(3, 4) / 11
    b = np.array([[0.5], [0.25]])
    found = O.read_mat5(_mat_file({"data": a, "testdata": b}, endian, compress))
    assert set(found) == {"data", "testdata"}
    assert np.array_equal(found["data"], a) and np.array_equal(found["testdata"], b)


def test_read_mat5_refuses_other_files():
    with pytest.raises(ValueError, match="MATLAB 5"):
        O.read_mat5(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)


def test_a_file_that_does_not_match_is_refused(tmp_path):
    folder = tmp_path / "omniglot"
    folder.mkdir()
    (folder / O.FILE).write_bytes(_mat_file({"data": np.zeros((784, 2))}))
    with pytest.raises(RuntimeError, match="git blob SHA-1"):
        O.omniglot28_file(root=str(tmp_path), download=False)
