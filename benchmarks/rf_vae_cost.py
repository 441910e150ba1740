"""Cost of one training update of the REINFORCE-family experiments, and the paper-scale estimate.

    .venv/bin/python benchmarks/rf_vae_cost.py [--steps 20] [--quick] [--json PATH]

For the 2x200 Bernoulli VAE (Table 6; batch 100; K = 2 and 3) and Table 5's categorical VAE
(64 categories x 32 variables, batch 200, one seed): each method's update (forward, estimator,
backward, optimizer step, the control parts' update where it has them) on random binarized
MNIST-shaped data, timed by CPU time (``time.process_time``: what the process used, so other jobs on
the machine do not inflate it) and by wall time, after two warm-up updates. The estimate of the
paper's scale is the CPU time per update times 10^6 (Table 6) or 5x10^5 (Table 5) per seed, on
this machine with one thread; evaluations (every 1,000 updates) are not included.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reinmax.experiments import bernoulli_vae as bv            # noqa: E402
from reinmax.experiments.bernoulli_vae import estimators        # noqa: E402
from reinmax.experiments import vae_64x32 as V                  # noqa: E402
from reinmax.experiments.vae_64x32.training import rloo_neg_elbo  # noqa: E402
from reinmax.experiments import layer                           # noqa: E402
from reinmax.models.vae import CategoricalVAE, seed_generators  # noqa: E402
from reinmax.experiments.records import provenance, write_json              # noqa: E402

TABLE6_STEPS, TABLE5_STEPS = 10 ** 6, 5 * 10 ** 5


def _time(step, steps):
    for _ in range(2):
        step()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(steps):
        step()
    return (time.process_time() - cpu) / steps, (time.perf_counter() - wall) / steps


def bernoulli_step(method, K):
    g = torch.Generator().manual_seed(0)
    model = bv.BernoulliVAE(g)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    score = estimators.family(method) == "score"
    est = estimators.build_score(method, K) if score else None
    controls = [p for p in est.parameters() if p.requires_grad] if score else []
    control_opt = torch.optim.Adam(controls, lr=1e-3) if controls else None
    x = (torch.rand(100, 784, generator=g) < 0.3).float()

    def step():
        optimizer.zero_grad()
        if score:
            loss, _, out = estimators.score_loss(model, est, x, g)
            if control_opt:
                control_opt.zero_grad()
                est.variance_backward(out)
        else:
            loss, _ = estimators.straight_through_loss(model, x, method, 1.1, K, g)
        loss.backward()
        optimizer.step()
        if control_opt:
            control_opt.step()
    return step


def table5_step(method, grmck_k):
    model = CategoricalVAE(64, 32, [0], negative_slope=0.2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    gens = seed_generators([0], "noise")
    x = torch.rand(1, 200, 784)
    estimator = None if method == "RLOO" else layer.estimator(
        method, {"K": grmck_k} if method == "GR-MCK" else None)
    noisy = method in ("STGS", "GR-MCK")

    def step():
        optimizer.zero_grad()
        if method == "RLOO":
            loss = rloo_neg_elbo(model, x, 2, gens)
        else:
            loss, _ = model.neg_elbo(x, estimator, 1.0, gens, noisy=noisy)
        loss.sum().backward()
        optimizer.step()
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 updates, a few methods")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps = 3 if args.quick else args.steps
    rows = []
    t6 = ["ReinMax", "RLOO"] if args.quick else list(estimators.methods())
    for K in ((2,) if args.quick else (2, 3)):
        for method in t6:
            if estimators.check_evaluations(method, K) is not None:
                continue
            cpu, wall = _time(bernoulli_step(method, K), steps)
            rows.append({"table": 6, "method": method, "K": K, "cpu_s": cpu, "wall_s": wall,
                         "paper_cpu_hours": cpu * TABLE6_STEPS / 3600})
            print(f"Table 6 K={K} {method:10s} {1000 * cpu:7.1f} ms/update (cpu), "
                  f"{1000 * wall:7.1f} (wall); 10^6 updates: {cpu * TABLE6_STEPS / 3600:6.1f} h", flush=True)
    t5 = [("ReinMax", None), ("RLOO", None)] if args.quick else [
        ("ReinMax", None), ("RLOO", None), ("ST", None), ("STGS", None), ("GST-1.0", None),
        ("GR-MCK", 10), ("GR-MCK", 100)]
    for method, k in t5:
        cpu, wall = _time(table5_step(method, k), max(2, steps // 4))
        rows.append({"table": 5, "method": method, "grmck_k": k, "cpu_s": cpu, "wall_s": wall,
                     "paper_cpu_hours": cpu * TABLE5_STEPS / 3600})
        print(f"Table 5 {method:8s}{'' if k is None else f' K={k}':7s} {1000 * cpu:7.1f} ms/update (cpu), "
              f"{1000 * wall:7.1f} (wall); 5x10^5 updates: {cpu * TABLE5_STEPS / 3600:6.1f} h", flush=True)
    record = {"rows": rows, "steps_timed": steps, "load_average": os.getloadavg(),
              "provenance": provenance("cpu")}
    if args.json:
        write_json(Path(args.json), record)
    return record


if __name__ == "__main__":
    main()
