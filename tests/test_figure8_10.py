"""Figures 8-10 read from the sweep's records, and Appendix F.6's claim tested on them: a panel
assembled from single-method cells equals the multi-method run; the claim's logic on records whose
outcome is known."""
import copy

import torch

from reinmax.experiments import polynomial as P
from reinmax.experiments.polynomial import figure8_10 as F
from reinmax.sweep.named import FIGURE8_10_PANELS

torch.set_num_threads(1)


def test_single_method_cells_assemble_into_the_multi_method_run():
    common = dict(p=2.0, L=6, batch_size=8, setting="A", steps=5, epochs=2, seeds=[0, 1],
                  method_options={"RODEO": {"num_samples": 2, "hidden": 4, "control_lr": 1e-2}})
    methods = ["ReinMax", "REINFORCE", "RODEO"]
    together = P.run(P.PolynomialConfig(methods=methods, taus={"ReinMax": 0.7}, **common),
                     progress=False)
    cells = {m: P.run(P.PolynomialConfig(methods=[m], taus=0.7 if m == "ReinMax" else 1.0,
                                         **common), progress=False) for m in methods}
    assembled = F.panel_record(cells, methods)
    for a, b in zip(assembled["runs"], together["runs"]):
        assert a["method"] == b["method"] and a["exact_loss"] == b["exact_loss"]
    assert assembled["optimum"] == together["optimum"]
    assert F.panel_record(cells, methods + ["RLOO"]) is None


def _record(batch, L, p, method, final_gaps):
    """A record in the runner's shape whose seeds end at these gaps above an optimum of 0.1."""
    return {"config": {"batch_size": batch, "L": L, "p": p, "epochs": 1, "steps": 1},
            "optimum": 0.1, "wall_s": 1.0,
            "runs": [{"method": method, "exact_loss": [[0.5, 0.1 + g] for g in final_gaps]}]}


def _cells(hard_reinmax, easy_reinmax, p=2.0):
    cells = {}
    for (b, L), reinmax in (((32, 128), hard_reinmax), ((256, 16), easy_reinmax)):
        cells[(b, L, p)] = {"ReinMax": _record(b, L, p, "ReinMax", reinmax),
                            "REINFORCE": _record(b, L, p, "REINFORCE", [0.010, 0.011, 0.012, 0.009]),
                            "RODEO": _record(b, L, p, "RODEO", [0.020, 0.021, 0.019, 0.020])}
    return cells


def test_the_claim_holds_where_the_records_say_so_and_not_elsewhere():
    low, high = [0.001, 0.0011, 0.0009, 0.001], [0.05, 0.051, 0.049, 0.05]
    holds = _cells(hard_reinmax=low, easy_reinmax=high)
    rows = F.claim_rows(holds)
    assert len(rows) == 4 and all(r["verdict"] == "supported" for r in rows)
    assert F.verdicts(rows, holds) == {2.0: {"hard": True, "easy": True}}
    reversed_ = _cells(hard_reinmax=high, easy_reinmax=low)
    rows = F.claim_rows(reversed_)
    assert all(r["verdict"] == "contradicted" for r in rows)
    assert F.verdicts(rows, reversed_) == {2.0: {"hard": False, "easy": False}}
    missing = copy.deepcopy(holds)
    del missing[(32, 128, 2.0)]["RODEO"]
    assert F.verdicts(F.claim_rows(missing), missing)[2.0] == {"hard": None, "easy": True}


def test_the_committed_records_read_back_in_the_grids_shape():
    cells = F.read_cells()
    assert cells, "results/polynomial/figure8_10 holds no finished cell"
    for (b, L, p), by_method in cells.items():
        assert [b, L] in FIGURE8_10_PANELS
        for method, record in by_method.items():
            assert record["config"]["epochs"] == 40 and len(record["config"]["seeds"]) == 10
            assert len(F.final_gaps(record)) == 10
    assert F.hardest_and_easiest([(32, 16), (32, 128), (256, 16), (256, 128)]) == ((32, 128), (256, 16))
