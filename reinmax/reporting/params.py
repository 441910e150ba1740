"""Checks for notebook parameters: papermill injects values, the cell after the parameters
cell checks them with these, and a bad value stops the run with a message naming it."""
import numbers


def require(ok: bool, name: str, value, allowed: str) -> None:
    """Raise ``ValueError`` naming the parameter, its value and what is allowed, unless ``ok``."""
    if not ok:
        raise ValueError(f"parameter {name}={value!r} is not allowed: {allowed}")


def is_int(value) -> bool:
    """An integer, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def reject_quoted_structures(**values) -> None:
    """Stop a run whose list or dict parameter arrived as text, and say how to pass it.

    papermill's ``-p NAME VALUE`` parses numbers, booleans and ``None`` and keeps anything else
    as a string, so ``-p seeds "[0, 1, 2]"`` gives the notebook the 9-character string
    ``'[0, 1, 2]'``; code that iterates over it then fails far from the cause. Lists and dicts
    take papermill's YAML form, ``-y "seeds: [0, 1, 2]"``. Call it in a check cell with every
    parameter that may hold a list or a dict: ``reject_quoted_structures(seeds=seeds, taus=taus)``.
    """
    for name, value in values.items():
        if isinstance(value, str) and value.strip()[:1] in ("[", "{", "("):
            kind = "dict" if value.strip().startswith("{") else "list"
            raise ValueError(
                f"parameter {name}={value!r} is a string that looks like a {kind}: papermill's "
                f"-p passes text. Pass lists and dicts in YAML form, e.g. "
                f"papermill IN.ipynb OUT.ipynb -y \"{name}: {value.strip()}\"")


def shared_run_folder(base, config, ignore=("methods", "gradient_methods", "out_dir")) -> str:
    """``<base>/<10 hex digits>``: one folder per training setup, shared by the notebooks of a
    chapter. The digits hash the config's fields except ``ignore`` (by default the method lists,
    so a notebook that trains some of another's methods with the same settings finds their
    finished records there and trains nothing twice). Different settings get different folders, so changing a parameter never
    meets a record made with other settings. The digits also hash the package's own source
    files, so after an edit to ``reinmax/`` a re-executed notebook trains afresh instead of
    showing records the old code made (finished records are reused only by notebooks run on the
    same code)."""
    import dataclasses
    import hashlib
    import json

    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config must be an experiment config (a dataclass); got {type(config).__name__}")
    from pathlib import Path

    fields = {key: value for key, value in dataclasses.asdict(config).items() if key not in ignore}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode())
    package = Path(__file__).resolve().parents[1]  # the whole package
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    digest = digest.hexdigest()
    return f"{str(base).rstrip('/')}/{digest[:10]}"
