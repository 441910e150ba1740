"""One sweep runner for every experiment: a grid is data (:class:`Grid`), its cells run on a
local process pool or a Ray cluster (:func:`run_sweep`), finished cells are never trained again,
and the paper's selection rules pick the hyper-parameters (:func:`select_by`,
:func:`beside_paper`). The command line is ``python -m reinmax.sweep --help``."""
from .grid import EXPERIMENTS, Cell, Grid, fields
from .run import (ENGINES, JOURNAL, SweepFailed, SweepInterrupted, execute, finished_cells,
                  run_sweep)
from .select import RULES, beside_paper, format_rows, format_selection, select, select_by
from .named import NAMED_GRIDS, named_grid

__all__ = ["EXPERIMENTS", "Cell", "Grid", "fields", "ENGINES", "JOURNAL", "SweepFailed",
           "SweepInterrupted", "execute", "finished_cells", "run_sweep", "RULES", "select", "select_by", "beside_paper",
           "format_rows", "format_selection", "NAMED_GRIDS", "named_grid"]
