"""The sweep runner's cost: its overhead per cell against calling the experiment's ``run``
directly, and the speed-up of 2 local workers over 1.

    .venv/bin/python benchmarks/sweep.py            # a few minutes on 2 cores
    .venv/bin/python benchmarks/sweep.py --quick    # seconds (a smoke test)

**Overhead.** One polynomial-programming cell (paper shape: L = 128, batch 256, 10 seeds; its
length set by ``--epochs`` x 200 steps) is trained ``--repeats`` times each way, interleaved:
``reinmax.experiments.polynomial.run(config)`` directly, and ``run_sweep`` of a one-cell grid into
a fresh folder (in-process engine: it validates the grid, looks for a finished record, trains with
a workspace checkpoint every 5 epochs, writes the record and its journal line, removes the
workspace). Both with one torch thread. The overhead is the median of the paired differences;
it is a fixed cost plus the checkpoints, so it is also given as a share of a one-minute cell.

**Workers.** A grid of ``--cells`` small cells (several seconds each) swept with 1 worker
(in-process) and with 2 (a process pool: spawned processes, one thread each, records returned to
the driver), into fresh folders; speed-up = time(1) / time(2). The machine's load average is
printed: other programs on the 2 cores lower the speed-up.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch                                                     # noqa: E402

from reinmax.experiments import polynomial as P                  # noqa: E402
from reinmax.sweep import Grid, run_sweep                        # noqa: E402


def overhead(epochs: int, repeats: int, shape: dict) -> dict:
    fixed = dict(shape, epochs=epochs, steps=200, device="cpu")
    grid = Grid("polynomial", {"method": ["ReinMax"], "tau": [1.0]}, fixed)
    config = P.PolynomialConfig(methods=["ReinMax"], taus=1.0, **fixed)
    torch.set_num_threads(1)
    direct, runner = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        P.run(config, progress=False)
        direct.append(time.perf_counter() - started)
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            run_sweep(grid, folder, progress=False, threads=1)
            runner.append(time.perf_counter() - started)
    differences = [r - d for r, d in zip(runner, direct)]
    cell = statistics.median(direct)
    extra = statistics.median(differences)
    # the fixed part does not grow with the cell; the checkpoints (every 5 epochs) do
    return {"epochs": epochs, "direct_s": direct, "runner_s": runner, "cell_s": cell,
            "overhead_s": extra, "overhead_share": extra / cell,
            "overhead_share_of_one_minute_cell": extra / max(cell, 60.0)}


def workers(cells: int, epochs: int, shape: dict) -> dict:
    fixed = dict(shape, epochs=epochs, steps=200, device="cpu")
    grid = Grid("polynomial", {"method": ["ST", "ReinMax"],
                               "tau": [0.5, 1.0, 1.5, 2.0][: max(1, cells // 2)]}, fixed)
    times = {}
    for count in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            run_sweep(grid, folder, workers=count, progress=False, threads=1)
            times[count] = time.perf_counter() - started
    return {"cells": len(grid.cells()), "epochs": epochs, "seconds": times,
            "speedup": times[1] / times[2]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny cells: seconds in all")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the overhead cell")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    shape = {"L": 128, "batch_size": 256, "seeds": list(range(10))}
    if args.quick:
        shape, args.epochs, args.repeats, args.cells = (
            {"L": 8, "batch_size": 16, "seeds": [0, 1]}, 1, 2, 2)
    load = os.getloadavg()
    print(f"cpus {os.cpu_count()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"torch {torch.__version__}")
    first = overhead(args.epochs, args.repeats, shape)
    print(f"overhead: cell {first['cell_s']:.2f} s direct; runner adds {first['overhead_s']:.3f} s "
          f"(median of {args.repeats} pairs) = {100 * first['overhead_share']:.2f}% of this cell, "
          f"{100 * first['overhead_share_of_one_minute_cell']:.2f}% of a one-minute cell")
    second = workers(args.cells, max(1, args.epochs // 2), shape)
    print(f"workers: {second['cells']} cells, 1 worker {second['seconds'][1]:.1f} s, "
          f"2 workers {second['seconds'][2]:.1f} s: speed-up {second['speedup']:.2f}x")
    result = {"load_average": load, "overhead": first, "workers": second}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
