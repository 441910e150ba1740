"""``python -m reinmax.experiments.vae_64x32 --scale study --out-dir DIR``: Table 5's setting,
resumably (rerunning the same command resumes)."""
import argparse
from typing import Optional, Sequence

from reinmax.experiments import layer
from .config import METHODS, SCALES, VAE64x32Config
from .training import run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.vae_64x32",
                                     description="Table 5: the categorical VAE, 32 variables of "
                                     "64 categories, batch 200.")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--scale", default="study", choices=list(SCALES))
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--grmck-k", type=int, default=None, help="GR-MCK's draws (paper: 1,000)")
    parser.add_argument("--device", default="auto")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    changes = {k: v for k, v in dict(seeds=args.seeds, steps=args.steps,
                                      eval_every=args.eval_every).items() if v is not None}
    if args.grmck_k is not None:
        changes["method_options"] = {"GR-MCK": {"K": args.grmck_k}}
    config = VAE64x32Config.at_scale(args.scale, methods=args.methods, device=args.device,
                                     out_dir=args.out_dir, **changes)
    return run(config)
