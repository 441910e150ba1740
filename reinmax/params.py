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
