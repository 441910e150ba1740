"""Selection as code: the paper's ways of picking hyper-parameters from a grid's records, and the
selected table beside the paper's.

- MNIST VAE, Tables 8 and 2: per (setting, method), the cell with the lowest mean over seeds of
  the final **train** -ELBO (``RULES["table8"]``); Tables 10 and 11: the lowest final **test**
  -ELBO (``RULES["table10"]``).
- Polynomial programming, as its temperature sweep does: per (p, setting, method), the
  temperature with the lowest mean final exact expected loss (``RULES["polynomial"]``).
"""
import math
from typing import Any, Dict, List, Sequence, Tuple

from reinmax import paper
from .grid import Cell, experiment

RULES: Dict[str, Dict[str, Any]] = {
    "table8": {"experiment": "vae", "metric": "train_neg_elbo", "group": ("config", "method"),
               "paper_values": "table2_mnist_vae_train_neg_elbo"},
    "table10": {"experiment": "vae", "metric": "test_neg_elbo", "group": ("config", "method"),
                "paper_values": "table10_mnist_vae_test_neg_elbo_hp_by_test"},
    "polynomial": {"experiment": "polynomial", "metric": "final_exact_loss",
                   "group": ("p", "setting", "method")},
}
"""The selection rules by name: which metric (lower is better) is minimised within which group."""

Results = Sequence[Tuple[Cell, Dict[str, Any]]]


def select(results: Results, metric: str, group: Sequence[str]) -> Dict[Tuple, Dict[str, Any]]:
    """``{group values: {"chosen": {field: value}, "value": ..., "cells": n}}``: within each
    group (the cells equal in ``group``'s fields), the cell whose ``metric`` is lowest; ``chosen``
    holds the fields that vary within the group (what was selected)."""
    if not results:
        raise ValueError("select: results must hold at least one (cell, record)")
    spec = experiment(results[0][0].experiment)
    if metric not in spec.metrics:
        raise ValueError(f"select: metric must be one of {list(spec.metrics)} for "
                         f"{spec.name}; got metric={metric!r}")
    groups: Dict[Tuple, List[Tuple[Cell, float]]] = {}
    for cell, record in results:
        key = tuple(spec.value(cell, name) for name in group)
        groups.setdefault(key, []).append((cell, spec.metric(record, metric)))
    table = {}
    for key, members in groups.items():
        varying = [name for name in members[0][0].values if name not in group and
                   len({repr(c.values.get(name)) for c, _ in members}) > 1]
        best, value = min(members, key=lambda m: (math.isnan(m[1]), m[1]))
        table[key] = {"chosen": {name: best.values[name] for name in varying}, "value": value,
                      "cells": len(members)}
    return table


def select_by(results: Results, rule: str) -> Dict[Tuple, Dict[str, Any]]:
    """:func:`select` with one of ``RULES``' rules."""
    if rule not in RULES:
        raise ValueError(f"select_by: rule must be one of {list(RULES)}; got rule={rule!r}")
    return select(results, RULES[rule]["metric"], RULES[rule]["group"])


def beside_paper(results: Results, rule: str = "table8") -> List[Dict[str, Any]]:
    """The VAE selection as rows beside the paper's: for each (setting, method), what this grid
    chose and its value, Table 8's choice (optimizer, lr, tau) and the paper's value for the same
    rule (Table 2's train -ELBO for "table8"; Table 10's test -ELBO for "table10")."""
    if rule not in ("table8", "table10"):
        raise ValueError(f"beside_paper: rule must be 'table8' or 'table10'; got rule={rule!r}")
    chosen = select_by(results, rule)
    table8 = paper.table8_hyperparameters()
    values = paper.table(RULES[rule]["paper_values"])
    rows = []
    for (setting, method), entry in chosen.items():
        optimizer, lr, tau = table8.get(setting, {}).get(method, (None, None, None))
        mean = values.get(method, {}).get(setting, {}).get("mean")
        rows.append({"setting": setting, "method": method, "chosen": entry["chosen"],
                     "value": entry["value"], "cells": entry["cells"],
                     "paper_chosen": {"optimizer": optimizer, "lr": lr, "tau": tau},
                     "paper_value": mean})
    return rows


def format_rows(rows: List[Dict[str, Any]]) -> str:
    """A plain-text table of :func:`beside_paper`'s rows."""
    def show(chosen):
        # A swept method_options shows the cell's own method's options, not the nested dict.
        chosen = dict(chosen)
        for options in (chosen.pop("method_options", None) or {}).values():
            chosen.update(options)
        return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in chosen.items()) or "-"
    lines = [f"{'setting':8} {'method':11} {'this grid chose':28} {'value':>8}   "
             f"{'paper (Table 8)':32} {'paper value':>11}"]
    for r in rows:
        if r["paper_chosen"]["optimizer"] is None:
            paper_choice = "no row of its own"
        else:
            paper_choice = show({k: v for k, v in r["paper_chosen"].items() if k in r["chosen"]}
                                or r["paper_chosen"])
        paper_value = "-" if r["paper_value"] is None else f"{r['paper_value']:.2f}"
        lines.append(f"{r['setting']:8} {r['method']:11} {show(r['chosen']):28} "
                     f"{r['value']:8.2f}   {paper_choice:32} {paper_value:>11}")
    return "\n".join(lines)


def format_selection(table: Dict[Tuple, Dict[str, Any]], group: Sequence[str]) -> str:
    """A plain-text table of any :func:`select` result."""
    lines = []
    for key, entry in table.items():
        where = " ".join(f"{g}={k:g}" if isinstance(k, float) else f"{g}={k}"
                         for g, k in zip(group, key))
        chosen = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in entry["chosen"].items()) or "-"
        lines.append(f"{where:40} chose {chosen:24} value {entry['value']:.6g} "
                     f"({entry['cells']} cells)")
    return "\n".join(lines)
