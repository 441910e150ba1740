"""The paper's printed numbers as data: ``reinmax/paper/tables.json``, shipped with the package.

The tables were transcribed from the paper (Liu et al., NeurIPS 2023) and checked against it
entry by entry. They are package data, read with ``importlib.resources``, so an installed
(non-editable) ``reinmax`` reads them as a checkout does; ``results/paper/tables.json`` is a copy
kept for readers browsing ``results/``, and a test checks that the two files are byte-equal.

Experiments read the paper's settings from here instead of retyping them:
:func:`table7_temperatures` (Table 7's temperature grid) and :func:`table8_hyperparameters`
(Table 8's optimizer, learning rate and temperature per setting and method).
"""
import json
from importlib import resources
from typing import Any, Dict, Tuple

FILE = "tables.json"
"""The file name inside this package."""

MNIST_VAE_SETTINGS = ("8x4", "4x24", "8x16", "16x12", "64x8", "10x30")
"""Table 8's MNIST-VAE rows (C x L), in the paper's order; its last row is ListOps."""

_cache: Dict[str, Any] = {}


def tables_text() -> str:
    """The JSON text of the paper's tables, as shipped."""
    return resources.files(__name__).joinpath(FILE).read_text(encoding="utf-8")


def tables() -> Dict[str, Any]:
    """All of the paper's tables, keyed as in the JSON (``"table2_mnist_vae_train_neg_elbo"``, ...).

    A fresh copy each call, so a caller that edits it cannot change what the next caller reads.
    """
    if "tables" not in _cache:
        _cache["tables"] = tables_text()
    return json.loads(_cache["tables"])


def table(name: str) -> Any:
    """One table by its key, e.g. ``table("table7_search_space")``; an unknown key lists the known."""
    everything = tables()
    if not isinstance(name, str) or name not in everything:
        known = ", ".join(key for key in everything if key != "note")
        raise KeyError(f"no paper table named {name!r}; known tables: {known}")
    return everything[name]


_METHOD_LEVEL = {"table1_listops_accuracy": ("valid",), "table2_mnist_vae_train_neg_elbo": (),
                 "table5_mnist_vae_32x64_train_neg_elbo": (),
                 "table6_bernoulli_vae_train_neg_elbo": ("K=3", "MNIST"),
                 "table9_mnist_vae_test_neg_elbo_hp_by_train": ()}

FIGURE_METHODS: Dict[str, Tuple[str, ...]] = {
    "figure1": ("ReinMax", "STGS", "GR-MCK", "ST", "GST-1.0"),
    "figure7": ("ReinMax", "REINFORCE", "RODEO"),
    "figures8_10": ("ReinMax", "REINFORCE", "RODEO"),
}
"""The methods each figure compares: Figure 1 (polynomial programming, Section 6.1) the five
straight-through methods of Table 2 (in the order the book's sweeps have always run them, which
their records' fingerprints keep); Figures 7-10 (Appendix F.6) ReinMax
against the score-function methods REINFORCE and RODEO."""


def table_methods(name: str) -> Tuple[str, ...]:
    """The methods a table compares, in the paper's column order (e.g. Table 2: STGS, GR-MCK,
    GST-1.0, ST, ReinMax). The experiments read which methods a table runs from here."""
    if name not in _METHOD_LEVEL:
        raise KeyError(f"no method list for table {name!r}; known: {', '.join(_METHOD_LEVEL)}")
    entry = table(name)
    for key in _METHOD_LEVEL[name]:
        entry = entry[key]
    return tuple(key for key in entry if key not in ("note", "AVG"))


def figure_methods(name: str) -> Tuple[str, ...]:
    """The methods a figure compares (:data:`FIGURE_METHODS`), in its legend's order."""
    if name not in FIGURE_METHODS:
        raise KeyError(f"no method list for figure {name!r}; known: {', '.join(FIGURE_METHODS)}")
    return FIGURE_METHODS[name]


def table7_temperatures() -> Tuple[float, ...]:
    """Table 7's temperature grid, over which every method's tau was tuned (as floats, in order)."""
    return tuple(float(t) for t in table("table7_search_space")["temperature"])


def table7_search_space() -> Dict[str, Tuple]:
    """Table 7 entire: optimizers, learning rates and temperatures searched (Appendix F.2)."""
    space = table("table7_search_space")
    return {"optimizer": tuple(space["optimizer"]),
            "learning_rate": tuple(float(v) for v in space["learning_rate"]),
            "temperature": table7_temperatures()}


def figure2_temperatures() -> Tuple[float, ...]:
    """The temperature grid of Figure 2 (Section 6.6), wider than Table 7's: up to 5."""
    return tuple(float(t) for t in table("table7_search_space")["figure2_temperature_grid"])


def table8_hyperparameters(experiment: str = "MNIST-VAE") -> Dict[str, Any]:
    """Table 8, the hyper-parameters the paper selected, as ``(optimizer, lr, tau)`` triples.

    ``experiment="MNIST-VAE"`` (default): ``{setting: {method: (optimizer, lr, tau)}}`` for the
    six settings ``MNIST_VAE_SETTINGS``. ``experiment="ListOps"``: ``{method: (optimizer, lr, tau)}``
    for Table 8's ListOps row (Table 1's runs).
    """
    rows = table("table8_selected_hyperparameters")

    def triples(methods: Dict[str, Dict[str, Any]]) -> Dict[str, Tuple[str, float, float]]:
        return {method: (entry["optimizer"], float(entry["lr"]), float(entry["tau"]))
                for method, entry in methods.items()}

    if experiment == "MNIST-VAE":
        return {setting: triples(rows[setting]) for setting in MNIST_VAE_SETTINGS}
    if experiment == "ListOps":
        return triples(rows["ListOps"])
    raise ValueError(f"experiment must be 'MNIST-VAE' or 'ListOps' (Table 8's rows); "
                     f"got experiment={experiment!r}")
