"""The verdict rule on hand-made values: the difference of two rows' means with a Welch or pooled Student-t
interval (checked against scipy and by hand) against the paper's side; the paired interval of comparisons paired by
construction."""

import math

import numpy as np
import pytest
from scipy import stats

from reid_repro.report.verdicts import (DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, Noise, interval, own_noise, paired,
                                        paired_interval, pooled_noise, verdict)


def test_interval_is_the_paired_student_t_by_hand():
    row, versus = [52.0, 55.0, 51.0], [50.0, 51.0, 50.5]
    d = [2.0, 4.0, 0.5]
    mean, sd = sum(d) / 3, float(np.std(d, ddof=1))
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)           # t(0.975, 2) = 4.303
    iv = paired_interval(row, versus)
    assert iv["our_gain"] == pytest.approx(mean) and iv["half_width"] == pytest.approx(half)
    assert iv["ci"] == pytest.approx([mean - half, mean + half])
    assert stats.t.ppf(0.975, 2) == pytest.approx(4.3027, abs=1e-4)


def test_welch_interval_matches_scipy():
    """Two rows each on its own seeds: the difference of means with Welch's interval, as scipy computes it."""
    row, versus = [55.0, 56.0, 55.5, 57.0], [52.0, 52.5, 52.0, 51.0, 53.5, 52.2]
    iv = interval(row, versus)
    ref = stats.ttest_ind(row, versus, equal_var=False).confidence_interval(0.95)
    assert iv["how"] == "Welch" and iv["n"] == [4, 6]
    assert iv["our_gain"] == pytest.approx(np.mean(row) - np.mean(versus))
    assert iv["ci"] == pytest.approx([ref.low, ref.high], rel=1e-9)
    # by hand: se^2 = s1^2/n1 + s2^2/n2, Welch-Satterthwaite df
    v1, v2 = np.var(row, ddof=1) / 4, np.var(versus, ddof=1) / 6
    df = (v1 + v2) ** 2 / (v1 ** 2 / 3 + v2 ** 2 / 5)
    assert iv["df"] == pytest.approx(df, abs=0.01)
    assert iv["half_width"] == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(v1 + v2))


def test_two_runs_pooled_is_the_students_t_of_scipy():
    """A noise group of exactly the two rows pools their variances: scipy's equal-variance t interval."""
    a, b = [52.0, 55.0, 51.0], [50.0, 51.0, 50.5, 49.0, 52.0, 51.5]
    noise, tests = pooled_noise({"g": {"a": a, "b": b}})
    assert tests["g"]["levene_p"] == pytest.approx(stats.levene(a, b, center="median").pvalue, abs=1e-4)
    assert tests["g"]["pooled"] and noise["a"] == noise["b"] and noise["a"].df == 2 + 5
    iv = interval(a, b, noise["a"], noise["b"])
    ref = stats.ttest_ind(a, b, equal_var=True).confidence_interval(0.95)
    assert iv["how"] == "pooled over 2 runs" and iv["ci"] == pytest.approx([ref.low, ref.high], rel=1e-9)


def test_group_pooling_by_hand():
    """Three runs of one group: pooled variance sum((n_i - 1) s_i^2) / sum(n_i - 1), worked by hand. Runs a (1, 2, 3:
    s^2 = 1), b (2, 4, 6: s^2 = 4) and c (0, 1, 2, 3: s^2 = 5/3): pooled (2*1 + 2*4 + 3*5/3) / 7 = 15/7, df 7."""
    noise, tests = pooled_noise({"g": {"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 6.0], "c": [0.0, 1.0, 2.0, 3.0]}})
    assert tests["g"]["pooled"] and tests["g"]["df"] == 7
    assert noise["a"].var == pytest.approx(15 / 7) and noise["a"].df == 7 and noise["a"].runs == 3
    iv = interval([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], noise["a"], noise["b"])
    assert iv["our_gain"] == pytest.approx(-2.0)
    assert iv["half_width"] == pytest.approx(stats.t.ppf(0.975, 7) * math.sqrt(15 / 7 * (1 / 3 + 1 / 3)))
    # a run of the group against one outside it: Welch with the pooled estimate (df 7) and the other's own (df 2)
    other = own_noise([5.0, 6.0, 8.0])
    iv = interval([1.0, 2.0, 3.0], [5.0, 6.0, 8.0], noise["a"], other)
    va, vb = 15 / 7 / 3, np.var([5.0, 6.0, 8.0], ddof=1) / 3
    df = (va + vb) ** 2 / (va ** 2 / 7 + vb ** 2 / 2)
    assert iv["how"] == "Welch" and iv["df"] == pytest.approx(df, abs=0.01)
    assert iv["half_width"] == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(va + vb))


def test_unequal_spreads_are_not_pooled():
    """Brown-Forsythe rejects equal variances (scipy.stats.levene, center median, p < 0.05): each run keeps its own;
    a run alone in its group, or of one seed, is never pooled."""
    tight = [50.0, 50.1, 49.9, 50.0, 50.05, 49.95]
    wide = [40.0, 60.0, 45.0, 55.0, 35.0, 65.0]
    assert stats.levene(tight, wide, center="median").pvalue < 0.05
    noise, tests = pooled_noise({"g": {"tight": tight, "wide": wide}, "h": {"alone": [1.0, 2.0], "one": [3.0]}})
    assert not tests["g"]["pooled"] and noise["tight"].group is None
    assert noise["wide"].var == pytest.approx(np.var(wide, ddof=1)) and noise["wide"].df == 5
    assert noise["alone"].group is None and "one" not in noise and "h" not in tests


def test_holds_when_the_interval_is_on_the_papers_side():
    v = verdict(2.2, [55.0, 56.0, 55.5], [52.0, 52.5, 52.0])   # +3.5 - 52.17
    assert v["verdict"] == HOLDS and v["ci"][0] > 0 and v["our_gain"] == pytest.approx(55.5 - 156.5 / 3, abs=1e-3)
    assert v["detectable"] == pytest.approx(v["ci"][1] - v["our_gain"], abs=1e-3)
    # a claimed loss (paper gain < 0) holds when ours is a clear loss
    assert verdict(-1.5, [50.0, 50.0, 50.2], [52.0, 52.5, 52.0])["verdict"] == HOLDS


def test_does_not_hold_when_the_interval_is_on_the_other_side():
    v = verdict(2.2, [50.0, 50.5, 50.0], [52.0, 52.5, 52.3])
    assert v["verdict"] == DOES_NOT_HOLD and v["ci"][1] < 0


def test_inconclusive_when_the_interval_spans_zero_or_one_seed():
    assert verdict(2.2, [56.0, 49.0, 53.0], [52.0, 52.0, 52.0])["verdict"] == INCONCLUSIVE
    one = verdict(2.2, [60.0], [50.0, 51.0, 49.0])                 # one seed, no pooled noise: no interval
    assert one["verdict"] == INCONCLUSIVE and one["ci"] == [None, None] and one["detectable"] is None
    # the same row of one seed in a pooled group has an interval: the group's noise stands in for its own
    noise, _ = pooled_noise({"g": {"base": [50.0, 51.0, 49.0], "other": [52.0, 53.0, 51.5]}})
    pooled = verdict(2.2, [60.0], [50.0, 51.0, 49.0], Noise(noise["base"].var, noise["base"].df, "g", 2), noise["base"])
    assert pooled["ci"][0] is not None and pooled["verdict"] == HOLDS


def test_zero_variance_rows():
    # every seed alike in both rows: a zero-width interval at the difference
    same = verdict(2.2, [51.0, 51.0, 51.0], [50.0, 50.0, 50.0])
    assert same["ci"] == [1.0, 1.0] and same["verdict"] == HOLDS and same["detectable"] == 0.0
    tie = verdict(2.2, [50.0, 50.0], [50.0, 50.0, 50.0])
    assert tie["ci"] == [0.0, 0.0] and tie["verdict"] == INCONCLUSIVE


def test_pairing_uses_only_seeds_both_rows_have_in_order():
    """``paired`` stays for comparisons paired by construction (a run against its own start, tuned vs paper)."""
    seeds, row, versus = paired([0, 1, 2, 3], {0: 50.0, 2: 52.0, 3: 53.0}, {3: 50.0, 0: 49.0, 1: 48.0, 2: 51.0})
    assert seeds == [0, 2, 3] and row == [50.0, 52.0, 53.0] and versus == [49.0, 51.0, 50.0]


def test_verify_checks_a_repeat_against_the_committed_interval():
    """Committed mAP 50, 52, 48 (sd 2, n 3): a repeat's mean should land in 50 ± 4.303 * 2 * sqrt(2/3) = ±7.03."""
    from reid_repro.commands.verify import check, repeat_interval

    low, high = repeat_interval([50.0, 52.0, 48.0])
    assert low == pytest.approx(50 - 7.027, abs=1e-3) and high == pytest.approx(50 + 7.027, abs=1e-3)
    committed = {"seeds": {"0": {"mAP": 0.50}, "1": {"mAP": 0.52}, "2": {"mAP": 0.48}}}
    inside = check("r", committed, {"seeds": {"0": {"mAP": 0.55}, "1": {"mAP": 0.56}, "2": {"mAP": 0.53}}})
    assert inside["fresh_mean"] == pytest.approx(54.667, abs=1e-3) and inside["inside"]
    outside = check("r", committed, {"seeds": {"0": {"mAP": 0.60}, "1": {"mAP": 0.58}, "2": {"mAP": 0.59}}})
    assert not outside["inside"]
    assert repeat_interval([50.0]) == (float("-inf"), float("inf"))     # one seed: no interval, anything fits


def test_verify_says_identical_only_for_equal_values_and_names_the_numerics_of_both_sides():
    """Bit-identical is every seed's value equal to the committed one; the line says so when both sides computed
    under reference numerics, and says which side was off the reference (or unknown) otherwise."""
    from reid_repro.commands.verify import check, numerics_note
    from reid_repro.numerics import run_is_reference

    committed = {"seeds": {"0": {"mAP": 0.50}, "1": {"mAP": 0.52}}}
    same = check("r", committed, {"seeds": {"0": {"mAP": 0.50}, "1": {"mAP": 0.52}}}, committed_reference=True,
                 fresh_reference=True)
    assert same["identical"] and numerics_note(same) == "identical to the committed values, bit for bit"
    close = check("r", committed, {"seeds": {"0": {"mAP": 0.50}, "1": {"mAP": 0.5200001}}},
                  committed_reference=True, fresh_reference=True)
    assert not close["identical"] and close["inside"] and "NOT bit-identical" in numerics_note(close)
    native = check("r", committed, {"seeds": {"0": {"mAP": 0.50}, "1": {"mAP": 0.52}}}, committed_reference=True,
                   fresh_reference=False)
    assert numerics_note(native) == "fresh off the reference: compared within the interval only"
    # what a run.json says: the recorded numerics, or for runs written before they were recorded, float32 on
    # torch's AVX2 kernels with 2 threads (how the committed runs were built)
    old = {"environment": {"torch_threads": 2, "device": {"cpu_capability": "AVX2"}}, "inputs": {"precision": "fp32"}}
    assert run_is_reference(old) is True
    assert run_is_reference({**old, "inputs": {"precision": "bf16"}}) is False
    assert run_is_reference({**old, "environment": {**old["environment"], "torch_threads": 1}}) is False
    assert run_is_reference({"environment": {"numerics": {"reference": False}}}) is False
    assert run_is_reference({"git_revision": "abc"}) is None


def test_agreement_counts_signs_and_ranks_the_papers_gains_against_ours():
    """Five judged claims and one not testable: the median half-width, the share of our gains with the claimed sign
    (4 of 5 here), and Spearman's rho of paper vs our gain over the three with printed numbers, as scipy gives it."""
    from reid_repro.report.verdicts import agreement

    def v(paper, ours, sign, verdict=INCONCLUSIVE, width=1.0, sign_only=False):
        return {"paper_gain": None if sign_only else paper, "our_gain": ours, "claimed_sign": sign,
                "verdict": verdict, "detectable": width, "sign_only": sign_only}

    found = [v(2.0, 1.5, 1, HOLDS, 0.8), v(1.0, 0.4, 1, width=2.0), v(4.0, 3.0, 1, HOLDS, 1.2),
             v(None, -0.5, 1, width=None, sign_only=True), v(-1.0, -2.0, -1, DOES_NOT_HOLD, 3.0),
             v(3.0, -9.0, 1, "not testable here", 0.1)]
    a = agreement(found)
    assert a["judged"] == 5 and a["with_interval"] == 4 and a["median_half_width"] == pytest.approx(1.6)
    assert a["sign_claims"] == 5 and a["sign_agreement"] == pytest.approx(4 / 5)
    ref = stats.spearmanr([2.0, 1.0, 4.0, -1.0], [1.5, 0.4, 3.0, -2.0])
    assert a["spearman_claims"] == 4 and a["spearman"] == pytest.approx(ref.statistic, abs=1e-4) == 1.0
    assert agreement([])["median_half_width"] is None and agreement([])["spearman"] is None
