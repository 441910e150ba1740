"""The command line: ``python -m reinmax.experiments.nas --out-dir DIR`` searches every arm and
seed given, retrains the found cells and ``--random-cells`` random ones, resumably (rerunning the
same command continues where it stopped). ``--paper-scale`` starts from NATS-Bench's protocol
(CIFAR-10, C=16, N=5, 100 epochs, seeds 777 888 999, no retraining); the other options override."""
import argparse
from typing import Optional, Sequence

from reinmax.experiments import layer
from .config import ARMS, NASConfig
from .training import run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.nas",
                                     description="GDAS on the NATS-Bench cell with STGS or "
                                     "ReinMax; rerunning the same command resumes.")
    parser.add_argument("--out-dir", required=True, help="records and checkpoints go here")
    parser.add_argument("--paper-scale", action="store_true")
    parser.add_argument("--dataset", choices=["mnist", "cifar10", "cifar100", "ImageNet16-120"])
    parser.add_argument("--arms", nargs="+", help=f"among {', '.join(ARMS)}")
    parser.add_argument("--seeds", type=int, nargs="+")
    for name in ("channels", "cells", "epochs", "batch-size", "search-images", "retrain-epochs",
                 "retrain-images", "test-images", "random-cells", "random-seed", "retrain-seed"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--data-root")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("paper_scale",)}
    config = NASConfig.paper_scale(**overrides) if args.paper_scale else NASConfig(**overrides)
    return run(config)
