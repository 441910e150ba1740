"""Figures 8-10 (Appendix F.4) read from the sweep runner's records, and Appendix F.6's claim
tested on them.

The records are ``results/polynomial/figure8_10/<panel>/p<p>_A_<method>_tau<tau>.json``, one per
cell of the named grid ``figure8-10`` (``python -m reinmax.sweep run --grid figure8-10 ...``):
setting A, 40 epochs x 200 steps, 10 seeds, for each (batch size, L) panel.

Appendix F.6 says ReinMax does better in harder settings ("smaller batch size, more latent
variables") and REINFORCE and RODEO in simpler ones ("larger batch size, fewer latent
variables"). Here that is two families of one-sided claims on the per-seed final gaps to the
optimum, tested together (Welch, Holm): in the hardest panel (smallest batch, most variables)
ReinMax ends below REINFORCE and below RODEO; in the easiest (largest batch, fewest variables)
REINFORCE or RODEO ends below ReinMax.
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

Panel = Tuple[int, int]


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


def hardest_and_easiest(panels: Sequence[Panel]) -> Tuple[Panel, Panel]:
    """The hardest panel (smallest batch, then most variables) and the easiest (largest batch,
    then fewest variables)."""
    hardest = min(panels, key=lambda bl: (bl[0], -bl[1]))
    easiest = max(panels, key=lambda bl: (bl[0], -bl[1]))
    return hardest, easiest


def claim_rows(cells: Dict[Tuple[int, int, float], Dict[str, Any]], alpha: float = 0.05
               ) -> List[Dict[str, Any]]:
    """Appendix F.6's claim as one-sided comparisons, checked together (Welch, Holm): for each p,
    "ReinMax < M" in the hardest panel and "M < ReinMax" in the easiest, for M in
    :data:`SCORE_METHODS`; a comparison missing a record is left out."""
    panels = sorted({(b, L) for b, L, _ in cells})
    if not panels:
        return []
    hard, easy = hardest_and_easiest(panels)
    claims = []
    for p in sorted({p for *_, p in cells}):
        for method in SCORE_METHODS:
            for (b, L), first, second in ((hard, "ReinMax", method), (easy, method, "ReinMax")):
                found = cells.get((b, L, p), {})
                if first in found and second in found:
                    claims.append((f"p={p:g} (batch {b}, L={L}): {first} < {second}",
                                   final_gaps(found[first]), final_gaps(found[second])))
    return statistics.check_claims(claims, alpha=alpha) if claims else []


def verdicts(rows: List[Dict[str, Any]], cells) -> Dict[float, Dict[str, Optional[bool]]]:
    """Per p: ``{"hard": ReinMax below both score methods (supported), "easy": a score method
    below ReinMax (supported)}``; None where a needed record is missing."""
    panels = sorted({(b, L) for b, L, _ in cells})
    if not panels:
        return {}
    hard, easy = hardest_and_easiest(panels)
    out: Dict[float, Dict[str, Optional[bool]]] = {}
    by_claim = {row["claim"]: row for row in rows}
    for p in sorted({p for *_, p in cells}):
        hard_rows = [by_claim.get(f"p={p:g} (batch {hard[0]}, L={hard[1]}): ReinMax < {m}")
                     for m in SCORE_METHODS]
        easy_rows = [by_claim.get(f"p={p:g} (batch {easy[0]}, L={easy[1]}): {m} < ReinMax")
                     for m in SCORE_METHODS]
        out[p] = {"hard": None if None in hard_rows else all(r["supported"] for r in hard_rows),
                  "easy": None if None in easy_rows else any(r["supported"] for r in easy_rows)}
    return out



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
