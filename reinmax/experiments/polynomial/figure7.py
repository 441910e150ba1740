"""Figure 7 (Appendix F.6): REINFORCE, RODEO and ReinMax on polynomial programming, settings A and
B, p in {1.5, 2, 3}; RLOO and DisARM added by this book. RODEO's settings for this problem are not
in the paper: :func:`rodeo_grid` picks them from a small stated grid.

Command line (what wrote ``results/polynomial/figure7*``; every step resumes where it stopped)::

    python -m reinmax.experiments.polynomial.figure7 grid --out results/polynomial/figure7_rodeo_grid.json
    python -m reinmax.experiments.polynomial.figure7 panels --setting A --grid results/polynomial/figure7_rodeo_grid.json \\
        --out-dir results/polynomial/figure7
"""
import dataclasses
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from reinmax import paper
from reinmax.experiments import records as results
from reinmax.experiments import layer
from .problem import PolynomialConfig, optimum
from .sweeps import chosen_temperatures
from .training import final_exact_losses, run

PAPER_METHODS = paper.figure_methods("figure7")
"""The methods of the paper's Figure 7."""
OUR_METHODS = ("RLOO", "DisARM")
"""Added by this book (labelled as ours in every plot)."""
METHODS = PAPER_METHODS + OUR_METHODS
P_VALUES = (1.5, 2.0, 3.0)
RODEO_HIDDEN = 16
"""RODEO's control network width here, part of the stated setting, not tuned: Shi et al.'s 100
costs several times as much per step on this problem (batch 256 x L = 128 points, each with 129
neighbours) and moved the grid cell's final gap by a few percent
(``benchmarks/rodeo_width.py``; ``results/polynomial/figure7_rodeo_width.json``)."""
RODEO_GRID = {"num_samples": (2, 3), "control_lr": (1e-3, 1e-2)}
"""The grid for RODEO: samples per group (256 draws make 128 pairs or 85 triples) and the Adam
learning rate of its control parts (the baselines' 1e-3, and ten times it)."""
SWEEP_FILE = results.RESULTS_DIR / "polynomial" / "temperature_sweep.json"


def reinmax_tau(p: float, sweep: Union[str, Path, None] = SWEEP_FILE) -> float:
    """ReinMax's temperature: Figure 1's choice at this p (its sweep, setting A), else 1.0."""
    if sweep is None or not Path(sweep).exists():
        return 1.0
    return float(chosen_temperatures(sweep, p, "A")["ReinMax"])


def rodeo_options(num_samples: int, control_lr: float) -> Dict[str, Any]:
    return {"num_samples": int(num_samples), "control_lr": float(control_lr), "hidden": RODEO_HIDDEN}


def rodeo_grid(out: Union[str, Path, None], *, p: float = 2.0, epochs: int = 5, steps: int = 200,
               seeds: Sequence[int] = (0,), L: int = 128, batch_size: int = 256,
               progress: bool = True) -> Dict[str, Any]:
    """Train RODEO at every point of :data:`RODEO_GRID` in settings A and B at ``p``; choose the
    point with the smallest sum over the two settings of the final exact loss minus the optimum.
    With ``out``, each cell's record is kept beside it (``<out>_cells/``) and reused."""
    cells = []
    cell_dir = Path(out).with_name(Path(out).stem + "_cells") if out is not None else None
    for k in RODEO_GRID["num_samples"]:
        for lr in RODEO_GRID["control_lr"]:
            gaps = {}
            for setting in ("A", "B"):
                config = PolynomialConfig(p=p, L=L, batch_size=batch_size, setting=setting,
                                          methods=["RODEO"], epochs=epochs, steps=steps,
                                          seeds=list(seeds), method_options={"RODEO": rodeo_options(k, lr)})
                path = cell_dir / f"K{k}_lr{lr:g}_{setting}.json" if cell_dir else None
                record = (layer.finished_record(path, config.fingerprint(), config.device,
                                                fields=config.as_dict()) if path else None)
                if record is None:
                    record = run(config, progress=progress)
                    if path is not None:
                        layer.write_json(path, record)
                gaps[setting] = final_exact_losses(record)["RODEO"][0] - optimum(config)
            cells.append({"num_samples": k, "control_lr": lr, "final_gap": gaps,
                          "score": gaps["A"] + gaps["B"]})
    best = min(cells, key=lambda c: c["score"])
    summary = {"grid": {k: list(v) for k, v in RODEO_GRID.items()}, "hidden": RODEO_HIDDEN,
               "p": p, "epochs": epochs, "steps": steps, "seeds": list(seeds), "cells": cells,
               "chosen": rodeo_options(best["num_samples"], best["control_lr"]),
               "rule": "smallest (final exact loss - optimum) summed over settings A and B",
               "provenance": layer.provenance()}
    if out is not None:
        layer.write_json(out, summary)
    return summary


def panel_config(p: float, setting: str, *, rodeo: Optional[Dict[str, Any]] = None,
                 methods: Sequence[str] = METHODS, epochs: int = 40, steps: int = 200,
                 seeds: Sequence[int] = tuple(range(10)), L: int = 128, batch_size: int = 256,
                 sweep: Union[str, Path, None] = SWEEP_FILE, device: str = "auto") -> PolynomialConfig:
    """One panel of Figure 7. REINFORCE as in the authors' script (no baseline, the whole batch);
    RLOO with the whole batch as one leave-one-out group; DisARM in 128 antithetic pairs; RODEO
    with ``rodeo`` (default: K = 2 at the baselines' control learning rate)."""
    options = {}
    if "RODEO" in methods:
        options["RODEO"] = dict(rodeo or rodeo_options(2, 1e-3))
    return PolynomialConfig(p=p, L=L, batch_size=batch_size, setting=setting, methods=list(methods),
                            taus={"ReinMax": reinmax_tau(p, sweep)} if "ReinMax" in methods else 1.0,
                            epochs=epochs, steps=steps, seeds=list(seeds), device=device,
                            method_options=options)


def panel_path(out_dir: Union[str, Path], p: float, setting: str) -> Path:
    return Path(out_dir) / f"p{p:g}_{setting}.json"


def run_panel(config: PolynomialConfig, out_dir: Union[str, Path, None] = None,
              progress: bool = True) -> Dict[str, Any]:
    """Run (or, with ``out_dir``, reuse or resume) one panel; returns its record."""
    if out_dir is None:
        return run(config, progress=progress)
    path = panel_path(out_dir, config.p, config.setting)
    record = layer.finished_record(path, config.fingerprint(), config.device, fields=config.as_dict())
    if record is None:
        record = run(config, progress=progress, checkpoint=path.with_suffix(".ckpt"))
        layer.write_json(path, record)
        path.with_suffix(".ckpt").unlink(missing_ok=True)
    return record


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.polynomial.figure7",
                                     description="Figure 7: RODEO's grid, then the panels.")
    parser.add_argument("what", choices=["grid", "panels"])
    parser.add_argument("--out", help="(grid) the grid's summary JSON")
    parser.add_argument("--grid", help="(panels) the grid's summary: RODEO's chosen options")
    parser.add_argument("--out-dir", help="(panels) folder of the panel records")
    parser.add_argument("--setting", nargs="+", default=["A", "B"])
    parser.add_argument("--p", type=float, nargs="+", default=list(P_VALUES))
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--threads", type=int, default=1)
    return layer.run_cli(parser, _run, argv)


def _run(args) -> None:
    import torch
    torch.set_num_threads(layer.positive_int("figure7", "threads", args.threads))
    if args.what == "grid":
        rodeo_grid(args.out, progress=False)
        return
    rodeo = results.read_json(args.grid)["chosen"] if args.grid else None
    # every panel's config checked before the first one trains
    configs = [panel_config(p, setting, rodeo=rodeo, epochs=args.epochs, steps=args.steps,
                            seeds=args.seeds) for setting in args.setting for p in args.p]
    for config in configs:
        run_panel(config, args.out_dir, progress=False)
        print(f"finished p={config.p:g} setting {config.setting}", flush=True)


if __name__ == "__main__":
    main()
