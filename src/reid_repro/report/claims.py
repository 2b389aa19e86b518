"""The papers' claims (claims.yaml) and their quality gates (gates.yaml): a verdict exists only for a listed claim.

A claim is one ordering a paper states (quoted), between two rows of one of its tables (or two runs, for a figure
with no table), on one metric. ``kind: context`` marks a comparison with a supervised (ground-truth-label) row:
judged and shown, never counted. A claim with a ``gate`` (or a list of them) is testable only while each gate's
measurement passes (GCL/GCL+'s generator must draw people; the domain-adaptation baseline a claim builds on must
learn on that setting); otherwise it reads "not testable here" with the measurement, never "does not hold". The
verdict rule itself is report/verdicts.py.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import yaml

from reid_repro.errors import ReidReproError

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
GATES_FILE = Path(__file__).with_name("gates.yaml")
KINDS = ("claim", "context")
DIRECTIONS = {"better": 1, "worse": -1, "not_worse": 1}
METRICS = ("mAP", "rank1", "nmi", "early_nmi", "fid")
LOWER_IS_BETTER = ("fid",)
NOT_TESTABLE = "not testable here"
COUNTED = ("holds", "does not hold", "inconclusive", NOT_TESTABLE)


@functools.cache
def claims(path: str | Path = CLAIMS_FILE) -> dict[str, list[dict]]:
    """paper -> its claims, checked: unique ids, known kind, direction, metric and gate, both rows named."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    gate_names = set(gates())
    seen = set()
    for paper, items in data.items():
        for c in items:
            where = f"{Path(path).name}: {paper} claim {c.get('id')!r}"
            missing = [k for k in ("id", "source", "quote", "row", "versus") if not c.get(k)]
            if missing:
                raise ReidReproError(f"{where}: missing {missing}")
            if c["id"] in seen:
                raise ReidReproError(f"{where}: the id is used twice")
            seen.add(c["id"])
            checks = {"kind": (c.get("kind", "claim"), KINDS), "direction": (c.get("direction", "better"),
                                                                           tuple(DIRECTIONS)),
                      "metric": (c.get("metric", "mAP"), METRICS)}
            for key, (value, allowed) in checks.items():
                if value not in allowed:
                    raise ReidReproError(f"{where}: {key}={value!r}; expected one of {allowed}")
            named = gate_names_of(c)
            if any(not isinstance(g, str) or g not in gate_names for g in named):
                raise ReidReproError(f"{where}: gate={c['gate']!r}; expected null, one of {sorted(gate_names)} "
                                     f"({GATES_FILE.name}) or a list of them")
            if c.get("table") is None and not c.get("runs"):
                raise ReidReproError(f"{where}: a claim without a table names its two runs (runs: {{row, versus}})")
    return data


def for_table(paper: str, table: str) -> list[dict]:
    return [c for c in claims().get(paper, []) if c.get("table") is not None and str(c["table"]) == str(table)]


def for_runs(paper: str) -> list[dict]:
    """A paper's claims on figures with no table: each names its two runs."""
    return [c for c in claims().get(paper, []) if c.get("table") is None]


@functools.cache
def gates(path: str | Path = GATES_FILE) -> dict[str, dict]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def gate_names_of(claim: dict) -> list:
    """The gates a claim names: ``gate: null``, one name, or a list of names."""
    g = claim.get("gate")
    return [] if g is None else list(g) if isinstance(g, list) else [g]


def gate_status(name: str, measured) -> dict:
    """Whether gate ``name`` passes on this build: ``measured`` is what the gate reads (gcl_generator: the figures
    stage's ``gcl_fid.json``; a gate with a ``method``: the report's baseline gains, one record per baseline run
    with its method, source, test stand-in, gain over its start, 95% interval and ``learns``), None when it was not
    measured.
    Returns {passed: True | False | None, text}; a gate with a ``method`` has one such status per setting
    (``<source>2<target>``) under ``settings``."""
    spec = gates()[name]
    if spec.get("method"):
        settings = {}
        for r in measured or []:
            if r["method"] != spec["method"] or not r["source"]:
                continue
            ci, passed = r["ci"], bool(r["learns"])
            where = f"{r['run']}: {r['start_mAP']:.1f} -> {r['start_mAP'] + r['gain']:.1f} mAP"
            gain = (f"gain {r['gain']:+.1f}, 95% CI [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci is not None
                    else f"gain {r['gain']:+.1f}, one seed: no interval")
            settings[f"{r['source']}2{r['dataset']}"] = {
                "passed": passed, "text": (f"{spec['what']}; it {'does' if passed else 'does not'}: {where} over its "
                                           f"start ({gain}; {spec['source']})")}
        return {"passed": None, "settings": settings,
                "text": f"{spec['what']}: not measured in this build ({spec['source']})"}
    if name == "gcl_generator":
        truth = (measured or {}).get("true_view") or {}
        angles = [a for a in truth if a != "people"]
        if not angles:
            return {"passed": None, "text": f"{spec['what']}: not measured in this build ({spec['source']})"}
        closer = [a for a in angles if truth[a]["generated"] > truth[a]["input"]]
        passed = len(closer) >= spec["pass_angles"]
        return {"passed": passed, "closer": len(closer), "angles": len(angles),
                "text": (f"{spec['what']}: the generated view is closer to the world's true turned person than a copy "
                         f"of the input at {len(closer)} of {len(angles)} angles (the gate needs "
                         f"{spec['pass_angles']}; {spec['source']})")}
    raise ReidReproError(f"{GATES_FILE.name}: gate {name!r} has no measurement in report/claims.py")


def gate_for(claim: dict, statuses: dict | None, setting: str | None = None) -> dict | None:
    """The status of ``claim``'s gates on this build, on ``setting`` (a table's dataset column) for a gate measured
    per setting: None for a claim with no gate; else passed only when every gate passes, with the texts of those
    that do not (or of all, when all pass)."""
    names = gate_names_of(claim)
    if not names:
        return None
    found = []
    for name in names:
        st = (statuses or {}).get(name) or {"passed": None, "text": f"{name}: not measured in this build"}
        if "settings" in st:
            st = st["settings"].get(setting) or {"passed": None, "text": st["text"]}
        found.append(st)
    failing = [st for st in found if not st.get("passed")]
    return {"passed": not failing, "text": "; ".join(st["text"] for st in (failing or found))}


def expected_sign(claim: dict, paper_gain: float | None) -> int:
    """+1 when the claim says row's value is above versus's, -1 below: from the paper's printed numbers where it
    prints both, else from ``direction`` (a figure: the sign only; for FID, lower is better)."""
    if paper_gain is not None and not (isinstance(paper_gain, float) and math.isnan(paper_gain)) and paper_gain != 0:
        return 1 if paper_gain > 0 else -1
    sign = DIRECTIONS[claim.get("direction", "better")]
    return -sign if claim.get("metric", "mAP") in LOWER_IS_BETTER else sign


def cite(claim: dict, limit: int = 140) -> str:
    """The claim's source and the start of its quote, for a verdict's sentence."""
    quote = " ".join(claim["quote"].split())
    quote = quote if len(quote) <= limit else quote[:limit].rsplit(" ", 1)[0] + " …"
    return f"{claim['source']}: “{quote}”"
