"""Statistics for the book's verdicts: per-seed summaries, Student's t, Welch's test, Holm.

Pure Python (no numpy, no scipy): the experiments' analyses and the notebook-facing reporting
(:mod:`reinmax.reporting`) both use it, so it sits below them.
"""
import math
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

__all__ = ["agreement", "summary", "student_t_sf", "student_t_ppf", "welch_test", "holm",
           "ALPHA", "POWER", "describe", "detectable_difference", "test_family",
           "welch_from_summaries"]


def summary(values: Iterable[float], ddof: int = 0) -> Dict[str, Any]:
    """``{"mean", "std", "n", "per_seed"}`` of per-seed values (std with ``ddof``, numpy's
    default 0, as the experiments' records store it)."""
    values = [float(v) for v in list(values)]
    if not values:
        raise ValueError("values must hold at least one number; got an empty list")
    if ddof not in (0, 1) or len(values) <= ddof:
        raise ValueError(f"ddof must be 0, or 1 with at least two values; got ddof={ddof!r} "
                         f"for {len(values)} value(s)")
    mean = math.fsum(values) / len(values)
    variance = math.fsum((v - mean) ** 2 for v in values) / (len(values) - ddof)
    return {"mean": mean, "std": math.sqrt(variance), "n": len(values), "per_seed": values}


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
    a, b = [float(v) for v in list(a)], [float(v) for v in list(b)]
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


def welch_from_summaries(a: Mapping[str, float], b: Mapping[str, float], n_a: int, n_b: int
                         ) -> Dict[str, float]:
    """Welch's test of mean(a) < mean(b) from printed summaries ``{"mean", "std"}`` (each std
    taken as the sample sd, ddof = 1, over ``n_a`` and ``n_b`` seeds): ``difference``
    (mean(a) - mean(b)), ``t``, ``df``, the one-sided ``p`` and ``standard_error``."""
    if n_a < 2 or n_b < 2:
        raise ValueError(f"n_a and n_b must be at least 2; got n_a={n_a!r}, n_b={n_b!r}")
    va, vb = float(a["std"]) ** 2 / n_a, float(b["std"]) ** 2 / n_b
    difference = float(a["mean"]) - float(b["mean"])
    if va + vb == 0:
        raise ValueError("the two summaries have no spread (both stds are 0): Welch's t is undefined")
    t = difference / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return {"difference": difference, "t": t, "df": df, "p": student_t_sf(-t, df),
            "standard_error": math.sqrt(va + vb)}


def holm(p_values: Mapping[Any, float]) -> Dict[Any, float]:
    """Holm's step-down adjusted p-values for claims checked together (controls the chance of
    any false "supported" at the chosen level); same keys."""
    order = sorted(p_values, key=lambda key: p_values[key])
    m, running, adjusted = len(order), 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[key])))
        adjusted[key] = running
    return {key: adjusted[key] for key in p_values}


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


# ----------------------------------------------------------------------------- the test policy
# Written once, before any record is read (book/appendix/test_policy.md states it in words):
# every comparison "A better than B" is two one-sided Welch tests, A better and B better, and
# both directions of every comparison of one table or figure form ONE Holm family of m = 2k
# hypotheses at ALPHA. The detectable difference is stated at Holm's first step (ALPHA / m,
# whatever the observed ranks) and POWER. Every spread shown is a sample sd (ddof = 1).
ALPHA = 0.05
"""The family-wise error rate of every Holm family."""
POWER = 0.8
"""The power at which the smallest detectable difference is stated."""


def describe(values: Iterable[float]) -> Dict[str, Any]:
    """A sample as the book shows it: ``mean``, ``sd`` (ddof = 1; None for one value), ``n``,
    ``median``, ``low`` and ``high`` (the range), ``per_seed``, and ``split``: True where a gap
    between consecutive sorted values is wider than half the range and ``n >= 4`` (a bimodal
    sample or a lone outlier), where the median and range say more than mean and sd."""
    values = [float(v) for v in list(values)]
    if not values:
        raise ValueError("values must hold at least one number; got an empty list")
    ordered = sorted(values)
    n = len(values)
    middle = (ordered[(n - 1) // 2] + ordered[n // 2]) / 2
    spread = ordered[-1] - ordered[0]
    gap = max((b - a for a, b in zip(ordered, ordered[1:])), default=0.0)
    return {"mean": math.fsum(values) / n,
            "sd": summary(values, ddof=1)["std"] if n >= 2 else None,
            "n": n, "median": middle, "low": ordered[0], "high": ordered[-1],
            "split": bool(n >= 4 and spread > 0 and gap > spread / 2), "per_seed": values}


def detectable_difference(sd_a: float, n_a: int, sd_b: float, n_b: int, level: float,
                          power: float = POWER) -> float:
    """The smallest true difference of means that a one-sided Welch test at ``level`` detects
    with probability ``power``, at these sds (ddof = 1) and sample sizes:
    ``(t(1 - level, df) + t(power, df)) * se`` with ``se = sqrt(sd_a^2/n_a + sd_b^2/n_b)`` and
    Welch–Satterthwaite ``df`` (the normal-approximation formula with t quantiles)."""
    if not 0 < level < 1 or not 0 < power < 1:
        raise ValueError(f"level and power must lie in (0, 1); got level={level!r}, power={power!r}")
    if n_a < 2 or n_b < 2:
        raise ValueError(f"n_a and n_b must be at least 2; got n_a={n_a!r}, n_b={n_b!r}")
    va, vb = sd_a ** 2 / n_a, sd_b ** 2 / n_b
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0
    df = (va + vb) ** 2 / (va ** 2 / (n_a - 1) + vb ** 2 / (n_b - 1))
    return (student_t_ppf(1 - level, df) + student_t_ppf(power, df)) * se


def test_family(comparisons: Sequence[Tuple[Any, Iterable[float], Iterable[float]]],
                alpha: float = ALPHA, power: float = POWER) -> Dict[Any, Dict[str, Any]]:
    """Test comparisons ``(key, a, b)`` together, each meaning "A is better: mean(a) < mean(b)"
    (orient the values so that lower is better before calling).

    Both directions of every testable comparison (two or more values on each side) are one
    Holm family of ``m = 2k`` hypotheses. Per key: ``a`` and ``b`` (:func:`describe`),
    ``difference`` (mean(a) - mean(b)), ``p_claimed`` and ``p_opposite`` (one-sided Welch),
    ``holm_claimed`` and ``holm_opposite`` (adjusted in the family), ``m``, ``detectable`` (the
    smallest difference detected with probability ``power`` at Holm's first step, level
    ``alpha / m``) and ``verdict``: ``"supported"`` (A better, adjusted p < alpha),
    ``"contradicted"`` (B better, adjusted p < alpha) or ``"not decided"`` (neither, or fewer
    than two values on a side: ``testable`` False).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1; got alpha={alpha!r}")
    keys = [c[0] for c in comparisons]
    if len(set(keys)) != len(keys):
        raise ValueError(f"comparison keys must be distinct; got {keys!r}")
    rows: Dict[Any, Dict[str, Any]] = {}
    p_values: Dict[Tuple[Any, str], float] = {}
    for key, a, b in comparisons:
        a, b = describe(a), describe(b)
        row = {"a": a, "b": b, "difference": a["mean"] - b["mean"], "testable": a["n"] >= 2 and b["n"] >= 2,
               "p_claimed": None, "p_opposite": None, "holm_claimed": None, "holm_opposite": None,
               "detectable": None, "verdict": "not decided"}
        if row["testable"]:
            row["p_claimed"] = welch_test(a["per_seed"], b["per_seed"], "less")["p"]
            row["p_opposite"] = welch_test(a["per_seed"], b["per_seed"], "greater")["p"]
            p_values[key, "claimed"], p_values[key, "opposite"] = row["p_claimed"], row["p_opposite"]
        rows[key] = row
    m = len(p_values)
    adjusted = holm(p_values) if p_values else {}
    for key, row in rows.items():
        row["m"] = m
        if not row["testable"]:
            continue
        row["holm_claimed"], row["holm_opposite"] = adjusted[key, "claimed"], adjusted[key, "opposite"]
        row["verdict"] = ("supported" if row["holm_claimed"] < alpha else
                          "contradicted" if row["holm_opposite"] < alpha else "not decided")
        row["detectable"] = detectable_difference(row["a"]["sd"], row["a"]["n"], row["b"]["sd"],
                                                  row["b"]["n"], alpha / m, power)
    return rows
