"""The command line: ``python -m reinmax.experiments.vae`` trains the paper's protocol (Table 8,
160 epochs, all images) on the settings, methods and seeds given, resumably, into ``--out-dir``
(see results/vae/README.md). With ``--taus`` it runs Figure 2's temperature grid instead: every
method at every temperature given (Table 8's optimizer and learning rate), test -ELBO after the
last epoch only, also resumably."""
import argparse
from typing import Optional, Sequence

from reinmax.experiments import layer
from .config import CONFIGURATIONS, METHODS, VAEConfig
from reinmax.sweep.vae import temperature_grid
from .training import run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.vae",
                                     description="The categorical MNIST-VAE at the paper's "
                                     "protocol; rerunning the same command resumes.")
    parser.add_argument("--out-dir", required=True, help="records and checkpoints go here")
    parser.add_argument("--configs", nargs="+", default=["8x4"],
                        help=f"settings among {', '.join(CONFIGURATIONS)}")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--epochs", type=int, default=160)
    parser.add_argument("--train-subset", type=int, default=None, help="the first N images")
    parser.add_argument("--test-subset", type=int, default=None)
    parser.add_argument("--grmck-k", type=int, default=1000, help="GR-MCK's K (paper: 1,000)")
    parser.add_argument("--method-options", type=layer.method_options_arg, default={}, metavar="JSON",
                        help="estimator options per method, as the registry names them, e.g. "
                        "'{\"ReinMax-CV\": {\"eta\": 0.5, \"tau2\": 1.0}}' (GR-MCK's K: "
                        "--grmck-k)")
    parser.add_argument("--gradient-every", type=int, default=0, metavar="K",
                        help="Figure 4's analysis at epochs 1, 1 + K, ... (0: never; 8x4 only)")
    parser.add_argument("--gradient-samples", type=int, default=1024,
                        help="estimates averaged per analysis (paper: 1,024)")
    parser.add_argument("--gradient-estimators", nargs="+", default=None, metavar="METHOD",
                        help="estimators measured at each analysis besides the one trained with "
                        "(each at its Table 8 temperature and its --method-options)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--taus", type=float, nargs="+", default=None,
                        help="run Figure 2's temperature grid at these temperatures "
                        "(the paper's: 0.1 0.3 0.5 0.7 1 2 3 4 5)")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    grid = {"test_every": 0} if args.taus else {}
    config = VAEConfig.paper_scale(
        configs=args.configs, methods=args.methods, seeds=args.seeds, epochs=args.epochs,
        train_subset=args.train_subset, test_subset=args.test_subset, device=args.device,
        method_options={"GR-MCK": {"K": args.grmck_k}, **args.method_options},
        gradient_every=args.gradient_every, gradient_samples=args.gradient_samples,
        gradient_estimators=args.gradient_estimators, out_dir=args.out_dir, **grid)
    return temperature_grid(config, args.taus) if args.taus else run(config)
