"""RODEO's control network width in Figure 7's polynomial runs: 16 hidden units (ours) or 100
(Shi et al.'s), its cost per training step and, optionally, its effect on the result.

    .venv/bin/python benchmarks/rodeo_width.py [--steps 40] [--rounds 3] [--quality] \
        [--out results/polynomial/figure7_rodeo_width.json]

1. Cost: RODEO at the grid's chosen setting (``figure7_rodeo_grid.json``; K = 2 and control
   learning rate 1e-2 if absent) on Figure 7's problem (p = 2, L = 128, batch 256, one seed),
   ``steps`` training steps per timing at each width, in ``rounds`` interleaved rounds; CPU time
   of this process (``time.process_time``: on a shared machine the waiting for a core is left
   out) and wall time; the median ratio 100 / 16.
2. ``--quality``: the grid's own cell (p = 2, 5 epochs of 200 steps, settings A and B) at both
   widths with seeds 0-2: the final gap to the optimum, mean and spread over the seeds, beside
   the committed 16-unit grid cell (``figure7_rodeo_grid_cells/``, seed 0); about two minutes.
Run with one thread (``OMP_NUM_THREADS=1``); the JSON carries provenance.
"""
import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reinmax import results                                         # noqa: E402
from reinmax.experiments import layer                               # noqa: E402
from reinmax.experiments.polynomial import PolynomialConfig         # noqa: E402
from reinmax.experiments.polynomial import figure7 as F7            # noqa: E402
from reinmax.experiments.polynomial.problem import optimum          # noqa: E402
from reinmax.experiments.polynomial.training import final_exact_losses, run  # noqa: E402

WIDTHS = (F7.RODEO_HIDDEN, 100)
GRID = results.RESULTS_DIR / "polynomial" / "figure7_rodeo_grid.json"


def _chosen():
    if GRID.exists():
        chosen = results.read_json(GRID)["chosen"]
        return chosen["num_samples"], chosen["control_lr"]
    return 2, 1e-2


def _config(hidden, setting="A", epochs=1, steps=40):
    k, lr = _chosen()
    options = dict(F7.rodeo_options(k, lr), hidden=hidden)
    return PolynomialConfig(p=2.0, L=128, batch_size=256, setting=setting, methods=["RODEO"],
                            epochs=epochs, steps=steps, seeds=[0], device="cpu",
                            method_options={"RODEO": options})


def cost(steps, rounds):
    times = {h: {"cpu_ms": [], "wall_ms": []} for h in WIDTHS}
    for hidden in WIDTHS:               # warm-up: first calls pay for allocation and dispatch
        run(_config(hidden, steps=2), progress=False)
    for r in range(rounds):
        for hidden in (WIDTHS if r % 2 == 0 else WIDTHS[::-1]):
            config = _config(hidden, steps=steps)
            wall, cpu = time.perf_counter(), time.process_time()
            run(config, progress=False)
            times[hidden]["cpu_ms"].append(1000 * (time.process_time() - cpu) / steps)
            times[hidden]["wall_ms"].append(1000 * (time.perf_counter() - wall) / steps)
    small, large = WIDTHS
    ratios = [b / a for a, b in zip(times[small]["cpu_ms"], times[large]["cpu_ms"])]
    return {"per_step": {str(h): {k: statistics.median(v) for k, v in t.items()}
                         for h, t in times.items()},
            "rounds": {str(h): t for h, t in times.items()},
            "cpu_ratio_100_over_16": statistics.median(ratios), "steps": steps}


def quality(seeds=(0, 1, 2)):
    """The grid's cell (p = 2, 5 epochs of 200 steps) at both widths, ``seeds`` batched, both
    settings: the final gap to the optimum, mean and std over the seeds. The committed 16-unit
    grid cell (seed 0) is read beside it as a check that the code still gives its run."""
    k, lr = _chosen()
    out = {}
    for setting in ("A", "B"):
        row = {}
        for hidden in WIDTHS:
            config = _config(hidden, setting, epochs=5, steps=200)
            config = dataclasses.replace(config, seeds=list(seeds))
            record = run(config, progress=False)
            mean, std = final_exact_losses(record)["RODEO"]
            row[str(hidden)] = {"final_gap_mean": mean - optimum(config), "final_gap_std": std,
                                "ms_per_step_wall": record["runs"][0]["ms_per_step"]}
        cell = GRID.parent / "figure7_rodeo_grid_cells" / f"K{k}_lr{lr:g}_{setting}.json"
        if cell.exists():
            row["committed_16_seed0"] = (final_exact_losses(results.read_json(cell))["RODEO"][0]
                                         - optimum(config))
        out[setting] = row
        print(f"setting {setting}: final gap (mean, std over seeds {list(seeds)}) "
              + "; ".join(f"{h} units {row[str(h)]['final_gap_mean']:.6f} "
                          f"({row[str(h)]['final_gap_std']:.6f})" for h in WIDTHS)
              + f"; committed 16-unit cell, seed 0: {row.get('committed_16_seed0')}", flush=True)
    return {"seeds": list(seeds), "epochs": 5, "steps": 200, "settings": out}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quality", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    found = {"setting": {"p": 2.0, "L": 128, "batch_size": 256, "rodeo": dict(
        zip(("num_samples", "control_lr"), _chosen())), "widths": list(WIDTHS)},
        "cost": cost(args.steps, args.rounds)}
    per = found["cost"]["per_step"]
    print(f"CPU ms per step: {WIDTHS[0]} units {per[str(WIDTHS[0])]['cpu_ms']:.1f}, "
          f"{WIDTHS[1]} units {per[str(WIDTHS[1])]['cpu_ms']:.1f}; ratio "
          f"{found['cost']['cpu_ratio_100_over_16']:.2f}", flush=True)
    if args.quality:
        found["quality"] = quality()
    found["provenance"] = layer.provenance(torch.device("cpu"))
    if args.out:
        layer.write_json(args.out, found)
    return found


if __name__ == "__main__":
    main()
