"""The report's summary sentences: the scale caveat's clause on the domain gaps (from the source models' direct
transfers), the verdicts on the papers' listed claims counted per paper with how far our gains agree with the papers',
and the line on runs that are stale or not built yet. report/build.py places them; the templates draw them."""

from __future__ import annotations

import json
from pathlib import Path

from reid_repro.errors import ReidReproError
from reid_repro.report.claims import COUNTED, NOT_TESTABLE
from reid_repro.report.page import PROSE
from reid_repro.report.runs import NOT_BUILT, STALE_MARK, Run
from reid_repro.report.tables import short_name
from reid_repro.report.verdicts import agreement

# the pairs whose direct transfer the caveat quotes: source, target, how the sentence names the pair, and the real
# datasets' share (supervised on the source, tested on the target, over the target's own supervised mAP; DG-Net's
# README: Market-1501 -> DukeMTMC-reID 0.32, DukeMTMC-reID -> Market-1501 0.31 (26.8 / 86.0), Market-1501 -> MSMT17
# 0.10 (5.4 / 52.3); docs/findings/world-design.md)
TRANSFER_PAIRS = (("market", "duke", "from Market to Duke", 0.32), ("duke", "market", "from Duke to Market", 0.31),
                  ("market", "msmt", "from Market into the MSMT stand-in", 0.10))


def read_transfers(models_dir: Path | None) -> dict[str, dict]:
    """The source models' direct transfers present in ``models_dir`` (``transfer_<source>.json``, each the source
    model's evaluation on every stand-in), by source; read once for the caveat and the baselines' starts."""
    if models_dir is None:
        return {}
    found = {}
    for path in sorted(models_dir.glob("transfer_*.json")):
        try:
            found[path.stem.removeprefix("transfer_")] = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ReidReproError(f"{path}: not valid JSON ({err}); expected a source model's evaluation, rebuilt by "
                                 f"`dvc repro transfer@{path.stem.removeprefix('transfer_')}`") from err
    return found


def domain_gap_clause(found: dict[str, dict]) -> str:
    """why_different's clause on the domain gaps, from the source models' direct transfers (``read_transfers``): per
    pair, the mAP on the target over the target's own source model's mAP there, beside the real datasets' share."""
    pairs = [(found[s][t]["mAP"] / found[t][t]["mAP"], words, real) for s, t, words, real in TRANSFER_PAIRS
             if t in found.get(s, {}) and t in found.get(t, {})]
    if not pairs:
        return PROSE["domain_gap_unmeasured"]

    def listed(items: list[str]) -> str:
        return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]

    shares = (f"of the target stand-in's own supervised mAP direct transfer keeps "
              f"{listed([f'{share:.2f} {words}' for share, words, _ in pairs])}; real data "
              f"{listed([f'{real:.2f}' for _, _, real in pairs])}")
    smaller = sum(share > real for share, _, real in pairs)
    key = "smaller" if smaller == len(pairs) else "in_part" if smaller else "real"
    return PROSE[f"domain_gap_{key}"].format(shares=shares, smaller=smaller, pairs=len(pairs))


def agreement_sentence(agree: dict) -> str:
    """The verdicts taken together, as the summary states it: the median half-width per paper, and how far our gains
    agree with the papers' (sign, rank correlation), a finding rather than a target."""
    a = agree["all"]
    if not a["judged"]:
        return ""
    per = ", ".join(f"{short_name(k)} {v['median_half_width']:.1f}" for k, v in agree.items()
                    if k != "all" and v["median_half_width"] is not None)
    out = (f"The median half-width of the {a['with_interval']} verdicts with an interval is "
           f"{a['median_half_width']:.1f} mAP points ({per}). " if a["median_half_width"] is not None else "")
    if a["sign_agreement"] is not None:
        out += (f"Our gain has the paper's sign in {a['sign_agreement']:.0%} of {a['sign_claims']} judged claims")
        out += (f"; across the {a['spearman_claims']} claims whose two numbers the paper prints, the rank correlation "
                f"of the paper's gains with ours is {a['spearman']:+.2f} (Spearman, p = {a['spearman_p']:.2g})."
                if a["spearman"] is not None else ".")
    return out


def count_verdicts(all_verdicts: list[dict]) -> dict:
    """The verdicts on the papers' listed claims (a comparison with a supervised row is context: shown, never
    counted): ``counted``, ``verdicts`` (how many of each kind), ``per_paper`` (the same per paper), ``agreement``
    (overall and per paper: report/verdicts.py) and the summary's ``line``."""
    counted = [v for v in all_verdicts if v.get("kind", "claim") == "claim"]
    per_paper: dict[str, dict[str, int]] = {}
    for v in counted:
        per_paper.setdefault(v["paper"], dict.fromkeys(COUNTED, 0))[v["verdict"]] += 1
    counts = "; ".join(f"{short_name(p)}: {c['holds']} hold, {c['does not hold']} do not, {c['inconclusive']} "
                       f"inconclusive, {c[NOT_TESTABLE]} not testable here"
                       for p, c in sorted(per_paper.items()))
    agree = {"all": agreement(counted), **{p: agreement([v for v in counted if v["paper"] == p]) for p in per_paper}}
    line = (f"Of {len(counted)} verdicts on the papers' stated claims (claims.yaml; {counts}); "
            f"{len(all_verdicts) - len(counted)} comparisons with a supervised row are shown as context, not counted. "
            "Each verdict is listed under its table with the claim it judges, and in `verdicts.json`. "
            + agreement_sentence(agree))
    return {"counted": counted, "verdicts": {k: sum(v["verdict"] == k for v in counted) for k in COUNTED},
            "per_paper": per_paper, "agreement": agree, "line": line}


def stale_summary(runs: list[Run], found_runs: list[Run], all_verdicts: list[dict]) -> tuple[dict, list[str], str]:
    """(stale runs with why, declared runs not built yet, the summary's line on both). A few stale runs are named;
    many are counted by reason (every name: report.json ``stale_runs``, and the note under each table)."""
    stale = {r.name: r.stale for r in runs if r.stale}
    not_built = [r.name for r in found_runs if r.not_run == NOT_BUILT]
    stale_verdicts = sum(bool(v.get("stale")) for v in all_verdicts)
    by_reason: dict[str, list[str]] = {}
    for name, why in stale.items():
        by_reason.setdefault(why, []).append(name)
    named = (", ".join(f"{n} ({why})" for n, why in stale.items()) if len(stale) <= 12 else
             "; ".join(f"{len(names)} {why}" for why, names in by_reason.items())
             + " (each table's note names its runs; every name: `report.json`, `stale_runs`)")
    line = (f"{len(stale)} of {len(runs)} trained runs hold results of earlier code or settings than this "
            f"checkout's (marked {STALE_MARK}; {stale_verdicts} of the {len(all_verdicts)} orderings read one of "
            f"them): {named}." if stale else
            f"All {len(runs)} trained runs were built with this checkout's code and settings.")
    if not_built:
        line += (f" {len(not_built)} declared runs are not built yet (their cells say so; "
                 "`dvc status` names their stages).")
    return stale, not_built, line
