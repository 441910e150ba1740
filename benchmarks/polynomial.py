"""Speed of the polynomial-programming trainer (issue 4, "Fast enough to be real").

1. At L = 128, batch 256, 10 seeds: one batched tensor program over the seeds against a Python
   loop over the same 10 seeds (one seed per program), in steps per second; target >= 2x.
2. Paper-scale Figure 1 (3 values of p x 8,000 steps x 10 seeds per method), projected from the
   measured time per step of each method: target <= 10 minutes for ST, ReinMax, STGS and GST-1.0
   together, <= 30 with GR-MCK (its two-category quadrature, K="quadrature").

3. Table 3's QP cost (128 binary latents, 512 samples per batch, one model): forward and
   backward through each estimator, parameter updates skipped as the paper did, in interleaved
   rounds; median and interquartile range, and ratios to ST (target: ReinMax <= 1.05x ST).

Run: ``.venv/bin/python benchmarks/polynomial.py [--steps 200] [--threads N]``. Times are wall
clock on whatever else the machine is doing; run it on an idle machine for numbers to quote.
"""
import argparse
import dataclasses
import time

import torch

import reinmax

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


def table3_step_costs(rounds: int, steps: int, tau: float = 1.3) -> None:
    """Interleaved rounds, so that other load on the machine hits every method alike."""
    import statistics
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
        q = statistics.quantiles(values, n=4)
        print(f"   {name:8s} median {statistics.median(values):6.3f} ms/step "
              f"(IQR {q[0]:.3f}-{q[2]:.3f}), {statistics.median(values) / st_median:5.2f}x ST")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps timed per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--methods", nargs="+", default=list(P.FIGURE1_METHODS))
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds for part 3")
    parser.add_argument("--only-table3", action="store_true", help="run part 3 only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.only_table3:
        print("\n3. Table 3, QP (L=128, batch 512, tau 1.3): forward + backward, no update")
        table3_step_costs(args.rounds, args.steps)
        return
    print("L=128, batch 256")

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

    print("\n3. Table 3, QP (L=128, batch 512, tau 1.3): forward + backward, no update")
    table3_step_costs(args.rounds, args.steps)


if __name__ == "__main__":
    main()
