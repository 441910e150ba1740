"""Figures 8-10 read from the sweep's records: a panel assembled from single-method cells equals
the multi-method run; the committed cells read back in the grid's shape. (Appendix F.6's claim on
them is judged in reinmax.reporting.claims; tests/test_claims.py tests that.)"""

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


def test_the_committed_records_read_back_in_the_grids_shape():
    cells = F.read_cells()
    assert cells, "results/polynomial/figure8_10 holds no finished cell"
    for (b, L, p), by_method in cells.items():
        assert [b, L] in FIGURE8_10_PANELS
        for method, record in by_method.items():
            assert record["config"]["epochs"] == 40 and len(record["config"]["seeds"]) == 10
            assert len(F.final_gaps(record)) == 10
