"""reinmax: discrete gradient estimators, exactly checked against the mathematics.

Straight-through family (functional, like ``torch.nn.functional.gumbel_softmax``)::

    y_hard, y_soft = reinmax.reinmax(logits, tau=1.3)      # ReinMax (Liu et al. 2023)
    y_hard, y_soft = reinmax.st(logits)                     # Straight-Through
    estimator = reinmax.get_estimator("GR-MCK", K=100)      # by the names the paper prints

REINFORCE family (needs f): :func:`reinforce`, :func:`rloo`; exact enumeration:
:mod:`reinmax.exact`. Every estimator is an entry of :mod:`reinmax.registry` (its name, family,
options, whether it draws noise beyond the sample, plot style); sampling primitives are in
:mod:`reinmax.sampling`. Binary variables as one logit: :mod:`reinmax.bernoulli`; a layer holding
the estimator and its temperature: :mod:`reinmax.nn`; temperature schedules: :mod:`reinmax.schedules`.
"""
from . import estimators, registry, sampling, score
# reinmax.bernoulli registers its estimators on import; nn and schedules are not in __all__ (a
# star import must not shadow torch.nn): use them as reinmax.nn, reinmax.schedules.
from . import bernoulli, nn, schedules
from . import binary_score  # registers the family "bernoulli-score" (REINFORCE ... RODEO)
from ._checks import set_validate_args, validate_args_enabled
# Each estimator module lists its public functions in __all__ (and registers them with
# reinmax.registry on import), so that adding an estimator to it changes nothing here.
from .estimators import *  # noqa: F401,F403
from .registry import get_estimator, get_score_estimator
from .score import *  # noqa: F401,F403

__version__ = "0.1.0"

ESTIMATORS = registry.EstimatorView("straight-through")
"""The straight-through family, name -> callable, read-only and read from the registry when used
(later registrations included): the names the paper prints, and two Figure 6 variants."""

SCORE_ESTIMATORS = registry.EstimatorView("score")
"""The REINFORCE family, which needs f itself, called as ``fn(logits, f, ...) -> (surrogate, values)``."""

BERNOULLI_ESTIMATORS = registry.EstimatorView("bernoulli")
"""The straight-through estimators for one logit per binary variable (:mod:`reinmax.bernoulli`),
name -> callable, called as ``fn(logits, tau, hard, *, sample=None, generator=None) -> (b_hard, p)``."""

__all__ = ["st", "reinmax", "stgs", "gumbel_rao", "gst", "reinmax_uniform_baseline",
           "reinmax_uniform_baseline_authors", "reinforce", "rloo", "ESTIMATORS",
           "SCORE_ESTIMATORS", "BERNOULLI_ESTIMATORS", "get_estimator", "get_score_estimator", "set_validate_args", "validate_args_enabled", "__version__"]
