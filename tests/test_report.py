"""reinmax.reporting.tables: paper-vs-ours tables, glue values, claim checks, cost tables."""
import math

import mpmath
import numpy as np
import pytest
import torch

from reinmax import paper, report, results


# ----------------------------------------------------------------------------- plain and glue
def test_plain_turns_numpy_and_torch_into_python():
    value = report.plain({"a": np.float64(1.5), "b": torch.tensor(2.5), "c": np.int64(3),
                          "d": (np.arange(2), torch.tensor([1.0, 2.0])), "e": np.bool_(True),
                          "f": float("nan"), "g": "text", "h": None})
    assert value["a"] == 1.5 and type(value["a"]) is float
    assert value["b"] == 2.5 and type(value["b"]) is float
    assert value["c"] == 3 and type(value["c"]) is int
    assert value["d"] == [[0, 1], [1.0, 2.0]] and type(value["d"][0][0]) is int
    assert value["e"] is True
    assert math.isnan(value["f"]) and value["g"] == "text" and value["h"] is None
    # what MyST-NB would print: the plain value's repr, not numpy's
    assert repr(report.plain(np.float64(0.25))) == "0.25"


def test_plain_rejects_objects_it_cannot_convert():
    with pytest.raises(TypeError, match="value must be a number, string, list or dict"):
        report.plain(object())


def test_key_of_names():
    assert [report.key_of(n) for n in ("GST-1.0", "ReinMax-1/n", "GR-MCK", "8x4", "ST")] == [
        "GST10", "ReinMax1n", "GRMCK", "8x4", "ST"]
    with pytest.raises(ValueError, match="name must contain a letter or digit"):
        report.key_of("-/.")


def test_glue_numbers_glues_plain_values_under_the_prefix():
    calls = []
    glued = report.glue_numbers("nb07", {"cos_ST": np.float32(0.5), "n": np.int64(3), "label": "x"},
                                glue=lambda key, value, display: calls.append((key, value, display)))
    assert calls == [("nb07_cos_ST", 0.5, False), ("nb07_n", 3, False), ("nb07_label", "x", False)]
    assert all(type(v) in (float, int, str) for _, v, _ in calls)
    assert glued == {"nb07_cos_ST": 0.5, "nb07_n": 3, "nb07_label": "x"}


@pytest.mark.parametrize("prefix, values, message", [
    ("nb 07", {"a": 1}, "prefix must be letters, digits and '_'"),
    ("nb07", {"GST-1.0": 1}, "glue key 'GST-1.0' .* use reinmax.reporting.tables.key_of"),
    ("nb07", {"a": [1, 2]}, "glue value for nb07_a must be a number or text"),
    ("nb07", [("a", 1)], "values must be a dict"),
])
def test_glue_numbers_bad_input(prefix, values, message):
    with pytest.raises((ValueError, TypeError), match=message):
        report.glue_numbers(prefix, values, glue=lambda *a, **k: None)


# ----------------------------------------------------------------------------- paper vs ours
def test_summary_mean_and_std():
    entry = report.summary(np.array([1.0, 2.0, 3.0, 4.0]))
    assert entry["mean"] == 2.5 and entry["n"] == 4 and entry["std"] == pytest.approx(np.std([1, 2, 3, 4]))
    assert report.summary([1.0, 2.0, 3.0, 4.0], ddof=1)["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    with pytest.raises(ValueError, match="at least one number"):
        report.summary([])
    with pytest.raises(ValueError, match="ddof must be 0, or 1 with at least two values"):
        report.summary([1.0], ddof=1)


def test_agreement_is_the_results_one():
    entry = {"mean": 124.66, "std": 0.88}
    assert report.agreement(125.08, entry) == results.agreement(125.08, entry)
    assert report.agreement(124.66 + 2.0 * 0.88 - 1e-9, entry)["within"]
    assert not report.agreement(124.66 - 2.0 * 0.88 - 1e-9, entry)["within"]
    with pytest.raises(ValueError, match="k must be a positive number"):
        report.agreement(1.0, entry, k=0)
    with pytest.raises(ValueError, match="std must be positive"):
        report.agreement(1.0, {"mean": 1.0, "std": 0.0})


def test_compare_to_paper_rows_measure_in_the_papers_stds():
    table2 = paper.table("table2_mnist_vae_train_neg_elbo")
    ours = {("8x4", "ReinMax"): {"mean": 125.54, "std": 0.2, "n": 3},
            ("8x4", "ST"): [135.0, 136.0],                              # per-seed values
            ("8x4", "ReinMax-1/n"): {"mean": 130.0, "std": 1.0, "n": 2}}  # not in the paper
    rows = report.compare_to_paper(ours, table2)
    assert [(r["setting"], r["method"]) for r in rows] == list(ours)
    reinmax_row = rows[0]
    assert reinmax_row["paper_mean"] == 124.66 and reinmax_row["paper_std"] == 0.88
    assert reinmax_row["difference"] == pytest.approx(0.88)
    assert reinmax_row["z"] == pytest.approx(1.0) and reinmax_row["within"] is True
    st_row = rows[1]
    assert st_row["mean"] == 135.5 and st_row["std"] == 0.5 and st_row["n"] == 2
    assert st_row["z"] == pytest.approx((135.5 - 135.53) / 0.31)
    assert rows[2]["paper_mean"] is None and rows[2]["z"] is None
    text = report.comparison_markdown(rows, "paper Table 2", "ours")
    lines = text.splitlines()
    assert lines[0] == "| setting | method | paper Table 2 | ours | difference | in paper stds |"
    assert lines[2] == "| 8x4 | ReinMax | 124.66 ± 0.88 | 125.54 ± 0.20 (n=3) | +0.88 | +1.00 |"
    assert lines[4] == "| 8x4 | ReinMax-1/n | – | 130.00 ± 1.00 (n=2) | – | – |"


def test_compare_to_paper_needs_setting_method_keys():
    with pytest.raises(ValueError, match=r"keyed by \(setting, method\)"):
        report.compare_to_paper({"ReinMax": [1.0, 2.0]}, {})


def test_markdown_table_escapes_and_checks_widths():
    assert report.markdown_table(["a", "b"], [["x|y", 1]]) == "| a | b |\n|---|---|\n| x\\|y | 1 |"
    with pytest.raises(ValueError, match="every row must have 2 cells"):
        report.markdown_table(["a", "b"], [[1]])


# ----------------------------------------------------------------------------- Student t
@pytest.mark.parametrize("df", [1, 2, 3.7, 10, 29.5, 200])
@pytest.mark.parametrize("t", [-3.0, -0.4, 0.0, 0.7, 2.228, 6.0])
def test_student_t_sf_matches_the_incomplete_beta_of_mpmath(t, df):
    x = df / (df + t * t)
    tail = 0.5 * float(mpmath.betainc(df / 2, 0.5, 0, x, regularized=True))
    expected = tail if t >= 0 else 1 - tail
    assert report.student_t_sf(t, df) == pytest.approx(expected, rel=1e-10, abs=1e-14)


def test_student_t_sf_closed_forms():
    # df = 1 is the Cauchy distribution; df = 2 has sf(t) = (1 - t / sqrt(t^2 + 2)) / 2.
    for t in (0.3, 1.0, 5.0):
        assert report.student_t_sf(t, 1) == pytest.approx(0.5 - math.atan(t) / math.pi, rel=1e-12)
        assert report.student_t_sf(t, 2) == pytest.approx((1 - t / math.sqrt(t * t + 2)) / 2, rel=1e-12)
    assert report.student_t_sf(math.inf, 3) == 0.0 and report.student_t_sf(-math.inf, 3) == 1.0


def test_student_t_ppf_inverts_sf():
    for q, df in ((0.975, 10), (0.95, 2.5), (0.1, 4)):
        assert report.student_t_sf(report.student_t_ppf(q, df), df) == pytest.approx(1 - q, abs=1e-12)
    assert report.student_t_ppf(0.975, 10) == pytest.approx(2.228138851986, rel=1e-9)
    with pytest.raises(ValueError, match="q must be strictly between 0 and 1"):
        report.student_t_ppf(1.0, 3)
    with pytest.raises(ValueError, match="df must be a positive finite number"):
        report.student_t_sf(1.0, 0)


# ----------------------------------------------------------------------------- Welch and claims
def test_welch_test_by_hand():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    va, vb = 1.0 / 3, (5 / 3) / 4                       # sample variances over n
    t = (2.0 - 5.5) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    found = report.welch_test(a, b, "less")
    assert found["t"] == pytest.approx(t, rel=1e-12) and found["df"] == pytest.approx(df, rel=1e-12)
    assert found["difference"] == -3.5
    assert found["pooled_std"] == pytest.approx(math.sqrt((1 + 5 / 3) / 2))
    lower = float(mpmath.betainc(df / 2, 0.5, 0, df / (df + t * t), regularized=True)) / 2
    assert found["p"] == pytest.approx(lower, rel=1e-9)
    assert report.welch_test(a, b, "greater")["p"] == pytest.approx(1 - lower, rel=1e-9)
    assert report.welch_test(a, b, "two-sided")["p"] == pytest.approx(2 * lower, rel=1e-9)


def test_welch_test_bad_input():
    with pytest.raises(ValueError, match="at least two seeds on each side; got 1 and 3"):
        report.welch_test([1.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="alternative must be"):
        report.welch_test([1.0, 2.0], [1.0, 2.0], "smaller")


def test_welch_test_without_spread_decides_by_the_sign():
    assert report.welch_test([1.0, 1.0], [2.0, 2.0])["p"] == 0.0
    assert report.welch_test([2.0, 2.0], [1.0, 1.0])["p"] == 1.0
    assert report.welch_test([1.0, 1.0], [1.0, 1.0])["p"] == 0.5


def test_holm():
    p = {"a": 0.01, "b": 0.04, "c": 0.03}
    assert report.holm(p) == pytest.approx({"a": 0.03, "b": 0.06, "c": 0.06})
    assert report.holm({}) == {}


# ----------------------------------------------------------------------------- cost tables
def cost_entry():
    rows = {"ST": {"cpu": {"seconds_per_epoch": 1.0, "ratio_to_st": 1.0},
                   "wall": {"seconds_per_epoch": 1.1, "ratio_to_st": 1.0},
                   "memory": {"peak_mib": 10.0, "ratio_to_st": 1.0}},
            "GR-MCK1000": {"cpu": {"seconds_per_epoch": 100.0, "ratio_to_st": 100.0},
                           "wall": {"seconds_per_epoch": 90.0, "ratio_to_st": 81.8},
                           "memory": {"peak_mib": 2048.0, "ratio_to_st": 204.8}},
            "GR-MCK1000 unfused": {"cpu": {"seconds_per_epoch": 200.0, "ratio_to_st": 200.0},
                                   "wall": {"seconds_per_epoch": 180.0, "ratio_to_st": 163.6},
                                   "memory": None}}
    printed = {"ST": {"text": "5.2s/13Mb", "time_ratio_to_st": 1.0, "memory_ratio_to_st": 1.0},
               "GR-MCK1000": {"text": "5.4s/0.6Gb", "time_ratio_to_st": 5.4 / 5.2,
                              "memory_ratio_to_st": 600 / 13}}
    return rows, printed


def test_cost_rows_ratios_for_the_book():
    rows, printed = cost_entry()
    header, body = report.cost_rows(rows, printed, absolute=False)
    assert header == ["", "ST", "GR-MCK1000"]                 # only what the paper prints
    assert body == [["time / ST, this book (CPU)", "x1.00", "x100.00"],
                    ["peak memory / ST, this book", "x1.0", "x204.8"],
                    ["paper time / ST", "x1.00", "x1.04"],
                    ["paper memory / ST", "x1.0", "x46.2"]]


def test_cost_rows_absolute_for_the_console():
    rows, printed = cost_entry()
    header, body = report.cost_rows(rows, printed, "idle A6000 GPU, parameter updates skipped")
    assert header[1:] == list(rows)
    by_name = {row[0]: row[1:] for row in body}
    assert by_name["peak memory of a step"] == ["10.0M", "2.00G", "-"]
    assert by_name["paper (idle A6000 GPU)"] == ["5.2s/13Mb", "5.4s/0.6Gb", ""]
    text = report.text_table(header, body, first_width=26)
    assert text.splitlines()[1].startswith("time/epoch, CPU" + " " * 11)


@pytest.mark.parametrize("mean, std, text", [
    (129.71, 0.13, "129.71 ± 0.13"),                      # the spread sets the decimals
    (1.4e-4, 1.2e-6, "(1.400 ± 0.012)×10⁻⁴"),             # never "0.00014 ± 0.00000"
    (-4.9e-4, 2e-6, "(-4.900 ± 0.020)×10⁻⁴"),
    (0.03201, 0.00098, "0.03201 ± 0.00098"),
    (7e-5, 0.0, "(7.000 ± 0)×10⁻⁵"),
    (1234567, 1234, "(1.2346 ± 0.0012)×10⁶"),
])
def test_pm_sig_rounds_to_the_spread(mean, std, text):
    assert report.pm_sig(mean, std) == text
    # the fixed-decimals pm is what printed "± 0.00000" for spreads below 5e-6
    if std < 5e-6:
        assert report.pm({"mean": mean, "std": std}, 5).endswith("± 0.00000")


def test_sig_significant_digits():
    assert [report.sig(v) for v in (0.000512, 113.364, -0.0386, 0.5)] == ["5.12×10⁻⁴", "113", "-0.0386", "0.500"]
    with pytest.raises(ValueError, match="digits=0"):
        report.sig(1.0, 0)
    with pytest.raises(ValueError, match="digits=0"):
        report.pm_sig(1.0, 0.1, 0)


def test_print_wrapped_keeps_lines_within_the_page(capsys):
    long = "word " * 40 + "x" * 130
    report.print_wrapped("short", long, sep="\n")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "short" and all(len(line) <= report.PAGE_WIDTH for line in lines)
    assert "".join(lines[1:]).replace(" ", "") == long.replace(" ", "")
    assert len(long) > report.PAGE_WIDTH                  # plain print would have made one wide line
