"""Figure 2's temperature grid for the MNIST-VAE, run by the sweep runner: every (setting,
method, temperature) is one cell, one ``train_setting`` call of :mod:`reinmax.experiments.vae`;
:func:`reinmax.experiments.vae.temperature_table` and its neighbours read the combined record.
"""
import dataclasses
import time
from pathlib import Path
from typing import Sequence

import torch

from reinmax.experiments import layer
from reinmax.experiments.vae import TEMPERATURES, VAEConfig, check_temperatures
from .grid import Grid
from .run import run_sweep


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
    ``hyperparameters["tau"]`` says which; :func:`reinmax.experiments.vae.temperature_table` reads it.
    """
    if not isinstance(config, VAEConfig):
        raise TypeError(f"config must be a VAEConfig; got {type(config).__name__}")
    taus = check_temperatures(taus)
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
