"""The estimator library: torch only; it knows no data set, experiment, grid or plot.

One module per family, each registering its estimators with :mod:`.registry` on import:

* :mod:`.categorical`: the straight-through family over categories (ST, ReinMax, STGS, GR-MCK,
  GST, the 1/n forms), ``fn(logits, tau, ...) -> (one-hot sample, softmax)``;
* :mod:`.two_category`: the same estimators' kernels for two categories (same samples, same
  gradients, faster), which :mod:`.categorical` dispatches to;
* :mod:`.bernoulli`: the straight-through family for one logit per binary variable;
* :mod:`.categorical_score`: REINFORCE and RLOO, which need f;
* :mod:`.bernoulli_score`: DisARM, ARMS, Double CV, RELAX, RODEO (learned parts as modules);
* :mod:`.disarm_tree`: DisARM-Tree for categorical variables (Table 5);
* after ReinMax: :mod:`.quadrature` (rules on eq. 6's segment integral, which take f),
  :mod:`.rao` (ReinMax-Rao, ReinMax-CV), :mod:`.redge` (ReDGE, ReinDGE). Decoupled ST-GS
  (Shah et al. 2024: separate forward and backward temperatures) is absent on purpose: only its
  abstract could be read, and whether its forward temperature acts on a hard or a relaxed sample,
  and how the two temperatures enter the backward, are not stated there; a guess would be an
  estimator of ours under their name. STGS with ``tau`` already is the backward-temperature half.

Beside them: :mod:`.sampling` (draws, inverse CDFs), :mod:`.checks` (input checks),
:mod:`.transforms` (inside vmap or compile?), :mod:`.registry` (the one list of estimators),
:mod:`.nn` (a layer holding an estimator and its temperature) and :mod:`.schedules`.
"""
from . import checks, registry, sampling, transforms  # noqa: F401
# The families in the order they register (the registry lists names in that order).
from . import categorical, categorical_score, bernoulli, bernoulli_score, disarm_tree  # noqa: F401
from . import quadrature, rao, redge  # noqa: F401
from . import nn, schedules, two_category  # noqa: F401
from .categorical import *  # noqa: F401,F403
from .categorical import GUMBEL_RAO_KERNEL, gumbel_rao_kernel  # noqa: F401  (GR-MCK's kernel switch)

__all__ = list(categorical.__all__)
