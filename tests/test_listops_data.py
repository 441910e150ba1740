"""ListOps data: the official files, the reference preprocessing, the generator and its cache,
and the verified download (on a loopback server)."""
import os
import shutil
from pathlib import Path

import pytest

from reinmax.data import listops as L

SHARED = os.environ.get("REINMAX_DATA")
needs_files = pytest.mark.skipif(not SHARED or not (Path(SHARED) / "listops").is_dir(),
                                 reason="needs REINMAX_DATA with listops/")


def test_preprocessing_as_the_reference():
    raw = "( ( ( [SM 6 ) ( ( [MIN 1 ) 2 ) ] ) ) ] )"
    text = L.preprocess(raw)
    assert text == "[ SM 6 [ MIN 1 2 ] ]"
    assert L.units_of(text, "token") == ["[", "SM", "6", "[", "MIN", "1", "2", "]", "]"]
    assert L.units_of(text, "char")[:4] == ["[", " ", "S", "M"]
    assert L.operator_spans(text) == [(3, 8), (0, 9)]
    assert L.evaluate_text(raw) == (6 + 1) % 10


@needs_files
def test_official_files_filter_and_labels():
    test = L.read_tsv(L.listops_file("test", download=False))
    assert len(test) == 10000
    # the generator's semantics (MED = int(median), SM = sum mod 10) reproduce every label
    assert all(L.evaluate_text(e) == label for label, e in test)
    split = L.encode(test, "char")
    assert len(split) == 8689 and max(map(len, split.ids)) == 231      # characters, as counted
    assert sum(map(len, split.ids)) / len(split) == pytest.approx(54.86, abs=0.01)
    tokens = L.load_split("test", "token", download=False)
    assert sum(map(len, tokens.ids)) / len(tokens) == pytest.approx(24.23, abs=0.01)
    assert len(L.load_split("valid", download=False)) == 857
    assert 1 not in {i for ids in split.ids for i in ids}                # no unknown symbol
    assert len(L.vocabulary("char")) == 23


def test_generator_follows_the_recipe():
    lines = L.generate(2000, seed=3)
    assert len({e for _, e in lines}) == 2000
    assert all(L.evaluate_text(e) == label for label, e in lines)
    assert L.generate(50, seed=3) == lines[:50]                  # seeded, in the order drawn
    assert L.generate(50, seed=4) != lines[:50]
    assert max(L.depth(e) for _, e in lines) <= 20
    short = L.generate(300, seed=1, max_tokens=20)
    assert all(len(L.preprocess(e).split()) < 20 for _, e in short)
    excluded = L.generate(30, seed=5, exclude={e for _, e in L.generate(30, seed=5)})
    assert not {e for _, e in excluded} & {e for _, e in L.generate(30, seed=5)}


def test_bad_generator_settings_are_named():
    for kwargs, name in [(dict(n=0, seed=1), "n"), (dict(n=5, seed=-1), "seed"),
                         (dict(n=5, seed=1, max_depth=0), "max_depth"),
                         (dict(n=5, seed=1, max_tokens=1), "max_tokens"),
                         (dict(n=5, seed=1, value_p=1.5), "value_p")]:
        with pytest.raises(ValueError, match=name):
            L.generate(**kwargs)
    with pytest.raises(ValueError, match="n=100"):
        L.generate(100, 0, max_tokens=2)          # only the ten digits are that short
    with pytest.raises(ValueError, match="unit"):
        L.vocabulary("word")
    with pytest.raises(ValueError, match="split"):
        L.listops_file("train")


@needs_files
def test_training_split_is_cached_outside_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = sorted(os.listdir(Path(SHARED) / "listops"))
    lines, path = L.training_split(200, seed=7, max_tokens=40)
    assert path.parent == tmp_path / "cache" / "reinmax" / "listops"
    assert f"v{L.GENERATOR_VERSION}-seed7" in path.name
    assert sorted(os.listdir(Path(SHARED) / "listops")) == before
    official = {e for s in L.FILES for _, e in L.read_tsv(L.listops_file(s, download=False))}
    assert not {e for _, e in lines} & official
    again, same = L.training_split(200, seed=7, max_tokens=40)
    assert again == lines and same == path
    elsewhere, other = L.training_split(200, seed=7, max_tokens=40, cache_dir=tmp_path / "run")
    assert elsewhere == lines and other.parent == tmp_path / "run"


@needs_files
def test_download_on_loopback(tmp_path, monkeypatch):
    from test_mnist import _Server
    monkeypatch.delenv("REINMAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    www = tmp_path / "www"
    www.mkdir()
    shutil.copy(Path(SHARED) / "listops" / "test_d20s.tsv", www / "test_d20s.tsv")
    cache = tmp_path / "cache" / "reinmax" / "listops"
    with _Server(www, "corrupt") as server:
        with pytest.raises(FileNotFoundError, match="checksum"):
            L.listops_file("test", base_url=server.url)
        assert not cache.exists() or list(cache.iterdir()) == []
        server.mode = "cut"
        with pytest.raises(FileNotFoundError):
            L.listops_file("test", base_url=server.url)
        assert list(cache.iterdir()) == []
        server.mode = "good"
        path = L.listops_file("test", base_url=server.url)
    assert path == cache / "test_d20s.tsv" and len(L.read_tsv(path)) == 10000
    with pytest.raises(FileNotFoundError, match="REINMAX_DATA"):
        L.listops_file("valid", download=False)
