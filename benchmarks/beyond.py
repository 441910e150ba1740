"""Cost of ReinMax-Rao (reinmax/estimators/rao.py) against the authors' form and GR-MCK.

    python benchmarks/beyond.py            # the full run: shapes (100, 30, 10) and (200, 32, 64), R = K = 100
    python benchmarks/beyond.py --quick    # seconds: small shapes, 2 rounds (a smoke test)
    nice -n 0 python benchmarks/beyond.py --out results/benchmarks/beyond.json   # the committed run

Timed: one forward and backward step, ``y, soft = estimator(logits, 1.0)``,
``loss = <y, w>``, ``loss.backward()``. Three methods:

* ``ReinMax-Rao``: the registry's entry with R = 100 (the average of R Jacobians applied to g
  without forming a matrix: GR-MCK's fused kernel at theta' = log((pi + D)/2));
* ``authors' form``: the same estimator as the authors' code computes it (their
  ``reinmax_jacobians.py``, mode ``reinmax_v3``, and its helper ``rao_gumbel_v3``): the sample by
  ``torch.multinomial``; in the backward all R Exp(1) draws at once (``exponential_`` on a
  ``(..., C, R)`` tensor), the conditional Gumbel logits by their exponential-trick formula,
  ``softmax`` over the categories, then R full C x C Jacobians (``diag_embed(q) - q q^T``) averaged
  over the draws and applied to g by ``matmul``; the rest of ReinMax's backward elementwise, and
  the result centred. Same operations, batched as they batch them, written here (not in the
  registry). Only where one ``(batch, L, R, C, C)`` tensor would exceed ``--authors-budget``
  elements (default 2**28, 1 GiB in float32; at (200, 32, 64) it would be 10 GiB, and their code
  holds three such tensors at once) is the batch split into chunks, each computed as they would;
  at (100, 30, 10) it is one chunk, exactly their batching;
* ``GR-MCK`` with K = 100.

Rounds are interleaved (each round runs every method once, in a rotated order) so that load on
the shared machine hits all alike; ratios are taken within a round, then summarised by their
median and interquartile range. Wall-clock and CPU time (``time.process_time``) are both
recorded: CPU time leaves out time spent waiting for a core. One torch thread by default: on this
shared 2-core machine, two threads under load wait for each other at every parallel region
(benchmarks/README.md measures it). Targets: authors' form / ReinMax-Rao >= 10,
ReinMax-Rao / GR-MCK <= 2.
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
from reinmax.experiments import records  # noqa: E402

FULL_SHAPES = [(100, 30, 10), (200, 32, 64)]
QUICK_SHAPES = [(20, 6, 10), (8, 4, 16)]


def authors_mean_jacobian(logits, D, tau, E):
    """``rao_gumbel_v3`` of the authors' code: the average over the R draws of
    ``J(softmax((theta' + G_r)/tau))/tau`` at ``theta' = log((softmax(logits) + D)/2)``, as
    ``(B*L, C, C)`` matrices. ``E``: the Exp(1) draws, shape ``logits.shape + (R,)`` (they draw
    them with ``exponential_``; a test passes its own)."""
    pivot = (0.5 * (logits.detach().softmax(dim=-1) + D)).log()
    chosen = D.bool()
    Ei = E[chosen].view(logits.shape[:-1] + (E.shape[-1],))      # the sampled category's draws
    wei = pivot.exp()
    Z = wei.sum(dim=-1, keepdim=True)
    EiZ = (Ei / Z).unsqueeze(-2)
    new_logits = E / wei.unsqueeze(-1)
    new_logits[chosen] = 0.0
    new_logits = -(new_logits + EiZ + 1e-20).log()
    q = (new_logits / tau).softmax(dim=-2)
    B, L, C, R = q.shape
    q = q.reshape(B * L, C, R).permute((0, 2, 1))                # (B*L, R, C)
    jacobian = torch.diag_embed(q) - torch.matmul(q.unsqueeze(-1), q.unsqueeze(-2))
    return jacobian.mean(dim=1) / tau


def authors_backward(logits, D, y_soft, g, h, tau, draw, chunk_rows):
    """Mode ``reinmax_v3``'s backward: ``2 Jbar g - 1/2 J(pi) g + J(pi) h``, centred. ``draw(part)``
    gives the Exp(1) draws of each chunk of ``chunk_rows`` batch rows."""
    C = logits.shape[-1]
    jacobian = torch.cat([authors_mean_jacobian(part, D_part, tau, draw(part))
                          for part, D_part in zip(logits.split(chunk_rows), D.split(chunk_rows))])
    g = g.reshape(-1, C)
    h = h.reshape(-1, C)
    grad_1 = 2 * torch.matmul(jacobian, g.unsqueeze(-1)).squeeze(-1)
    grad_0 = (-0.5 * g + h) * y_soft
    grad_0 = grad_0 - y_soft * grad_0.sum(dim=-1, keepdim=True)
    grad = grad_0 + grad_1
    return (grad - grad.mean(dim=-1, keepdim=True)).reshape(logits.shape)


def chunk_rows(shape, R, budget):
    """Batch rows per chunk of the authors' form: all of them unless one (rows, L, R, C, C)
    tensor would exceed ``budget`` elements."""
    B, L, C = shape
    return max(1, min(B, budget // (L * R * C * C)))


class _AuthorsForm(torch.autograd.Function):
    """ReinMax-Rao as the authors' code computes it (module docstring)."""

    @staticmethod
    def forward(ctx, logits, tau, R, budget):
        y_soft = logits.view(-1, logits.size()[-1]).softmax(dim=-1)
        sample = torch.multinomial(y_soft, num_samples=1, replacement=True)
        one_hot = torch.zeros_like(y_soft).scatter_(-1, sample, 1.0)
        ctx.save_for_backward(one_hot, logits, y_soft)
        ctx.tau, ctx.R, ctx.budget = tau, R, budget
        return one_hot.view(logits.shape), y_soft.view(logits.shape)

    @staticmethod
    def backward(ctx, g, h):
        one_hot, logits, y_soft = ctx.saved_tensors
        R = ctx.R

        def draw(part):
            return torch.empty(part.shape + (R,), dtype=part.dtype).exponential_()
        grad = authors_backward(logits, one_hot.reshape(logits.shape), y_soft, g, h, ctx.tau, draw,
                                chunk_rows(tuple(logits.shape), R, ctx.budget))
        return grad, None, None, None


def authors_form(logits, tau=1.0, R=100, budget=1 << 28):
    if logits.dim() != 3:
        raise ValueError(f"the authors' form takes (batch, L, C) logits; got shape {tuple(logits.shape)}")
    return _AuthorsForm.apply(logits, tau, R, budget)


def step(method, logits, weights):
    leaf = logits.clone().requires_grad_(True)
    y, _ = method(leaf, 1.0)
    (y * weights).sum().backward()
    return leaf.grad


def summary(values):
    """Median and interquartile range (the quartiles by statistics.quantiles' default method)."""
    values = sorted(values)
    if len(values) == 1:
        return {"median": values[0], "q25": values[0], "q75": values[0], "n": 1}
    q25, q50, q75 = statistics.quantiles(values, n=4)
    return {"median": statistics.median(values), "q25": q25, "q75": q75, "n": len(values),
            "min": values[0], "max": values[-1]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, 2 rounds (a smoke test)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (default 7)")
    parser.add_argument("--draws", type=int, default=100, help="R = K (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--authors-budget", type=int, default=1 << 28,
                        help="most elements of one (chunk, L, R, C, C) tensor of the authors' form")
    parser.add_argument("--out", help="also write the medians and ratios as JSON here (atomically)")
    args = parser.parse_args(argv)
    for option in ("rounds", "draws", "threads", "authors_budget"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be a positive integer; got {getattr(args, option)}")
    torch.set_num_threads(args.threads)
    rounds = 2 if args.quick else args.rounds
    torch.manual_seed(0)
    methods = {
        "ReinMax-Rao": reinmax.get_estimator("ReinMax-Rao", R=args.draws),
        "authors' form": lambda logits, tau: authors_form(logits, tau, args.draws, args.authors_budget),
        "GR-MCK": reinmax.get_estimator("GR-MCK", K=args.draws),
    }
    load_at_start = os.getloadavg()
    print(f"R = K = {args.draws}, {rounds} interleaved rounds, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average at start {load_at_start[0]:.2f}")
    rows = []
    for shape in (QUICK_SHAPES if args.quick else FULL_SHAPES):
        logits = torch.randn(shape)
        weights = torch.randn(shape)
        for method in methods.values():          # warm-up
            step(method, logits, weights)
        wall = {name: [] for name in methods}
        cpu = {name: [] for name in methods}
        names = list(methods)
        for r in range(rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                start, start_cpu = time.perf_counter(), time.process_time()
                step(methods[name], logits, weights)
                wall[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        row = {"shape": list(shape),
               "authors_chunks": -(-shape[0] // chunk_rows(shape, args.draws, args.authors_budget))}
        for clock, times in (("wall", wall), ("cpu", cpu)):
            row[clock] = {
                "seconds": {name: summary(t) for name, t in times.items()},
                "authors_over_rao": summary([a / b for a, b in zip(times["authors' form"], times["ReinMax-Rao"])]),
                "rao_over_grmck": summary([a / b for a, b in zip(times["ReinMax-Rao"], times["GR-MCK"])])}
        w = row["wall"]
        print(f"shape {shape}: median seconds per step (wall) " + ", ".join(
            f"{name} {s['median']:.4f}" for name, s in w["seconds"].items()))
        for key, label, target in (("authors_over_rao", "authors' form / ReinMax-Rao", ">= 10"),
                                   ("rao_over_grmck", "ReinMax-Rao / GR-MCK       ", "<= 2")):
            s, c = w[key], row["cpu"][key]
            print(f"    {label}: median {s['median']:.2f} [IQR {s['q25']:.2f}-{s['q75']:.2f}] wall, "
                  f"{c['median']:.2f} [{c['q25']:.2f}-{c['q75']:.2f}] CPU; target {target}")
        rows.append(row)
    load_at_end = os.getloadavg()
    print(f"load average at end {load_at_end[0]:.2f}")
    if args.out:
        records.write_json(args.out, {
            "benchmark": "beyond", "draws": args.draws, "rounds": rounds, "quick": args.quick,
            "threads": torch.get_num_threads(), "authors_budget": args.authors_budget,
            "nice": os.nice(0), "targets": {"authors_over_rao": ">= 10", "rao_over_grmck": "<= 2"},
            "load_average_at_start": load_at_start, "load_average_at_end": load_at_end,
            "shapes": rows, "provenance": records.provenance("cpu")})


if __name__ == "__main__":
    main()
