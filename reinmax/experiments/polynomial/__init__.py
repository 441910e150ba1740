"""Polynomial programming (Section 6.1, Appendix F.4 and F.6; Figures 1 and 7-10).

``problem``: the config and the problem (target, loss, exact expected loss, initial theta);
``training``: the batched trainer and ``run(config) -> record``, with summaries of a record;
``sweeps``: the temperature sweep's records and the paper-scale Figure 1 runs (the sweep itself is
:mod:`reinmax.sweep.polynomial`); ``cli``: the command line
(``python -m reinmax.experiments.polynomial``).
"""
from .problem import (BINARY_CONTROL_LR, binary_score_methods, DEFAULT_METHOD_OPTIONS, FIGURE1_METHODS, INIT_RANGE, LEARNING_RATE, SETTINGS,
                      TABLE7_TEMPERATURES, PolynomialConfig, exact_loss, initial_theta, methods,
                      optimum, polynomial_loss, target, temperature_free)
from .training import (EXPERIMENT, BatchedAdam, Interrupted, epochs_to_reach, final_exact_losses,
                       method_run, method_step, run, train_method)
from .sweeps import chosen_temperatures, run_figure, sweep_record_path
from reinmax.experiments.layer import resolve_device
from reinmax import aliases


def __getattr__(name):
    # Names that moved to reinmax.sweep (see reinmax.aliases).
    return aliases.old_attribute(__name__, name)
