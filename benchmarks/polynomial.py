"""Speed of the polynomial-programming trainer (issue 4, "Fast enough to be real").

1. At L = 128, batch 256, 10 seeds: one batched tensor program over the seeds against a Python
   loop over the same 10 seeds (one seed per program), in interleaved rounds, by wall clock and
   by CPU time; target >= 2x.
2. Time per step of each method (10 seeds batched) in interleaved rounds, and paper-scale
   Figure 1 (3 values of p x 8,000 steps x 10 seeds per method) projected from it: target <= 10
   minutes for ST, ReinMax, STGS and GST-1.0 together, <= 30 with GR-MCK (its two-category
   quadrature, K="quadrature").

3. Table 3's QP cost (128 binary latents, 512 samples per batch, one model): forward and
   backward through each estimator, parameter updates skipped as the paper did, in interleaved
   rounds; median and interquartile range, and ratios to ST (target: ReinMax <= 1.05x ST).

Run: ``.venv/bin/python benchmarks/polynomial.py [--steps 50] [--rounds 15] [--threads N]
[--only batching|methods|table3] [--out polynomial.json]``; ``--out`` also writes every number
printed (medians, quartiles, ratios, projections) as JSON with provenance, atomically. Wall-clock times include whatever else the machine is doing;
CPU time (``time.process_time``) leaves out waiting for a core but, with more than one thread,
counts threads spinning while they wait for each other. Run it on an idle machine for numbers to
quote; on a loaded one, compare the CPU-time ratios of a one-thread run.
"""
import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

import reinmax

from reinmax.experiments import polynomial as P

PAPER_STEPS = 40 * 200
PAPER_P = (1.5, 2.0, 3.0)


def _config(method: str, seeds: int, steps: int, tau: float = 1.0,
            method_options: Optional[dict] = None) -> "P.PolynomialConfig":
    return P.PolynomialConfig(p=2.0, L=128, batch_size=256, methods=[method], taus=tau,
                              steps=steps, epochs=1, seeds=list(range(seeds)), device="cpu",
                              method_options=dict(method_options or {}))


def _timed(run) -> Tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``. CPU time leaves out the time
    the process waited for a core while other programs ran; with more than one thread it also
    counts the time threads spin waiting for each other."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _quartiles(values: Sequence[float]) -> Dict[str, float]:
    """Median and quartiles, the form every number takes in the JSON output."""
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"median": statistics.median(values), "q1": q[0], "q3": q[2], "n": len(values)}


def _median_iqr(values: Sequence[float]) -> str:
    q = _quartiles(values)
    return f"{q['median']:6.2f} (IQR {q['q1']:.2f}-{q['q3']:.2f})"


def batching_speedup(rounds: int, steps: int, method: str = "ReinMax", seeds: int = 10) -> dict:
    """``seeds`` seeds as one batched program against a Python loop over the same seeds, one
    seed per ``train_method`` call (the same code with seeds=1), in interleaved rounds whose
    order alternates, so that load from other programs hits both alike. Ratios are taken round
    by round (loop time / batched time, > 1: batching is faster)."""
    batched = _config(method, seeds, steps)
    one = _config(method, 1, steps)
    P.train_method(dataclasses.replace(batched, steps=5), method, progress=False)     # warm up
    P.train_method(dataclasses.replace(one, steps=5), method, progress=False)
    ratios: Dict[str, List[float]] = {"wall": [], "cpu": []}
    per_step: Dict[str, List[float]] = {"batched wall": [], "batched cpu": [], "loop wall": [], "loop cpu": []}
    for r in range(rounds):
        def run_batched():
            P.train_method(batched, method, progress=False)

        def run_loop():
            for _ in range(seeds):
                P.train_method(one, method, progress=False)
        order = [("batched", run_batched), ("loop", run_loop)]
        times = {name: _timed(run) for name, run in (order if r % 2 == 0 else order[::-1])}
        for k, clock in enumerate(("wall", "cpu")):
            ratios[clock].append(times["loop"][k] / times["batched"][k])
            for name in ("batched", "loop"):
                per_step[f"{name} {clock}"].append(1e3 * times[name][k] / steps)
    print(f"   {rounds} interleaved rounds of {steps} steps; ms per step of {seeds} seeds, median (IQR):")
    for name, values in per_step.items():
        print(f"   {name:13s} {_median_iqr(values)} ms")
    print(f"   speed-up of batching (loop / batched), wall clock: {_median_iqr(ratios['wall'])}x")
    print(f"   speed-up of batching (loop / batched), CPU time:   {_median_iqr(ratios['cpu'])}x "
          f"(target >= 2x)")
    return {"method": method, "seeds": seeds, "rounds": rounds, "steps": steps, "target_speedup": 2.0,
            "ms_per_step": {name: _quartiles(values) for name, values in per_step.items()},
            "speedup_loop_over_batched": {clock: _quartiles(values) for clock, values in ratios.items()}}


def method_step_times(methods: Sequence[str], rounds: int, steps: int, seeds: int = 10,
                      method_options: Optional[dict] = None) -> dict:
    """ms per training step of ``seeds`` batched seeds for each method (tau = 1, its
    ``method_options``), interleaved rounds; projected to paper-scale Figure 1 and compared to ST."""
    configs = {m: _config(m, seeds, steps, method_options=method_options) for m in methods}
    for m, config in configs.items():
        P.train_method(dataclasses.replace(config, steps=5), m, progress=False)      # warm up
    times: Dict[str, Dict[str, List[float]]] = {m: {"wall": [], "cpu": []} for m in methods}
    for r in range(rounds):
        rotated = list(methods[r % len(methods):]) + list(methods[:r % len(methods)])
        for m in rotated:
            wall, cpu = _timed(lambda: P.train_method(configs[m], m, progress=False))
            times[m]["wall"].append(1e3 * wall / steps)
            times[m]["cpu"].append(1e3 * cpu / steps)
    total_fast, total, minutes_by_method, ratio_to_st = 0.0, 0.0, {}, {}
    st = {clock: statistics.median(times["ST"][clock]) for clock in ("wall", "cpu")} if "ST" in times else None
    print(f"   {rounds} interleaved rounds of {steps} steps; ms per step of {seeds} seeds, median (IQR)")
    for m in methods:
        wall, cpu = statistics.median(times[m]["wall"]), statistics.median(times[m]["cpu"])
        minutes = wall * PAPER_STEPS * len(PAPER_P) / 60e3
        minutes_by_method[m] = minutes
        if st:
            ratio_to_st[m] = {"wall": wall / st["wall"], "cpu": cpu / st["cpu"]}
        total += minutes
        if m != "GR-MCK":
            total_fast += minutes
        versus = f", {wall / st['wall']:.2f}x ST wall, {cpu / st['cpu']:.2f}x ST CPU" if st else ""
        print(f"   {m:8s} wall {_median_iqr(times[m]['wall'])}, CPU {_median_iqr(times[m]['cpu'])}"
              f" -> {minutes:5.1f} min{versus}")
    print(f"   without GR-MCK: {total_fast:5.1f} min (target <= 10), projected from wall clock")
    print(f"   all of Figure 1: {total:5.1f} min (target <= 30)")
    return {"seeds": seeds, "rounds": rounds, "steps": steps,
            "method_options": {m: o for m, o in (method_options or {}).items() if m in methods},
            "ms_per_step": {m: {clock: _quartiles(times[m][clock]) for clock in ("wall", "cpu")}
                            for m in methods},
            "ratio_to_st_median": ratio_to_st,
            "paper_figure1_minutes_projected": minutes_by_method,
            "paper_figure1_minutes_without_grmck": total_fast, "paper_figure1_minutes_total": total,
            "targets_minutes": {"without_grmck": 10, "total": 30}}


def table3_step_costs(rounds: int, steps: int, tau: float = 1.3) -> dict:
    """Interleaved rounds, so that other load on the machine hits every method alike."""
    c = torch.full((128,), 0.45)
    theta = P.initial_theta(1, 128)[0].requires_grad_(True)
    methods = {"ST": {}, "ReinMax": {}, "STGS": {}, "GST-1.0": {}, "GR-MCK": {"K": "quadrature"}}

    def step(name, options):
        estimator = reinmax.get_estimator(name, **options)
        for _ in range(steps):
            y_hard, _ = estimator(theta.expand(512, 128, 2), tau)
            loss = P.polynomial_loss(y_hard, c, 2.0).mean()
            theta.grad = None
            loss.backward()                     # no optimizer step: Table 3 skipped updates

    times = {name: [] for name in methods}
    for name, options in methods.items():
        step(name, options)                     # warm up
    for _ in range(rounds):
        for name, options in methods.items():
            started = time.perf_counter()
            step(name, options)
            times[name].append(1e3 * (time.perf_counter() - started) / steps)
    st_median = statistics.median(times["ST"])
    for name, values in times.items():
        q = _quartiles(values)
        print(f"   {name:8s} median {q['median']:6.3f} ms/step "
              f"(IQR {q['q1']:.3f}-{q['q3']:.3f}), {q['median'] / st_median:5.2f}x ST")
    return {"tau": tau, "rounds": rounds, "steps": steps, "L": 128, "batch_size": 512,
            "ms_per_step": {name: _quartiles(values) for name, values in times.items()},
            "ratio_to_st_median": {name: statistics.median(values) / st_median
                                   for name, values in times.items()}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50, help="steps timed per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--methods", nargs="+", default=list(P.FIGURE1_METHODS))
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds per part")
    parser.add_argument("--method-options", type=json.loads, default={}, metavar="JSON",
                        help="(methods) estimator options per method, e.g. "
                        "'{\"ReinMax-Rao\": {\"R\": \"quadrature\"}}'")
    parser.add_argument("--only", choices=["batching", "methods", "table3"], default=None,
                        help="run one part only")
    parser.add_argument("--only-table3", action="store_true", help="(same as --only table3)")
    parser.add_argument("--out", help="also write the numbers as JSON here (with provenance)")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.rounds < 1:
        parser.error(f"--steps and --rounds must be positive integers; got --steps {args.steps} "
                     f"--rounds {args.rounds}")
    if args.threads:
        torch.set_num_threads(args.threads)
    only = "table3" if args.only_table3 else args.only
    load_start = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {load_start:.2f} on {os.cpu_count()} CPUs")
    record = {"benchmark": "polynomial", "arguments": vars(args)}
    if only in (None, "batching"):
        print("\n1. L=128, batch 256: 10 seeds batched vs a loop over the 10 seeds (ReinMax, tau 1)")
        record["batching"] = batching_speedup(args.rounds, args.steps)
    if only in (None, "methods"):
        print("\n2. L=128, batch 256, 10 seeds: step time per method (tau 1), projected to paper-scale"
              " Figure 1 (3 p x 8,000 steps)")
        record["methods"] = method_step_times(args.methods, args.rounds, args.steps,
                                              method_options=args.method_options)
    if only in (None, "table3"):
        print("\n3. Table 3, QP (L=128, batch 512, tau 1.3): forward + backward, no update")
        record["table3"] = table3_step_costs(args.rounds, args.steps)
    load_end = os.getloadavg()[0]
    print(f"\nload average at the end {load_end:.2f}")
    if args.out:
        from reinmax.experiments.records import provenance, write_json
        record.update(load_average={"start": load_start, "end": load_end}, provenance=provenance("cpu"))
        write_json(Path(args.out), record)
        print(f"written to {args.out}")


if __name__ == "__main__":
    main()
