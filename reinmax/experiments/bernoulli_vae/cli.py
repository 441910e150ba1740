"""The command line: ``python -m reinmax.experiments.bernoulli_vae --scale study --out-dir DIR``
trains every (K, method, seed) given, resumably (rerunning the same command resumes)."""
import argparse
from typing import Optional, Sequence

from reinmax.experiments import layer
from .config import DATASETS, PROTOCOLS, SCALES, BernoulliVAEConfig
from .training import run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.bernoulli_vae",
                                     description="The 2x200 Bernoulli VAE (Table 6, Figure 5).")
    parser.add_argument("--out-dir", required=True, help="records and checkpoints go here")
    parser.add_argument("--scale", default="study", choices=list(SCALES))
    parser.add_argument("--dataset", default="mnist", choices=list(DATASETS))
    parser.add_argument("--protocol", default="baselines", choices=list(PROTOCOLS))
    parser.add_argument("--methods", nargs="+", default=["ReinMax"])
    parser.add_argument("--evaluations", "-K", type=int, nargs="+", default=[2])
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--eval-subset", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="every method's learning rate")
    parser.add_argument("--tau", type=float, default=None,
                        help="the straight-through methods' temperature")
    parser.add_argument("--device", default="auto")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    changes = {k: v for k, v in dict(seeds=args.seeds, steps=args.steps,
                                      eval_every=args.eval_every,
                                      eval_subset=args.eval_subset).items() if v is not None}
    overrides = {}
    for method in args.methods:
        values = {}
        if args.lr is not None:
            values["lr"] = args.lr
        if args.tau is not None and method in ("ReinMax", "ST", "STGS", "GR-MCK"):
            values["tau"] = args.tau
        if values:
            overrides[method] = values
    config = BernoulliVAEConfig.at_scale(
        args.scale, dataset=args.dataset, protocol=args.protocol, methods=args.methods,
        evaluations=args.evaluations, device=args.device, out_dir=args.out_dir,
        overrides=overrides, **changes)
    return run(config)
