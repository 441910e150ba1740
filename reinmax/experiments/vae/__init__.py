"""The categorical MNIST-VAE experiment (Section 6.3, 6.6, Appendix F.2/F.5; Tables 2, 8-11;
Figures 2, 4 and 6). The model is ``reinmax.models.vae``.

``config``: the paper's settings, Table 8 and the validated ``VAEConfig``; ``training``: one
setting's batched ensemble (``train_setting``) and ``run(config) -> record``; ``grid``: the readers of
Figure 2's temperature grid (which :mod:`reinmax.sweep.vae` runs); ``cli``: ``python -m
reinmax.experiments.vae``.
"""
from .config import (ALL_METHODS, CONFIGURATIONS, DEFAULT_METHOD_OPTIONS, FIGURE2_CONFIGS,
                     FIGURE6_METHODS, HYPERPARAMETER_KEYS, HYPERPARAMETERS_OF, METHODS,
                     NOISY_METHODS, OPTIMIZERS, PAPER_TEMPERATURE_SIDE, TABLE8, TEMPERATURES,
                     TEST_SIZE, TRAIN_SIZE, VAEConfig, methods)
from .training import (EXPERIMENT, estimator_for, settings_of, make_optimizer, final_table,
                       finished_setting, load_images, run, setting_fingerprint, train_setting)
from .grid import (check_temperatures, temperature_matrix,
                   temperature_preferences, temperature_table)
from reinmax import aliases


def __getattr__(name):
    # Names that moved to reinmax.sweep (see reinmax.aliases).
    return aliases.old_attribute(__name__, name)
