"""The paper's Table 3: time per epoch and peak memory of each estimator, on polynomial
programming (QP) and MNIST-VAE 10x30, beside the paper's numbers.

    .venv/bin/python benchmarks/table3.py                 # about 10 minutes; writes
                                                          # results/benchmarks/table3.json
    .venv/bin/python benchmarks/table3.py --unfused       # also GR-MCK's unfused reference
                                                          # (--unfused MNIST-VAE: there only)
    .venv/bin/python benchmarks/table3.py --quick --out /tmp/t3.json     # seconds (smoke test)

What one step is (forward + backward, parameter updates skipped, as the paper's Appendix F.3
says it measured):
  QP         theta (128 binary variables, one model) expanded to a batch of 512 samples,
             y = estimator(theta, tau), loss = mean of sum_i |y_i0 - 0.45|^2 / 128, backward.
             An epoch is 200 steps (the authors' polynomial script: 40 epochs x 200 steps).
  MNIST-VAE  the categorical VAE of reinmax.models.vae, 10 categories x 30 latent variables,
             one seed, a batch of 100 random images (speed does not depend on them), -ELBO with
             the estimator's backward. An epoch is 600 steps (60,000 images, batch 100).
Each method's step is timed over a few steps and the time per epoch is steps x (median time
per step); the ratio to ST is taken round by round (every method runs once per round, in a
rotated order, so that other load on the machine hits all alike) and summarised by its median.
Wall-clock and CPU time (``time.process_time``, all threads of this process) are both kept: on
a shared machine the CPU time is the steadier, and the two agree when the machine is quiet.

Peak memory: each (problem, method) runs in a fresh process that builds the model, warms the
code up on a batch of 2, resets the kernel's resident-set high-water mark (``/proc/self/clear_refs``)
and reads its rise (``VmHWM``) over one full step, as benchmarks/estimators.py does (the CPU
allocator has no peak counter). That is the memory a step allocates, the parameters'
gradients included; the parameters themselves, which the paper's GPU figure presumably also
counts, are printed separately. ``--quick`` measures memory for ST and the first GR-MCK only.

The paper's row (results/paper/tables.json) is printed beside ours. Its figures are an idle
A6000 GPU's and ours a CPU's, so the comparable quantities are the ratios to ST.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

import reinmax
from reinmax import estimators, report
from reinmax.experiments import polynomial as P
from reinmax.experiments.vae import TABLE8
from reinmax.models.vae import CategoricalVAE, seed_generators

sys.path.insert(0, str(Path(__file__).resolve().parent))
from estimators import status_kib  # noqa: E402  (the same /proc reader as benchmarks/estimators.py)

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "benchmarks" / "table3.json"
PAPER_KEYS = {"QP": "QP_128_binary_latents_batch_512", "MNIST-VAE": "MNIST_VAE_10x30"}
STEPS_PER_EPOCH = {"QP": 200, "MNIST-VAE": 600}
QP_TAU = 1.0            # the paper's default temperature ("without specification, tau = 1")
VAE_CONFIG = "10x30"    # Table 8's temperatures for it, per method


def columns(ks, unfused):
    """(label, estimator name, options, fused) for the paper's columns, and unfused GR-MCK."""
    table = [(name, name, {}, True) for name in ("ReinMax", "ST", "STGS", "GST-1.0")]
    table += [(f"GR-MCK{k}", "GR-MCK", {"K": k}, True) for k in ks]
    if unfused:
        table += [(f"GR-MCK{k} unfused", "GR-MCK", {"K": k}, False) for k in ks]
    return table


def sizes(quick):
    """Problem sizes: the paper's, or tiny ones for a smoke test."""
    if quick:
        return {"QP": {"L": 8, "batch": 16}, "MNIST-VAE": {"C": 10, "L": 30, "batch": 4}}
    return {"QP": {"L": 128, "batch": 512}, "MNIST-VAE": {"C": 10, "L": 30, "batch": 100}}


def make_step(problem, name, options, fused, size, batch=None):
    """One step of ``problem`` with one estimator: forward and backward, no parameter update."""
    estimator = reinmax.get_estimator(name, **options)
    batch = batch or size["batch"]
    if problem == "QP":
        theta = P.initial_theta(1, size["L"])[0].requires_grad_(True)
        c = torch.full((size["L"],), 0.45)

        def loss():
            y, _ = estimator(theta.expand(batch, size["L"], 2), QP_TAU)
            return P.polynomial_loss(y, c, 2.0).mean()
        parameters = [theta]
    else:
        model = CategoricalVAE(size["C"], size["L"], [0])
        x = torch.rand(1, batch, 784, generator=torch.Generator().manual_seed(0))
        generators = seed_generators([0], "noise")
        tau = TABLE8[VAE_CONFIG][name][2]

        def loss():
            value, _ = model.neg_elbo(x, estimator, tau, generators,
                                     noisy=reinmax.estimators.registry.get_spec(name).draws_noise)
            return value.sum()
        parameters = list(model.parameters())

    def step():
        with estimators.gumbel_rao_kernel(fused=fused):   # unfused columns: the reference path
            for parameter in parameters:
                parameter.grad = None
            loss().backward()
    step.parameter_bytes = sum(p.numel() * p.element_size() for p in parameters)
    return step


def seconds(step, count):
    """(wall, CPU) seconds per step over ``count`` steps."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        step()
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def time_interleaved(steps, rounds, block, slow_rounds):
    """Per-round (wall, CPU) seconds per step of every method. Each round runs every method
    for about ``block`` seconds (at least one step); methods slower than a second a step run in
    the first ``slow_rounds`` rounds only."""
    once = {label: seconds(step, 1) for label, step in steps.items()}     # also a warm-up
    count = {label: max(1, int(block / max(t[0], 1e-6))) for label, t in once.items()}
    samples = {label: [] for label in steps}
    labels = list(steps)
    for r in range(rounds):
        for label in labels[r % len(labels):] + labels[:r % len(labels)]:
            if once[label][0] > 1.0 and r >= slow_rounds:
                continue
            samples[label].append(seconds(steps[label], count[label]))
    return samples


def memory_worker(spec):
    """In a fresh process: the rise of the resident high-water mark over one step."""
    torch.set_num_threads(spec["threads"])
    problem, size = spec["problem"], spec["size"]
    name, options, fused = spec["name"], spec["options"], spec["fused"]
    make_step(problem, name, options, fused, size, batch=2)()            # warm up the code
    step = make_step(problem, name, options, fused, size)
    with open("/proc/self/clear_refs", "w") as stream:
        stream.write("5")                                                 # VmHWM := VmRSS
    before = status_kib("VmRSS")
    step()
    return {"peak_mib": (status_kib("VmHWM") - before) / 1024,
            "parameter_mib": step.parameter_bytes / 2 ** 20}


def measure_memory(problem, size, name, options, fused, threads):
    spec = {"problem": problem, "size": size, "name": name, "options": options, "fused": fused,
            "threads": threads}
    command = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", json.dumps(spec)]
    # glibc then maps every block of 64 KiB or more afresh, so freed pages are not reused unseen
    environment = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=environment)
    if done.returncode != 0:
        return {"error": done.stderr.strip()[-300:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def parse_paper_cell(cell):
    """'0.2s / 6.5Mb' -> (0.2 seconds, 6.5 MB); the paper's Mb and Gb are read as MB and GB."""
    time_text, memory_text = (part.strip() for part in cell.split("/"))
    units = {"Mb": 1.0, "Gb": 1024.0}
    return float(time_text.rstrip("s")), float(memory_text[:-2]) * units[memory_text[-2:]]


def paper_rows():
    table = reinmax.experiments.records.paper_table("table3_time_per_epoch_s_and_peak_memory")
    rows = {}
    for problem, key in PAPER_KEYS.items():
        cells = dict(zip(table["columns"], table[key]))
        parsed = {label: parse_paper_cell(cell) for label, cell in cells.items()}
        st_time, st_memory = parsed["ST"]
        rows[problem] = {label: {"text": cells[label], "seconds_per_epoch": t, "memory_mb": m,
                                 "time_ratio_to_st": t / st_time, "memory_ratio_to_st": m / st_memory}
                         for label, (t, m) in parsed.items()}
    return rows, table["hardware"]


def summarise(samples, memory, steps_per_epoch):
    rows = {}
    for label, values in samples.items():
        row = {"rounds": len(values)}
        for clock, index in (("wall", 0), ("cpu", 1)):
            per_step = statistics.median(v[index] for v in values)
            # ST ran in every round a slower method ran in (its first rounds): ratio by round
            pairs = [v[index] / s[index] for v, s in zip(values, samples["ST"])]
            row[clock] = {"seconds_per_step": per_step,
                          "seconds_per_epoch": per_step * steps_per_epoch,
                          "ratio_to_st": statistics.median(pairs),
                          "ratio_to_st_range": [min(pairs), max(pairs)]}
        row["memory"] = memory.get(label)
        if row["memory"] and "peak_mib" in row["memory"] and memory.get("ST", {}).get("peak_mib"):
            row["memory"]["ratio_to_st"] = row["memory"]["peak_mib"] / memory["ST"]["peak_mib"]
        rows[label] = row
    return rows


def print_table(problem, rows, paper, hardware):
    # One formatting for this console table and the book's (reinmax.reporting.tables.cost_rows).
    header, body = report.cost_rows(rows, paper, hardware)
    print(textwrap.indent(report.text_table(header, body, first_width=26), "  "))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="seconds: tiny sizes (a smoke test)")
    parser.add_argument("--problems", nargs="+", default=list(PAPER_KEYS), choices=list(PAPER_KEYS))
    parser.add_argument("--ks", type=int, nargs="+", help="GR-MCK sample counts "
                        "(default: the paper's 100 300 1000; quick 2 3)")
    parser.add_argument("--unfused", nargs="*", choices=list(PAPER_KEYS), metavar="PROBLEM",
                        help="also time GR-MCK's unfused reference (the code before the fused "
                             "Function), for a before/after comparison: on the problems named, "
                             "or on all when none is")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 2)")
    parser.add_argument("--slow-rounds", type=int, default=3,
                        help="rounds for methods slower than 1 s a step (default 3)")
    parser.add_argument("--block", type=float,
                        help="seconds each method runs per round (default 0.3; quick 0.02)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--out", help=f"JSON results (default {OUT.relative_to(ROOT)}; "
                        "with --quick, none unless given)")
    parser.add_argument("--memory-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return
    for option in ("rounds", "threads", "ks"):
        value = getattr(args, option)
        values = value if isinstance(value, list) else [value]
        if value is not None and any(v < 1 for v in values):
            parser.error(f"--{option.replace('_', '-')} must be positive integers; got {value}")
    if args.slow_rounds < 1 or not (args.block is None or args.block > 0):
        parser.error(f"--slow-rounds must be >= 1 and --block > 0; got {args.slow_rounds}, {args.block}")
    block = args.block or (0.02 if args.quick else 0.3)
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 7)
    ks = args.ks or ([2, 3] if args.quick else [100, 300, 1000])
    out = args.out or (None if args.quick else str(OUT))
    paper, hardware = paper_rows()
    load = os.getloadavg()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} at start; {rounds} interleaved rounds "
          f"({args.slow_rounds} for steps over 1 s)")
    record = {"benchmark": "table3", "arguments": vars(args), "rounds": rounds, "ks": ks,
              "load_average_at_start": load, "problems": {}}
    began = time.perf_counter()
    for problem in args.problems:
        size = sizes(args.quick)[problem]
        table = columns(ks, args.unfused is not None and (not args.unfused or problem in args.unfused))
        steps = {label: make_step(problem, name, options, fused, size)
                 for label, name, options, fused in table}
        samples = time_interleaved(steps, rounds, block, args.slow_rounds)
        # --quick: two memory subprocesses per problem (each imports torch: seconds)
        measured = [row for row in table if not args.quick or row[0] in ("ST", f"GR-MCK{ks[0]}")]
        memory = {} if args.no_memory else {
            label: measure_memory(problem, size, name, options, fused, torch.get_num_threads())
            for label, name, options, fused in measured}
        rows = summarise(samples, memory, STEPS_PER_EPOCH[problem])
        taus = ({label: QP_TAU for label in rows} if problem == "QP" else
                {label: TABLE8[VAE_CONFIG][name][2] for label, name, _, _ in table})
        parameters = next(iter(steps.values())).parameter_bytes / 2 ** 20
        print(f"\n{problem} {size}, epoch = {STEPS_PER_EPOCH[problem]} steps, forward + backward "
              f"without the update; model parameters {parameters:.2f} MiB (in the peaks: their gradients only); "
              f"tau {taus if problem != 'QP' else QP_TAU}")
        print_table(problem, rows, paper[problem], hardware)
        record["problems"][problem] = {"size": size, "steps_per_epoch": STEPS_PER_EPOCH[problem],
                                       "tau": taus, "parameter_mib": parameters, "rows": rows,
                                       "paper": paper[problem]}
    record["load_average_at_end"] = os.getloadavg()
    record["seconds"] = time.perf_counter() - began
    record["paper_hardware"] = hardware
    print(f"\n{record['seconds']:.0f} s; load average {record['load_average_at_end'][0]:.2f} at end")
    if out:
        record["provenance"] = reinmax.experiments.records.provenance("cpu")
        reinmax.experiments.records.write_json(Path(out), record)
        print(f"written to {out}")


if __name__ == "__main__":
    main()
