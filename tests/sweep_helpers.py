"""Shared by tests/test_sweep*.py and the Ray cluster script: a small polynomial grid (well
under a second per cell) and record comparison without the fields that time or place a run."""
import json
from pathlib import Path

TINY = {"experiment": "polynomial",
        "axes": {"method": ["ST", "ReinMax", "STGS"], "tau": [0.5, 1.0, 2.0]},
        "fixed": {"L": 8, "batch_size": 16, "steps": 10, "epochs": 2, "seeds": [0, 1],
                  "device": "cpu"}}

TIMING = ("wall_s", "wall_s_this_call", "provenance", "ms_per_step")


def numbers(record):
    """The record without wall times and provenance: what training decided, to compare exactly."""
    if isinstance(record, dict):
        return {k: numbers(v) for k, v in record.items() if k not in TIMING}
    if isinstance(record, list):
        return [numbers(v) for v in record]
    return record


def journal(out_dir):
    """The records the driver wrote, one entry per write, in order."""
    path = Path(out_dir) / "sweep_journal.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["record"] for line in path.read_text().splitlines()]


def records(out_dir):
    """{relative path: record} of every record file under ``out_dir``."""
    out_dir = Path(out_dir)
    return {p.relative_to(out_dir).as_posix(): json.loads(p.read_text())
            for p in sorted(out_dir.rglob("*.json")) if ".partial" not in p.parts}
