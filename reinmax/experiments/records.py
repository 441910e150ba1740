"""Results files with provenance, and the paper's reported numbers as data.

Every experiment writes one JSON record: its metrics, its configuration and :func:`provenance`
(package version, git commit, torch version, device, time). Files are written atomically — to a
temporary file in the same folder, then ``os.replace`` — so an interrupted run never leaves a
half-written file behind, and a reader never sees one.

The numbers the paper prints ship with the package (:mod:`reinmax.paper`, the file
``reinmax/paper/tables.json``; ``results/paper/tables.json`` is a byte-equal copy);
:func:`paper_tables` and :func:`paper_table` read them so that chapters put them beside ours.
"""
import datetime
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from reinmax import paper
# Re-exported: callers have always found it here.
from reinmax.statistics import agreement  # noqa: F401

PathLike = Union[str, Path]

REPOSITORY = Path(__file__).resolve().parents[2]
"""The repository root (where ``results/`` lives) when the package is used from a checkout."""

RESULTS_DIR = REPOSITORY / "results"
PAPER_TABLES = RESULTS_DIR / "paper" / "tables.json"
"""The copy of the package's ``reinmax/paper/tables.json`` kept under ``results/`` for readers."""


def git_commit(directory: PathLike = REPOSITORY) -> Optional[str]:
    """The checked-out commit, with ``+dirty`` when tracked files differ from it; None outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=directory, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def equal_apart_from(found: Dict[str, Any], expected: Dict[str, Any], *keys: str) -> bool:
    """Whether two records' settings are equal once ``keys`` are left out of both."""
    return ({k: v for k, v in found.items() if k not in keys}
            == {k: v for k, v in expected.items() if k not in keys})


def provenance(device: Union[str, torch.device, None] = None) -> Dict[str, Any]:
    """Where and with what a result was computed (stored in every results file)."""
    from reinmax import __version__
    return {
        "package": "reinmax", "package_version": __version__, "git_commit": git_commit(),
        "torch_version": torch.__version__, "python_version": platform.python_version(),
        "platform": platform.platform(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device) if device is not None else None,
        "cuda_device": (torch.cuda.get_device_name() if device is not None
                        and str(device).startswith("cuda") else None),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def json_values(value):
    """JSON has no NaN or infinity, no tensors and no tuples: convert to what it has."""
    if isinstance(value, torch.Tensor):
        return json_values(value.tolist())
    if isinstance(value, dict):
        return {str(k): json_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_values(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if hasattr(value, "item") and callable(value.item):   # numpy scalars
        return json_values(value.item())
    return value


def write_json(path: PathLike, record: Dict[str, Any]) -> Path:
    """Write ``record`` as JSON at ``path`` atomically (temporary file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(json_values(record), stream, indent=1, allow_nan=False)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path


def read_json(path: PathLike) -> Dict[str, Any]:
    """Read a results file; a missing file is a FileNotFoundError that names it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no results file at {path}")
    with open(path) as stream:
        return json.load(stream)


def paper_tables(path: Optional[PathLike] = None) -> Dict[str, Any]:
    """All of the paper's tables: the package's copy (:func:`reinmax.paper.tables`), or the JSON
    file at ``path`` when one is given."""
    if path is None:
        return paper.tables()
    return read_json(path)


def paper_table(name: str, path: Optional[PathLike] = None) -> Any:
    """One table by its key, e.g. ``paper_table("table7_search_space")``."""
    if path is None:
        return paper.table(name)
    tables = paper_tables(path)
    if name not in tables:
        known = ", ".join(key for key in tables if key != "note")
        raise KeyError(f"no paper table named {name!r}; known tables: {known}")
    return tables[name]
