"""One rule for finding data: explicit root > $REINMAX_DATA > the per-user cache."""
import pytest

from reinmax import data


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("REINMAX_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_explicit_root_wins_over_the_environment(clean_env, monkeypatch):
    explicit, env = clean_env / "explicit", clean_env / "env"
    explicit.mkdir()
    env.mkdir()
    monkeypatch.setenv("REINMAX_DATA", str(env))
    assert data.data_root(explicit) == explicit
    assert data.data_root(str(explicit)) == explicit
    assert data.dataset_dir("mnist", explicit) == explicit / "mnist"


def test_environment_wins_over_the_cache(clean_env, monkeypatch):
    env = clean_env / "env"
    env.mkdir()
    monkeypatch.setenv("REINMAX_DATA", str(env))
    assert data.data_root() == env
    assert data.dataset_dir("listops") == env / "listops"


def test_user_cache_is_the_fallback(clean_env):
    assert data.data_root() == clean_env / "cache" / "reinmax"
    assert data.default_cache_dir() == clean_env / "cache" / "reinmax"


def test_cache_without_xdg_is_under_home(clean_env, monkeypatch):
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(clean_env / "home"))
    assert data.data_root() == clean_env / "home" / ".cache" / "reinmax"


def test_empty_environment_variable_means_unset(clean_env, monkeypatch):
    monkeypatch.setenv("REINMAX_DATA", "")
    assert data.data_root() == clean_env / "cache" / "reinmax"


def test_nonexistent_explicit_root_is_a_clear_error(clean_env):
    missing = clean_env / "nowhere"
    with pytest.raises(FileNotFoundError, match=r"data root '.*nowhere' \(the root= argument\) is not a directory"):
        data.data_root(missing)


def test_nonexistent_environment_root_is_a_clear_error(clean_env, monkeypatch):
    monkeypatch.setenv("REINMAX_DATA", str(clean_env / "gone"))
    with pytest.raises(FileNotFoundError, match=r"data root '.*gone' \(from \$REINMAX_DATA\) is not a directory"):
        data.data_root()


def test_a_file_is_not_a_data_root(clean_env):
    file = clean_env / "file.txt"
    file.write_text("not a directory")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        data.data_root(file)


def test_home_is_expanded(clean_env, monkeypatch):
    (clean_env / "home" / "data").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(clean_env / "home"))
    assert data.data_root("~/data") == clean_env / "home" / "data"
