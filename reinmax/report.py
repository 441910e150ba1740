"""Reporting: the paper beside our runs, numbers for the book's prose, and claim checks.

Three things every experiment chapter needs, kept here so that notebooks only call them:

* **Paper-vs-ours tables** (:func:`compare_to_paper`, :func:`comparison_markdown`): for each
  (setting, method), the paper's mean ± std, ours over ``n`` seeds, the difference, and the
  difference measured in the paper's standard deviations (``z``). The project's bar is
  ``|z| <= 2``. The paper's std is over its seeds and ours is a mean over ours, so ``z`` is an
  agreement measure, not a significance test.
* **Glue** (:func:`plain`, :func:`glue_numbers`, :func:`key_of`): MyST-NB shows a glued value by
  its ``repr``, so a numpy or torch scalar would print as ``np.float64(1.5)`` or
  ``tensor(1.5)`` in the prose. Everything glued goes through :func:`plain` first.
* **Claim checks** (:func:`welch_test`, :func:`holm`, :func:`check_claims`): "method A's mean is
  below method B's" tested with Welch's t-test on the seeds, corrected for the number of claims
  checked together (Holm), with the smallest difference the seeds at hand could have detected,
  so a chapter says what its ``n`` seeds can and cannot support.
* **Cost tables** (:func:`cost_rows`, :func:`text_table`, :func:`markdown_table`): Table 3's
  ratios to ST, one formatting for the benchmark's console output and for the book.
"""
import math
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

__all__ = ["plain", "key_of", "glue_numbers", "pm", "summary", "agreement", "compare_to_paper",
           "comparison_markdown", "markdown_table", "text_table", "student_t_sf", "student_t_ppf",
           "welch_test", "holm", "bonferroni", "check_claims", "claims_markdown", "cost_rows"]


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
                             "use reinmax.report.key_of(name)")
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


def summary(values: Iterable[float], ddof: int = 0) -> Dict[str, Any]:
    """``{"mean", "std", "n", "per_seed"}`` of per-seed values (std with ``ddof``, numpy's
    default 0, as the experiments' records store it)."""
    values = [float(v) for v in plain(list(values))]
    if not values:
        raise ValueError("values must hold at least one number; got an empty list")
    if ddof not in (0, 1) or len(values) <= ddof:
        raise ValueError(f"ddof must be 0, or 1 with at least two values; got ddof={ddof!r} "
                         f"for {len(values)} value(s)")
    mean = math.fsum(values) / len(values)
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - ddof)
    return {"mean": mean, "std": math.sqrt(variance), "n": len(values), "per_seed": values}


def agreement(ours_mean: float, paper: Mapping[str, float], k: float = 2.0) -> Dict[str, Any]:
    """How far ``ours_mean`` lies from a paper entry ``{"mean", "std"}``, in the paper's standard
    deviations: ``{"difference", "z", "within"}``, ``within`` true when ``|z| <= k``.

    The paper's std is over its seeds; ours is a mean over fewer, so this is the bar the project
    sets ("within two of the paper's standard deviations"), not a significance test.
    """
    if isinstance(k, bool) or not (isinstance(k, (int, float)) and k > 0):
        raise ValueError(f"k must be a positive number of standard deviations; got k={k!r}")
    mean, std = float(paper["mean"]), float(paper["std"])
    if not std > 0:
        raise ValueError(f"the paper's std must be positive to measure agreement; got {paper!r}")
    difference = float(ours_mean) - mean
    z = difference / std
    return {"difference": difference, "z": z, "within": bool(abs(z) <= k)}


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


# ----------------------------------------------------------------------------- claim checks
def _betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified
    Lentz), used on the side where it converges fast."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _betainc(b, a, 1.0 - x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def student_t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if not (isinstance(df, (int, float)) and df > 0 and math.isfinite(df)):
        raise ValueError(f"df must be a positive finite number; got df={df!r}")
    t = float(t)
    if math.isnan(t):
        return math.nan
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t)) if math.isfinite(t) else 0.0
    return tail if t >= 0 else 1.0 - tail


def student_t_ppf(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t (bisection on :func:`student_t_sf`)."""
    if not 0 < q < 1:
        raise ValueError(f"q must be strictly between 0 and 1; got q={q!r}")
    if q < 0.5:
        return -student_t_ppf(1.0 - q, df)
    low, high = 0.0, 1.0
    while student_t_sf(high, df) > 1.0 - q:
        high *= 2.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if student_t_sf(middle, df) > 1.0 - q else (low, middle)
    return 0.5 * (low + high)


def welch_test(a: Iterable[float], b: Iterable[float], alternative: str = "less") -> Dict[str, Any]:
    """Welch's t-test of mean(a) against mean(b) over independent seeds.

    ``alternative``: ``"less"`` (the claim mean(a) < mean(b), e.g. a lower -ELBO), ``"greater"``
    or ``"two-sided"``. Returns the means, ``difference`` (mean(a) - mean(b)), ``pooled_std``
    (sqrt of the mean of the two sample variances, ddof=1), ``effect`` (difference / pooled_std),
    ``t``, Welch–Satterthwaite ``df`` and ``p``. Needs two seeds per side; equal values on both
    sides (zero spread) give ``p`` 0 or 1 by the sign of the difference.
    """
    if alternative not in ("less", "greater", "two-sided"):
        raise ValueError(f"alternative must be 'less', 'greater' or 'two-sided'; got {alternative!r}")
    a, b = [float(v) for v in plain(list(a))], [float(v) for v in plain(list(b))]
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs at least two seeds on each side; got {len(a)} and "
                         f"{len(b)} (one seed has no spread to test against)")
    a, b = summary(a, ddof=1), summary(b, ddof=1)
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    difference = a["mean"] - b["mean"]
    pooled = math.sqrt((a["std"] ** 2 + b["std"] ** 2) / 2)
    standard_error = math.sqrt(va + vb)
    if standard_error == 0:      # every seed equal on both sides: the sign decides
        t = math.copysign(math.inf, difference) if difference else 0.0
        df = float(a["n"] + b["n"] - 2)
    else:
        t = difference / standard_error
        df = (va + vb) ** 2 / (va ** 2 / (a["n"] - 1) + vb ** 2 / (b["n"] - 1))
    # P(T < t) = P(T > -t) by symmetry, without the cancellation of 1 - sf(t).
    p = {"less": student_t_sf(-t, df), "greater": student_t_sf(t, df),
         "two-sided": min(1.0, 2.0 * student_t_sf(abs(t), df))}[alternative]
    effect = (difference / pooled if pooled else
              math.copysign(math.inf, difference) if difference else 0.0)
    return {"mean_a": a["mean"], "mean_b": b["mean"], "n_a": a["n"], "n_b": b["n"],
            "difference": difference, "pooled_std": pooled,
            "effect": effect,
            "standard_error": standard_error, "t": t, "df": df, "p": p, "alternative": alternative}


def holm(p_values: Mapping[Any, float]) -> Dict[Any, float]:
    """Holm's step-down adjusted p-values for claims checked together (controls the chance of
    any false "supported" at the chosen level); same keys."""
    order = sorted(p_values, key=lambda key: p_values[key])
    m, running, adjusted = len(order), 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[key])))
        adjusted[key] = running
    return {key: adjusted[key] for key in p_values}


def bonferroni(p_values: Mapping[Any, float]) -> Dict[Any, float]:
    """Bonferroni-adjusted p-values: each times the number of claims, at most 1."""
    m = len(p_values)
    return {key: min(1.0, m * float(p)) for key, p in p_values.items()}


def check_claims(claims: Sequence[Tuple[str, Iterable[float], Iterable[float]]], alpha: float = 0.05,
                 correction: str = "holm") -> List[Dict[str, Any]]:
    """Check claims "mean(a) < mean(b)" (name, per-seed values of a, of b) together.

    Each gets :func:`welch_test`'s numbers, ``p_adjusted`` (Holm or Bonferroni over the claims that
    could be tested), ``supported`` (``p_adjusted < alpha``) and ``resolution``: the smallest
    difference these seeds could have called supported at their observed spread (the one-sided
    t quantile at the claim's corrected level times the standard error: ``alpha / m`` for
    Bonferroni, ``alpha / (m - rank)`` for Holm, rank by p from 0), which says what ``n`` seeds
    can and cannot support. A claim with fewer than two seeds on a side is ``"untestable"``.
    ``verdict``: ``"supported"``, ``"not supported"`` (the means point the claimed way but the
    seeds cannot tell), ``"contradicted"`` (the means point the other way) or ``"untestable"``.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1; got alpha={alpha!r}")
    adjust = {"holm": holm, "bonferroni": bonferroni}.get(correction)
    if adjust is None:
        raise ValueError(f"correction must be 'holm' or 'bonferroni'; got correction={correction!r}")
    names = [claim[0] for claim in claims]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be distinct; got {names!r}")
    found: Dict[str, Dict[str, Any]] = {}
    for name, a, b in claims:
        a, b = [float(v) for v in plain(list(a))], [float(v) for v in plain(list(b))]
        if len(a) < 2 or len(b) < 2:
            found[name] = {"claim": name, "n_a": len(a), "n_b": len(b), "p": None, "p_adjusted": None,
                           "supported": False, "verdict": "untestable", "resolution": None,
                           "difference": (sum(a) / len(a) - sum(b) / len(b)) if a and b else None}
            continue
        found[name] = {"claim": name, **welch_test(a, b, "less")}
    tested = {name: row["p"] for name, row in found.items() if row["p"] is not None}
    adjusted = adjust(tested) if tested else {}
    # The level each claim's own p meets: alpha / m for Bonferroni; for Holm, alpha / (m - rank)
    # with the claims ranked by p (so the resolution matches the verdict's rule).
    ranked = sorted(tested, key=lambda name: tested[name])
    divisor = {name: (len(tested) - ranked.index(name) if correction == "holm" else len(tested))
               for name in tested}
    for name, row in found.items():
        if name not in adjusted:
            continue
        row["p_adjusted"] = adjusted[name]
        row["supported"] = adjusted[name] < alpha
        row["verdict"] = ("supported" if row["supported"] else
                          "contradicted" if row["difference"] > 0 else "not supported")
        row["resolution"] = (student_t_ppf(1 - alpha / divisor[name], row["df"])
                             * row["standard_error"])
    return [found[name] for name in names]


def claims_markdown(rows: Sequence[Mapping[str, Any]], digits: int = 2) -> str:
    """:func:`check_claims`'s rows as a markdown table."""
    body = []
    for row in rows:
        testable = row["p"] is not None
        body.append([row["claim"], f"{row['n_a']} / {row['n_b']}",
                     f"{row['difference']:+.{digits}f}" if row["difference"] is not None else "–",
                     f"{row['effect']:+.2f}" if testable else "–",
                     f"{row['p_adjusted']:.3g}" if testable else "–",
                     f"{row['resolution']:.{digits}f}" if testable else "–", row["verdict"]])
    return markdown_table(["claim (mean A < mean B)", "seeds A / B", "A - B", "in pooled stds",
                           "p (adjusted)", "smallest detectable", "verdict"], body)


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
