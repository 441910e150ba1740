"""``python -m reinmax.sweep``: define or name a grid, run it on an engine, print the selection.

Examples::

    python -m reinmax.sweep list
    python -m reinmax.sweep run --experiment polynomial --axis method=ST,ReinMax \\
        --axis tau=0.5,1,2 --fixed epochs=2 --fixed 'seeds=[0,1]' --out runs/tiny
    python -m reinmax.sweep run --grid vae-book --out runs/vae-book --workers 2 --select table8
    python -m reinmax.sweep run --grid vae-table7 --out runs/t7 --engine ray --address HEAD:6379
    python -m reinmax.sweep status --grid vae-book --out runs/vae-book
"""
import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from . import (ENGINES, EXPERIMENTS, NAMED_GRIDS, RULES, Grid, SweepInterrupted, beside_paper,
               finished_cells, format_rows, format_selection, named_grid, run_sweep, select_by)


def _value(text: str):
    """A JSON value when the text is one (numbers, lists, dicts), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pair(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE; got {text!r}")
    field, value = text.split("=", 1)
    return field.strip(), value


def _grid(args) -> Grid:
    if args.grid and args.experiment:
        raise SystemExit("error: give --grid or --experiment (with --axis/--fixed), not both")
    if args.grid:
        path = Path(args.grid)
        grid = (Grid.from_dict(json.loads(path.read_text())) if path.suffix == ".json"
                else named_grid(args.grid))
        data = grid.as_dict()
    elif args.experiment:
        data = {"experiment": args.experiment, "axes": {}, "fixed": {}}
    else:
        raise SystemExit("error: name a grid (--grid NAME or FILE.json) or define one "
                         "(--experiment NAME --axis FIELD=V1,V2 ...)")
    for field, text in args.axis or []:
        value = _value(text)
        data["axes"][field] = value if isinstance(value, list) else [
            _value(v) for v in text.split(",") if v != ""]
        data["fixed"].pop(field, None)
    for field, text in args.fixed or []:
        data["fixed"][field] = _value(text)
        data["axes"].pop(field, None)
    return Grid.from_dict(data)


def _select(results, rule: Optional[str], experiment: str) -> None:
    if rule is None:
        return
    if RULES[rule]["experiment"] != experiment:
        raise SystemExit(f"error: --select {rule} is for {RULES[rule]['experiment']} grids")
    if experiment == "vae":
        print(format_rows(beside_paper(results, rule)))
    else:
        print(format_selection(select_by(results, rule), RULES[rule]["group"]))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reinmax.sweep", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Records go to OUT/<cell path>.json (a finished cell is never trained again; a "
               "half-finished one resumes from its checkpoint); OUT/sweep_journal.jsonl lists "
               "every record the driver wrote. SIGINT or SIGTERM stops the workers, keeps "
               "every finished record and exits with status 130 or 143: the same command "
               "again trains only the missing cells.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the named grids, experiments and their fields")
    listing.set_defaults(command="list")
    for name in ("run", "status"):
        sub = commands.add_parser(name, help="run a grid" if name == "run" else
                                  "count finished and missing cells (trains nothing)")
        sub.add_argument("--grid", help=f"a named grid ({', '.join(NAMED_GRIDS)}) or a JSON "
                         "file {experiment, axes, fixed}")
        sub.add_argument("--experiment", choices=sorted(EXPERIMENTS),
                         help="define a grid here instead (with --axis and --fixed)")
        sub.add_argument("--axis", type=_pair, action="append", metavar="FIELD=V1,V2",
                         help="a swept field (comma-separated values, or a JSON list)")
        sub.add_argument("--fixed", type=_pair, action="append", metavar="FIELD=VALUE",
                         help="a field every cell shares (JSON values: 'seeds=[0,1]')")
        sub.add_argument("--out", required=True, help="folder of the cells' records")
        sub.add_argument("--select", choices=sorted(RULES),
                         help="print the hyper-parameters this rule selects (vae: beside the "
                              "paper's Table 8 and its value)")
        if name == "run":
            sub.add_argument("--engine", choices=ENGINES, default="local")
            sub.add_argument("--workers", type=int, default=1,
                             help="local processes, or CPUs of a private Ray cluster (default 1)")
            sub.add_argument("--address", help="a running Ray cluster (HOST:PORT); default: "
                             "a private one on this machine")
            sub.add_argument("--retries", type=int, default=3,
                             help="Ray's retries of a cell whose process or node died")
            sub.add_argument("--threads", type=int, default=1, help="torch threads per cell")
            sub.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name, make in NAMED_GRIDS.items():
            try:
                grid = make()
                size = 1
                for values in grid.axes.values():
                    size *= len(values)
                # the product of the axes (expanding validates every cell: slow for big grids)
                print(f"{name:18} {grid.experiment:10} {size:6} cells  axes {list(grid.axes)}")
            except (OSError, ValueError) as error:
                print(f"{name:18} (unavailable here: {error})")
        for name, spec in EXPERIMENTS.items():
            print(f"fields of {name}: {', '.join(spec.fields)}")
        return 0
    try:
        grid = _grid(args)
        if args.command == "status":
            done, missing = finished_cells(grid, args.out)
            print(f"{len(done)} of {len(done) + len(missing)} cells finished in {args.out}; "
                  f"{len(missing)} missing")
            if not missing:
                _select(done, args.select, grid.experiment)
            return 0
        results = run_sweep(grid, args.out, engine=args.engine, workers=args.workers,
                            address=args.address, retries=args.retries, threads=args.threads,
                            progress=not args.quiet)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SweepInterrupted as stop:             # SIGINT or SIGTERM: the workers are stopped
        print(f"stopped: {stop}", file=sys.stderr)
        return stop.status
    print(f"{len(results)} cells finished in {args.out}")
    _select(results, args.select, grid.experiment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
