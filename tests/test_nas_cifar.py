"""The CIFAR loader on loopback: a download is verified before it is kept, a wrong checksum
leaves nothing behind, and a verified archive is read into images and labels."""
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
import torch

from reinmax.data import cifar


def _fake_archive(n: int = 4) -> bytes:
    """A CIFAR-10-shaped archive: five training batches and a test batch of n images each."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        members = cifar.DATASETS["cifar10"]["members"]
        for k, name in enumerate(members["train"] + members["test"]):
            data = np.full((n, 3072), k, dtype=np.uint8)
            payload = pickle.dumps({b"data": data, b"labels": [k] * n})
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path):
    body = _fake_archive()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", body
    httpd.shutdown()


def test_a_download_with_the_wrong_checksum_is_refused_and_removed(server, tmp_path, monkeypatch):
    url, _ = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(cifar.ChecksumError, match="c58f30108f718f92721af3b95e74349a"):
        cifar.load_cifar("cifar10", "train", root=tmp_path, base_url=url)
    folder = tmp_path / "cache" / "reinmax" / "cifar10"
    assert not any(folder.iterdir())          # neither the archive nor a partial file is kept


def test_a_verified_download_is_read(server, tmp_path, monkeypatch):
    url, body = server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setitem(cifar.DATASETS, "cifar10",
                        dict(cifar.DATASETS["cifar10"], md5=hashlib.md5(body).hexdigest()))
    images, labels = cifar.load_cifar("cifar10", "train", root=tmp_path, base_url=url)
    assert images.shape == (20, 3, 32, 32) and images.dtype == torch.float32
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4
    assert images[4:8].eq(1 / 255).all()
    test_images, test_labels = cifar.load_cifar("cifar10", "test", root=tmp_path, download=False)
    assert test_labels.tolist() == [5] * 4                        # from the kept archive


def test_bad_arguments(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="name must be one of"):
        cifar.cifar_archive("cifar1000", root=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        cifar.load_cifar("cifar10", "valid", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="download=True"):
        cifar.cifar_archive("cifar100", root=tmp_path, download=False)
