"""Speed of the polynomial-programming trainer (issue 4, "Fast enough to be real").

1. At L = 128, batch 256, 10 seeds: one batched tensor program over the seeds against a Python
   loop over the same 10 seeds (one seed per program), in steps per second; target >= 2x.
2. Paper-scale Figure 1 (3 values of p x 8,000 steps x 10 seeds per method), projected from the
   measured time per step of each method: target <= 10 minutes for ST, ReinMax, STGS and GST-1.0
   together, <= 30 with GR-MCK (its two-category quadrature, K="quadrature").

Run: ``.venv/bin/python benchmarks/polynomial.py [--steps 200] [--threads N]``. Times are wall
clock on whatever else the machine is doing; run it on an idle machine for numbers to quote.
"""
import argparse
import dataclasses
import time

import torch

from reinmax.experiments import polynomial as P

PAPER_STEPS = 40 * 200
PAPER_P = (1.5, 2.0, 3.0)


def ms_per_step(method: str, seeds: int, steps: int, tau: float = 1.0) -> float:
    config = P.PolynomialConfig(p=2.0, L=128, batch_size=256, methods=[method], taus=tau,
                                steps=steps, epochs=1, seeds=seeds, device="cpu")
    P.train_method(dataclasses.replace(config, steps=5), method, progress=False)   # warm up
    started = time.perf_counter()
    P.train_method(config, method, progress=False)
    return 1e3 * (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps timed per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--methods", nargs="+", default=list(P.FIGURE1_METHODS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, L=128, batch 256")

    print("\n1. 10 seeds batched vs a loop over 10 seeds (ReinMax)")
    batched = ms_per_step("ReinMax", 10, args.steps)
    one = ms_per_step("ReinMax", 1, args.steps)
    looped = 10 * one
    print(f"   batched: {batched:7.2f} ms per step of 10 seeds")
    print(f"   loop:    {looped:7.2f} ms per step of 10 seeds ({one:.2f} ms per seed)")
    print(f"   speed-up of batching: {looped / batched:.2f}x (target >= 2x)")

    print("\n2. Paper-scale Figure 1 projected (3 p x 8,000 steps x 10 seeds per method)")
    total_fast, total = 0.0, 0.0
    for method in args.methods:
        ms = ms_per_step(method, 10, args.steps, tau=1.0)
        minutes = ms * PAPER_STEPS * len(PAPER_P) / 60e3
        total += minutes
        if method != "GR-MCK":
            total_fast += minutes
        print(f"   {method:8s} {ms:7.2f} ms/step -> {minutes:5.1f} min")
    print(f"   without GR-MCK: {total_fast:5.1f} min (target <= 10)")
    print(f"   all of Figure 1: {total:5.1f} min (target <= 30)")


if __name__ == "__main__":
    main()
