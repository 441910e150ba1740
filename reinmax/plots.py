"""The book's figure style in one place: print-readable sizes, fixed colours per method."""
from pathlib import Path
from typing import Optional, Union

import matplotlib

# The paper's method names, each with one colour and line style across every figure of the book.
METHOD_STYLE = {
    "ReinMax": dict(color="#d62728", linestyle="-"),
    "ST": dict(color="#7f7f7f", linestyle="--"),
    "STGS": dict(color="#1f77b4", linestyle="-."),
    "GR-MCK": dict(color="#2ca02c", linestyle=":"),
    "GST-1.0": dict(color="#9467bd", linestyle=(0, (5, 1))),
    "GST-p": dict(color="#8c564b", linestyle=(0, (3, 1, 1, 1))),
    "ReinMax-1/n": dict(color="#ff7f0e", linestyle="-"),
    "ReinMax-1/n-authors": dict(color="#bcbd22", linestyle="--"),
    "REINFORCE": dict(color="#17becf", linestyle="-"),
    "RLOO": dict(color="#e377c2", linestyle="-."),
}

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


def style(method: str) -> dict:
    """Line style keyword arguments for a method name, with the method name as its label."""
    return dict(METHOD_STYLE.get(method, {}), label=method)


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
