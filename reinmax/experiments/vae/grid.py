"""Figure 2 (Section 6.6): every method at every temperature of a grid, and the readers of its
record. The grid runs through the one sweep runner, :mod:`reinmax.sweep` (same records, same
files: ``<out_dir>/tau_<tau>/<setting>_<method>.json``)."""
import dataclasses
import math
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from reinmax.experiments import layer
from .config import ALL_METHODS, PAPER_TEMPERATURE_SIDE, TEMPERATURES, VAEConfig

# ------------------------------------------------------------------------- Figure 2
def check_temperatures(taus) -> Tuple[float, ...]:
    """``taus`` as a tuple of distinct positive finite floats, or a ValueError that names the
    parameter, the value and what is allowed."""
    allowed = "a non-empty list of distinct positive finite numbers, e.g. [0.1, 0.5, 1, 2]"
    if isinstance(taus, str):
        layer.fail("temperature_grid", "taus", taus, allowed + " (from papermill pass lists "
                   "with -y, e.g. -y 'taus: [0.5, 1.0]', not -p)")
    if not isinstance(taus, (list, tuple)) or not taus:
        layer.fail("temperature_grid", "taus", taus, allowed)
    bad = [t for t in taus if isinstance(t, bool) or not isinstance(t, (int, float, np.floating,
                                                                        np.integer))
           or not math.isfinite(t) or t <= 0]
    if bad:
        layer.fail("temperature_grid", "taus", taus, f"{allowed} (not allowed: {bad!r})")
    taus = tuple(float(t) for t in taus)
    if len(set(taus)) != len(taus):
        layer.fail("temperature_grid", "taus", taus, allowed + " (these repeat one)")
    return taus


def temperature_grid(config: VAEConfig, taus: Sequence[float] = TEMPERATURES, *,
                     progress: bool = True) -> dict:
    """Figure 2: every (configuration, method) of ``config`` trained at every temperature of
    ``taus``, everything else as ``config`` says (Table 8's optimizer and learning rate, and any
    ``overrides`` other than ``tau``, which the grid replaces).

    Each (configuration, method, temperature) is one cell of :func:`reinmax.sweep.run_sweep`
    (one ``train_setting`` call with ``overrides={method: {"tau": tau}}``), so with ``out_dir``
    set every cell checkpoints and resumes, and its record is kept under
    ``<out_dir>/tau_<tau>/``; the combined record is written to
    ``<out_dir>/temperature_grid.json``. Returns ``{"experiment", "taus", "config", "runs",
    "wall_s", "provenance"}`` with one record per (configuration, method, temperature), whose
    ``hyperparameters["tau"]`` says which; :func:`temperature_table` reads it.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig; got {type(config).__name__}")
    taus = check_temperatures(taus)
    from reinmax.sweep import Grid, run_sweep
    began = time.perf_counter()
    device = config.resolved_device()
    # One cell per (configuration, method, temperature): the sweep runner's grid. Cells of a
    # method keep that method's other overrides (optimizer, lr); the temperature replaces tau.
    fixed = {k: v for k, v in dataclasses.asdict(config).items()
             if k not in ("configs", "methods", "out_dir", "keep_checkpoints")}
    grid = Grid("vae", {"config": list(config.configs), "method": list(config.methods),
                        "tau": list(taus)}, fixed)
    results = run_sweep(grid, config.out_dir, progress=progress, threads=torch.get_num_threads())
    runs = [record for _, record in results]
    results = {"experiment": "mnist_vae_temperature_grid", "taus": list(taus),
               "config": dataclasses.asdict(config), "runs": runs,
               "wall_s": time.perf_counter() - began, "provenance": layer.provenance(device)}
    if config.out_dir is not None:
        layer.write_json(Path(config.out_dir) / "temperature_grid.json", results)
    return results


def temperature_table(results: dict, metric: str = "train_neg_elbo"
                      ) -> Dict[Tuple[str, str, float], dict]:
    """``{(config, method, tau): {"mean", "std", "n", "per_seed"}}`` of the last epoch's
    ``metric`` ("train_neg_elbo" or "test_neg_elbo") in a :func:`temperature_grid` record."""
    if metric not in ("train_neg_elbo", "test_neg_elbo"):
        raise ValueError(f"metric must be 'train_neg_elbo' or 'test_neg_elbo'; got {metric!r}")
    return {(r["config"], r["method"], float(r["hyperparameters"]["tau"])): r["final"][metric]
            for r in results["runs"]}


def temperature_matrix(results: dict, config: str, metric: str = "train_neg_elbo"
                       ) -> Tuple[List[str], List[float], np.ndarray]:
    """One Figure 2 panel: ``(methods, taus, values)`` with ``values[i, j]`` the mean over seeds
    of ``metric`` for ``methods[i]`` at ``taus[j]`` (NaN where that run is missing)."""
    table = temperature_table(results, metric)
    configs = sorted({c for c, _, _ in table})
    if config not in configs:
        raise ValueError(f"config {config!r} is not in this temperature grid; it has: "
                         f"{', '.join(configs)}")
    methods = [m for m in ALL_METHODS if any(c == config and mm == m for c, mm, _ in table)]
    taus = sorted({t for c, _, t in table if c == config})
    values = np.full((len(methods), len(taus)), np.nan)
    for i, method in enumerate(methods):
        for j, tau in enumerate(taus):
            entry = table.get((config, method, tau))
            if entry is not None:
                values[i, j] = entry["mean"]
    return methods, taus, values


def temperature_preferences(results: dict, metric: str = "train_neg_elbo"
                            ) -> Dict[Tuple[str, str], dict]:
    """Section 6.6's claim per (configuration, method) of a :func:`temperature_grid` record:
    ``best_tau`` (lowest mean ``metric``), ``best`` (that mean), ``best_low`` and ``best_high``
    (the lowest mean over tau <= 1 and over tau >= 1; NaN if the grid has none there), the side of
    tau = 1 the paper says the method prefers (``paper_side``, None for methods it does not
    discuss) and whether ``best_tau`` is on it (``agrees``; None without a ``paper_side``)."""
    table = temperature_table(results, metric)
    found: Dict[Tuple[str, str], dict] = {}
    for (config, method, tau), entry in table.items():
        found.setdefault((config, method), {})[tau] = entry["mean"]
    preferences = {}
    for key, by_tau in found.items():
        best_tau = min(by_tau, key=by_tau.get)
        low = [v for t, v in by_tau.items() if t <= 1]
        high = [v for t, v in by_tau.items() if t >= 1]
        side = PAPER_TEMPERATURE_SIDE.get(key[1])
        agrees = None if side is None else (best_tau <= 1 if side == "tau <= 1" else best_tau >= 1)
        preferences[key] = {"best_tau": best_tau, "best": by_tau[best_tau],
                            "best_low": min(low) if low else math.nan,
                            "best_high": min(high) if high else math.nan,
                            "paper_side": side, "agrees": agrees}
    return preferences
