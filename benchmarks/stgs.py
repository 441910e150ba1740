"""reinmax.stgs against torch.nn.functional.gumbel_softmax(hard=True): forward and backward.

    .venv/bin/python benchmarks/stgs.py                           # about two minutes
    .venv/bin/python benchmarks/stgs.py --out results/benchmarks/stgs.json
    .venv/bin/python benchmarks/stgs.py --quick                   # seconds (a smoke test)

One step: ``logits`` (a float32 leaf, N(0, 1)), ``y = estimator(logits, tau, hard=True)``, the
loss ``<y, w>`` with a fixed random ``w``, backward; ``tau`` 1 and 0.5 (Table 8's STGS
temperature for MNIST-VAE 10x30, the setting of Table 3's time). Both draw their own noise from the global
generator. ``reinmax.stgs`` does more than ``F.gumbel_softmax``: it also returns ``softmax(logits)``
(unused here, as a training step that ignores it) and draws its category by the inverse CDF and
the noise given it (so that ``sample=`` works and the category comes from the same uniforms as
ST's and ReinMax's), with its input checks on or off (``reinmax.set_validate_args``).

Shapes: Table 3's (MNIST-VAE 10x30: a batch of 100, 30 variables of 10 categories; polynomial
programming: 512 x 128 binary variables) and benchmarks/estimators.py's larger (256, 64, 64).
Each setting (shape x tau x torch threads x checks on/off) runs ``--rounds`` interleaved rounds: a round
times a block of steps of each (about ``--block`` seconds each, the order alternating from round
to round), and the ratio ours / F.gumbel_softmax is taken within the round, so that other load on
the machine hits both alike; the table gives the median over rounds and the range. The load
average (before and after) and the process's nice value are printed and kept: the machine this
book is built on is shared.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import torch                                                     # noqa: E402
import torch.nn.functional as F                                  # noqa: E402

import reinmax                                                   # noqa: E402

SHAPES = {"MNIST-VAE 10x30 (Table 3)": (100, 30, 10), "QP 128 binary (Table 3)": (512, 128, 2),
          "larger (estimators.py)": (256, 64, 64)}
TAUS = (1.0, 0.5)


def make_steps(shape, tau):
    """(ours, torch's) steps on the same logits and weights."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(shape, generator=generator).requires_grad_(True)
    w = torch.randn(shape, generator=generator)

    def ours():
        logits.grad = None
        y, _ = reinmax.stgs(logits, tau)
        (y * w).sum().backward()

    def theirs():
        logits.grad = None
        y = F.gumbel_softmax(logits, tau, hard=True)
        (y * w).sum().backward()
    return ours, theirs


def seconds_per_step(step, count):
    started = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - started) / count


def interleaved(ours, theirs, rounds, block):
    """Per-round seconds per step of each, and their ratio, A/B order alternating by round."""
    once = max(seconds_per_step(ours, 3), seconds_per_step(theirs, 3))     # also a warm-up
    count = max(1, int(block / max(once, 1e-6)))
    samples = {"ours": [], "torch": [], "ratio": []}
    for r in range(rounds):
        order = [("ours", ours), ("torch", theirs)]
        timed = dict((name, seconds_per_step(step, count))
                     for name, step in (order if r % 2 == 0 else order[::-1]))
        samples["ours"].append(timed["ours"])
        samples["torch"].append(timed["torch"])
        samples["ratio"].append(timed["ours"] / timed["torch"])
    return samples, count


def load_average():
    return list(os.getloadavg())


def run(shapes, taus, threads, rounds, block):
    before = torch.get_num_threads()
    validate_before = reinmax.validate_args_enabled()
    results = []
    try:
        for label, shape in shapes.items():
            for tau in taus:
                ours, theirs = make_steps(shape, tau)
                for n in threads:
                    torch.set_num_threads(n)
                    for checks in (True, False):
                        reinmax.set_validate_args(checks)
                        samples, count = interleaved(ours, theirs, rounds, block)
                        ratios = sorted(samples["ratio"])
                        results.append({
                            "shape": list(shape), "label": label, "tau": tau, "threads": n,
                            "validate_args": checks, "rounds": rounds, "steps_per_block": count,
                            "ours_ms": 1e3 * statistics.median(samples["ours"]),
                            "torch_ms": 1e3 * statistics.median(samples["torch"]),
                            "ratio_median": statistics.median(ratios),
                            "ratio_range": [ratios[0], ratios[-1]], "ratios": samples["ratio"]})
    finally:
        torch.set_num_threads(before)
        reinmax.set_validate_args(validate_before)
    return results


def table(results):
    lines = [f"{'shape':16} {'tau':>4} {'threads':>7} {'checks':>6} {'ours ms':>9} "
             f"{'torch ms':>9} {'ours / torch: median [range over rounds]':>42}",
             "-" * 99]
    for r in results:
        low, high = r["ratio_range"]
        lines.append(f"{str(tuple(r['shape'])):16} {r['tau']:4g} {r['threads']:7d} "
                     f"{'on' if r['validate_args'] else 'off':>6} {r['ours_ms']:9.3f} "
                     f"{r['torch_ms']:9.3f} {r['ratio_median']:27.3f} [{low:.3f}-{high:.3f}]")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="benchmarks/stgs.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per setting")
    parser.add_argument("--block", type=float, default=0.25,
                        help="seconds of steps per estimator and round (at least one step)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out", help="write the results as JSON here "
                        "(e.g. results/benchmarks/stgs.json)")
    parser.add_argument("--quick", action="store_true",
                        help="2 rounds of one step each on small shapes (a smoke test: the "
                        "numbers mean nothing)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be an integer >= 1; got {args.rounds}")
    if not args.block > 0:
        parser.error(f"--block must be a number of seconds > 0; got {args.block}")
    if any(n < 1 for n in args.threads):
        parser.error(f"--threads must be integers >= 1; got {args.threads}")
    rounds, block = (2, 1e-9) if args.quick else (args.rounds, args.block)
    # --quick: the same code paths on small shapes (same category counts), for a smoke test
    shapes = ({label: (min(shape[0], 8), min(shape[1], 4), shape[2])
               for label, shape in SHAPES.items()} if args.quick else SHAPES)

    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
               "torch_version": torch.__version__, "python_version": platform.python_version(),
               "nice": os.nice(0), "load_average_before": load_average(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"STGS benchmark: reinmax.stgs / F.gumbel_softmax(hard=True), forward + backward, "
          f"float32\n  {rounds} interleaved rounds per setting; nice {machine['nice']}"
          f"; load average before {machine['load_average_before']}")
    results = run(shapes, TAUS, args.threads, rounds, block)
    machine["load_average_after"] = load_average()
    print(table(results))
    print(f"  load average after {machine['load_average_after']}")
    record = {"machine": machine, "quick": args.quick, "results": results}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
        print(f"  written to {args.out}")
    return record


if __name__ == "__main__":
    main()
