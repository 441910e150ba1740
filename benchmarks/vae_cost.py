"""What one Table 2 cell costs: the CPU time of a training step of each method in each MNIST-VAE
setting, as ratios to 8x4's ReinMax measured in the same run, and the CPU hours a cell takes at
the paper's protocol (160 epochs of 600 steps, three seeds trained as one ensemble).

    .venv/bin/python benchmarks/vae_cost.py --out results/vae/benchmarks/cost_per_cell.json
    .venv/bin/python benchmarks/vae_cost.py --quick          # seconds: a smoke test runs it

One training step is what ``reinmax.experiments.vae.train_setting`` does per batch (forward,
backward, the optimizer's update) on random images in [0, 1] (speed does not depend on them),
batch 100, each method's Table 8 optimizer and temperature. The clock is the process's CPU time
with one torch thread, which other load on a shared machine inflates far less than wall time;
each (setting, method) is timed in ``--rounds`` interleaved rounds and the median is kept, so that
a slow stretch of the machine touches every cell alike. GR-MCK's K is a parameter (``--grmck-k``;
the paper's is 1,000).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from reinmax.estimators import registry
from reinmax.experiments import layer
from reinmax.experiments.vae import CONFIGURATIONS, METHODS, NOISY_METHODS, VAEConfig, make_optimizer
from reinmax.experiments.vae.training import estimator_for
from reinmax.models.vae import CategoricalVAE, seed_generators

STEPS_PER_EPOCH, EPOCHS, BATCH = 600, 160, 100


def step_function(setting: str, method: str, seeds, grmck_k: int):
    """A closure running one training step of ``method`` on ``setting`` (3 seeds, batch 100)."""
    config = VAEConfig.paper_scale(configs=[setting], methods=[method], seeds=seeds,
                                   method_options={"GR-MCK": {"K": grmck_k}}, device="cpu")
    C, L = CONFIGURATIONS[setting]
    hp = config.hyperparameters(setting, method)
    model = CategoricalVAE(C, L, list(seeds), device="cpu")
    optimizer = make_optimizer(hp["optimizer"], model.parameters(), hp["lr"])
    estimator = estimator_for(method, config)
    noise = seed_generators(list(seeds), "noise", "cpu")
    x = torch.rand(len(seeds), BATCH, 784, generator=torch.Generator().manual_seed(0))

    def step():
        loss, _ = model.neg_elbo(x, estimator, hp["tau"], noise, noisy=method in NOISY_METHODS)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
    return step


def cpu_seconds_per_step(step, steps: int) -> float:
    began = time.process_time()
    for _ in range(steps):
        step()
    return (time.process_time() - began) / steps


def measure(settings, methods, seeds, steps, rounds, grmck_k):
    cells = [(s, m) for s in settings for m in methods]
    if ("8x4", "ReinMax") not in cells:
        cells.insert(0, ("8x4", "ReinMax"))          # the baseline, always in the same run
    steps_of = {cell: step_function(*cell, seeds, grmck_k) for cell in cells}
    for step in steps_of.values():                  # warm-up: allocations, first-call paths
        step()
    times = {cell: [] for cell in cells}
    for _ in range(rounds):
        for cell in cells:
            times[cell].append(cpu_seconds_per_step(steps_of[cell], steps))
    return {cell: statistics.median(values) for cell, values in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/vae_cost.py", description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=list(CONFIGURATIONS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds per ensemble (default 3)")
    parser.add_argument("--steps", type=int, default=10, help="steps timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--grmck-k", type=int, default=100, help="GR-MCK's K (paper: 1000)")
    parser.add_argument("--quick", action="store_true", help="8x4 and 4x24, ST and ReinMax, 1 step")
    parser.add_argument("--out", help="write the table as JSON here (atomically)")
    args = parser.parse_args(argv)
    for name in args.settings:
        if name not in CONFIGURATIONS:
            parser.error(f"--settings: {name!r} is not one of {list(CONFIGURATIONS)}")
    # Table 2's methods by default; any straight-through estimator in the registry may be timed
    # (chapter 11 times the estimators after ReinMax, which train with ReinMax's Table 8 row).
    allowed = registry.names("straight-through")
    for name in args.methods:
        if name not in allowed:
            parser.error(f"--methods: {name!r} is not one of {allowed}")
    for flag in ("seeds", "steps", "rounds", "grmck_k"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be a positive integer; got {getattr(args, flag)}")
    if args.quick:
        args.settings, args.methods, args.steps, args.rounds = ["8x4", "4x24"], ["ST", "ReinMax"], 1, 1
    torch.set_num_threads(1)
    seeds = list(range(args.seeds))
    cost = measure(args.settings, args.methods, seeds, args.steps, args.rounds, args.grmck_k)
    base = cost[("8x4", "ReinMax")]
    rows = []
    print(f"CPU time per training step, {args.seeds} seeds, batch {BATCH}, 1 thread, median of "
          f"{args.rounds} rounds of {args.steps} steps; GR-MCK K = {args.grmck_k}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'setting':8} {'method':8} {'ms/step':>9} {'x 8x4 ReinMax':>14} {'CPU h/cell':>11}")
    for (setting, method), seconds in sorted(cost.items(), key=lambda kv: kv[1]):
        hours = seconds * STEPS_PER_EPOCH * EPOCHS / 3600
        rows.append({"setting": setting, "method": method, "cpu_s_per_step": seconds,
                     "ratio_to_8x4_reinmax": seconds / base, "cpu_hours_per_cell": hours})
        print(f"{setting:8} {method:8} {seconds * 1e3:9.1f} {seconds / base:14.2f} {hours:11.2f}")
    if args.out:
        layer.write_json(args.out, {
            "benchmark": "vae_cost", "seeds": args.seeds, "batch": BATCH, "threads": 1,
            "steps": args.steps, "rounds": args.rounds, "grmck_k": args.grmck_k,
            "protocol": {"epochs": EPOCHS, "steps_per_epoch": STEPS_PER_EPOCH},
            "load_average": os.getloadavg(), "rows": rows, "provenance": layer.provenance("cpu")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
