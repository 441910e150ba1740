"""MNIST loading: the real files from the data root, and the download path against a local server."""
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import torch

from reinmax.data.mnist import ChecksumError, load_mnist, mnist_files

SHARED = os.environ.get("REINMAX_DATA")
needs_data = pytest.mark.skipif(
    not SHARED or not (Path(SHARED) / "mnist").is_dir(),
    reason="set REINMAX_DATA to a data root holding mnist/ (CI sets it)")


@needs_data
def test_real_mnist_statistics():
    # Published sanity figures (shared/data/README.md): mean 0.1307, std 0.3081, label counts.
    images, labels = load_mnist("train")
    assert images.shape == (60000, 28, 28) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert abs(images.mean().item() - 0.1307) < 5e-4
    assert abs(images.std().item() - 0.3081) < 5e-4
    counts = torch.bincount(labels, minlength=10).tolist()
    assert counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    test_images, _ = load_mnist("test")
    assert test_images.shape == (10000, 28, 28)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="split"):
        mnist_files("validation")
    with pytest.raises(ValueError, match="dataset"):
        mnist_files("train", dataset="cifar")


def test_offline_without_files_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("REINMAX_DATA", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="REINMAX_DATA") as error:
        mnist_files("test", download=False)
    assert str(tmp_path) in str(error.value)


class _Server:
    """A tiny HTTP server on 127.0.0.1 that serves a folder, optionally corrupting or cutting files."""

    def __init__(self, folder: Path, mode: str = "good"):
        self.mode = mode
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                body = data
                if server.mode == "corrupt":
                    body = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # A cut-off transfer announces the full length but stops half-way.
                self.wfile.write(body[: len(body) // 2] if server.mode == "cut" else body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("REINMAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "reinmax" / "mnist"


@pytest.fixture
def served(tmp_path):
    if not SHARED or not (Path(SHARED) / "mnist").is_dir():
        pytest.skip("needs REINMAX_DATA with mnist/ to serve the real files")
    folder = tmp_path / "www"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(SHARED) / "mnist" / name, folder / name)
    return folder


def _leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_good(served, empty_cache):
    with _Server(served) as server:
        images, labels = load_mnist("test", base_url=server.url)
    assert images.shape == (10000, 28, 28) and len(labels) == 10000
    assert _leftovers(empty_cache) == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def test_download_corrupted_leaves_nothing(served, empty_cache):
    with _Server(served, "corrupt") as server:
        with pytest.raises(FileNotFoundError, match="checksum"):
            load_mnist("test", base_url=server.url)
    assert _leftovers(empty_cache) == []


def test_download_cut_off_then_retry(served, empty_cache):
    with _Server(served, "cut") as server:
        with pytest.raises(FileNotFoundError, match="cut off|checksum|IncompleteRead|incomplete"):
            load_mnist("test", base_url=server.url)
        assert _leftovers(empty_cache) == []
        server.mode = "good"
        images, _ = load_mnist("test", base_url=server.url)
    assert images.shape == (10000, 28, 28)


def test_corrupted_local_file_is_reported(tmp_path, monkeypatch, served):
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    for p in served.iterdir():
        shutil.copy(p, root / "mnist" / p.name)
    bad = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-10])
    with pytest.raises((ChecksumError, EOFError, OSError)):
        load_mnist("test", root=root, download=False)
