"""The 2x200 Bernoulli VAE against the REINFORCE family (Section 6.5; Table 6, Figure 5).

``config``: the two protocols (Shi et al.'s ``baselines``, the authors' ``reinmax-script``), the
scales and ``BernoulliVAEConfig``; ``model``: the VAE; ``estimators``: the straight-through and
score-family training losses; ``training``: ``run(config) -> record``; ``cli``:
``python -m reinmax.experiments.bernoulli_vae``.
"""
from .config import DATASETS, PROTOCOLS, SCALES, SPLIT_SIZES, BernoulliVAEConfig
from .estimators import STRAIGHT_THROUGH, SCORE_NAMES, methods, family, build_score
# The model lives with the other models; named here as it always was.
from reinmax.models.bernoulli_vae import BernoulliVAE, iwae_bound
from .training import (EXPERIMENT, binarize, data_available, evaluate, final_table, finished_run,
                       load_splits, run, train_run)
