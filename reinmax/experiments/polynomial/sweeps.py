"""Polynomial programming: the temperature sweep over Table 7's grid and the paper-scale
Figure 1 runs. The sweep's cells run through the one sweep runner, :mod:`reinmax.sweep` (these
functions keep their signatures and records: a cell's record file is where it always was)."""
import dataclasses
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from reinmax.experiments import layer, progress_bar
from .problem import TABLE7_TEMPERATURES, PolynomialConfig, optimum, temperature_free
from .training import final_exact_losses, run

_OWNER = "temperature_sweep"


def sweep_record_path(out_dir: Union[str, Path], config: PolynomialConfig, method: str,
                      tau: float) -> Path:
    """Where the sweep keeps the record of ``method`` at ``tau`` on ``config``'s problem."""
    return Path(out_dir) / f"p{config.p:g}_{config.setting}_{method}_tau{float(tau):g}.json"


def _grid(config: PolynomialConfig, methods: Sequence[str], taus: Sequence[float]):
    """The sweep runner's grid of ``methods`` x ``taus`` on ``config``'s problem."""
    from reinmax.sweep import Grid
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
    from reinmax.sweep import run_sweep
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
    from reinmax.sweep import run_sweep
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


# ------------------------------------------------------------------------ paper-scale runs
def run_figure(configs: Sequence[PolynomialConfig], path: Union[str, Path], *,
               progress: bool = True, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run several configs (e.g. Figure 1's three values of p) into one results file.

    Each config checkpoints to ``<path>.<index>.ckpt`` so that an interrupted job, started
    again with the same arguments, resumes where it stopped. The file at ``path`` holds
    ``{"runs": [record, ...], **extra}`` and is rewritten (atomically) after every config; a config
    whose record (same fingerprint) is already in that file is not trained again.
    """
    path = Path(path)
    # Configs already in the file (same fingerprint) are kept, not trained again.
    earlier = layer.read_json(path)["runs"] if path.is_file() else []
    record: Dict[str, Any] = {"runs": [], **(extra or {})}
    for index, config in enumerate(configs):
        done = [r for r in earlier if r.get("fingerprint") == config.fingerprint()
                and layer.trained_on_ok(r, config.device)]
        if done:
            record["runs"].append(done[0])
            continue
        checkpoint = path.with_name(f"{path.name}.{index}.ckpt")
        record["runs"].append(run(config, progress=progress, checkpoint=checkpoint))
        layer.write_json(path, record)
    for index in range(len(configs)):
        path.with_name(f"{path.name}.{index}.ckpt").unlink(missing_ok=True)
    return record


def chosen_temperatures(sweep_file: Union[str, Path], p: float, setting: str = "A"
                        ) -> Dict[str, float]:
    """The temperatures a sweep file chose for problem ``(p, setting)``."""
    sweeps = layer.read_json(sweep_file)["sweeps"]
    for sweep in sweeps:
        if sweep["config"]["p"] == float(p) and sweep["config"]["setting"] == setting:
            return dict(sweep["chosen"])
    swept = [(s["config"]["p"], s["config"]["setting"]) for s in sweeps]
    raise ValueError(f"{sweep_file} has no sweep for p={p:g}, setting={setting!r}; "
                     f"it has (p, setting) = {swept}")


