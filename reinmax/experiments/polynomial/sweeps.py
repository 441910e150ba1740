"""Polynomial programming: the temperature sweep over Table 7's grid and the paper-scale
Figure 1 runs (moved here as they were; a later issue replaces them with one sweep runner)."""
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


def sweep_cell(config: PolynomialConfig, method: str, tau: float, *,
               out_dir: Union[str, Path, None] = None, progress: bool = True) -> Dict[str, Any]:
    """One cell of the sweep: train ``method`` at ``tau`` on ``config``; return its record.

    With ``out_dir`` the record is written there (atomically) and a later call returns it
    instead of training again, so an interrupted sweep resumes cell by cell.
    """
    one = dataclasses.replace(config, methods=[method], taus=float(tau))
    path = sweep_record_path(out_dir, config, method, tau) if out_dir is not None else None
    record = (layer.finished_record(path, one.fingerprint(), one.device, fields=one.as_dict())
              if path is not None else None)
    if record is not None:
        return record
    record = run(one, progress=progress)
    if path is not None:
        layer.write_json(path, record)
    return record


def _sweep_cells(configs: Sequence[PolynomialConfig], taus: Sequence[float]):
    return [(config, method, float(tau)) for config in configs for method in config.methods
            if not temperature_free(method) for tau in taus]


def _sweep_worker(cell) -> None:
    torch.set_num_threads(1)        # the workers share the cores; one thread each
    config, method, tau, out_dir = cell
    sweep_cell(config, method, tau, out_dir=out_dir, progress=False)


def temperature_sweep(config: PolynomialConfig, taus: Sequence[float] = TABLE7_TEMPERATURES,
                      progress: bool = True, *, out_dir: Union[str, Path, None] = None,
                      workers: int = 1) -> Dict[str, Any]:
    """Train each method of ``config`` at every temperature of ``taus``; choose by final exact loss.

    Returns ``{"taus": [...], "final": {method: {tau: mean final exact loss}}, "chosen":
    {method: tau}}`` plus the config and provenance. REINFORCE and RLOO have no temperature.
    With ``out_dir`` every (method, tau) cell keeps its record there and the sweep resumes
    after an interruption; ``workers`` > 1 trains that many cells at once in separate
    processes (one thread each; needs ``out_dir``).
    """
    return temperature_sweeps([config], taus, progress, out_dir=out_dir, workers=workers)[0]


def temperature_sweeps(configs: Sequence[PolynomialConfig],
                       taus: Sequence[float] = TABLE7_TEMPERATURES, progress: bool = True, *,
                       out_dir: Union[str, Path, None] = None, workers: int = 1
                       ) -> List[Dict[str, Any]]:
    """:func:`temperature_sweep` for several configs (e.g. each ``p``), sharing the workers."""
    layer.positive_int(_OWNER, "workers", workers)
    taus = [layer.positive_number(_OWNER, "taus", tau) for tau in taus]
    if workers > 1:
        if out_dir is None:
            layer.fail(_OWNER, "out_dir", out_dir, "a folder for the cells' records when workers > 1")
        import multiprocessing
        cells = [cell + (out_dir,) for cell in _sweep_cells(configs, taus)
                 if not sweep_record_path(out_dir, *cell).is_file()]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in progress_bar(pool.imap_unordered(_sweep_worker, cells), total=len(cells),
                                  desc="temperature sweep", disable=not progress):
                pass
    sweeps = []
    for config in configs:
        final: Dict[str, Dict[str, float]] = {}
        wall = 0.0
        trained_on = set()
        for _, method, tau in _sweep_cells([config], taus):
            record = sweep_cell(config, method, tau, out_dir=out_dir, progress=progress)
            final.setdefault(method, {})[str(tau)] = final_exact_losses(record)[method][0]
            wall += record["wall_s"]
            trained_on.add((record["provenance"]["git_commit"], record["provenance"]["platform"],
                            record["provenance"]["device"]))
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


