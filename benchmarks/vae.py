"""MNIST-VAE speed: the batched seed ensemble against a loop over seeds, and Table 3's per-method
cost (forward + backward, no parameter update, as the paper measured), printed as ratios.

    .venv/bin/python benchmarks/vae.py                      # 8x4, 3 and 10 seeds; Table 3 on 10x30
    .venv/bin/python benchmarks/vae.py --seeds 1 2 3 5 10 --only ensemble --out ensemble.json

For each ensemble size S (``--seeds``; the paper averages 10 seeds, this project's paper-scale
run 3), three ways to train the same S seeds for one step each (ReinMax, Adam, batch 100, 8x4):
  conventional  one nn.Module per seed (nn.Linear layers, sigmoid + binary_cross_entropy,
                torch.optim.Adam with its defaults), looped over seeds: how the authors' script
                and most code train one model at a time;
  loop of S=1   this package's CategoricalVAE with one seed, looped over seeds;
  ensemble      one CategoricalVAE holding all S seeds (batched matrix products, one optimizer).
It also times the two parts of the ensemble's step that batching cannot remove, its matrix
products and its optimizer update, whose sum bounds the speed-up any ensemble can reach here.
Timings are the best of several interleaved rounds, so that other load on the machine inflates
them as little as possible (``--clock cpu`` with one thread is steadier still on a shared machine). Random images stand in for MNIST (speed does not depend on them).

The per-method costs printed last are a quick look at Table 3's MNIST-VAE row; the whole table
(both problems, time per epoch, peak memory, the paper's numbers beside) is benchmarks/table3.py.
"""
import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import reinmax
from reinmax.experiments.vae import CONFIGURATIONS, make_optimizer
from reinmax.models.vae import CategoricalVAE, seed_generators

BATCH = 100


class ConventionalVAE(nn.Module):
    """One seed, written the usual way (the structure of the authors' mnist_vae/model/vae.py)."""

    def __init__(self, categories, latents):
        super().__init__()
        self.C, self.L = categories, latents
        code = categories * latents
        self.encoder = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                     nn.Linear(256, code))
        self.decoder = nn.Sequential(nn.Linear(code, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(),
                                     nn.Linear(512, 784), nn.Sigmoid())

    def forward(self, x, tau):
        logits = self.encoder(x).view(-1, self.L, self.C)
        z, q = reinmax.reinmax(logits, tau)
        bce = F.binary_cross_entropy(self.decoder(z.view(len(x), -1)), x, reduction="sum") / len(x)
        kl = (q * torch.log(q + 1e-10)).sum((1, 2)).mean() + self.L * math.log(self.C)
        return bce + kl


CLOCK = time.perf_counter


def best_time(function, steps, rounds):
    """Best (over rounds) mean seconds per call of ``function``, by ``CLOCK``."""
    times = []
    for _ in range(rounds):
        began = CLOCK()
        for _ in range(steps):
            function()
        times.append((CLOCK() - began) / steps)
    return min(times)


def ensemble_throughput(config, seeds, steps, rounds):
    C, L = CONFIGURATIONS[config]
    estimator, tau = reinmax.get_estimator("ReinMax"), 1.3
    x_all = torch.rand(seeds, BATCH, 784)

    conventional = []
    for s in range(seeds):
        torch.manual_seed(s)
        model = ConventionalVAE(C, L)
        conventional.append((model, torch.optim.Adam(model.parameters(), lr=5e-4)))

    def conventional_step():
        for s, (model, optimizer) in enumerate(conventional):
            loss = model(x_all[s], tau)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def make(seed_list):
        model = CategoricalVAE(C, L, seed_list)
        return model, make_optimizer("Adam", model.parameters(), 5e-4), seed_generators(seed_list, "noise")

    singles = [make([s]) for s in range(seeds)]
    ensemble = make(list(range(seeds)))

    def step(model, optimizer, generators, x):
        loss, _ = model.neg_elbo(x, estimator, tau, generators, noisy=False)
        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()

    def single_loop_step():
        for s, (model, optimizer, generators) in enumerate(singles):
            step(model, optimizer, generators, x_all[s:s + 1])

    def ensemble_step():
        step(*ensemble, x_all)

    candidates = {"conventional loop": conventional_step, "loop of S=1": single_loop_step,
                  "ensemble": ensemble_step,
                  **ensemble_floor(*make(list(range(seeds)))[:2], x_all)}
    for function in candidates.values():          # warm up (allocator, kernels)
        function()
    best = {name: math.inf for name in candidates}
    for _ in range(rounds):                      # interleaved, so load hits all alike
        for name, function in candidates.items():
            best[name] = min(best[name], best_time(function, steps, 1))
    return best


def ensemble_floor(model, optimizer, x):
    """The two parts of an ensemble step that no batching removes: the matrix products of the
    forward and backward passes (each layer's product, its weight gradient and, past the first
    layer, its input gradient, on random tensors of the step's shapes) and the optimizer's update.
    Their sum bounds what any ensemble can gain over a loop here."""
    inputs, grads = [], []
    for weight in model.weights:
        inputs.append(torch.rand(weight.shape[0], x.shape[1], weight.shape[1]))
        grads.append(torch.rand(weight.shape[0], x.shape[1], weight.shape[2]))

    def matrix_products():
        for i, (weight, h, g) in enumerate(zip(model.weights, inputs, grads)):
            torch.baddbmm(model.biases[i].detach(), h, weight.detach())
            torch.bmm(h.transpose(1, 2), g)
            if i > 0:
                torch.bmm(g, weight.detach().transpose(1, 2))

    for parameter in model.parameters():
        parameter.grad = torch.rand_like(parameter) * 1e-3

    # A copy of the ensemble, so that these updates with made-up gradients touch no timed model.
    return {"floor: matrix products": matrix_products, "floor: Adam update": optimizer.step}


def method_costs(config, steps, rounds):
    """Seconds per step (forward + backward, no update) of one seed per method."""
    C, L = CONFIGURATIONS[config]
    model = CategoricalVAE(C, L, [0])
    x = torch.rand(1, BATCH, 784)
    generators = seed_generators([0], "noise")
    methods = {"ReinMax": ("ReinMax", {}), "ST": ("ST", {}), "STGS": ("STGS", {}),
               "GST-1.0": ("GST-1.0", {}), "GR-MCK100": ("GR-MCK", {"K": 100}),
               "GR-MCK300": ("GR-MCK", {"K": 300}), "GR-MCK1000": ("GR-MCK", {"K": 1000})}

    def make(name, options):
        estimator = reinmax.get_estimator(name, **options)
        noisy = name in ("STGS", "GR-MCK")

        def step():
            loss, _ = model.neg_elbo(x, estimator, 1.0, generators, noisy=noisy)
            model.zero_grad(set_to_none=True)
            loss.sum().backward()
        return step

    functions = {label: make(*spec) for label, spec in methods.items()}
    for function in functions.values():
        function()
    best = {label: math.inf for label in functions}
    for _ in range(rounds):
        for label, function in functions.items():
            # GR-MCK's steps are tens of times longer: fewer of them give as steady a mean.
            count = max(2, steps // 5) if label.startswith("GR-MCK") else steps
            best[label] = min(best[label], best_time(function, count, 1))
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="8x4", choices=list(CONFIGURATIONS),
                        help="setting for the ensemble comparison (default 8x4)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 10],
                        help="ensemble sizes to compare, one run each (default: 3 10)")
    parser.add_argument("--steps", type=int, default=20, help="steps per timing (default 20)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; best is kept")
    parser.add_argument("--table3-config", default="10x30", choices=list(CONFIGURATIONS),
                        help="setting for the per-method costs (paper: 10x30)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared machine "
                             "with one thread: OMP_NUM_THREADS=1)")
    parser.add_argument("--only", choices=["ensemble", "costs"], default=None,
                        help="run one part only: the ensemble comparison or the per-method costs")
    parser.add_argument("--out", help="also write the numbers as JSON here (with provenance)")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.perf_counter if args.clock == "wall" else time.process_time
    if min(args.seeds) < 1 or args.steps < 1 or args.rounds < 1:
        parser.error(f"--seeds, --steps and --rounds must be positive integers; got --seeds "
                     f"{' '.join(map(str, args.seeds))} --steps {args.steps} --rounds {args.rounds}")

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH}; "
          f"{args.clock} clock")
    sizes, costs = [], {}
    if args.only != "costs":
        for seeds in args.seeds:
            best = ensemble_throughput(args.config, seeds, args.steps, args.rounds)
            floor = {name: best.pop(name) for name in list(best) if name.startswith("floor")}
            sizes.append(ensemble_entry(seeds, best, floor))
            print_ensemble(args.config, sizes[-1])
        print_sizes(sizes)
    if args.only != "ensemble":
        costs = method_costs(args.table3_config, args.steps, args.rounds)
        print(f"\nTable 3 style, {args.table3_config}, one seed, forward + backward without the "
              f"parameter update (time per step, ratio to ST):")
        for label, seconds in costs.items():
            print(f"  {label:11s} {seconds * 1e3:8.2f} ms   x{seconds / costs['ST']:.2f}")

    if args.out:
        from reinmax.experiments.records import provenance, write_json
        record = {"benchmark": "mnist_vae", "arguments": vars(args), "provenance": provenance("cpu")}
        if sizes:
            record["ensemble"] = sizes
        if costs:
            record.update({"method_seconds_per_step": costs,
                           "method_ratio_to_st": {label: s / costs["ST"] for label, s in costs.items()}})
        write_json(Path(args.out), record)
        print(f"\nwritten to {args.out}")


def ensemble_entry(seeds, best, floor):
    """One ensemble size's numbers, as written to JSON: seconds per step of each way, the
    ensemble's speed-up over each, the floor's two parts and the speed-up they bound."""
    return {"seeds": seeds, "seconds_per_step": best,
            "speedup": {name: s / best["ensemble"] for name, s in best.items()},
            "floor_seconds": floor,
            "largest_possible_speedup": best["conventional loop"] / sum(floor.values())}


def print_ensemble(config, entry):
    seeds, best, floor = entry["seeds"], entry["seconds_per_step"], entry["floor_seconds"]
    print(f"\nTraining {seeds} seed(s) of {config} (ReinMax, Adam), one step each:")
    for name, seconds in best.items():
        print(f"  {name:18s} {seconds * 1e3:8.2f} ms   {seeds * BATCH / seconds:9.0f} images/s"
              f"   ensemble speed-up x{entry['speedup'][name]:.2f}")
    bound = sum(floor.values())
    print("What batching cannot remove from the ensemble's step:")
    for name, seconds in floor.items():
        print(f"  {name[len('floor: '):]:18s} {seconds * 1e3:8.2f} ms")
    print(f"  together {bound * 1e3:.2f} ms: no ensemble doing these products (float32) and this "
          f"update gains more than x{entry['largest_possible_speedup']:.2f} over the conventional "
          f"loop here; this one's step is {bound / best['ensemble']:.0%} these two parts")


def print_sizes(sizes):
    print("\nEnsemble speed-up by size (throughput against a loop over the same seeds):")
    print("  seeds   over the conventional loop   over a loop of S=1   largest possible")
    for entry in sizes:
        print(f"  {entry['seeds']:5d}   x{entry['speedup']['conventional loop']:<26.2f}"
              f"x{entry['speedup']['loop of S=1']:<19.2f}x{entry['largest_possible_speedup']:.2f}")


if __name__ == "__main__":
    main()
