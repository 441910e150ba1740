"""Figures 8-10 (Appendix F.4) read from the sweep runner's records.

The records are ``results/polynomial/figure8_10/<panel>/p<p>_A_<method>_tau<tau>.json``, one per
cell of the named grid ``figure8-10`` (``python -m reinmax.sweep run --grid figure8-10 ...``):
setting A, 40 epochs x 200 steps, 10 seeds, for each (batch size, L) panel.

Appendix F.6's claim on them (ReinMax better in the hardest panel, REINFORCE and RODEO in the
easiest) is data in :mod:`reinmax.reporting.claims` (``figures8_10_hard``, ``figures8_10_easy``),
judged there by the book's one test policy.
"""
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import reinmax
from reinmax import paper, statistics
from reinmax.experiments import records as results

FOLDER = results.RESULTS_DIR / "polynomial" / "figure8_10"
SCORE_METHODS = tuple(method for method in paper.figure_methods("figures8_10")
                      if method not in reinmax.ESTIMATORS)
"""Appendix F.6's score-function methods."""
OUR_METHODS = ("RLOO", "DisARM")
"""The score-function methods this book adds to the paper's (labelled as ours in every plot)."""
PLOTTED = paper.table_methods("table2_mnist_vae_train_neg_elbo") + SCORE_METHODS + OUR_METHODS
"""The methods drawn in the figures: the five straight-through methods, the paper's score-function
methods and ours (every finished method is in the tables)."""

def read_cells(folder: Union[str, Path] = FOLDER) -> Dict[Tuple[int, int, float], Dict[str, Any]]:
    """``{(batch_size, L, p): {method: record}}`` of every finished cell in ``folder``."""
    cells: Dict[Tuple[int, int, float], Dict[str, Any]] = {}
    for path in sorted(Path(folder).glob("*/p*_A_*.json")):
        record = results.read_json(path)
        config = record["config"]
        key = (int(config["batch_size"]), int(config["L"]), float(config["p"]))
        cells.setdefault(key, {})[record["runs"][0]["method"]] = record
    return cells


def final_gaps(record: Dict[str, Any]) -> List[float]:
    """Per seed: the final exact expected loss minus the optimum."""
    return [row[-1] - record["optimum"] for row in record["runs"][0]["exact_loss"]]


def gap_table(cells: Dict[Tuple[int, int, float], Dict[str, Any]]) -> Dict[Tuple[int, int, float], Dict[str, Dict[str, float]]]:
    """``{(batch, L, p): {method: {"mean", "std", "n"}}}`` of the final gaps."""
    return {key: {method: {k: v for k, v in statistics.summary(final_gaps(r), ddof=1).items()
                           if k != "per_seed"}
                  for method, r in by_method.items()}
            for key, by_method in cells.items()}


def panel_record(by_method: Dict[str, Dict[str, Any]], methods: Sequence[str]) -> Optional[Dict[str, Any]]:
    """The cells of one (batch, L, p) assembled into one record of a multi-method run (the
    shape ``training.run`` returns: ``config``, ``runs``, ``optimum``), or None if a method of
    ``methods`` has no record. Each method's run is the same as in a run of all of them
    together: its sampling stream is keyed by the method, not by its companions."""
    if not all(m in by_method for m in methods):
        return None
    first = by_method[methods[0]]
    config = dict(first["config"], methods=list(methods))
    return {"config": config, "runs": [by_method[m]["runs"][0] for m in methods],
            "optimum": first["optimum"], "wall_s": sum(by_method[m]["wall_s"] for m in methods)}
