"""Figure 2 (Section 6.6): every method at every temperature of a grid, and the readers of its
record. The grid runs through the one sweep runner, :mod:`reinmax.sweep` (same records, same
files: ``<out_dir>/tau_<tau>/<setting>_<method>.json``)."""
import math
from typing import Dict, List, Tuple

import numpy as np

from reinmax import aliases
from reinmax.experiments import layer
from .config import ALL_METHODS, PAPER_TEMPERATURE_SIDE

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


def temperature_table(results: dict, metric: str = "train_neg_elbo"
                      ) -> Dict[Tuple[str, str, float], dict]:
    """``{(config, method, tau): {"mean", "std", "n", "per_seed"}}`` of the last epoch's
    ``metric`` ("train_neg_elbo" or "test_neg_elbo") in a :func:`reinmax.sweep.vae.temperature_grid` record."""
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
    """Where each (configuration, method) of a :func:`reinmax.sweep.vae.temperature_grid` record
    does best, a description (the verdict on Section 6.6's claim is
    :func:`reinmax.reporting.claims.evaluate`'s, over the seeds): ``best_tau`` (lowest mean
    ``metric``), ``best`` (that mean), ``best_low`` and ``best_high`` (the lowest mean over
    tau <= 1 and over tau >= 1; NaN if the grid has none there) and the side of tau = 1 the paper
    says the method prefers (``paper_side``, None for methods it does not discuss)."""
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
        preferences[key] = {"best_tau": best_tau, "best": by_tau[best_tau],
                            "best_low": min(low) if low else math.nan,
                            "best_high": min(high) if high else math.nan,
                            "paper_side": side}
    return preferences


def __getattr__(name):
    # Names that moved to reinmax.sweep (see reinmax.aliases).
    return aliases.old_attribute(__name__, name)
