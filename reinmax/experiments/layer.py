"""What every experiment shares: config checks with one error format, the device, seeds, method
options checked by the estimator registry, atomic records and checkpoints, and resume by
fingerprint.

One record shape for every experiment::

    {"experiment": ..., "config": {...}, "runs": [...], "wall_s": ..., "provenance": {...}}

plus whatever the experiment adds beside them (e.g. polynomial programming's ``optimum``), and
``fingerprint``: a stable hash of the fields that decide the numbers (not the device). A finished
record whose fingerprint matches is returned instead of training again; with ``device="auto"`` a
record trained on another device still counts (its provenance names the device; the numbers are
draws of the same experiment). A checkpoint must match its device type too, because random
generator states do not move between devices.
"""
import argparse
import hashlib
import inspect
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import torch

import reinmax
from reinmax.experiments.records import json_values, provenance, read_json, write_json

__all__ = ["fail", "positive_int", "non_negative_int", "positive_number", "names", "seeds",
           "check_device", "resolve_device", "method_families", "method_options", "estimator",
           "fingerprint", "differences", "trained_on_ok", "save_checkpoint", "load_checkpoint", "finished_record", "record",
           "provenance", "read_json", "write_json", "run_cli"]

PathLike = Union[str, Path]


# ------------------------------------------------------------------------ the error format
def fail(owner: str, name: str, value: Any, allowed: str) -> None:
    """Raise the one error every config check raises: the parameter, the value, what is allowed."""
    raise ValueError(f"{owner}: {name} must be {allowed}; got {name}={value!r}")


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) or (
        type(value).__module__ == "numpy" and hasattr(value, "dtype") and value.dtype.kind in "iu")


def positive_int(owner: str, name: str, value: Any, *, allow_none: bool = False,
                 maximum: Optional[int] = None) -> Optional[int]:
    if value is None and allow_none:
        return None
    if not _is_int(value) or value < 1 or (maximum is not None and value > maximum):
        fail(owner, name, value, "an integer >= 1" + (f" and <= {maximum}" if maximum else "")
             + (" or None" if allow_none else ""))
    return int(value)


def non_negative_int(owner: str, name: str, value: Any) -> int:
    if not _is_int(value) or value < 0:
        fail(owner, name, value, "an integer >= 0")
    return int(value)


def positive_number(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_int(value) \
            or not (0 < float(value) < math.inf):
        fail(owner, name, value, "a number in (0, inf)")
    return float(value)


def names(owner: str, name: str, value: Any, allowed: Sequence[str]) -> List[str]:
    """A non-empty list of distinct names from ``allowed``, matched case-insensitively and
    returned as ``allowed`` spells them; one string is a list of one."""
    if isinstance(value, str):
        value = [value]
    what = f"a non-empty list of distinct names from {list(allowed)}"
    if not isinstance(value, (list, tuple)) or not value:
        fail(owner, name, value, what)
    by_key = {a.lower(): a for a in allowed}
    found = []
    for item in value:
        key = item.strip().lower() if isinstance(item, str) else None
        if key not in by_key:
            fail(owner, name, value, f"{what} ({item!r} is not one)")
        found.append(by_key[key])
    if len(set(found)) != len(found):
        fail(owner, name, value, f"{what}, without repeated names")
    return found


def seeds(owner: str, value: Any) -> List[int]:
    """Seeds are always a list of distinct non-negative integers. A string (papermill's ``-p``
    passes lists as strings) gets an error that says how to pass a list."""
    allowed = "a non-empty list of distinct non-negative integers"
    if isinstance(value, str):
        fail(owner, "seeds", value, allowed + " (from papermill pass lists with -y, "
             "e.g. -y 'seeds: [0, 1, 2]', not -p)")
    if isinstance(value, (list, tuple)) and value and all(_is_int(s) and s >= 0 for s in value) \
            and len(set(int(s) for s in value)) == len(value):
        return [int(s) for s in value]
    fail(owner, "seeds", value, allowed)


# ------------------------------------------------------------------------ the command lines
def method_options_arg(text: str) -> dict:
    """The ``--method-options`` argument: a JSON object ``{method: {option: value}}`` (the
    config then checks its methods and options against the registry)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"method_options must be a JSON object "
                                         f"{{method: {{option: value}}}}; got {text!r}")
    return value


def run_cli(parser: argparse.ArgumentParser, build: Callable[[argparse.Namespace], Any],
            argv: Optional[Sequence[str]] = None) -> Any:
    """Every experiment's command line: parse ``argv`` (None: ``sys.argv[1:]``) with ``parser``
    and return ``build(args)`` (a record, when called from Python).

    Bad input ends it with one line on stderr, ``error: ...`` (the parameter, the value and what
    is allowed, as :func:`fail` words it), and status 2: argparse's own errors (an unknown
    option, ``--epochs x``), and the ValueError of a config check or the FileNotFoundError of
    missing data or records, raised anywhere in ``build``; a traceback would hide the line that
    matters under twenty that do not. Like argparse it raises ``SystemExit(2)``, so that a caller
    in Python sees the same as the shell. SIGINT (a KeyboardInterrupt) ends it with one line and
    status 130, or the ``status`` the interrupt carries (a sweep's SIGTERM: 143)."""
    def error(message: str) -> None:
        print(f"error: {message} (see {parser.prog} --help)", file=sys.stderr)
        raise SystemExit(2)
    parser.error = error                          # argparse calls self.error: one line, no usage
    args = parser.parse_args(argv)
    try:
        return build(args)
    except (ValueError, FileNotFoundError) as problem:
        print("error: " + str(problem).replace("\n", " "), file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as stop:
        print(f"stopped: {stop}" if str(stop) else "stopped (SIGINT)", file=sys.stderr)
        raise SystemExit(getattr(stop, "status", 130)) from None


# ------------------------------------------------------------------------ the device
def check_device(owner: str, device: Any) -> str:
    """"auto" (CUDA when present), "cpu", "cuda" or "cuda:N"; CUDA only where it is."""
    if not isinstance(device, str) or not (device in ("auto", "cpu", "cuda") or (
            device.startswith("cuda:") and device[5:].isdigit())):
        fail(owner, "device", device, "one of 'auto', 'cpu', 'cuda', 'cuda:N'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        fail(owner, "device", device, "'auto' or 'cpu' on a machine without CUDA")
    return device


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ------------------------------------------------------------------------ methods and options
def method_families() -> Dict[str, str]:
    """Every trainable method, ``{name: "straight-through" | "score"}``, read from the registry
    each time, so that an estimator registered later is trainable without editing anything."""
    families = {name: "straight-through" for name in reinmax.ESTIMATORS}
    families.update({name: "score" for name in reinmax.SCORE_ESTIMATORS})
    return families


def estimator(method: str, options: Optional[Dict[str, Any]] = None) -> Callable:
    """The registry's function for ``method`` with ``options`` bound."""
    options = options or {}
    if method_families().get(method) == "score":
        return reinmax.get_score_estimator(method, **options)
    return reinmax.get_estimator(method, **options)


def method_options(owner: str, value: Any, defaults: Optional[Dict[str, Dict[str, Any]]] = None
                   ) -> Dict[str, Dict[str, Any]]:
    """``{method: {option: value}}`` over ``defaults``, each method's options checked by the
    registry: looked up with them, and tried once on a tiny two-category problem, so that an
    unknown option or a bad value is an error now, not hours into a run."""
    families = method_families()
    if not isinstance(value, dict):
        fail(owner, "method_options", value, "a dict {method: {option: value}}, "
             "e.g. {'GR-MCK': {'K': 1000}}")
    merged = {method: dict(options) for method, options in (defaults or {}).items()}
    for method, options in value.items():
        if method not in families:
            fail(owner, "method_options", value, f"a dict keyed by method names from "
                 f"{list(families)} ({method!r} is not one)")
        if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
            fail(owner, f"method_options[{method!r}]", options, "a dict {option: value}")
        merged[method] = dict(merged.get(method, {}), **options)
    for method, options in merged.items():
        try:
            function = estimator(method, options)
            raw = reinmax.SCORE_ESTIMATORS.get(method) or reinmax.ESTIMATORS[method]
            inspect.signature(raw).bind_partial(**options)      # unknown options
            generator = torch.Generator().manual_seed(0)
            logits = torch.zeros(1, 2, dtype=torch.float64)
            if families[method] == "score":
                function(logits, lambda d: d[..., 0], generator=generator)
            else:
                function(logits, 1.0, generator=generator)
        except (TypeError, ValueError) as error:
            fail(owner, f"method_options[{method!r}]", options,
                 f"options that {method} accepts ({error})")
    return merged


# ------------------------------------------------------------------------ records
def fingerprint(fields: Dict[str, Any]) -> str:
    """A stable hash (sha256 of sorted JSON) of the fields that decide a record's numbers."""
    text = json.dumps(json_values(fields), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _device_type(device: Any) -> Optional[str]:
    return None if device is None else torch.device(device).type


def trained_on_ok(found: Dict[str, Any], device: str) -> bool:
    """Whether a finished record answers a config with this ``device``: any record does for
    "auto"; otherwise it must have been trained on that kind of device (its provenance says)."""
    trained_on = _device_type(found.get("provenance", {}).get("device"))
    return device == "auto" or trained_on == resolve_device(device).type


def differences(found: Dict[str, Any], expected: Dict[str, Any]) -> str:
    """``"key: found X, now Y; ..."`` for the keys whose values differ (as JSON has them)."""
    expected = json.loads(json.dumps(json_values(expected)))
    keys = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
    return "; ".join(f"{k}: found {found.get(k)!r}, now {expected.get(k)!r}" for k in keys)


def finished_record(path: PathLike, fingerprint: str, device: str, *,
                    fields: Optional[Dict[str, Any]] = None, stored_as: str = "config"
                    ) -> Optional[Dict[str, Any]]:
    """The finished record at ``path`` if there is one; an error if it holds another config (or,
    unless ``device`` is "auto", was trained on another kind of device). ``fields`` (stored in
    the record under ``stored_as``) only make the error say what differs."""
    path = Path(path)
    if not path.is_file():
        return None
    found = read_json(path)
    if found.get("fingerprint") != fingerprint:
        what = (differences(found.get(stored_as) or {}, fields) if fields is not None
                else f"fingerprint {found.get('fingerprint')}, now {fingerprint}")
        raise ValueError(f"{path} holds a finished run of other settings ({what}); "
                         "use another output folder or remove the file")
    if not trained_on_ok(found, device):
        trained_on = _device_type(found.get("provenance", {}).get("device"))
        raise ValueError(f"{path} was trained on {trained_on}, and device={device!r} asks for "
                         f"{resolve_device(device).type}; pass device='auto' to accept it, or "
                         "use another output folder")
    return found


def save_checkpoint(path: PathLike, payload: Dict[str, Any]) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``: a killed job
    leaves the previous checkpoint, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: PathLike, fingerprint: str, device: torch.device
                    ) -> Optional[Dict[str, Any]]:
    """The checkpoint at ``path`` (None if absent); an error if it belongs to other settings or
    another device type."""
    path = Path(path)
    if not path.is_file():
        return None
    # Loaded to the CPU: random generator states must be CPU tensors for set_state, and the
    # callers move weights and optimizer state to the device themselves.
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint or state.get("device_type") != device.type:
        raise ValueError(f"the checkpoint {path} belongs to other settings (fingerprint "
                         f"{state.get('fingerprint')} on {state.get('device_type')}; this run: "
                         f"{fingerprint} on {device.type}); remove it or use another path")
    return state


def record(experiment: str, config: Dict[str, Any], runs: Iterable[Dict[str, Any]],
           wall_s: float, provenance: Dict[str, Any], **extra: Any) -> Dict[str, Any]:
    """The one record shape (see the module's docstring); ``extra`` goes after the five fields."""
    return {"experiment": experiment, "config": config, "runs": list(runs), "wall_s": wall_s,
            "provenance": provenance, **extra}


def finish(experiment: str, config: Any, runs: Iterable[Dict[str, Any]], began: float,
           device: torch.device, **extra: Any) -> Dict[str, Any]:
    """The record of a whole call (``config`` a dataclass; wall time since ``began``, a
    ``time.perf_counter()`` value), written atomically to ``<config.out_dir>/results.json`` when
    the config has an output folder."""
    import dataclasses
    import time
    results = record(experiment, dataclasses.asdict(config), runs, time.perf_counter() - began,
                     provenance(device), **extra)
    if getattr(config, "out_dir", None) is not None:
        write_json(Path(config.out_dir) / "results.json", results)
    return results
