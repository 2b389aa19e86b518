"""Does a paper's claim hold on our world? The difference of two rows' means over seeds with a Student-t interval.

The rule (issue 43, chosen before any run of the rebuilt world was trained, from the measured noise):

- **Unpaired.** Seed ``s`` of two rows shares the start, the world and the data order, but on the committed runs
  pairing removed only ~17% of the variance (34 of 80 row/baseline pairs had a negative seed correlation; GCL+
  seeds share one warm-up), and with 3 seeds the paired t(2) interval was wider than an unpaired one. So a verdict
  compares the two rows' means, each over all of its own seeds (a baseline's 6 or more count in full).
- **Pooled noise where the seeds' spread is alike.** Runs of one *noise group* (the same loop, training and test
  stand-in, start and kind of labels: :func:`group_key`) share one estimate of the seed variance when a
  Brown-Forsythe test (Levene's test about the median, scipy.stats.levene) over the group's runs does not reject
  equal variances at 5%: the pooled variance ``sum((n_i - 1) s_i^2) / sum(n_i - 1)`` with ``sum(n_i - 1)`` degrees of
  freedom. Otherwise, or for a run alone in its group, a run's own variance with ``n - 1``.
- **The interval.** Two rows of one pooled group: the pooled two-sample t interval, ``t(df) * s_p *
  sqrt(1/n_row + 1/n_versus)`` with the group's ``df``. Otherwise Welch's interval with each row's estimate and
  the Welch-Satterthwaite degrees of freedom (scipy.stats.ttest_ind with ``equal_var=False`` when both are a
  run's own).
- **The answer**, read off the 95% interval: ``holds`` when it lies on the paper's side of zero, ``does not hold``
  when it lies on the other side, ``inconclusive`` otherwise (also a row of one seed with no pooled estimate, where
  there is no interval). Its half-width is the smallest difference the setup could have detected.

``paired`` and ``paired_interval`` remain for the comparisons that are paired by construction (a run against its
own start, a study's tuned setting against the paper's, a released-code reading against the paper's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Noise:
    """An estimate of one run's seed variance (points squared) with its degrees of freedom; ``group`` names the
    noise group whose runs pooled it (None: the run's own seeds), ``runs`` how many runs it pools."""
    var: float
    df: int
    group: str | None = None
    runs: int = 1


def own_noise(values) -> Noise | None:
    """A run's own seed variance (n - 1 degrees of freedom); None below two seeds."""
    x = np.asarray(values, dtype=float)
    return Noise(float(x.var(ddof=1)), int(x.size - 1)) if x.size >= 2 else None


def group_key(spec) -> str:
    """The noise group of a run (config.runs.RunSpec): runs of one loop (the params section it builds on) on the
    same training and test stand-in, from the same start, with the same kind of labels."""
    labels = (spec.overrides or {}).get("labels", "pseudo")
    return f"{spec.base}|{spec.dataset}->{spec.test}|{spec.init}|{labels}"


def pooled_noise(groups: dict[str, dict[str, list[float]]], alpha: float = 0.05) -> tuple[dict[str, Noise], dict]:
    """Each run's noise estimate: ``groups`` maps a noise group to its runs' seed values. A group of two or more
    runs with at least two seeds each pools their variances when Brown-Forsythe's test (scipy.stats.levene,
    center median) gives p >= ``alpha`` (or is undefined: every run's seeds identical); otherwise, and for a run
    alone, the run's own. Also returns, per group, the test's p-value, the pooled sd and df, and whether it pooled."""
    from scipy import stats as st

    noise, tests = {}, {}
    for group, runs in groups.items():
        members = {name: np.asarray(v, dtype=float) for name, v in runs.items() if len(v) >= 2}
        pooled = False
        if len(members) >= 2:
            with np.errstate(invalid="ignore", divide="ignore"):       # no spread anywhere: nan
                p = float(st.levene(*members.values(), center="median").pvalue)
            pooled = not p < alpha          # nan (no spread anywhere) pools
            df = sum(x.size - 1 for x in members.values())
            var = sum((x.size - 1) * x.var(ddof=1) for x in members.values()) / df
            tests[group] = {"runs": sorted(members), "levene_p": None if math.isnan(p) else round(p, 4),
                            "pooled": pooled, "sd": round(math.sqrt(var), 4), "df": int(df)}
        for name, x in members.items():
            noise[name] = Noise(float(var), int(df), group, len(members)) if pooled else own_noise(x)
    return noise, tests


def interval(row_values, versus_values, row_noise: Noise | None = None, versus_noise: Noise | None = None,
             level: float = 0.95) -> dict:
    """The difference of the rows' means, its ``level`` interval and half-width (module docstring): pooled t when
    both noises are one pooled group's, else Welch with each row's estimate (its own seeds' when not given)."""
    a, b = np.asarray(row_values, dtype=float), np.asarray(versus_values, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError("a row with no seeds")
    gain = float(a.mean() - b.mean())
    na, nb = a.size, b.size
    ra, rb = row_noise or own_noise(a), versus_noise or own_noise(b)
    out = {"our_gain": gain, "n": [int(na), int(nb)]}
    if ra is None or rb is None:
        return {**out, "ci": [-math.inf, math.inf], "half_width": math.inf, "df": None, "how": "one seed"}
    if ra.group is not None and ra.group == rb.group:
        se, df, how = math.sqrt(ra.var * (1 / na + 1 / nb)), float(ra.df), f"pooled over {ra.runs} runs"
    else:
        va, vb = ra.var / na, rb.var / nb
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / ra.df + vb ** 2 / rb.df) if va + vb > 0 else float(ra.df + rb.df)
        how = "Welch"
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    return {**out, "ci": [gain - half, gain + half], "half_width": half, "df": round(df, 2), "how": how}


def verdict(paper_gain: float, row_values, versus_values, row_noise: Noise | None = None,
            versus_noise: Noise | None = None, row_seeds=None, versus_seeds=None) -> dict:
    """One verdict's numbers: values in points, the difference of the means, its interval and the rule's answer."""
    iv = interval(row_values, versus_values, row_noise, versus_noise)
    return {"paper_gain": round(float(paper_gain), 2),
            "seeds": list(row_seeds if row_seeds is not None else range(len(row_values))),
            "versus_seeds": list(versus_seeds if versus_seeds is not None else range(len(versus_values))),
            "row_values": [round(float(v), 4) for v in row_values],
            "versus_values": [round(float(v), 4) for v in versus_values],
            "our_gain": round(iv["our_gain"], 4),
            "ci": [None if not math.isfinite(x) else round(x, 4) for x in iv["ci"]],
            "detectable": None if not math.isfinite(iv["half_width"]) else round(iv["half_width"], 4),
            "df": iv["df"], "interval": iv["how"],
            "verdict": rule(paper_gain, iv["ci"])}


def agreement(found: list[dict]) -> dict:
    """What the counted verdicts say together (a finding, not a target): how many have an interval and the median
    of their half-widths; of those with a gain of ours, the share whose sign is the claimed one (``claimed_sign``);
    and over those where the paper prints both numbers, Spearman's rank correlation of the paper's gains with ours
    (scipy.stats.spearmanr; None below three claims). A claim read "not testable here" counts in none of them."""
    from scipy import stats as st

    judged = [v for v in found if v["verdict"] in (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE)]
    widths = [v["detectable"] for v in judged if v.get("detectable") is not None]
    signs = [v for v in judged if v.get("claimed_sign") and v["our_gain"] != 0]
    printed = [v for v in judged if v.get("paper_gain") is not None and not v.get("sign_only")]
    rho = p = None
    if len(printed) >= 3:
        res = st.spearmanr([v["paper_gain"] for v in printed], [v["our_gain"] for v in printed])
        if not math.isnan(res.statistic):
            rho, p = round(float(res.statistic), 4), round(float(res.pvalue), 4)
    return {"judged": len(judged), "with_interval": len(widths),
            "median_half_width": round(float(np.median(widths)), 3) if widths else None,
            "sign_agreement": round(sum((v["our_gain"] > 0) == (v["claimed_sign"] > 0) for v in signs)
                                    / len(signs), 4) if signs else None,
            "sign_claims": len(signs), "spearman": rho, "spearman_p": p, "spearman_claims": len(printed)}
