"""Polynomial programming: where the temperature sweep keeps its records and what it chose
(the sweep itself runs in :mod:`reinmax.sweep.polynomial`, above the experiments), and the
paper-scale Figure 1 runs."""
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from reinmax import aliases
from reinmax.experiments import layer
from .problem import PolynomialConfig
from .training import run


def sweep_record_path(out_dir: Union[str, Path], config: PolynomialConfig, method: str,
                      tau: float) -> Path:
    """Where the sweep keeps the record of ``method`` at ``tau`` on ``config``'s problem."""
    return Path(out_dir) / f"p{config.p:g}_{config.setting}_{method}_tau{float(tau):g}.json"


# ------------------------------------------------------------------------ paper-scale runs
def run_figure(configs: Sequence[PolynomialConfig], path: Union[str, Path], *,
               progress: bool = True, extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Run several configs (e.g. Figure 1's three values of p) into one results file.

    Each config checkpoints to ``<path>.<index>.ckpt`` so that an interrupted job, started
    again with the same arguments, resumes where it stopped. The file at ``path`` holds
    ``{"runs": [record, ...], **extra}`` and is rewritten (atomically) after every config; a config
    whose record (same fingerprint) is already in that file is not trained again.
    """
    path = Path(path)
    # Configs already in the file (same fingerprint) are kept, not trained again.
    earlier = layer.read_json(path)["runs"] if path.is_file() else []
    record: Dict[str, Any] = {"runs": [], **(extra or {})}
    for index, config in enumerate(configs):
        done = [r for r in earlier if r.get("fingerprint") == config.fingerprint()
                and layer.trained_on_ok(r, config.device)]
        if done:
            record["runs"].append(done[0])
            continue
        checkpoint = path.with_name(f"{path.name}.{index}.ckpt")
        record["runs"].append(run(config, progress=progress, checkpoint=checkpoint))
        layer.write_json(path, record)
    for index in range(len(configs)):
        path.with_name(f"{path.name}.{index}.ckpt").unlink(missing_ok=True)
    return record


def chosen_temperatures(sweep_file: Union[str, Path], p: float, setting: str = "A"
                        ) -> Dict[str, float]:
    """The temperatures a sweep file chose for problem ``(p, setting)``."""
    sweeps = layer.read_json(sweep_file)["sweeps"]
    for sweep in sweeps:
        if sweep["config"]["p"] == float(p) and sweep["config"]["setting"] == setting:
            return dict(sweep["chosen"])
    swept = [(s["config"]["p"], s["config"]["setting"]) for s in sweeps]
    raise ValueError(f"{sweep_file} has no sweep for p={p:g}, setting={setting!r}; "
                     f"it has (p, setting) = {swept}")


def __getattr__(name):
    # Names that moved to reinmax.sweep (see reinmax.aliases).
    return aliases.old_attribute(__name__, name)
