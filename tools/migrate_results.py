"""Move the committed records under results/ to the shared experiment layer's vocabulary.

Run once (its output is committed): ``python tools/migrate_results.py [results folder]``.
It moves and renames fields only; every number keeps its value and its text
(tests/test_migrate_results.py checks every leaf against the records as they were):

- polynomial records: ``methods: {name: {...}}`` -> ``runs: [{"method": name, ...}]``,
  ``wall_time_s`` -> ``wall_s`` (per method and overall), ``wall_time_this_call_s`` ->
  ``wall_s_this_call``; config ``seeds: n`` -> ``[0, ..., n-1]``, ``gr_mck_samples`` and
  ``rloo_group`` -> ``method_options`` (``{"GR-MCK": {"K": ...}}``, ``{"RLOO": {"num_samples":
  ...}}``); sweep summaries: ``wall_time_s`` -> ``wall_s``.
- MNIST-VAE records: config ``grmck_samples`` -> ``method_options: {"GR-MCK": {"K": ...}}``; a
  setting's ``fingerprint`` (the dict of what decides its numbers) -> ``settings``, its
  ``grmck_samples`` -> ``method_options``.
- Every training record gains ``fingerprint``: the layer's hash of those settings (of the config
  without its device, for polynomial programming), computed from fields already in it.

Files already migrated are left as they are.
"""
import sys
from pathlib import Path
from typing import Any, Dict, List

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))

from reinmax.experiments import layer  # noqa: E402
from reinmax.experiments.vae.training import setting_fingerprint  # noqa: E402

POLYNOMIAL_FIELDS = ("p", "L", "batch_size", "setting", "methods", "taus", "steps", "epochs",
                     "seeds", "device", "method_options")


def _rename(record: Dict[str, Any], old: str, new: str) -> Dict[str, Any]:
    """``record`` with key ``old`` renamed ``new`` in the same place."""
    return {(new if key == old else key): value for key, value in record.items()}


def polynomial_config(config: Dict[str, Any]) -> Dict[str, Any]:
    if "method_options" in config:
        return config
    config = dict(config)
    if isinstance(config["seeds"], int):
        config["seeds"] = list(range(config["seeds"]))
    options = {"GR-MCK": {"K": config.pop("gr_mck_samples")}}
    group = config.pop("rloo_group", None)
    if group is not None:
        options["RLOO"] = {"num_samples": group}
    config["method_options"] = options
    return {key: config[key] for key in POLYNOMIAL_FIELDS}


def polynomial_record(record: Dict[str, Any]) -> Dict[str, Any]:
    """One ``run(config)`` record."""
    if "runs" in record:
        return record
    config = polynomial_config(record["config"])
    runs = [{"method": name, **_rename(result, "wall_time_s", "wall_s")}
            for name, result in record["methods"].items()]
    extra = {key: value for key, value in record.items()
             if key not in ("experiment", "config", "methods", "wall_time_s", "provenance",
                            "wall_time_this_call_s")}
    return layer.record(
        record["experiment"], config, runs, record["wall_time_s"], record["provenance"],
        fingerprint=layer.fingerprint({k: v for k, v in config.items() if k != "device"}),
        **extra, wall_s_this_call=record["wall_time_this_call_s"])


def polynomial_sweep(sweep: Dict[str, Any]) -> Dict[str, Any]:
    sweep = _rename(sweep, "wall_time_s", "wall_s")
    sweep["config"] = polynomial_config(sweep["config"])
    return sweep


def vae_setting(record: Dict[str, Any]) -> Dict[str, Any]:
    """One setting's record (``<CxL>_<method>.json`` and each entry of ``results.json``)."""
    if "settings" in record:
        return record
    settings = {}
    for key, value in record["fingerprint"].items():
        if key == "grmck_samples":
            settings["method_options"] = {} if value is None else {"K": value}
        else:
            settings[key] = value
    out = {}
    for key, value in record.items():
        if key == "fingerprint":
            out["settings"] = settings
            out["fingerprint"] = setting_fingerprint(settings)
        else:
            out[key] = value
    return out


def vae_config(config: Dict[str, Any]) -> Dict[str, Any]:
    if "method_options" in config:
        return config
    return {("method_options" if key == "grmck_samples" else key):
            ({"GR-MCK": {"K": value}} if key == "grmck_samples" else value)
            for key, value in config.items()}


def vae_results(record: Dict[str, Any]) -> Dict[str, Any]:
    record = dict(record, config=vae_config(record["config"]))
    record["runs"] = [vae_setting(r) for r in record["runs"]]
    return record


def migrate_file(path: Path) -> Dict[str, Any]:
    """The migrated content of one committed results file."""
    return migrate_record(layer.read_json(path), path)


def migrate_record(record: Dict[str, Any], path: Path) -> Dict[str, Any]:
    """``record`` migrated; which experiment's it is, is read from where it lives (``path``)."""
    parts = Path(path).parts
    if "polynomial" in parts:
        if "sweeps" in record:
            return dict(record, sweeps=[polynomial_sweep(s) for s in record["sweeps"]])
        if "experiment" not in record:          # run_figure's file: {"runs": [record, ...], ...}
            return dict(record, runs=[polynomial_record(r) for r in record["runs"]])
        return polynomial_record(record)
    if "vae" in parts:
        return vae_results(record) if "config" in record and isinstance(
            record["config"], dict) else vae_setting(record)
    raise ValueError(f"no migration for {path}")


def committed_files(results: Path) -> List[Path]:
    polynomial = results / "polynomial"
    return ([polynomial / "figure1_paper_scale.json", polynomial / "temperature_sweep.json",
             polynomial / "temperature_below_grid.json"]
            + sorted((polynomial / "temperature_sweep_records").glob("*.json"))
            + sorted((results / "vae" / "paper_8x4").glob("*.json")))


def main(results: Path = REPOSITORY / "results") -> None:
    for path in committed_files(results):
        layer.write_json(path, migrate_file(path))
        print(f"migrated {path.relative_to(results.parent)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPOSITORY / "results")
