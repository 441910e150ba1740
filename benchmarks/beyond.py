"""Cost of ReinMax-Rao (reinmax/estimators/rao.py) against the authors' form and GR-MCK.

    python benchmarks/beyond.py            # the full run: shapes (100, 30, 10) and (200, 32, 64), R = K = 100
    python benchmarks/beyond.py --quick    # seconds: small shapes, 2 rounds (a smoke test)
    nice -n 10 python benchmarks/beyond.py --out results/benchmarks/beyond.json   # the committed run

Timed: one forward and backward step, ``y, soft = estimator(logits, 1.0)``,
``loss = <y, w>``, ``loss.backward()``. Three methods:

* ``ReinMax-Rao``: the registry's entry with R = 100 (the average of R Jacobians applied to g
  without forming a matrix: GR-MCK's fused kernel at theta' = log((pi + D)/2));
* ``authors' form``: the same estimator as the authors' code computes it, one C x C Jacobian
  per draw (diag(q) - q q^T, averaged over the R draws, then a matrix-vector product), with the
  same sampler (conditional Gumbel draws at theta' by the exponential trick). Written here, not
  in the registry. The R matrices are accumulated draw by draw (all at once would need
  R * numel * C numbers: 10 GB at (200, 32, 64)), which only lowers its memory;
* ``GR-MCK`` with K = 100.

Rounds are interleaved (each round runs every method once, in a rotated order) so that load on
the shared machine hits all alike; ratios are taken within a round, then summarised by their
median and range. Targets: authors' form / ReinMax-Rao >= 10, ReinMax-Rao / GR-MCK <= 2.
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))   # run from a checkout without installing the package

import torch  # noqa: E402

import reinmax  # noqa: E402
from reinmax.estimators import rao  # noqa: E402
from reinmax.experiments import records  # noqa: E402
from reinmax.estimators.sampling import exponential, one_hot  # noqa: E402

FULL_SHAPES = [(100, 30, 10), (200, 32, 64)]
QUICK_SHAPES = [(20, 6, 10), (8, 4, 16)]


class _AuthorsForm(torch.autograd.Function):
    """ReinMax-Rao with one C x C Jacobian per draw, as the authors' code forms them."""

    @staticmethod
    def forward(ctx, logits, tau, R):
        probs = torch.softmax(logits, -1)
        index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
        D = one_hot(index, logits)
        pivot = rao.rao_pivot(logits, D)
        mean_jacobian = torch.zeros(logits.shape + logits.shape[-1:], dtype=logits.dtype)
        for _ in range(R):
            G = rao.conditional_gumbels(pivot, index, exponential(tuple(logits.shape), logits, None))
            q = torch.softmax((pivot + G) / tau, -1)
            mean_jacobian += torch.diag_embed(q) - q.unsqueeze(-1) * q.unsqueeze(-2)
        mean_jacobian /= R * tau
        ctx.save_for_backward(mean_jacobian, probs)
        return D, probs

    @staticmethod
    def backward(ctx, g, grad_soft):
        mean_jacobian, probs = ctx.saved_tensors
        jacobian = torch.diag_embed(probs) - probs.unsqueeze(-1) * probs.unsqueeze(-2)
        grad = 2 * (mean_jacobian @ g.unsqueeze(-1)).squeeze(-1) - 0.5 * (jacobian @ g.unsqueeze(-1)).squeeze(-1)
        if grad_soft is not None:
            grad = grad + (jacobian @ grad_soft.unsqueeze(-1)).squeeze(-1)
        return grad, None, None


def authors_form(logits, tau=1.0, R=100):
    return _AuthorsForm.apply(logits, tau, R)


def step(method, logits, weights):
    leaf = logits.clone().requires_grad_(True)
    y, _ = method(leaf, 1.0)
    (y * weights).sum().backward()
    return leaf.grad


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 2 rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--draws", type=int, default=100, help="R = K (default 100)")
    parser.add_argument("--out", help="also write the medians and ratios as JSON here (atomically)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.draws < 1:
        parser.error(f"--rounds and --draws must be positive; got {args.rounds}, {args.draws}")
    rounds = 2 if args.quick else args.rounds
    torch.manual_seed(0)
    methods = {
        "ReinMax-Rao": reinmax.get_estimator("ReinMax-Rao", R=args.draws),
        "authors' form": lambda logits, tau: authors_form(logits, tau, args.draws),
        "GR-MCK": reinmax.get_estimator("GR-MCK", K=args.draws),
    }
    print(f"R = K = {args.draws}, {rounds} interleaved rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    load_at_start = os.getloadavg()
    rows = []
    for shape in (QUICK_SHAPES if args.quick else FULL_SHAPES):
        logits = torch.randn(shape)
        weights = torch.randn(shape)
        for method in methods.values():          # warm-up
            step(method, logits, weights)
        times = {name: [] for name in methods}
        names = list(methods)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                step(methods[name], logits, weights)
                times[name].append(time.perf_counter() - start)
        slower = [a / b for a, b in zip(times["authors' form"], times["ReinMax-Rao"])]
        versus_gr = [a / b for a, b in zip(times["ReinMax-Rao"], times["GR-MCK"])]
        print(f"shape {shape}: median seconds per step " + ", ".join(
            f"{name} {statistics.median(t):.4f}" for name, t in times.items()))
        print(f"    authors' form / ReinMax-Rao: median {statistics.median(slower):.1f} "
              f"(range {min(slower):.1f}-{max(slower):.1f}; target >= 10)")
        print(f"    ReinMax-Rao / GR-MCK:        median {statistics.median(versus_gr):.2f} "
              f"(range {min(versus_gr):.2f}-{max(versus_gr):.2f}; target <= 2)")
        rows.append({"shape": list(shape),
                     "median_seconds": {name: statistics.median(t) for name, t in times.items()},
                     "authors_over_rao": {"median": statistics.median(slower), "min": min(slower),
                                          "max": max(slower), "target": ">= 10"},
                     "rao_over_grmck": {"median": statistics.median(versus_gr), "min": min(versus_gr),
                                        "max": max(versus_gr), "target": "<= 2"}})
    if args.out:
        records.write_json(args.out, {
            "benchmark": "beyond", "draws": args.draws, "rounds": rounds, "quick": args.quick,
            "threads": torch.get_num_threads(), "load_average_at_start": load_at_start,
            "load_average_at_end": os.getloadavg(), "shapes": rows,
            "provenance": records.provenance("cpu")})


if __name__ == "__main__":
    main()
