"""Milliseconds per GDAS search step (weight update + architecture update) with STGS and with
ReinMax, in one run, through the experiment's own ``search_step``.

    .venv/bin/python benchmarks/nas.py                       # the book's MNIST setting, CPU
    .venv/bin/python benchmarks/nas.py --setting paper --device cuda

``--setting mnist``: C=8, N=1, 1x28x28 images (the study scale); ``--setting paper``: C=16, N=5,
3x32x32 synthetic CIFAR-shaped tensors (NATS-Bench's network), and the epoch and 100-epoch search
cost estimated from the step (25,000 / 64 = 391 steps per epoch on CIFAR-10). The estimators
alternate step by step (STGS, ReinMax, STGS, ...) on the same network and batches, so a busy
machine slows both alike; the median over steps is reported, after warm-up steps.
"""
import argparse
import json
import statistics
import time

import torch

import reinmax
from reinmax.experiments import records
from reinmax.experiments.nas import NASConfig
from reinmax.experiments.nas.training import arch_optimizer, build_network, search_step, weight_optimizer

SETTINGS = {"mnist": dict(dataset="mnist", channels=8, cells=1, shape=(1, 28, 28)),
            "paper": dict(dataset="cifar10", channels=16, cells=5, shape=(3, 32, 32))}
ARM_OF = {"STGS": "GDAS+STGS", "ReinMax": "GDAS+ReinMax"}
PAPER_STEPS_PER_EPOCH = 391          # ceil(25,000 / 64)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setting", choices=sorted(SETTINGS), default="mnist")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per estimator")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    s = SETTINGS[args.setting]
    config = NASConfig(dataset=s["dataset"], channels=s["channels"], cells=s["cells"],
                       arms=list(ARM_OF.values()), device=args.device, retrain_epochs=0)
    device = config.resolved_device()
    network = build_network(config, None, 0, device)
    w_opt, _ = weight_optimizer(config, network, 1000)
    a_opts = {name: arch_optimizer(network, config, arm) for name, arm in ARM_OF.items()}
    generator = torch.Generator(device=device).manual_seed(0)
    data = torch.Generator().manual_seed(1)

    def batch():
        x = torch.randn(config.batch_size, *s["shape"], generator=data).to(device)
        return x, torch.randint(0, 10, (config.batch_size,), generator=data).to(device)
    times = {name: [] for name in ARM_OF}
    cpu_times = {name: [] for name in ARM_OF}      # process CPU time: a busy machine does not inflate it
    for step in range(args.warmup + args.steps):
        for name in ARM_OF:
            estimator = reinmax.get_estimator(name)
            b, v = batch(), batch()
            if device.type == "cuda":
                torch.cuda.synchronize()
            began, began_cpu = time.perf_counter(), time.process_time()
            search_step(network, estimator, 1.0, w_opt, a_opts[name], b, v, generator)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= args.warmup:
                times[name].append(time.perf_counter() - began)
                cpu_times[name].append(time.process_time() - began_cpu)
    name_of_device = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"GDAS search step ({args.setting}: C={s['channels']}, N={s['cells']}, batch "
          f"{config.batch_size}, {'x'.join(map(str, s['shape']))}) on {name_of_device}, "
          f"torch threads {torch.get_num_threads()}, median of {args.steps} steps")
    result = {"setting": args.setting, "device": name_of_device, "threads": torch.get_num_threads(),
              "steps": args.steps, "ms_per_step": {}, "provenance": records.provenance(device)}
    for name, values in times.items():
        ms = 1e3 * statistics.median(values)
        result["ms_per_step"][name] = ms
        cpu_ms = 1e3 * statistics.median(cpu_times[name])
        result.setdefault("cpu_ms_per_step", {})[name] = cpu_ms
        line = f"  {name:8s} {ms:8.1f} ms per search step"
        if args.setting == "paper":
            epoch = ms * PAPER_STEPS_PER_EPOCH / 1e3
            line += f"; epoch of {PAPER_STEPS_PER_EPOCH} steps ~ {epoch / 60:.1f} min, 100 epochs ~ {epoch * 100 / 3600:.1f} h"
            result.setdefault("search_hours_100_epochs", {})[name] = epoch * 100 / 3600
            result.setdefault("search_cpu_hours_100_epochs", {})[name] = cpu_ms * PAPER_STEPS_PER_EPOCH * 100 / 3.6e6
            line += f" (CPU time {cpu_ms:.0f} ms a step, 100 epochs ~ {cpu_ms * PAPER_STEPS_PER_EPOCH * 100 / 3.6e6:.1f} CPU h)"
            result["paper_steps_per_epoch"] = PAPER_STEPS_PER_EPOCH
        print(line)
    ratio = result["ms_per_step"]["ReinMax"] / result["ms_per_step"]["STGS"]
    result["reinmax_over_stgs"] = ratio
    print(f"  ReinMax / STGS: {ratio:.3f} (the estimator acts on a 6x5 matrix once per forward pass; "
          f"the network dominates)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
