"""The ListOps experiment (Section 6.2; Table 1, Figure 3): unsupervised parsing with a Gumbel
Tree-LSTM. The model is ``reinmax.models.treelstm``, the data ``reinmax.data.listops``.

``config``: Table 8's ListOps row, the parameter sets (paper, study, book, smoke) and the
validated ``ListOpsConfig``; ``training``: ``run(config) -> record`` and its readers;
``cli``: ``python -m reinmax.experiments.listops``.
"""
from .config import (DEFAULT_METHOD_OPTIONS, METHODS, PARAMETER_SETS, TABLE8, ListOpsConfig)
from .training import (EXPERIMENT, build_model, curves, evaluate, final_table, load_data, pad, read_record,
                       run, train_run, training_batches, tree_agreement)
from . import analysis
