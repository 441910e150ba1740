"""The claims as data and the one test policy (reinmax.reporting.claims, reinmax.statistics).

Verdicts come from records: a claim pointed at temporary records changes its verdict when the
records change. The policy's numbers are checked against hand computations: Holm over both
directions of every comparison (m = 2k), ddof = 1, and the detectable difference at Holm's first
step and 80% power, where Student's t has closed-form quantiles (df = 2: two seeds a side with
equal spreads).
"""
import json
import math
import sys
from pathlib import Path

import pytest

from reinmax import paper, statistics
from reinmax.reporting import claims

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import verdict_words  # noqa: E402


def write_vae(folder: Path, method: str, values, setting="8x4"):
    """A minimal MNIST-VAE record (the shape reinmax.experiments.vae writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(values)
    mean = sum(values) / n
    record = {"config": setting, "method": method, "seeds": list(range(n)),
              "final": {"train_neg_elbo": {"mean": mean, "n": n, "per_seed": list(values),
                                           "std": math.sqrt(sum((v - mean) ** 2 for v in values) / n)}}}
    (folder / f"{setting}_{method}.json").write_text(json.dumps(record))


TOY = claims.Claim("toy", "Table X", "Table X", "A is best", "07_mnist_vae", "vae", "train_neg_elbo",
                   "lower", (("toy/*x*_*.json", "study"),), (("*", "A", "*"),))


def test_a_claims_verdict_follows_its_records(tmp_path):
    assert claims.evaluate(TOY, tmp_path).word == "not decided"          # no record yet
    write_vae(tmp_path / "toy", "A", [100.0, 100.2, 99.9, 100.1])
    write_vae(tmp_path / "toy", "B", [110.0, 110.3, 109.8, 110.1])
    verdict = claims.evaluate(TOY, tmp_path)
    assert verdict.word == "supported" and verdict.scales == ("study",) and verdict.m == 2
    write_vae(tmp_path / "toy", "A", [120.0, 120.2, 119.9, 120.1])        # A now worse
    assert claims.evaluate(TOY, tmp_path).word == "contradicted"
    write_vae(tmp_path / "toy", "A", [105.0, 115.0, 104.0, 116.0])        # too noisy to tell
    verdict = claims.evaluate(TOY, tmp_path)
    assert verdict.word == "not decided" and "detectable" in verdict.reason


def test_all_and_any(tmp_path):
    write_vae(tmp_path / "toy", "A", [100.0, 100.1, 99.9])
    write_vae(tmp_path / "toy", "B", [110.0, 110.1, 109.9])
    write_vae(tmp_path / "toy", "C", [90.0, 90.1, 89.9])
    assert claims.evaluate(TOY, tmp_path).word == "contradicted"          # A beats B, not C
    anyone = claims.Claim(**{**TOY.__dict__, "quantifier": "any"})
    assert claims.evaluate(anyone, tmp_path).word == "supported"


def test_holm_family_holds_both_directions(tmp_path):
    a, b, c = [1.0, 1.3, 0.8, 1.1], [1.9, 2.2, 1.7, 2.4], [0.2, 0.9, 0.4, 0.5]
    rows = statistics.test_family([("ab", a, b), ("ac", a, c)])
    assert all(row["m"] == 4 for row in rows.values())
    p = {("ab", "claimed"): statistics.welch_test(a, b, "less")["p"],
         ("ab", "opposite"): statistics.welch_test(a, b, "greater")["p"],
         ("ac", "claimed"): statistics.welch_test(a, c, "less")["p"],
         ("ac", "opposite"): statistics.welch_test(a, c, "greater")["p"]}
    assert math.isclose(p["ab", "claimed"] + p["ab", "opposite"], 1.0)
    # Holm by hand: sort the four p-values, multiply by 4, 3, 2, 1, keep the running maximum.
    order = sorted(p, key=p.get)
    running, adjusted = 0.0, {}
    for rank, key in enumerate(order):
        running = max(running, min(1.0, (4 - rank) * p[key]))
        adjusted[key] = running
    for key in ("ab", "ac"):
        assert math.isclose(rows[key]["holm_claimed"], adjusted[key, "claimed"])
        assert math.isclose(rows[key]["holm_opposite"], adjusted[key, "opposite"])
    assert rows["ab"]["verdict"] == "supported" and rows["ac"]["verdict"] == "contradicted"
    # The family spans a table's claims: two claims with one family label share m.
    write_vae(tmp_path / "toy", "A", a)
    write_vae(tmp_path / "toy", "B", b)
    write_vae(tmp_path / "toy", "C", c)
    first = claims.Claim(**{**TOY.__dict__, "pairs": (("*", "A", "B"),)})
    second = claims.Claim(**{**TOY.__dict__, "id": "toy2", "pairs": (("*", "A", "C"),)})
    verdict = claims.evaluate(first, tmp_path, family=[first, second])
    assert verdict.m == 4 and math.isclose(verdict.comparisons[0]["holm_claimed"], adjusted["ab", "claimed"])
    assert claims.evaluate(first, tmp_path).m == 2                          # alone: its own family


def test_spreads_are_sample_sds_from_the_seeds(tmp_path):
    values = [125.0, 126.5, 124.0]
    mean = sum(values) / 3
    hand = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    assert math.isclose(statistics.describe(values)["sd"], hand)
    write_vae(tmp_path / "toy", "A", values)
    write_vae(tmp_path / "toy", "B", [130.0, 131.0, 129.0])
    sample = claims.evaluate(TOY, tmp_path).comparisons[0]["sample_a"]
    stored = json.loads((tmp_path / "toy" / "8x4_A.json").read_text())["final"]["train_neg_elbo"]["std"]
    assert math.isclose(sample["sd"], hand) and not math.isclose(sample["sd"], stored)   # record: ddof 0


def test_split_samples_are_flagged():
    assert statistics.describe([1.0, 1.1, 0.9, 1.05, 9.0])["split"]         # a lone outlier
    assert statistics.describe([1.0, 1.1, 5.0, 5.2])["split"]               # two modes
    assert not statistics.describe([1.0, 1.5, 2.0, 2.5, 3.0])["split"]
    assert not statistics.describe([1.0, 1.1, 9.0])["split"]                # n = 3: never


def t_quantile_df2(q):
    """Student's t quantile for 2 degrees of freedom, in closed form."""
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def test_detectable_difference_at_holms_first_step_and_80_percent_power():
    # Two seeds a side, equal sds of 1: se = 1 and Welch's df = 2 exactly.
    a, b = [0.0, math.sqrt(2)], [5.0, 5.0 + math.sqrt(2)]
    assert math.isclose(statistics.describe(a)["sd"], 1.0)
    other = [0.0, 0.1], [0.2, 0.3]
    rows = statistics.test_family([("ab", a, b), ("other", *other)])        # m = 4: level 0.0125
    hand = t_quantile_df2(1 - 0.05 / 4) + t_quantile_df2(0.8)
    assert math.isclose(rows["ab"]["detectable"], hand, rel_tol=1e-9)
    assert math.isclose(statistics.detectable_difference(1.0, 2, 1.0, 2, 0.05 / 4), hand, rel_tol=1e-9)
    # The level is Holm's first step for every comparison, whatever its observed rank.
    assert rows["ab"]["p_claimed"] != rows["other"]["p_claimed"]
    same_spread = statistics.test_family([("x", [0.0, 1.0], [9.0, 10.0]), ("y", [0.0, 1.0], [0.3, 1.3])])
    assert math.isclose(same_spread["x"]["detectable"], same_spread["y"]["detectable"])
    assert not math.isclose(statistics.detectable_difference(1.0, 2, 1.0, 2, 0.05 / 4, power=0.5), hand)


def test_every_paper_item_has_a_row(tmp_path):
    rows = claims.front_rows(tmp_path)              # no record: every row, quickly
    items = {row["item"] for row in rows}
    tables = {f"Table {key.split('_')[0][5:]}" for key in paper.tables() if key.startswith("table")
              and key.split("_")[0][5:].isdigit()}
    assert tables == {f"Table {n}" for n in range(1, 12)}
    figures = {f"Figure {n}" for n in range(1, 11)}
    statements = {"Theorem 3.1", "Theorem 3.2", "Remark 4.1", "Remark 4.2", "Section 5",
                  "Section 6.1", "Section 6.2", "Section 6.3", "Section 6.4", "Section 6.5",
                  "Section 6.6", "Appendix F.6"}
    assert tables | figures | statements <= items
    assert all(row["verdict"] in claims.WORDS + ("–",) for row in rows)
    assert all(row["reason"] for row in rows)
    listed = {c for item in claims.PAPER_ITEMS for c in item["claims"]}
    assert listed == {c.id for c in claims.CLAIMS}                         # every claim on the page


def test_every_registered_claim_reads_its_committed_records():
    verdicts = claims.evaluate_all()
    for claim in claims.CLAIMS:
        verdict = verdicts[claim.id]
        assert verdict.word in claims.WORDS
        if claim.reader != "exact":
            assert verdict.files, f"{claim.id} found no committed record"
            family = [c for c in claims.CLAIMS if c.family == claim.family]
            if not any(c.variants for c in family):      # (a variant's comparisons are apart)
                assert verdict.m == 2 * sum(r["testable"] for c in family for r in verdicts[c.id].comparisons)
    for name in ("theorem_3_1", "theorem_3_2", "remark_4_1", "remark_4_2"):
        assert verdicts[name].word == "supported"


def test_bad_claims_are_refused():
    with pytest.raises(ValueError, match="better"):
        claims.Claim("x", "T", "T", "", "", "vae", "m", "smaller")
    with pytest.raises(ValueError, match="scale"):
        claims.Claim("x", "T", "T", "", "", "vae", "m", "lower", (("a/*.json", "laptop"),))
    with pytest.raises(KeyError, match="no claim"):
        claims.claim("table99")


def test_no_verdict_word_typed_in_converted_prose(tmp_path):
    assert verdict_words.check_book() == []
    page = tmp_path / "page.md"
    page.write_text("The claim holds here.\n\nGlued: {glue:text}`word`, and `supported` as code.\n\n"
                    "```{code-cell} python3\nprint('contradicted')\n```\n\n"
                    "```{note}\nThis one is not decided.\n```\n\nAfter the note, prose again: it fails.\n")
    assert [word for _, word in verdict_words.verdict_words(page)] == ["holds", "not decided", "fails"]
    assert verdict_words.check_book(tmp_path, allowed=frozenset()) == [
        "page.md:1: holds", "page.md:10: not decided", "page.md:13: fails"]


def test_verdicts_glue_for_the_chapters(tmp_path, monkeypatch):
    write_vae(tmp_path / "toy", "A", [100.0, 100.2, 99.9])
    write_vae(tmp_path / "toy", "B", [110.0, 110.3, 109.8])
    glued = {}
    monkeypatch.setattr(claims, "CLAIMS", claims.CLAIMS + (TOY,))
    claims.glue_verdicts(["toy"], tmp_path, glue=lambda key, value, display: glued.update({key: value}))
    assert glued["claim_toy_verdict"] == "supported" and glued["claim_toy_family"] == "Table X (m = 2)"


def write_cell(folder: Path, method: str, tau: float, finals, p=2.0):
    """A minimal polynomial cell record (one method, seeds 0..n-1): exact loss per epoch."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"p": p, "L": 128, "batch_size": 256, "setting": "A", "seeds": list(range(len(finals)))}
    record = {"config": config, "optimum": 0.0,
              "runs": [{"method": method, "tau": tau, "exact_loss": [[1.0, 0.5, f] for f in finals]}]}
    (folder / f"p{p:g}_A_{method}_tau{tau:g}.json").write_text(json.dumps(record))


def test_reinmax_temperature_variants(tmp_path):
    """The main verdict uses ReinMax's temperature picked on untested seeds; the variants use
    the one picked on the tested seeds and tau = 1."""
    poly = tmp_path / "polynomial"
    write_cell(poly / "cells", "ReinMax", 0.7, [0.10, 0.11, 0.09, 0.10])    # picked on tested seeds
    write_cell(poly / "cells", "ReinMax", 1.0, [0.50, 0.52, 0.49, 0.51])
    write_cell(poly / "cells", "ReinMax", 0.5, [0.30, 0.31, 0.29, 0.30])    # picked on seeds 10-14
    write_cell(poly / "cells", "ST", 0.1, [0.40, 0.41, 0.39, 0.40])
    for name, chosen in (("tested.json", {"ReinMax": 0.7, "ST": 0.1}), ("held.json", {"ReinMax": 0.5})):
        (poly / name).write_text(json.dumps({"sweeps": [{"config": {"p": 2.0}, "chosen": chosen}]}))
    toy = claims.Claim("poly", "Figure X", "Figure X", "ReinMax best", "06_polynomial_programming",
                       "polynomial", "final_gap", "lower", (("polynomial/cells/*.json", "paper"),),
                       (("*", "ReinMax", "ST"),),
                       options=(("taus", "polynomial/tested.json"), ("reinmax_tau", "polynomial/held.json")),
                       variants=(("tested", (("reinmax_tau", "polynomial/tested.json"),)),
                                 ("one", (("reinmax_tau", 1.0),))))
    verdict = claims.evaluate(toy, tmp_path)
    assert verdict.word == "supported"
    assert math.isclose(verdict.comparisons[0]["sample_a"]["mean"], 0.30)
    assert verdict.variants["tested"].word == "supported"
    assert verdict.variants["one"].word == "contradicted"
    (poly / "held.json").unlink()                       # not run yet: no main verdict
    assert claims.evaluate(toy, tmp_path).word == "not decided"


def figure1_cells(root: Path, finals: dict) -> None:
    """Figure 1's records at p = 2 as the registered claims read them: one cell per method at
    the temperature the sweep chose (ReinMax's also chosen on the held-out seeds)."""
    poly = root / "polynomial"
    chosen = {"ReinMax": 0.7, "STGS": 0.1, "GR-MCK": 0.1, "ST": 1.0, "GST-1.0": 1.0}
    for method, values in finals.items():
        write_cell(poly / "temperature_sweep_records", method, chosen[method], values)
    for name, taus in (("temperature_sweep.json", chosen), ("reinmax_tau_heldout.json", {"ReinMax": 0.7})):
        (poly / name).write_text(json.dumps({"sweeps": [{"config": {"p": 2.0}, "chosen": taus}]}))


def test_section_6_1s_poor_and_close_methods_follow_their_records(tmp_path):
    """Section 6.1: "ST and GST-1.0 do not perform well" (STGS and GR-MCK end below them) and
    "the final performance of STGS and GR-MCK is close to ReinMax" (an equivalence test: final
    gaps within 5% of the gap at epoch 0, here 1.0). Each verdict flips when a record does."""
    near = [0.010, 0.011, 0.009, 0.010]
    finals = {"ReinMax": near, "STGS": [v + 0.01 for v in near], "GR-MCK": [v + 0.02 for v in near],
              "ST": [0.40, 0.41, 0.39, 0.40], "GST-1.0": [0.50, 0.51, 0.49, 0.50]}
    figure1_cells(tmp_path, finals)
    close = claims.evaluate("figure1_close", tmp_path)
    assert close.word == "supported" and {r["margin"] for r in close.comparisons} == {0.05}
    assert close.m == 2 * 12 + 4 * 2          # 12 directional comparisons, 2 closeness ones
    assert claims.evaluate("figure1_st_gst", tmp_path).word == "supported"
    figure1_cells(tmp_path, {"STGS": [v + 0.30 for v in near]})             # STGS ends far above
    close = claims.evaluate("figure1_close", tmp_path)
    assert close.word == "contradicted" and "STGS - ReinMax = +0.3" in close.reason
    figure1_cells(tmp_path, {"STGS": [0.03, 0.09, 0.01, 0.07]})             # too noisy to tell
    assert claims.evaluate("figure1_close", tmp_path).word == "not decided"
    figure1_cells(tmp_path, {"ST": [0.001, 0.0011, 0.0009, 0.001]})         # ST now ends lowest
    assert claims.evaluate("figure1_st_gst", tmp_path).word == "contradicted"


def write_grid_cell(root: Path, method: str, tau: float, values) -> None:
    """A Figure 2 grid cell (setting 4x24) as reinmax.experiments.vae writes it, under tau_<tau>/."""
    folder = root / "vae" / "figure2_study_4x24" / f"tau_{tau:g}"
    write_vae(folder, method, values, setting="4x24")
    path = folder / f"4x24_{method}.json"
    record = json.loads(path.read_text())
    record["hyperparameters"] = {"tau": tau}
    path.write_text(json.dumps(record))


def test_figure2s_temperature_sides_follow_their_records(tmp_path):
    """Notebook 08's judgement of Figure 2 is the claims module's: each method's best temperature
    on each side of 1, compared over seeds. With one seed a cell nothing is testable; with three,
    the verdict follows the records, and flips when they do."""
    for method in ("STGS", "GR-MCK", "GST-1.0", "ST", "ReinMax"):
        for tau in (0.5, 1.0, 2.0):
            write_grid_cell(tmp_path, method, tau, [130.0])
    assert claims.evaluate("figure2_small_tau", tmp_path).word == "not decided"     # one seed
    low, high = [130.0, 130.2, 129.9], [135.0, 135.3, 134.8]
    for method in ("STGS", "GR-MCK", "GST-1.0"):
        write_grid_cell(tmp_path, method, 0.5, low)
        write_grid_cell(tmp_path, method, 1.0, low)
        write_grid_cell(tmp_path, method, 2.0, high)
    for method in ("ST", "ReinMax"):
        write_grid_cell(tmp_path, method, 0.5, high)
        write_grid_cell(tmp_path, method, 1.0, high)
        write_grid_cell(tmp_path, method, 2.0, low)
    assert claims.evaluate("figure2_small_tau", tmp_path).word == "supported"
    assert claims.evaluate("figure2_large_tau", tmp_path).word == "supported"
    write_grid_cell(tmp_path, "ReinMax", 0.5, [120.0, 120.1, 119.9])                  # now best below 1
    verdict = claims.evaluate("figure2_large_tau", tmp_path)
    assert verdict.word == "contradicted" and "ReinMax" in verdict.reason


def test_paper_power_reads_the_papers_gaps_and_the_policys_bar():
    """Table 2's gaps between ReinMax and the best other method, from the paper's own numbers,
    and the smallest gap three seeds detect at Holm's first step of the whole table's family."""
    from reinmax.paper import table
    rows = {r["setting"]: r for r in claims.paper_power(table("table2_mnist_vae_train_neg_elbo"), n=3)}
    gaps = {s: round(r["gap"], 2) for s, r in rows.items()}
    assert gaps == {"8x4": 1.28, "4x24": 0.19, "8x16": 0.59, "16x12": 0.06, "64x8": 1.82, "10x30": 0.27}
    assert {r["m"] for r in rows.values()} == {48}          # ReinMax vs 4 methods x 6 settings, both ways
    r = rows["16x12"]
    assert r["rival"] == "GST-1.0"
    assert math.isclose(r["detectable"], statistics.detectable_difference(0.53, 3, 0.57, 3, 0.05 / 48))
    assert all(r["gap"] < r["detectable"] for r in rows.values())     # "ReinMax best" undecidable
    assert all(g >= d for g, d in [r["others"]["ST"] for r in rows.values()])   # ST's gap decidable
    with pytest.raises(ValueError, match="n must be"):
        claims.paper_power(table("table2_mnist_vae_train_neg_elbo"), n=1)


def test_paper_power_tests_the_printed_table_1_as_the_policy_tests_records():
    """Table 1's printed summaries (5 seeds): Welch from the means and sds, both directions of
    ReinMax against four baselines on two splits in one Holm family (m = 16). ReinMax vs ST on
    the test split has t = 3.18 by hand, one-sided p < 0.05, but no adjusted p is below 0.05;
    with sds a tenth as large every comparison's would be."""
    from reinmax.paper import table
    printed = table("table1_listops_accuracy")
    by_method = {m: {split: printed[split][m] for split in printed} for m in printed["test"]}
    rows = claims.paper_power(by_method, n=5, better="higher", paper_n=5)
    tests = {(r["setting"], o): e for r in rows for o, e in r["printed"].items()}
    assert len(tests) == 8 and {r["m"] for r in rows} == {16}
    a, b = printed["test"]["ReinMax"], printed["test"]["ST"]
    t = (a["mean"] - b["mean"]) / math.sqrt(a["std"] ** 2 / 5 + b["std"] ** 2 / 5)
    assert tests["test", "ST"]["t"] == pytest.approx(t) and t == pytest.approx(3.18, abs=0.01)
    assert tests["test", "ST"]["p_winner"] < 0.05
    assert math.isclose(tests["test", "ST"]["p_winner"] + tests["test", "ST"]["p_other"], 1.0)
    assert min(e["holm_winner"] for e in tests.values()) > 0.05
    narrow = {m: {s: dict(e, std=e["std"] / 10) for s, e in v.items()} for m, v in by_method.items()}
    rows = claims.paper_power(narrow, n=5, better="higher", paper_n=5)
    assert all(e["holm_winner"] < 0.05 for r in rows for e in r["printed"].values())
    assert "printed" not in claims.paper_power(by_method, n=5, better="higher")[0]
    with pytest.raises(ValueError, match="paper_n"):
        claims.paper_power(by_method, n=5, better="higher", paper_n=1)


def test_glue_names_the_temperature_variants(tmp_path):
    glued = {}
    claims.glue_verdicts(["figure7_hard"], glue=lambda key, value, display: glued.update({key: value}))
    assert glued["claim_figure7_hard_tau1_verdict"] in claims.WORDS
    assert glued["claim_figure7_hard_tested_verdict"] in claims.WORDS
    assert "Figure 7" in glued["claim_figure7_hard_reason"]


def write_64x32(folder: Path, method: str, values, steps: int):
    """A minimal Table 5 record (the shape reinmax.experiments.vae_64x32 writes)."""
    folder.mkdir(parents=True, exist_ok=True)
    record = {"config": "64x32", "method": method, "steps": steps, "seeds": list(range(len(values))),
              "final": {"train_neg_elbo": {"per_seed": list(values)}}}
    (folder / f"64x32_{method}.json").write_text(json.dumps(record))


def test_table5_reads_the_long_run_when_it_arrives_and_words_each_length(tmp_path):
    # The study (600 updates): RLOO ahead. The long run's records, once committed, enter the same
    # Holm family as another setting, and by_setting words each length on its own rows.
    write_64x32(tmp_path / "vae_64x32/study", "ReinMax", [200.0, 200.1], 600)
    write_64x32(tmp_path / "vae_64x32/study", "RLOO", [186.0, 186.2], 600)
    verdict = claims.evaluate("table5", tmp_path)
    assert verdict.word == "contradicted" and verdict.m == 2
    assert claims.by_setting(verdict) == {"64x32, 600 updates": {"word": "contradicted",
                                                                 "tally": "1 contradicted", "n": 1}}
    write_64x32(tmp_path / "vae_64x32/long_20k", "ReinMax", [139.0, 139.3, 139.1], 20000)
    write_64x32(tmp_path / "vae_64x32/long_20k", "RLOO", [148.0, 148.2, 148.1], 20000)
    verdict = claims.evaluate("table5", tmp_path)
    words = claims.by_setting(verdict)
    assert verdict.m == 4 and "vae_64x32/long_20k/64x32_ReinMax.json" in verdict.files
    assert words["64x32, 20000 updates"]["word"] == "supported"
    assert words["64x32, 600 updates"]["word"] == "contradicted"
    assert verdict.word == "contradicted"          # the claim as a whole: any length against it


def broken_reinmax(logits, tau=1.0, *, sample=None):
    """ReinMax with its ST term's 1/2 dropped (2 grad at (pi + D)/2 - ST): a deliberately wrong
    estimator, whose expectation misses the second-order approximation by -E[ST]/2. Forward:
    ReinMax's one-hot sample; backward: ReinMax's gradient minus half of ST's."""
    import reinmax
    y, soft = reinmax.reinmax(logits, tau, sample=sample)
    y_st, _ = reinmax.st(logits, tau, sample=sample)
    return y - 0.5 * (y_st - y_st.detach()), soft


def test_an_exact_claim_is_judged_on_the_error_its_notebook_measured():
    """Theorem 3.2's verdict (chapter 3, notebook 03) follows the largest error the notebook
    measured: ReinMax's, or a broken ReinMax's (which flips it), with the number in the reason."""
    import torch
    import reinmax
    from reinmax.theory import exact
    generator = torch.Generator().manual_seed(0)
    errors = {}
    for name, estimator in (("reinmax", reinmax.reinmax), ("broken", broken_reinmax)):
        worst = 0.0
        for shape in [(3,), (4,), (2, 3)]:
            logits, f = exact.random_problem(shape, generator)
            worst = max(worst, (exact.expected_estimate(estimator, f, logits, draws_noise=False)
                                - exact.second_order_target(f, logits)).abs().max().item())
        errors[name] = worst
    good = claims.evaluate("theorem_3_2", measured=errors["reinmax"])
    bad = claims.evaluate("theorem_3_2", measured=errors["broken"])
    assert good.word == "supported" and f"{errors['reinmax']:.1e}" in good.reason
    assert bad.word == "contradicted" and errors["broken"] > 1e-3
    glued = {}
    claims.glue_verdicts(["theorem_3_2"], measured={"theorem_3_2": errors["broken"]},
                         glue=lambda key, value, display: glued.update({key: value}))
    assert glued["claim_theorem_3_2_verdict"] == "contradicted"
    # Without a measurement, the module enumerates the notebooks' book-scale problems itself.
    assert claims.evaluate("theorem_3_2").word == "supported"
    with pytest.raises(ValueError, match="measured"):
        claims.evaluate("theorem_3_2", measured=float("nan"))
    with pytest.raises(ValueError, match="exact identities only"):
        claims.evaluate("table2", measured=0.0)
    with pytest.raises(ValueError, match="not glued here"):
        claims.glue_verdicts(["theorem_3_1"], measured={"theorem_3_2": 0.0}, glue=lambda *a, **k: None)


def copy_paper_record(root: Path, folder: str, method: str, setting: str) -> None:
    """A committed paper-scale 8x4 record copied under ``root`` as if ``setting`` had been run
    (a temporary stand-in for a Table 2 cell that is still training; never committed)."""
    record = json.loads((ROOT / "results" / "vae" / "paper_8x4" / f"8x4_{method}.json").read_text())
    record["config"] = setting
    (root / "vae" / folder).mkdir(parents=True, exist_ok=True)
    (root / "vae" / folder / f"{setting}_{method}.json").write_text(json.dumps(record))


def test_a_new_table2_record_enters_the_verdict_without_an_edit(tmp_path):
    for method in ("ReinMax", "ST"):
        copy_paper_record(tmp_path, "paper_8x4", method, "8x4")
    before = claims.evaluate("table2", tmp_path)
    assert {(r["setting"], r["b"]) for r in before.comparisons} == {("8x4", "ST")}
    for method in ("ReinMax", "ST"):   # a finished cell arrives in paper_table2/, as the run writes it
        copy_paper_record(tmp_path, "paper_table2", method, "4x24")
    after = claims.evaluate("table2", tmp_path)
    assert {(r["setting"], r["b"]) for r in after.comparisons} == {("8x4", "ST"), ("4x24", "ST")}
    assert after.m == 4 and all(r["verdict"] == "supported" for r in after.comparisons)
    assert "vae/paper_table2/4x24_ReinMax.json" in after.files


def test_table2_is_not_supported_while_cells_of_the_table_have_no_record(tmp_path):
    # ReinMax far below ST in all six settings: every comparison the records hold is supported,
    # but STGS, GR-MCK and GST-1.0 were never run, so "best in every setting" is not shown.
    for setting in ("8x4", "4x24", "8x16", "16x12", "64x8", "10x30"):
        for method in ("ReinMax", "ST"):
            copy_paper_record(tmp_path, "paper_table2", method, setting)
    verdict = claims.evaluate("table2", tmp_path)
    assert len(verdict.comparisons) == 6 and all(r["verdict"] == "supported" for r in verdict.comparisons)
    # Rows in Table 2's column order, not the order the files are found in (4x24, 64x8, 8x16, ...).
    assert [r["setting"] for r in verdict.comparisons] == ["8x4", "4x24", "8x16", "16x12", "64x8", "10x30"]
    assert verdict.word == "not decided"
    assert "18 of 24 comparisons of the paper's statement have no record yet" in verdict.reason
    # A contradiction needs no complete table: one decided reversal is enough.
    reversed_ = json.loads((tmp_path / "vae" / "paper_table2" / "4x24_ST.json").read_text())
    reversed_["final"]["train_neg_elbo"]["per_seed"] = [v - 30 for v in reversed_["final"]["train_neg_elbo"]["per_seed"]]
    (tmp_path / "vae" / "paper_table2" / "4x24_ST.json").write_text(json.dumps(reversed_))
    assert claims.evaluate("table2", tmp_path).word == "contradicted"


def test_an_empty_holm_family_says_so(tmp_path):
    write_vae(tmp_path / "toy", "A", [100.0])
    write_vae(tmp_path / "toy", "B", [110.0])
    reason = claims.evaluate(TOY, tmp_path).reason
    assert "no testable hypothesis, so m = 0" in reason and "fewer than two seeds" in reason


def write_figure1(path: Path, finals_by_method, ps=(1.5, 2.0, 3.0), taus=None):
    """A minimal Figure 1 file (``{"runs": [record per p]}``, as ``polynomial figure1`` writes it),
    seeds 0..n-1, each method's final exact losses the same at every p."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    for p in ps:
        n = len(next(iter(finals_by_method.values())))
        config = {"p": p, "L": 128, "batch_size": 256, "setting": "A", "seeds": list(range(n)),
                  "epochs": 40, "steps": 200}
        runs.append({"config": config, "optimum": 0.0, "runs": [
            {"method": m, "tau": (taus or {}).get(m, 0.7), "exact_loss": [[1.0, 0.5, f] for f in finals]}
            for m, finals in finals_by_method.items()]})
    path.write_text(json.dumps({"runs": runs}))


def test_after_reinmax_figure1_claims_read_both_records_in_one_family(tmp_path):
    """Chapter 11's claims (not the paper's): each new method against ReinMax's Figure 1 record,
    the four in one Holm family; no verdict until the new methods' record exists."""
    ids = [c.id for c in claims.BEYOND_CLAIMS if c.id.startswith("beyond_figure1")]
    assert ids == ["beyond_figure1_ReinMax_Rao", "beyond_figure1_ReinMax_CV", "beyond_figure1_ReDGE",
                   "beyond_figure1_ReinDGE"]
    assert not set(ids) & {c.id for c in claims.CLAIMS}          # not on "The paper, reproduced"
    write_figure1(tmp_path / "polynomial" / "figure1_paper_scale.json",
                  {"ReinMax": [0.10, 0.11, 0.09, 0.10], "ST": [0.5, 0.5, 0.5, 0.5]})
    before = claims.evaluate("beyond_figure1_ReDGE", tmp_path)
    assert before.word == "not decided" and "none of the claim's comparisons" in before.reason
    # two records, as committed: ReDGE and ReinDGE in one, Rao and CV (other options) in another
    write_figure1(tmp_path / "polynomial" / "beyond_figure1.json",
                  {"ReDGE": [0.12, 0.08, 0.11, 0.09],             # too close to tell
                   "ReinDGE": [0.10, 0.11, 0.09, 0.10]})
    partial = claims.evaluate("beyond_figure1_ReDGE", tmp_path)
    assert partial.word == "not decided" and partial.m == 2 * 2 * 3      # two of four so far
    write_figure1(tmp_path / "polynomial" / "beyond_figure1_rao_cv.json",
                  {"ReinMax-Rao": [0.30, 0.31, 0.29, 0.30],       # worse than ReinMax
                   "ReinMax-CV": [0.010, 0.011, 0.009, 0.010]},   # better
                  taus={"ReinMax-Rao": 0.5})
    verdicts = {i: claims.evaluate(i, tmp_path) for i in ids}
    assert [verdicts[i].word for i in ids] == ["contradicted", "supported", "not decided", "not decided"]
    assert all(v.m == 2 * 4 * 3 and v.family == "After ReinMax: Figure 1" for v in verdicts.values())
    assert verdicts[ids[0]].files == ("polynomial/figure1_paper_scale.json", "polynomial/beyond_figure1.json",
                                      "polynomial/beyond_figure1_rao_cv.json")
    glued = {}
    claims.glue_verdicts(ids, tmp_path, glue=lambda key, value, display: glued.update({key: value}))
    assert glued["claim_beyond_figure1_ReinMax_CV_verdict"] == "supported"


def test_after_reinmax_8x4_claims_compare_each_new_method_with_reinmax_in_one_family(tmp_path):
    """Chapter 11's MNIST-VAE claims: each new method's paper-scale 8x4 record against ReinMax's
    committed one (the same seeds), the four in one Holm family; "no record yet" (not decided,
    never supported) while a method's record is missing."""
    ids = [c.id for c in claims.BEYOND_CLAIMS if c.id.startswith("beyond_8x4")]
    assert ids == ["beyond_8x4_ReinMax_Rao", "beyond_8x4_ReinMax_CV", "beyond_8x4_ReDGE",
                   "beyond_8x4_ReinDGE"]

    def write(folder, method, values):
        path = tmp_path / "vae" / folder / f"8x4_{method}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"config": "8x4", "method": method, "seeds": [0, 1, 2],
                                    "hyperparameters": {"tau": 1.3},
                                    "final": {"train_neg_elbo": {"per_seed": values}}}))

    write("paper_8x4", "ReinMax", [93.0, 93.2, 92.9])
    write("paper_8x4", "ST", [80.0, 80.1, 80.2])       # another method of Table 2: not compared
    before = claims.evaluate("beyond_8x4_ReinMax_CV", tmp_path)
    assert before.word == "not decided" and "no record yet" in before.reason
    write("beyond_8x4", "ReinMax-CV", [90.0, 90.1, 89.9])      # better than ReinMax
    write("beyond_8x4", "ReinMax-Rao", [96.0, 96.2, 95.9])     # worse
    verdicts = {i: claims.evaluate(i, tmp_path) for i in ids}
    assert [verdicts[i].word for i in ids] == ["contradicted", "supported", "not decided",
                                               "not decided"]
    assert all(v.family == "After ReinMax: MNIST-VAE 8x4" and v.m == 2 * 2
               for v in verdicts.values())
    assert [(r["a"], r["b"]) for r in verdicts[ids[1]].comparisons] == [("ReinMax-CV", "ReinMax")]


def test_after_reinmax_variance_claims_read_every_estimator_of_one_run(tmp_path):
    """Figure 4 extended: the estimators measured at one ReinMax run's analyses, each new one's
    relative std (per seed, the mean over analyses) against ReinMax's in one Holm family; the
    record's own method and the estimators not claimed about (ST) are read but not compared."""
    ids = [c.id for c in claims.BEYOND_CLAIMS if c.id.startswith("beyond_fig4")]
    assert ids == ["beyond_fig4_ReinMax_Rao", "beyond_fig4_ReinMax_CV", "beyond_fig4_ReDGE",
                   "beyond_fig4_ReinDGE"]
    before = claims.evaluate(ids[0], tmp_path)
    assert before.word == "not decided" and "no record yet" in before.reason

    def analyses(per_seed):      # two analyses x three seeds, averaging to per_seed
        return {"rel_std": [[v - 0.1 for v in per_seed], [v + 0.1 for v in per_seed]],
                "cos": [[0.9] * 3, [0.9] * 3]}
    measured = {"ReinMax": analyses([2.0, 2.1, 1.9]), "ST": analyses([9.0, 9.0, 9.0]),
                "ReinMax-Rao": analyses([1.0, 1.05, 0.95]),      # lower: supported
                "ReDGE": analyses([2.05, 1.95, 2.1])}            # the same: not decided
    path = tmp_path / "vae" / "beyond_8x4_fig4" / "8x4_ReinMax.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "config": "8x4", "method": "ReinMax", "seeds": [0, 1, 2],
        "history": {"gradient_estimators": measured},
        "settings": {"gradient": {"estimators": {m: {"tau": 1.3} for m in measured}}}}))
    samples, _, _ = claims.read(claims.claim(ids[0]), tmp_path)
    assert samples[("8x4, ReinMax's run", "ReinMax-Rao")] == pytest.approx([1.0, 1.05, 0.95])
    verdicts = {i: claims.evaluate(i, tmp_path) for i in ids}
    assert [verdicts[i].word for i in ids] == ["supported", "not decided", "not decided",
                                               "not decided"]
    assert "no record yet" in verdicts[ids[1]].reason
    assert all(v.family == "After ReinMax: Figure 4 extended" and v.m == 2 * 2
               for v in verdicts.values())


def test_table6_compares_at_the_update_count_every_committed_run_reached():
    """Table 6's claim compares at a fixed update count (RODEO's runs are shorter than the
    others): it must be the largest count that every committed study run of the claim reached,
    so a longer RODEO record (or a shorter run) shows up here instead of silently dropping rows."""
    at_step = dict(claims.claim("table6").options)["at_step"]
    reached = []
    for path in sorted((ROOT / "results" / "bernoulli_vae" / "study").glob("mnist_*_seed*.json")):
        record = json.loads(path.read_text())
        if record.get("protocol") == "baselines" and "final" in record:
            reached.append(set(record["history"]["steps"]))
    assert reached, "no committed Table 6 study record"
    common = set.intersection(*reached)
    assert at_step == max(common), (at_step, max(common))
