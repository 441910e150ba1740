"""Polynomial programming's temperature sweep over Table 7's grid, run by the sweep runner.

The cells are the experiment's own runs (:func:`reinmax.experiments.polynomial.run`); a cell's
record file is ``reinmax.experiments.polynomial.sweep_record_path``, where it always was, and
:func:`reinmax.experiments.polynomial.chosen_temperatures` reads what a sweep chose.
"""
import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import torch

from reinmax.experiments import layer
from reinmax.experiments.polynomial import (TABLE7_TEMPERATURES, PolynomialConfig, final_exact_losses,
                                            optimum, temperature_free)
from .grid import Grid
from .run import run_sweep

_OWNER = "temperature_sweep"


def _grid(config: PolynomialConfig, methods: Sequence[str], taus: Sequence[float]):
    """The sweep runner's grid of ``methods`` x ``taus`` on ``config``'s problem."""
    fixed = {k: v for k, v in config.as_dict().items() if k not in ("methods", "taus")}
    return Grid("polynomial", {"method": list(methods), "tau": [float(t) for t in taus]}, fixed)


def _threads(workers: int) -> int:
    # One process: the caller's threads, as before the runner; several: one thread each.
    return torch.get_num_threads() if workers == 1 else 1


def sweep_cell(config: PolynomialConfig, method: str, tau: float, *,
               out_dir: Union[str, Path, None] = None, progress: bool = True) -> Dict[str, Any]:
    """One cell of the sweep: train ``method`` at ``tau`` on ``config``'s problem; return its
    record (one cell of :mod:`reinmax.sweep`'s runner).

    With ``out_dir`` the record is written there (atomically) and a later call returns it
    instead of training again, so an interrupted sweep resumes cell by cell.
    """
    ((_, record),) = run_sweep(_grid(config, [method], [tau]), out_dir, progress=False,
                               threads=_threads(1))
    return record


def temperature_sweep(config: PolynomialConfig, taus: Sequence[float] = TABLE7_TEMPERATURES,
                      progress: bool = True, *, out_dir: Union[str, Path, None] = None,
                      workers: int = 1) -> Dict[str, Any]:
    """Train each method of ``config`` at every temperature of ``taus``; choose by final exact loss.

    Returns ``{"taus": [...], "final": {method: {tau: mean final exact loss}}, "chosen":
    {method: tau}}`` plus the config and provenance. REINFORCE and RLOO have no temperature.
    With ``out_dir`` every (method, tau) cell keeps its record there and the sweep resumes
    after an interruption; ``workers`` > 1 trains that many cells at once in separate
    processes (one thread each).
    """
    return temperature_sweeps([config], taus, progress, out_dir=out_dir, workers=workers)[0]


def temperature_sweeps(configs: Sequence[PolynomialConfig],
                       taus: Sequence[float] = TABLE7_TEMPERATURES, progress: bool = True, *,
                       out_dir: Union[str, Path, None] = None, workers: int = 1
                       ) -> List[Dict[str, Any]]:
    """:func:`temperature_sweep` for several configs (e.g. each ``p``): one run of the sweep
    runner (:func:`reinmax.sweep.run_sweep`) over all their cells, sharing the workers."""
    layer.positive_int(_OWNER, "workers", workers)
    taus = [layer.positive_number(_OWNER, "taus", tau) for tau in taus]
    swept = [[m for m in config.methods if not temperature_free(m)] for config in configs]
    grids = [_grid(config, methods, taus) for config, methods in zip(configs, swept) if methods]
    results = run_sweep(grids, out_dir, workers=workers, threads=_threads(workers),
                        progress=progress) if grids else []
    records = {cell.fingerprint: record for cell, record in results}
    sweeps = []
    for config, methods in zip(configs, swept):
        final: Dict[str, Dict[str, float]] = {}
        wall = 0.0
        trained_on = set()
        for method in methods:
            for tau in taus:
                one = dataclasses.replace(config, methods=[method], taus=tau)
                record = records[one.fingerprint()]
                final.setdefault(method, {})[str(tau)] = final_exact_losses(record)[method][0]
                wall += record["wall_s"]
                trained_on.add((record["provenance"]["git_commit"],
                                record["provenance"]["platform"], record["provenance"]["device"]))
        chosen = {method: float(min(values, key=values.get)) for method, values in final.items()}
        sweeps.append({
            "experiment": "polynomial programming temperature sweep " + (
                "(Table 7 grid)" if tuple(taus) == TABLE7_TEMPERATURES else "(temperatures given)"),
            "config": config.as_dict(), "taus": taus, "final": final, "chosen": chosen,
            "optimum": optimum(config), "provenance": layer.provenance(),
            "cells_trained_by": [dict(zip(("git_commit", "platform", "device"), t))
                                 for t in sorted(trained_on, key=str)],
            "wall_s": wall})
    return sweeps

