"""ReinMax's learning rate and temperature under Shi et al.'s protocol, chosen by a small grid.

Shi et al.'s protocol fixes the baselines' optimizer and learning rate (Adam, 1e-3 on MNIST) but
says nothing about a straight-through method's temperature, and Table 6's ReinMax numbers were
tuned under the authors' own protocol. So ReinMax gets a small grid of its own under ``baselines``:

* learning rate in {1e-3, 5e-4}: Shi et al.'s value, and the value ReinMax chose most often in
  the paper's Table 8 (its search space, Table 7, is {1e-3, 7e-4, 5e-4, 3e-4});
* temperature in {1.1, 1.3, 1.5}: the authors' Bernoulli VAE script's 1.1 and the other two values
  ReinMax chose in Table 8 (the paper's Section 5: ReinMax wants tau >= 1; 1.5 is its grid's top).

Each cell is one run at the given configuration (by default the ``study`` scale), seed
``GRID_SEED``, K = 2, in its own folder ``<root>/lr<lr>_tau<tau>/`` (the run's file name does not
name the settings, its fingerprint does). The cell with the lowest final train -ELBO (Shi et al.'s
metric, ``train_neg_elbo``) is chosen; then the chosen cell is run with the remaining
``FINAL_SEEDS`` in its folder. ``python -m reinmax.experiments.bernoulli_vae.grid --out-dir DIR``
does all of it, resumably (finished runs are read back, unfinished ones resume).
"""
import argparse
import json
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from reinmax.experiments import layer
from .config import BernoulliVAEConfig
from .training import run

LRS: Tuple[float, ...] = (1e-3, 5e-4)
TAUS: Tuple[float, ...] = (1.1, 1.3, 1.5)
GRID_SEED = 0
FINAL_SEEDS: Tuple[int, ...] = (0, 1)
METRIC = "train_neg_elbo"
_OWNER = "bernoulli_vae.grid"


def cells(lrs: Sequence[float] = LRS, taus: Sequence[float] = TAUS) -> List[Tuple[float, float]]:
    """The grid's (lr, tau) cells, Shi et al.'s learning rate first."""
    return [(float(lr), float(tau)) for lr in lrs for tau in taus]


def cell_dir(root, lr: float, tau: float) -> Path:
    """The folder of one cell's records: ``<root>/lr<lr>_tau<tau>`` (e.g. ``lr0.001_tau1.1``)."""
    lr = layer.positive_number(_OWNER, "lr", lr)
    tau = layer.positive_number(_OWNER, "tau", tau)
    return Path(root) / f"lr{lr:g}_tau{tau:g}"


def cell_config(root, lr: float, tau: float, seeds: Sequence[int] = (GRID_SEED,),
                scale: str = "study", **changes) -> BernoulliVAEConfig:
    """ReinMax under ``baselines`` at ``scale``, K = 2, with this cell's lr and tau."""
    return BernoulliVAEConfig.at_scale(
        scale, protocol="baselines", methods=["ReinMax"], evaluations=[2], seeds=list(seeds),
        overrides={"ReinMax": {"lr": float(lr), "tau": float(tau)}},
        out_dir=str(cell_dir(root, lr, tau)), **changes)


def select(records: Iterable[dict], seed: int = GRID_SEED, metric: str = METRIC) -> dict:
    """Choose the grid cell from finished run records (any folders; the cell is read from each
    record's ``hyperparameters``). Only ReinMax, protocol ``baselines``, K = 2, seed ``seed``
    count. Returns ``{"cells": [{"lr", "tau", "value"}, ...] sorted by value, "chosen": (lr,
    tau), "metric", "seed", "steps"}``; a ValueError if no record counts or the records were
    made at different step counts (their values would not be comparable)."""
    if metric not in ("train_neg_elbo", "train_running", "valid_neg_elbo", "test_neg_elbo"):
        layer.fail(_OWNER, "metric", metric,
                   "one of train_neg_elbo, train_running, valid_neg_elbo, test_neg_elbo")
    found: Dict[Tuple[float, float], dict] = {}
    for r in records:
        if (r.get("method"), r.get("protocol"), r.get("K"), r.get("seed")) != (
                "ReinMax", "baselines", 2, seed):
            continue
        key = (float(r["hyperparameters"]["lr"]), float(r["hyperparameters"]["tau"]))
        if key in found and found[key]["final"][metric] != r["final"][metric]:
            raise ValueError(f"records: two different runs of cell lr={key[0]:g}, "
                             f"tau={key[1]:g}, seed {seed}; keep one")
        found[key] = r
    if not found:
        layer.fail(_OWNER, "records", f"no ReinMax/baselines/K=2 record of seed {seed}",
                   "finished grid runs")
    steps = sorted({r["steps"] for r in found.values()})
    if len(steps) != 1:
        layer.fail(_OWNER, "records", f"runs of {steps} updates", "runs of one length")
    rows = sorted(({"lr": lr, "tau": tau, "value": float(r["final"][metric])}
                   for (lr, tau), r in found.items()), key=lambda row: row["value"])
    return {"cells": rows, "chosen": (rows[0]["lr"], rows[0]["tau"]), "metric": metric,
            "seed": seed, "steps": steps[0]}


def runs_of(records: Iterable[dict], lr: float, tau: float) -> List[dict]:
    """The ReinMax/``baselines``/K = 2 records of one cell, every seed, sorted by seed."""
    def ours(r):
        return ((r.get("method"), r.get("protocol"), r.get("K")) == ("ReinMax", "baselines", 2)
                and (float(r["hyperparameters"]["lr"]), float(r["hyperparameters"]["tau"]))
                == (float(lr), float(tau)))
    return sorted(filter(ours, records), key=lambda r: r["seed"])


def read_records(*folders) -> List[dict]:
    """Every finished run record (``*_seed<s>.json``) under the given folders, recursively."""
    records = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("*_seed*.json")):
            records.append(json.loads(path.read_text()))
    return records


def run_grid(root, lrs: Sequence[float] = LRS, taus: Sequence[float] = TAUS,
             final_seeds: Sequence[int] = FINAL_SEEDS, scale: str = "study",
             device: str = "auto", progress: bool = True, **changes) -> dict:
    """Every cell at ``GRID_SEED``, the selection, then the chosen cell's ``final_seeds``;
    writes ``<root>/selection.json`` (the selection and the command's settings)."""
    grid = cells(lrs, taus)
    if not grid:
        layer.fail(_OWNER, "lrs/taus", (lrs, taus), "at least one learning rate and temperature")
    # every config checked (the final seeds' too) before the first cell trains
    configs = [cell_config(root, lr, tau, scale=scale, device=device, **changes)
               for lr, tau in grid]
    try:
        cell_config(root, *grid[0], seeds=final_seeds, scale=scale, device=device, **changes)
    except ValueError:
        layer.fail(_OWNER, "final_seeds", final_seeds,
                   "a non-empty list of distinct non-negative integers")
    records = []
    for config in configs:
        records += run(config, progress=progress)["runs"]
    chosen = select(records)
    lr, tau = chosen["chosen"]
    finals = run(cell_config(root, lr, tau, seeds=final_seeds, scale=scale, device=device,
                             **changes),
                 progress=progress)["runs"]
    chosen["final_seeds"] = {r["seed"]: r["final"][METRIC] for r in finals}
    chosen["grid"] = {"lrs": [float(v) for v in lrs], "taus": [float(v) for v in taus],
                      "scale": scale, "changes": changes}
    chosen["provenance"] = layer.provenance()
    layer.write_json(Path(root) / "selection.json", chosen)
    return chosen


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.bernoulli_vae.grid",
                                     description="ReinMax's lr and tau under Shi et al.'s "
                                     "protocol, by a small grid (2x200 VAE, MNIST).")
    parser.add_argument("--out-dir", required=True, help="one folder per cell goes here")
    parser.add_argument("--scale", default="study")
    parser.add_argument("--lrs", type=float, nargs="+", default=list(LRS))
    parser.add_argument("--taus", type=float, nargs="+", default=list(TAUS))
    parser.add_argument("--final-seeds", type=int, nargs="+", default=list(FINAL_SEEDS))
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--eval-every", type=int, default=None)
    parser.add_argument("--train-subset", type=int, default=None)
    parser.add_argument("--eval-subset", type=int, default=None)
    parser.add_argument("--device", default="auto")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> dict:
    changes = {k: v for k, v in dict(steps=args.steps, eval_every=args.eval_every,
                                      train_subset=args.train_subset,
                                      eval_subset=args.eval_subset).items() if v is not None}
    chosen = run_grid(args.out_dir, args.lrs, args.taus, args.final_seeds, args.scale,
                      device=args.device, **changes)
    print(f"chosen lr={chosen['chosen'][0]:g}, tau={chosen['chosen'][1]:g}; cells:",
          chosen["cells"])
    return chosen


if __name__ == "__main__":
    main()
