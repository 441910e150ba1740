"""The book's figure style in one place: print-readable sizes, fixed colours per method (the
colours are part of each estimator's entry in :mod:`reinmax.estimators.registry`), constrained
layout (titles and labels of neighbouring panels do not collide) and legends outside the axes
(:func:`legend_below`: a legend never covers data).

Every figure the book shows has a caption: the notebook cell that draws it carries
``{"mystnb": {"figure": {"caption": ...}}}`` in its metadata (what it shows, at which scale;
``tests/test_book_html.py`` checks the built pages), so such a cell displays its figures only."""
from pathlib import Path
from typing import Optional, Union

import matplotlib

from reinmax.estimators import registry

RC = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "lines.linewidth": 2.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_book_style() -> None:
    """Apply the book's matplotlib settings (call once at the top of a notebook)."""
    matplotlib.rcParams.update(RC)


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` with constrained layout: panels, titles, labels and a
    :func:`legend_below` legend are placed without overlapping."""
    import matplotlib.pyplot as plt
    kwargs.setdefault("layout", "constrained")
    return plt.subplots(nrows, ncols, **kwargs)


def legend_below(fig, ncol: Optional[int] = None, fontsize: Optional[float] = None, axes=None):
    """One legend for the whole figure, centred below its panels, so it covers no data: the
    distinct labels of ``axes`` (default: every axis of ``fig``) in order of appearance. Needs
    constrained layout (:func:`subplots`)."""
    handles, labels = [], []
    for ax in (fig.axes if axes is None else axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    if not labels:
        return None
    ncol = ncol or min(len(labels), 5)
    return fig.legend(handles, labels, loc="outside lower center", ncol=ncol,
                      fontsize=fontsize or RC["legend.fontsize"], frameon=False)


def style(method: str) -> dict:
    """Line style keyword arguments for a method name, with the method name as its label.

    A registered estimator's style is its registry entry's (``reinmax.estimators.registry``: one colour and
    line style per method across every figure; an estimator registered without one gets an
    unused colour); any other name gets only its label."""
    try:
        spec = registry.get_spec(method)
    except (TypeError, ValueError):
        return {"label": method}
    return dict(spec.style, label=method)


def savefig(fig, name: str, directory: Optional[Union[str, Path]] = None) -> Path:
    """Save ``fig`` as ``<directory>/<name>.png`` (default: ``figures/`` beside the notebook)."""
    directory = Path(directory or "figures")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.png"
    fig.savefig(path, bbox_inches="tight")
    return path


def mean_band(ax, curves, x, method: str, spread: str = "std") -> None:
    """Plot the mean over seeds of ``curves`` (seeds x points) against ``x`` in the method's style,
    with a shaded band: one standard deviation either side (``spread="std"``) or the range over
    seeds (``spread="range"``)."""
    import numpy as np
    curves = np.asarray(curves, dtype=float)
    mean = curves.mean(0)
    if spread == "std":
        width = curves.std(0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
        low, high = mean - width, mean + width
    elif spread == "range":
        low, high = curves.min(0), curves.max(0)
    else:
        raise ValueError(f"spread must be 'std' or 'range'; got spread={spread!r}")
    ax.plot(x, mean, **style(method))
    ax.fill_between(x, low, high, alpha=0.15, color=style(method).get("color"))
