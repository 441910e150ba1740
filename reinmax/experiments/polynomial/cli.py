"""The command line: ``python -m reinmax.experiments.polynomial sweep|figure1 ...`` (the commands
that wrote results/polynomial, given in its README)."""
from pathlib import Path
from typing import Optional, Sequence

from reinmax.experiments import layer
from .problem import FIGURE1_METHODS, TABLE7_TEMPERATURES, PolynomialConfig
from reinmax.sweep.polynomial import temperature_sweeps
from .sweeps import chosen_temperatures, run_figure


def main(argv: Optional[Sequence[str]] = None) -> None:
    import argparse
    parser = argparse.ArgumentParser(prog="python -m reinmax.experiments.polynomial",
                                     description="Polynomial programming at paper scale.")
    parser.add_argument("what", choices=["sweep", "figure1"])
    parser.add_argument("--out", required=True, help="results JSON file")
    parser.add_argument("--sweep", help="(figure1) the sweep's results file: each p's chosen taus")
    parser.add_argument("--records", help="(sweep) folder for each cell's record, to resume "
                        "(default: <out without .json>_records)")
    parser.add_argument("--workers", type=int, default=1,
                        help="(sweep) cells trained at once, one process and thread each")
    parser.add_argument("--taus", type=float, nargs="+", default=list(TABLE7_TEMPERATURES),
                        help="(sweep) the temperatures tried (default: Table 7's grid)")
    parser.add_argument("--p", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    parser.add_argument("--methods", nargs="+", default=list(FIGURE1_METHODS))
    parser.add_argument("--L", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--setting", default="A")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(10)),
                        help="the seeds (default: 0 1 ... 9, the paper's ten)")
    parser.add_argument("--method-options", type=layer.method_options_arg, default={},
                        metavar="JSON", help="estimator options per method, as the registry names "
                        "them, e.g. '{\"ReinMax-Rao\": {\"R\": \"quadrature\"}}' (merged over "
                        "GR-MCK's default K = quadrature)")
    parser.add_argument("--device", default="auto")
    return layer.run_cli(parser, _run, argv)


def _run(args) -> None:
    common = dict(L=args.L, batch_size=args.batch_size, setting=args.setting, methods=args.methods,
                  epochs=args.epochs, steps=args.steps, seeds=args.seeds, device=args.device,
                  method_options=args.method_options)
    if args.what == "sweep":
        out = Path(args.out)
        records = args.records or out.with_name(out.stem + "_records")
        sweeps = temperature_sweeps([PolynomialConfig(p=p, **common) for p in args.p], args.taus,
                                    out_dir=records, workers=args.workers)
        layer.write_json(out, {"sweeps": sweeps})
        return
    configs = [PolynomialConfig(p=p, taus=chosen_temperatures(args.sweep, p, args.setting)
                                if args.sweep else 1.0, **common) for p in args.p]
    run_figure(configs, args.out, extra={"temperature_source": args.sweep})
