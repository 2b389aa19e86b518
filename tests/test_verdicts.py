"""The verdict rule on hand-made values: a paired Student-t interval over seeds against the paper's side."""

import math

import numpy as np
import pytest
from scipy import stats

from reid_repro.report.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, paired, paired_interval, verdict


def test_interval_is_the_paired_student_t_by_hand():
    row, versus = [52.0, 55.0, 51.0], [50.0, 51.0, 50.5]
    d = [2.0, 4.0, 0.5]
    mean, sd = sum(d) / 3, float(np.std(d, ddof=1))
    half = stats.t.ppf(0.975, 2) * sd / math.sqrt(3)           # t(0.975, 2) = 4.303
    iv = paired_interval(row, versus)
    assert iv["our_gain"] == pytest.approx(mean) and iv["half_width"] == pytest.approx(half)
    assert iv["ci"] == pytest.approx([mean - half, mean + half])
    assert stats.t.ppf(0.975, 2) == pytest.approx(4.3027, abs=1e-4)


def test_holds_when_the_interval_is_on_the_papers_side():
    v = verdict(2.2, [0, 1, 2], [55.0, 56.0, 55.5], [52.0, 52.5, 52.0])   # +3.0, +3.5, +3.5
    assert v["verdict"] == HOLDS and v["ci"][0] > 0 and v["our_gain"] == pytest.approx(10 / 3, abs=1e-3)
    assert v["detectable"] == pytest.approx(v["ci"][1] - v["our_gain"], abs=1e-3)
    # a claimed loss (paper gain < 0) holds when ours is a clear loss
    assert verdict(-1.5, [0, 1, 2], [50.0, 50.0, 50.2], [52.0, 52.5, 52.0])["verdict"] == HOLDS


def test_does_not_hold_when_the_interval_is_on_the_other_side():
    v = verdict(2.2, [0, 1, 2], [50.0, 50.5, 50.0], [52.0, 52.5, 52.3])
    assert v["verdict"] == DOES_NOT_HOLD and v["ci"][1] < 0


def test_inconclusive_when_the_interval_spans_zero_or_one_seed():
    # paired differences +4, -3, +1: the mean is +0.67 but the interval spans zero
    assert verdict(2.2, [0, 1, 2], [56.0, 49.0, 53.0], [52.0, 52.0, 52.0])["verdict"] == INCONCLUSIVE
    one = verdict(2.2, [0], [60.0], [50.0])                      # one seed: no interval, whatever the gap
    assert one["verdict"] == INCONCLUSIVE and one["ci"] == [None, None] and one["detectable"] is None


def test_zero_variance_differences():
    # the same +1.0 on every seed: a zero-width interval at +1.0, which excludes zero
    same = verdict(2.2, [0, 1, 2], [51.0, 52.0, 53.0], [50.0, 51.0, 52.0])
    assert same["ci"] == [1.0, 1.0] and same["verdict"] == HOLDS and same["detectable"] == 0.0
    # identical rows on every seed: no difference, inconclusive (not "does not hold")
    tie = verdict(2.2, [0, 1, 2], [50.0, 51.0, 52.0], [50.0, 51.0, 52.0])
    assert tie["ci"] == [0.0, 0.0] and tie["verdict"] == INCONCLUSIVE


def test_pairing_uses_only_seeds_both_rows_have_in_order():
    seeds, row, versus = paired([0, 1, 2, 3], {0: 50.0, 2: 52.0, 3: 53.0}, {3: 50.0, 0: 49.0, 1: 48.0, 2: 51.0})
    assert seeds == [0, 2, 3] and row == [50.0, 52.0, 53.0] and versus == [49.0, 51.0, 50.0]
    # pairing cancels a shared seed effect that an unpaired comparison would not
    shared = [0.0, 6.0, -6.0]
    row_v = [50 + 1 + s for s in shared]
    base_v = [50 + s for s in shared]
    assert verdict(1.0, [0, 1, 2], row_v, base_v)["verdict"] == HOLDS
    unpaired = stats.ttest_ind(row_v, base_v)
    assert unpaired.pvalue > 0.05              # unpaired, the same numbers are not significant


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
