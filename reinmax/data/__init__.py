"""Data sets, found by one rule: an explicit ``root``, else ``$REINMAX_DATA``, else a user cache.

A data root holds one folder per data set (``mnist/``, ``omniglot/``, ``listops/``), laid out as
the project's ``shared/data`` folder is. Downloads (where a loader supports them) go to the user
cache, are verified by checksum and written atomically.
"""
import os
from pathlib import Path
from typing import Optional, Union

ENV_VAR = "REINMAX_DATA"


def default_cache_dir() -> Path:
    """The per-user cache: ``$XDG_CACHE_HOME/reinmax`` or ``~/.cache/reinmax``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "reinmax"


def data_root(root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The data root: ``root`` if given, else ``$REINMAX_DATA`` if set, else the user cache."""
    if root is not None:
        path = Path(root).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data root {str(path)!r} (the root= argument) is not a directory")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"data root {env!r} (from ${ENV_VAR}) is not a directory")
        return path
    return default_cache_dir()


def dataset_dir(name: str, root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """The folder of one data set under the data root, e.g. ``dataset_dir("mnist")``."""
    return data_root(root) / name
