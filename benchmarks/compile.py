"""torch.compile (inductor) against eager: estimator steps at the paper's Table 3 shapes and a
compiled MNIST-VAE training step with ReinMax against the same step with F.gumbel_softmax.

    .venv/bin/python benchmarks/compile.py                  # several minutes (inductor compiles)
    .venv/bin/python benchmarks/compile.py --quick --out /tmp/compile.json   # smoke test
    .venv/bin/python benchmarks/compile.py --fallback-random   # ATen's random numbers when compiled

What one step is:
  Table 3 shapes  y_hard, y_soft = estimator(logits, tau); loss = <y_hard, w1> + <y_soft, w2>;
                  loss.backward(). QP: logits (512, 128, 2) expanded from one (128, 2) parameter,
                  as in benchmarks/table3.py; MNIST-VAE: (100, 30, 10). tau = 1.
  MNIST-VAE step  the categorical VAE of reinmax.models.vae (10 categories x 30 latents, one
                  member, batch 100): encode, draw codes with the estimator from the global
                  generator, -ELBO, backward, Adam update (outside the compiled function).
Eager and compiled run in the same process, interleaved round by round (every variant once per
round, rotated order); each ratio eager / compiled is taken within a round and summarised by its
median over rounds, so that load on the machine hits both alike. Input checks are off
(``reinmax.set_validate_args(False)``) for every variant, eager included, as a compiled full graph
needs. The results go to results/benchmarks/compile.json (written atomically).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F

import reinmax
from reinmax.models.vae import CategoricalVAE

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "benchmarks" / "compile.json"
SHAPES = {"QP (512, 128, 2)": (512, 128, 2), "MNIST-VAE (100, 30, 10)": (100, 30, 10)}
ESTIMATORS = ["ST", "ReinMax", "STGS", "GST-1.0"]


def estimator_step(name, shape, given_uniforms=False):
    """One step's loss and its parameters; with ``given_uniforms`` the loss takes the uniform
    numbers as an argument (``uniforms=``), drawn by ATen outside the compiled function."""
    fn = reinmax.get_estimator(name)
    g = torch.Generator().manual_seed(0)
    if shape[-1] == 2:    # the QP problem: one parameter row expanded over the batch
        theta = torch.randn(shape[1:], generator=g).requires_grad_(True)
        make = lambda: theta.expand(shape)       # noqa: E731
        parameters = [theta]
    else:
        logits = torch.randn(shape, generator=g).requires_grad_(True)
        make = lambda: logits                     # noqa: E731
        parameters = [logits]
    w1, w2 = torch.randn(shape, generator=g), torch.randn(shape, generator=g)

    def loss(*uniforms):
        y_hard, y_soft = fn(make(), 1.0, **({"uniforms": uniforms[0]} if uniforms else {}))
        return (y_hard * w1).sum() + (y_soft * w2).sum()
    if given_uniforms:
        return loss, parameters, lambda: (torch.rand(shape[:-1]),)
    return loss, parameters


def vae_step(kind):
    model = CategoricalVAE(10, 30, [0])
    x = torch.rand(1, 100, 784, generator=torch.Generator().manual_seed(0))

    def loss():
        logits = model.encode(x)
        if kind == "ReinMax":
            codes, _ = reinmax.reinmax(logits, 1.3)
        else:
            codes = F.gumbel_softmax(logits, 1.3, hard=True)
        return (model.reconstruction(x, codes).mean(-1) + model.kl(logits).mean(-1)).sum()
    return loss, list(model.parameters())


def runner(loss, parameters, compiled, optimizer=None, draw=tuple):
    """A training step; ``draw`` (eager, outside the compiled loss) makes the loss's arguments."""
    loss = torch.compile(loss) if compiled else loss

    def step():
        for p in parameters:
            p.grad = None
        loss(*draw()).backward()
        if optimizer is not None:
            optimizer.step()
    return step


def seconds(step, count):
    start = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - start) / count


def measure(pairs, rounds, block):
    """pairs: label -> (eager step, compiled step). Per-round seconds of each, interleaved."""
    steps = {(label, mode): fns[i] for label, fns in pairs.items()
             for i, mode in enumerate(("eager", "compiled"))}
    compile_s = {}
    for key, step in steps.items():          # warm-up: compiles (timed), then settles
        start = time.perf_counter()
        step()
        step()
        if key[1] == "compiled":
            compile_s[key[0]] = time.perf_counter() - start
    count = {key: max(1, int(block / max(seconds(step, 2), 1e-6))) for key, step in steps.items()}
    samples = {key: [] for key in steps}
    keys = list(steps)
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            samples[key].append(seconds(steps[key], count[key]))
    rows = {}
    for label in pairs:
        eager, compiled = samples[(label, "eager")], samples[(label, "compiled")]
        ratios = [e / c for e, c in zip(eager, compiled)]
        rows[label] = {"eager_ms": 1e3 * statistics.median(eager),
                       "compiled_ms": 1e3 * statistics.median(compiled),
                       "speedup_median": statistics.median(ratios),
                       "speedup_min": min(ratios), "speedup_max": max(ratios),
                       "speedup_per_round": ratios,
                       "compiled_ms_per_round": [1e3 * c for c in compiled],
                       "compile_and_first_steps_s": compile_s[label]}
        print(f"{label:40s} eager {rows[label]['eager_ms']:8.3f} ms  compiled "
              f"{rows[label]['compiled_ms']:8.3f} ms  eager/compiled {rows[label]['speedup_median']:.2f} "
              f"(range {min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--block", type=float, default=0.1, help="seconds per timed block")
    parser.add_argument("--quick", action="store_true", help="ST only, 2 rounds (a smoke test)")
    parser.add_argument("--fallback-random", action="store_true",
                        help="compile with torch._inductor.config.fallback_random = True (random "
                             "numbers from ATen's generator instead of inductor's own, in-kernel "
                             "one); default output results/benchmarks/compile_fallback_random.json")
    parser.add_argument("--only", choices=("all", "estimators", "vae"), default="all",
                        help="time only the estimator steps or only the VAE steps (with --only vae "
                             "use a longer --block: a VAE step takes 10-20 ms)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.out is None:
        args.out = OUT.with_name("compile_fallback_random.json") if args.fallback_random else OUT
    if args.fallback_random:
        inductor_config.fallback_random = True
    torch.set_num_threads(args.threads)
    # Every variant compiles the same `loss` code object with other closures: without a higher
    # limit, dynamo stops recompiling after 8 and the later "compiled" variants would run eagerly.
    torch._dynamo.config.recompile_limit = 64
    reinmax.set_validate_args(False)
    names = ["ST"] if args.quick else ESTIMATORS
    rounds = 2 if args.quick else args.rounds
    print(f"torch {torch.__version__}, {args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"load average {os.getloadavg()}", flush=True)

    pairs = {}
    for shape_label, shape in (SHAPES.items() if args.only != "vae" else ()):
        for name in names:
            loss, parameters = estimator_step(name, shape)
            pairs[f"{name} {shape_label}"] = (runner(loss, parameters, False),
                                              runner(loss, parameters, True))
    # The uniform numbers drawn eagerly by ATen and passed as uniforms= (ST, ReinMax, GST): what
    # the compiled estimator costs without inductor's in-kernel random number generator.
    for name in ([] if args.quick or args.only == "vae" else ["ST", "ReinMax", "GST-1.0"]):
        shape_label, shape = next(iter(SHAPES.items()))
        loss, parameters, draw = estimator_step(name, shape, given_uniforms=True)
        pairs[f"{name} {shape_label}, uniforms="] = (runner(loss, parameters, False, draw=draw),
                                                     runner(loss, parameters, True, draw=draw))
    table3 = measure(pairs, rounds, args.block) if pairs else {}

    pairs = {}
    for kind in ([] if args.only == "estimators" else
                 ["ReinMax"] if args.quick else ["ReinMax", "F.gumbel_softmax"]):
        steps = []
        for compiled in (False, True):
            loss, parameters = vae_step(kind)
            optimizer = torch.optim.Adam(parameters, lr=1e-3)
            steps.append(runner(loss, parameters, compiled, optimizer))
        pairs[f"MNIST-VAE step, {kind}"] = tuple(steps)
    vae = measure(pairs, rounds, args.block) if pairs else {}
    relative = None
    if len(vae) == 2:
        # The target compares two gains; per round, ReinMax's gain over F.gumbel_softmax's, both
        # measured in that round, so that load that drifts between rounds cancels.
        ours, theirs = (vae[f"MNIST-VAE step, {k}"]["speedup_per_round"]
                        for k in ("ReinMax", "F.gumbel_softmax"))
        per_round = sorted(a / b for a, b in zip(ours, theirs))
        quartiles = statistics.quantiles(per_round, n=4) if len(per_round) > 1 else per_round * 3
        relative = {"median": statistics.median(per_round), "q1": quartiles[0], "q3": quartiles[-1],
                    "rounds_at_least_1": sum(r >= 1 for r in per_round), "rounds": len(per_round)}
        # And the compiled steps' own times, round by round: ReinMax's over F.gumbel_softmax's.
        ours, theirs = (vae[f"MNIST-VAE step, {k}"]["compiled_ms_per_round"]
                        for k in ("ReinMax", "F.gumbel_softmax"))
        times = [a / b for a, b in zip(ours, theirs)]
        relative["compiled_time_ratio_median"] = statistics.median(times)
        relative["compiled_time_ratio_rounds_below_1"] = sum(t < 1 for t in times)
        print(f"VAE step: ReinMax's gain / F.gumbel_softmax's gain, per round: median "
              f"{relative['median']:.3f} (quartiles {relative['q1']:.3f}-{relative['q3']:.3f}; "
              f">= 1 in {relative['rounds_at_least_1']} of {len(per_round)} rounds); compiled step "
              f"time, ReinMax's / F.gumbel_softmax's: median {relative['compiled_time_ratio_median']:.3f} "
              f"(< 1 in {relative['compiled_time_ratio_rounds_below_1']} of {len(times)} rounds)", flush=True)

    record = {"torch": torch.__version__, "threads": args.threads, "rounds": rounds,
              "backend": "inductor", "validate_args": False, "quick": args.quick,
              "fallback_random": args.fallback_random,
              "machine": platform.platform(), "load_average_start": os.getloadavg(),
              "table3_shapes": table3, "vae_step": vae, "vae_relative_gain": relative,
              "only": args.only, "block_s": args.block,
              "date": time.strftime("%Y-%m-%d", time.gmtime())}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=args.out.parent, delete=False, suffix=".tmp") as f:
        json.dump(record, f, indent=1)
    os.replace(f.name, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
