"""Differentiable architecture search (Section 6.4, Table 4): GDAS on the NATS-Bench topology
cell, with STGS or ReinMax (or any registered straight-through estimator) choosing the operations.

``config``: the three arms and ``NASConfig`` (book scale by default, ``NASConfig.paper_scale()``
for NATS-Bench's protocol); ``training``: ``search``, ``retrain`` and ``run(config) -> record``;
``lookup``: a found cell's accuracies from NATS-Bench's benchmark file, when it is present;
``cli``: ``python -m reinmax.experiments.nas``. The model is ``reinmax.models.nas``.
"""
from .config import ARMS, DATASETS, NASConfig
from .training import (EXPERIMENT, cell_stem, load_split, random_cells, retrain, run, search,
                       search_split)
