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
