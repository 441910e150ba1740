"""Table 5: the categorical MNIST-VAE with 32 variables of 64 categories ("64x32" in this
project's C x L names), batch 200, LeakyReLU, against RLOO (Section 6.5, Appendix F.2).

A setting of the categorical VAE of ``reinmax.experiments.vae`` (the same model,
``reinmax.models.vae.CategoricalVAE``, the same data, optimizers and record layer), with its own
loop because two of its methods, RLOO and DisARM-Tree, are of the score family: ``config`` holds the setting and
its hyperparameters, ``training`` ``run(config) -> record``, ``cli`` ``python -m
reinmax.experiments.vae_64x32``.
"""
from .config import (CATEGORIES, LATENTS, METHODS, PAPER_ONLY, SCALES, SCORE_METHODS,
                     TABLE5_HYPERPARAMETERS, VAE64x32Config, methods)
from .early import mean_rectification, radam_rectification
from .training import (EXPERIMENT, final_table, ranking_at, run, score_neg_elbo, train_setting,
                       values_at)
