"""Does a paper's claim hold on our world? A paired comparison over seeds with a Student-t interval.

Seed ``s`` of a row and seed ``s`` of the row it is compared with share the pretrained start, the world and the
data order, so their difference cancels the noise they share. The verdict is read off the 95% interval of the
mean paired difference: ``holds`` when it lies on the paper's side of zero, ``does not hold`` when it lies on
the other side, ``inconclusive`` otherwise (including one seed, where there is no interval). The smallest
difference the setup could have detected is the interval's half-width: a mean paired difference at least that
large, with the same spread, would have excluded zero.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE = "holds", "does not hold", "inconclusive"


def paired(seeds: list[int], row: dict[int, float], versus: dict[int, float]) -> tuple[list[int], list, list]:
    """The seeds both rows have, in order, with their values: only paired seeds enter a verdict."""
    common = [s for s in seeds if s in row and s in versus]
    return common, [row[s] for s in common], [versus[s] for s in common]


def paired_interval(row_values, versus_values, level: float = 0.95) -> dict:
    """Mean paired difference, its ``level`` interval (Student t, n-1 degrees of freedom) and half-width."""
    d = np.asarray(row_values, dtype=float) - np.asarray(versus_values, dtype=float)
    if d.size == 0:
        raise ValueError("no paired seeds")
    mean = float(d.mean())
    if d.size == 1:
        return {"our_gain": mean, "ci": [-math.inf, math.inf], "half_width": math.inf, "n": 1, "sd": None}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, d.size - 1) * sd / math.sqrt(d.size))
    return {"our_gain": mean, "ci": [mean - half, mean + half], "half_width": half, "n": int(d.size), "sd": sd}


def rule(paper_gain: float, ci: list[float]) -> str:
    """holds / does not hold / inconclusive from the interval and the side of zero the paper claims."""
    low, high = ci
    if paper_gain == 0:
        return INCONCLUSIVE
    claimed_positive = paper_gain > 0
    if (low > 0 and claimed_positive) or (high < 0 and not claimed_positive):
        return HOLDS
    if (high < 0 and claimed_positive) or (low > 0 and not claimed_positive):
        return DOES_NOT_HOLD
    return INCONCLUSIVE           # the interval spans (or, identical on every seed, sits at) zero


def verdict(paper_gain: float, seeds: list[int], row_values, versus_values) -> dict:
    """One verdict's numbers: values in points, the paired gain, its interval and the rule's answer."""
    iv = paired_interval(row_values, versus_values)
    return {"paper_gain": round(float(paper_gain), 2), "seeds": list(seeds),
            "row_values": [round(float(v), 4) for v in row_values],
            "versus_values": [round(float(v), 4) for v in versus_values],
            "our_gain": round(iv["our_gain"], 4),
            "ci": [None if not math.isfinite(x) else round(x, 4) for x in iv["ci"]],
            "detectable": None if not math.isfinite(iv["half_width"]) else round(iv["half_width"], 4),
            "verdict": rule(paper_gain, iv["ci"])}
