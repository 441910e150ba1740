"""Reporting: the paper beside our runs, numbers for the book's prose, and cost tables.

Three things every experiment chapter needs, kept here so that notebooks only call them:

* **Paper-vs-ours tables** (:func:`compare_to_paper`, :func:`comparison_markdown`): for each
  (setting, method), the paper's mean ± std, ours over ``n`` seeds, the difference, and the
  difference measured in the paper's standard deviations (``z``). The project's bar is
  ``|z| <= 2``. The paper's std is over its seeds and ours is a mean over ours, so ``z`` is an
  agreement measure, not a significance test.
* **Glue** (:func:`plain`, :func:`glue_numbers`, :func:`key_of`): MyST-NB shows a glued value by
  its ``repr``, so a numpy or torch scalar would print as ``np.float64(1.5)`` or
  ``tensor(1.5)`` in the prose. Everything glued goes through :func:`plain` first.
* **Verdicts** are not made here: the paper's claims and their one test policy live in
  :mod:`reinmax.reporting.claims` (``evaluate``, ``glue_verdicts``) and
  :func:`reinmax.statistics.test_family`.
* **Cost tables** (:func:`cost_rows`, :func:`text_table`, :func:`markdown_table`): Table 3's
  ratios to ST, one formatting for the benchmark's console output and for the book.
"""
import math
import re
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

# The statistics live one layer down (the experiments' analyses use them too); re-exported here,
# where notebooks have always found them.
from reinmax.statistics import (agreement, holm, student_t_ppf, student_t_sf,  # noqa: F401
                                summary, welch_test)

__all__ = ["plain", "key_of", "glue_numbers", "print_wrapped", "pm", "pm_sig", "sig", "compare_to_paper", "comparison_markdown",
           "markdown_table", "text_table", "cost_rows"]
"""Documented here; the statistics it re-exports (``welch_test``, ``holm``,
``summary``, ``agreement``, ...) are documented in :mod:`reinmax.statistics`."""


# ----------------------------------------------------------------------------- plain values
def plain(value: Any) -> Any:
    """``value`` with every numpy/torch scalar, array and tensor turned into plain Python (float,
    int, bool, lists; tuples become lists, dict keys stay). NaN and infinities stay floats."""
    # type(), not isinstance: numpy's float64 is a float subclass whose repr is "np.float64(...)".
    if type(value) in (bool, int, float, str) or value is None:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if hasattr(value, "tolist") and callable(value.tolist):       # numpy arrays/scalars, tensors
        return plain(value.tolist())
    if hasattr(value, "item") and callable(value.item):
        return plain(value.item())
    raise TypeError(f"value must be a number, string, list or dict (numpy and torch allowed); "
                    f"got {type(value).__name__}: {value!r}")


_KEY = re.compile(r"^[A-Za-z0-9_]+$")


def key_of(name: str) -> str:
    """A method or setting name as a glue-key part: ``"GST-1.0"`` -> ``"GST10"``,
    ``"ReinMax-1/n"`` -> ``"ReinMax1n"``, ``"8x4"`` -> ``"8x4"`` (letters, digits, ``_`` kept)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a string; got name={name!r}")
    key = re.sub(r"[^A-Za-z0-9_]", "", name)
    if not key:
        raise ValueError(f"name must contain a letter or digit; got name={name!r}")
    return key


def glue_numbers(prefix: str, values: Mapping[str, Any],
                 glue: Optional[Callable[..., Any]] = None) -> Dict[str, Any]:
    """Glue every ``values[key]`` as ``f"{prefix}_{key}"`` (MyST-NB, ``display=False``), turned
    into plain Python first. Returns ``{glued key: glued value}``.

    Keys must be letters, digits and ``_`` (use :func:`key_of` for names such as ``"GST-1.0"``);
    values must be plain after :func:`plain` (numbers, strings, None). ``glue`` defaults to
    ``myst_nb.glue``; tests pass their own.
    """
    if not isinstance(prefix, str) or not _KEY.match(prefix):
        raise ValueError(f"prefix must be letters, digits and '_'; got prefix={prefix!r}")
    if not isinstance(values, Mapping):
        raise TypeError(f"values must be a dict of key -> number or text; got {type(values).__name__}")
    if glue is None:
        from myst_nb import glue
    glued = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise ValueError(f"glue key {key!r} (prefix {prefix!r}) must be letters, digits and '_'; "
                             "use reinmax.reporting.tables.key_of(name)")
        value = plain(value)
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise TypeError(f"glue value for {prefix}_{key} must be a number or text; got {value!r}")
        glue(f"{prefix}_{key}", value, display=False)
        glued[f"{prefix}_{key}"] = value
    return glued


# ----------------------------------------------------------------------------- paper vs ours
def pm(entry: Optional[Mapping[str, float]], digits: int = 2) -> str:
    """``"mean ± std"`` of an entry ``{"mean", "std", ...}``; ``"–"`` for a missing one."""
    if not entry:
        return "–"
    return f"{float(entry['mean']):.{digits}f} ± {float(entry['std']):.{digits}f}"


PAGE_WIDTH = 100
"""The widest line of a cell's output that fits the book's page (``tests/test_book_html.py``)."""


def print_wrapped(*values, sep: str = " ", end: str = "\n", file=None, flush: bool = False,
                  width: int = PAGE_WIDTH) -> None:
    """``print``, with every line longer than ``width`` broken at spaces and continued with an
    indent, so that no output line of a notebook scrolls sideways in the book. Notebooks import
    it as ``print``."""
    import builtins
    import textwrap
    lines = []
    for line in sep.join(map(str, values)).split("\n"):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = " " * (len(line) - len(line.lstrip()))
        lines += textwrap.wrap(line, width=width, subsequent_indent=indent + "    ",
                               break_long_words=True, break_on_hyphens=False, drop_whitespace=True)
    builtins.print("\n".join(lines), end=end, file=file, flush=flush)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float) -> int:
    """The exponent a printed number needs: 0 from 0.01 to 99,999, else that of ``value``."""
    value = abs(value)
    if value == 0 or 1e-2 <= value < 1e5:
        return 0
    return math.floor(math.log10(value))


def _scaled(text: str, exponent: int) -> str:
    return text if exponent == 0 else f"{text}×10{str(exponent).translate(_SUPERSCRIPT)}"


def sig(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits, without "e" notation: ``0.000512`` ->
    ``"5.12×10⁻⁴"``, ``113.364`` -> ``"113"``, ``-0.0386`` -> ``"-0.0386"``."""
    if not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be an integer >= 1; got digits={digits!r}")
    value = float(value)
    if not math.isfinite(value) or value == 0:
        return f"{value:g}"
    exponent = _power_of_ten(value)
    scaled = value / 10 ** exponent
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(scaled))))
    return _scaled(f"{scaled:.{decimals}f}", exponent)


def pm_sig(mean: float, std: float, digits: int = 2) -> str:
    """``"mean ± std"`` rounded to the spread: ``std`` to ``digits`` significant digits and the
    mean to the same decimal place, with one power of ten for both where the mean is below 0.01
    (``1.4e-4 ± 1.2e-6`` -> ``"(1.400 ± 0.012)×10⁻⁴"``). A spread of exactly 0 prints the mean to
    ``digits + 2`` significant digits and ``± 0``. Unlike :func:`pm` at a fixed number of decimals,
    a small spread never prints as ``± 0.00000``."""
    if not isinstance(digits, int) or digits < 1:
        raise ValueError(f"digits must be an integer >= 1; got digits={digits!r}")
    mean, std = float(mean), float(std)
    if not (math.isfinite(mean) and math.isfinite(std)) or std < 0:
        return f"{mean:g} ± {std:g}"
    exponent = _power_of_ten(mean if mean else std)
    m, s = mean / 10 ** exponent, std / 10 ** exponent
    if s > 0:
        decimals = max(0, digits - 1 - math.floor(math.log10(s)))
    else:
        decimals = max(0, digits + 1 - math.floor(math.log10(abs(m)))) if m else 0
    body = f"{m:.{decimals}f} ± {s:.{decimals}f}" if s > 0 else f"{m:.{decimals}f} ± 0"
    return body if exponent == 0 else _scaled(f"({body})", exponent)


def compare_to_paper(ours: Mapping[Tuple[str, str], Any], paper: Mapping[str, Mapping[str, Any]],
                     k: float = 2.0) -> List[Dict[str, Any]]:
    """One row per ``(setting, method)`` of ``ours``, in its order, beside the paper.

    ``ours[setting, method]`` is an entry ``{"mean", "std", "n"}`` (as the experiments' records
    hold it) or a list of per-seed values. ``paper[method][setting]`` is ``{"mean", "std"}`` (the
    layout of the paper's tables in :mod:`reinmax.paper`); a pair the paper does not print gets
    ``paper_mean`` None and no ``z``. Rows: ``setting, method, paper_mean, paper_std, mean, std, n,
    difference, z, within``.
    """
    rows = []
    for key, entry in ours.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"ours must be keyed by (setting, method); got key {key!r}")
        setting, method = key
        if not isinstance(entry, Mapping):
            entry = summary(entry)
        printed = paper.get(method, {}).get(setting)
        row = {"setting": setting, "method": method,
               "paper_mean": None, "paper_std": None,
               "mean": float(entry["mean"]), "std": float(entry["std"]), "n": int(entry["n"]),
               "difference": None, "z": None, "within": None}
        if printed:
            row.update(paper_mean=float(printed["mean"]), paper_std=float(printed["std"]),
                       **agreement(entry["mean"], printed, k))
        rows.append(row)
    return rows


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub/MyST markdown table; ``|`` inside a cell is escaped."""
    def cell(value):
        return str(value).replace("|", "\\|")
    width = len(header)
    bad = [row for row in rows if len(row) != width]
    if bad:
        raise ValueError(f"every row must have {width} cells like the header; got {bad[0]!r}")
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], first_width: int = 0) -> str:
    """A fixed-width console table: the first column left-aligned, the others right-aligned."""
    columns = list(zip(*([list(map(str, header))] + [list(map(str, row)) for row in rows])))
    widths = [max(first_width, *(len(v) for v in columns[0]))] + [
        max(len(v) for v in column) + 1 for column in columns[1:]]
    lines = []
    for row in [header] + list(rows):
        row = list(map(str, row))
        lines.append(f"{row[0]:<{widths[0]}}" + "".join(f"{v:>{w}}" for v, w in zip(row[1:], widths[1:])))
    return "\n".join(line.rstrip() for line in lines)


def comparison_markdown(rows: Sequence[Mapping[str, Any]], paper_label: str = "paper",
                        ours_label: str = "ours", digits: int = 2) -> str:
    """:func:`compare_to_paper`'s rows as a markdown table: setting, method, paper mean ± std,
    ours mean ± std (n seeds), difference, difference in the paper's stds."""
    header = ["setting", "method", paper_label, ours_label, "difference", "in paper stds"]
    body = []
    for row in rows:
        printed = row["paper_mean"] is not None
        body.append([row["setting"], row["method"],
                     pm({"mean": row["paper_mean"], "std": row["paper_std"]}, digits) if printed else "–",
                     f"{pm(row, digits)} (n={row['n']})",
                     f"{row['difference']:+.{digits}f}" if printed else "–",
                     f"{row['z']:+.2f}" if printed else "–"])
    return markdown_table(header, body)


# ----------------------------------------------------------------------------- cost (Table 3)
def _memory(mib: float) -> str:
    return f"{mib / 1024:.2f}G" if mib >= 1024 else f"{mib:.1f}M"


def cost_rows(rows: Mapping[str, Mapping[str, Any]], paper: Mapping[str, Mapping[str, Any]],
              hardware: str = "", absolute: bool = True) -> Tuple[List[str], List[List[str]]]:
    """Table 3 as (header, rows) from a ``benchmarks/table3.py`` problem entry: ``rows[label]``
    holds ``cpu``/``wall`` (``seconds_per_epoch``, ``ratio_to_st``) and ``memory`` (``peak_mib``,
    ``ratio_to_st``), ``paper[label]`` the paper's ``text``, ``time_ratio_to_st`` and
    ``memory_ratio_to_st``. ``absolute=False`` keeps only the ratios to ST, the part that compares
    across hardware, and only the methods the paper prints."""
    labels = [label for label in rows if absolute or label in paper]

    def memory(label, key):
        entry = rows[label].get("memory")
        if entry and key in entry:
            return _memory(entry[key]) if key == "peak_mib" else f"x{entry[key]:.1f}"
        return "error" if entry and key == "peak_mib" else "-"

    def printed(label, text):
        return text(paper[label]) if label in paper else ""

    body = []
    if absolute:
        body += [["time/epoch, CPU"] + [f"{rows[l]['cpu']['seconds_per_epoch']:.2f}s" for l in labels],
                 ["time/epoch, wall"] + [f"{rows[l]['wall']['seconds_per_epoch']:.2f}s" for l in labels],
                 ["peak memory of a step"] + [memory(l, "peak_mib") for l in labels]]
    body += [["time / ST, CPU" if absolute else "time / ST, this book (CPU)"]
             + [f"x{rows[l]['cpu']['ratio_to_st']:.2f}" for l in labels]]
    if absolute:
        body += [["time / ST, wall"] + [f"x{rows[l]['wall']['ratio_to_st']:.2f}" for l in labels]]
    body += [["memory / ST" if absolute else "peak memory / ST, this book"]
             + [memory(l, "ratio_to_st") for l in labels]]
    if absolute:
        body += [[f"paper ({hardware.split(',')[0]})"]
                 + [printed(l, lambda p: p["text"].replace(" ", "")) for l in labels]]
    body += [["paper time / ST"] + [printed(l, lambda p: f"x{p['time_ratio_to_st']:.2f}") for l in labels],
             ["paper memory / ST"] + [printed(l, lambda p: f"x{p['memory_ratio_to_st']:.1f}") for l in labels]]
    return [""] + labels, body
