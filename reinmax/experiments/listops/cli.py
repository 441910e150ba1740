"""The command line: ``python -m reinmax.experiments.listops --preset study --out-dir DIR``
trains a parameter set (paper, study, book, smoke), resumably: rerunning the same command
continues from the last finished epoch of each run and skips finished runs."""
import argparse
from typing import Optional, Sequence

from reinmax.experiments import layer
from .config import PARAMETER_SETS, ListOpsConfig
from .training import final_table, run


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.listops",
                                     description="ListOps with a Gumbel Tree-LSTM (Table 1, "
                                     "Figure 3); rerunning the same command resumes.")
    parser.add_argument("--out-dir", required=True, help="records and checkpoints go here")
    parser.add_argument("--preset", default="study", choices=list(PARAMETER_SETS))
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--device", default="auto")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    changes = {k: v for k, v in (("methods", args.methods), ("seeds", args.seeds),
                                 ("epochs", args.epochs)) if v is not None}
    config = ListOpsConfig.preset(args.preset, out_dir=args.out_dir, device=args.device, **changes)
    record = run(config)
    for split, rows in final_table(record).items():
        for method, entry in rows.items():
            print(f"{split:5s} {method:8s} {entry['mean']:6.2f} +- {entry.get('std', 0):5.2f} "
                  f"(n={len(entry['values'])})")
    return record
