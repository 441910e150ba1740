"""reinmax: discrete gradient estimators, exactly checked against the mathematics.

Straight-through family (functional, like ``torch.nn.functional.gumbel_softmax``)::

    y_hard, y_soft = reinmax.reinmax(logits, tau=1.3)      # ReinMax (Liu et al. 2023)
    y_hard, y_soft = reinmax.st(logits)                     # Straight-Through
    estimator = reinmax.get_estimator("GR-MCK", K=100)      # by the names the paper prints

REINFORCE family (needs f): :func:`reinforce`, :func:`rloo`; exact enumeration:
:mod:`reinmax.exact`.
"""
import functools
from typing import Callable, Dict

from ._checks import set_validate_args, validate_args_enabled
from .estimators import (gst, gumbel_rao, reinmax, reinmax_uniform_baseline,
                         reinmax_uniform_baseline_authors, st, stgs)
from .score import reinforce, rloo

__version__ = "0.1.0"


def _named(function, name, **fixed):
    """A partial with a readable name, so that registries and error messages stay legible."""
    bound = functools.partial(function, **fixed)
    functools.update_wrapper(bound, function)
    bound.__name__ = name
    return bound


ESTIMATORS: Dict[str, Callable] = {
    "ST": st,
    "ReinMax": reinmax,
    "STGS": stgs,
    "GR-MCK": gumbel_rao,
    "GST-1.0": _named(gst, "gst_1", gap=1.0),
    "GST-p": _named(gst, "gst_p", gap="p"),
    "ReinMax-1/n": reinmax_uniform_baseline,
    "ReinMax-1/n-authors": reinmax_uniform_baseline_authors,
}
"""The straight-through family, keyed by the names the paper prints (and two Figure 6 variants)."""

SCORE_ESTIMATORS: Dict[str, Callable] = {"REINFORCE": reinforce, "RLOO": rloo}
"""The REINFORCE family, which needs f itself, called as ``fn(logits, f, ...) -> (surrogate, values)``."""


def _lookup(registry: Dict[str, Callable], name: str, options) -> Callable:
    if not isinstance(name, str):
        raise TypeError(f"estimator name must be a string; got {name!r}")
    by_key = {key.lower(): key for key in registry}
    key = by_key.get(name.strip().lower())
    if key is None:
        raise ValueError(f"unknown estimator {name!r}; valid names: {', '.join(registry)}")
    function = registry[key]
    return functools.partial(function, **options) if options else function


def get_estimator(name: str, **options) -> Callable:
    """Look up a straight-through-family estimator by its paper name, case-insensitively.

    ``options`` are bound as keyword arguments, e.g. ``get_estimator("GR-MCK", K=100)``.
    """
    return _lookup(ESTIMATORS, name, options)


def get_score_estimator(name: str, **options) -> Callable:
    """Look up a REINFORCE-family estimator ("REINFORCE", "RLOO") by name."""
    return _lookup(SCORE_ESTIMATORS, name, options)


__all__ = ["st", "reinmax", "stgs", "gumbel_rao", "gst", "reinmax_uniform_baseline",
           "reinmax_uniform_baseline_authors", "reinforce", "rloo", "ESTIMATORS",
           "SCORE_ESTIMATORS", "get_estimator", "get_score_estimator", "set_validate_args",
           "validate_args_enabled", "__version__"]
