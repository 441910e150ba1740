"""reinmax: discrete gradient estimators, exactly checked against the mathematics.

Straight-through family (functional, like ``torch.nn.functional.gumbel_softmax``)::

    y_hard, y_soft = reinmax.reinmax(logits, tau=1.3)      # ReinMax (Liu et al. 2023)
    y_hard, y_soft = reinmax.st(logits)                     # Straight-Through
    estimator = reinmax.get_estimator("GR-MCK", K=100)      # by the names the paper prints

The package in layers, each importing only the layers above it in this list:

* :mod:`reinmax.estimators`: the estimator library (torch only), one module per family
  (``categorical``, ``two_category``, ``bernoulli``, ``categorical_score``, ``bernoulli_score``,
  ``disarm_tree``) with ``sampling``, ``checks``, ``registry``, ``nn`` and ``schedules``;
* :mod:`reinmax.statistics` and :mod:`reinmax.paper`: Welch and Holm; the paper's numbers;
* :mod:`reinmax.theory`: exact enumeration, bias, the ODE view, the symbolic derivations, the
  paper's algorithms as printed;
* :mod:`reinmax.data`, :mod:`reinmax.models`, :mod:`reinmax.experiments` (one ``run(config)``
  per experiment, with ``records``), :mod:`reinmax.sweep` (grids over the experiments);
* :mod:`reinmax.reporting`: what notebooks use to show results (tables, figures, parameters).

The flat paths of earlier versions (``reinmax.exact``, ``reinmax.registry``, ``reinmax.results``,
...) still import, as the same modules (:mod:`reinmax.aliases`).
"""
from . import aliases

aliases.install()

from . import estimators  # noqa: E402  (registers every family on import)
from .estimators import registry  # noqa: E402,F401
from .estimators.checks import set_validate_args, validate_args_enabled  # noqa: E402
# Each estimator module lists its public functions in __all__ (and registers them with the
# registry on import), so that adding an estimator to it changes nothing here.
from .estimators.categorical import *  # noqa: F401,F403,E402
from .estimators.categorical_score import *  # noqa: F401,F403,E402
from .estimators.registry import get_estimator, get_score_estimator  # noqa: E402

__version__ = "0.1.0"

ESTIMATORS = registry.EstimatorView("straight-through")
"""The straight-through family, name -> callable, read-only and read from the registry when used
(later registrations included): the names the paper prints, and two Figure 6 variants."""

SCORE_ESTIMATORS = registry.EstimatorView("score")
"""The REINFORCE family, which needs f itself, called as ``fn(logits, f, ...) -> (surrogate, values)``."""

BERNOULLI_ESTIMATORS = registry.EstimatorView("bernoulli")
"""The straight-through estimators for one logit per binary variable
(:mod:`reinmax.estimators.bernoulli`), name -> callable, called as
``fn(logits, tau, hard, *, sample=None, generator=None) -> (b_hard, p)``."""

__all__ = ["st", "reinmax", "stgs", "gumbel_rao", "gst", "reinmax_uniform_baseline",
           "reinmax_uniform_baseline_authors", "reinforce", "rloo", "ESTIMATORS",
           "SCORE_ESTIMATORS", "BERNOULLI_ESTIMATORS", "get_estimator", "get_score_estimator",
           "set_validate_args", "validate_args_enabled", "__version__"]


def __getattr__(name):
    # reinmax.nn, reinmax.exact, ...: the modules that moved into the layers (reinmax.aliases).
    return aliases.old_attribute(__name__, name)
