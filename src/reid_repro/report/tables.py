"""The report's tables: the papers' numbers beside ours, the verdicts on their orderings, and the baselines', studies'
and paper-vs-code tables."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from reid_repro.config import load_run
from reid_repro.errors import ReidReproError
from reid_repro.report.page import LAYOUT, PROSE
from reid_repro.report.runs import NOT_BUILT, STALE_MARK, Run

DATASET_NAMES = {"market": "Market stand-in", "duke": "Duke stand-in", "msmt": "MSMT stand-in",
                 "market2duke": "Market→Duke stand-ins", "duke2market": "Duke→Market stand-ins",
                 "market2msmt": "Market→MSMT stand-ins", "duke2msmt": "Duke→MSMT stand-ins"}


REAL_NAMES = {"market": "Market-1501", "duke": "DukeMTMC-reID", "msmt": "MSMT17"}


WORLD_ROOT = "data/world"     # where the world stage writes the stand-ins (synthetic/dvc.yaml)


def dataset_labels(data: dict) -> dict[str, str]:
    """What our numbers come from, per column key: the synthetic stand-in (DATASET_NAMES) where
    ``params.yaml: data.<key>.root`` is the world's folder, else the real dataset named with its root; a UDA
    setting (``market2duke``) from its two sides."""
    labels = dict(DATASET_NAMES)
    real = {}
    for key, entry in (data or {}).items():
        root = str((entry or {}).get("root", "") or "")
        if root and not Path(root).as_posix().startswith(WORLD_ROOT) and key in REAL_NAMES:
            labels[key] = f"{REAL_NAMES[key]} (real data, {root})"
            real[key] = REAL_NAMES[key]
    for column in DATASET_NAMES:
        source, _, target = column.partition("2")
        if target and (source in real or target in real):
            name = {k: real.get(k, DATASET_NAMES[k]) for k in (source, target)}
            labels[column] = f"{name[source]}→{name[target]}"
    return labels


def table_findings(paper_table: dict, found: list[dict]) -> list[str]:
    """The explanations paper_numbers.yaml gives under a table (`findings`), each shown only while a verdict of
    its row reads as it says (a rebuild that changes the verdict drops the explanation with it)."""
    shown = []
    for f in paper_table.get("findings", []):
        if any(v["row"] == f["row"] and v["verdict"] == f["verdict"] for v in found):
            shown.append(f"Why {f['row']} {f['verdict']} here: {f['text']}")
    return shown


def differs_from_paper(members: list) -> str:
    """The settings of a table's runs that are not the paper's at the CPU scale, from params.yaml: a run's
    ``overrides`` against its ``paper_overrides`` (what scale: paper sets), grouped by setting."""
    found: dict[tuple, list[str]] = {}
    for m in members:
        over, paper = getattr(m.spec, "overrides", {}) or {}, getattr(m.spec, "paper_overrides", {}) or {}
        for key in sorted(paper):
            if over.get(key) != paper[key]:
                found.setdefault((key, over.get(key), paper[key]), []).append(m.name)
    if not found:
        return ""
    parts = [f"{key} {ours} (paper {theirs}: {', '.join(names)})" for (key, ours, theirs), names in found.items()]
    return "Settings here that differ from the paper's (params.yaml, `paper_overrides`): " + "; ".join(parts) + "."


def verdict_metric(paper_table: dict) -> str:
    """The metric a table's verdicts compare: mAP where the table has it (CANU prints R1 first), else its first."""
    return "mAP" if "mAP" in paper_table["metrics"] else paper_table["metrics"][0]


METRIC_NAMES = {"mAP": "mAP", "rank1": "top-1", "rank5": "top-5", "rank10": "top-10", "fid": "FID"}


def paper_numbers() -> dict:
    return yaml.safe_load(resources.files("reid_repro.report").joinpath("paper_numbers.yaml").read_text())


def check_rows(params: dict, numbers: dict | None = None) -> int:
    """Every run's table and row (and each of its ``also`` rows) must be a row of ``paper_numbers.yaml``, unless
    the run is declared ``ours_only`` (a row no paper prints). Returns the number of rows checked."""
    from reid_repro.config import declared_runs

    numbers = numbers or paper_numbers()
    n = 0
    for name in declared_runs(params):
        spec = load_run(params, name)
        for i, (paper, table, row) in enumerate(spec.targets()):
            n += 1
            if paper not in numbers or table not in numbers[paper]:
                raise ReidReproError(f"runs.{name}: paper {paper!r} table {table!r} is not in "
                                     f"paper_numbers.yaml; expected one of {sorted(numbers.get(paper, {}))}")
            printed = [r["row"] for r in numbers[paper][table]["rows"]]
            if row not in printed and not (i == 0 and spec.ours_only):
                raise ReidReproError(f"runs.{name}: row {row!r} is not a row of {paper} table "
                                     f"{table} in paper_numbers.yaml (rows: {printed}); fix the row or declare the "
                                     "run `ours_only: true`")
    return n


def _fmt(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1f}"


def table_frame(paper_table: dict, entries: list[tuple[Run, str]]) -> pd.DataFrame:
    """One row per paper row (then one per run with no paper row); per dataset and metric, paper and ours (%).

    ``entries`` are (run, the paper row it fills)."""
    metrics = paper_table["metrics"]
    datasets = list(paper_table["datasets"]) + sorted({r.spec.table_column for r, _ in entries} -
                                                      set(paper_table["datasets"]))
    ours, best, not_run, not_built, stale = {}, {}, set(), set(), set()
    for r, row in entries:
        ours.setdefault(row, {})[r.spec.table_column] = (r.name, [r.values(m) for m in metrics])
        if r.not_run == NOT_BUILT:
            not_built.add((row, r.spec.table_column))
        elif r.not_run:
            not_run.add((row, r.spec.table_column))
        if r.stale:
            stale.add((row, r.spec.table_column))
        if "best_epoch_mAP" in r.metrics:     # paper scale: the reference codes' best test epoch
            best[(row, r.spec.table_column)] = 100 * float(r.metrics["best_epoch_mAP"])
    rows = []
    printed = [p["row"] for p in paper_table["rows"]]
    for p in paper_table["rows"] + [{"row": row, "group": "ours only"} for row in ours if row not in printed]:
        entry = {"row": p["row"], "group": p.get("group", ""), "runs": ", ".join(n for n, _ in ours.get(p["row"], {}).values())}
        for d in datasets:
            entry[f"{d}.not_run"] = (p["row"], d) in not_run
            entry[f"{d}.not_built"] = (p["row"], d) in not_built
            entry[f"{d}.stale"] = (p["row"], d) in stale
            paper_vals = p.get(d) or [None] * len(metrics)
            our_vals = ours.get(p["row"], {}).get(d, (None, [None] * len(metrics)))[1]
            for m, pv, ov in zip(metrics, paper_vals, our_vals):
                seeds = sorted(ov) if ov else []
                vals = np.array([ov[k] for k in seeds]) if ov else np.array([])
                entry[f"{d}.{m}.paper"] = pv
                entry[f"{d}.{m}.ours"] = float(vals.mean()) if len(vals) else None
                entry[f"{d}.{m}.ours_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
                entry[f"{d}.{m}.ours_seeds"] = (";".join(f"{k}:{ov[k]:.2f}" for k in seeds) if ov else None)
                if m == "mAP" and (p["row"], d) in best:
                    entry[f"{d}.{m}.ours_best_epoch"] = best[(p["row"], d)]
        rows.append(entry)
    return pd.DataFrame(rows)


def seed_values(entries: list[tuple[Run, str]], metric: str) -> dict:
    """{(row, test dataset): {seed: value in points}} from the runs that fill each row."""
    out: dict = {}
    for r, row in entries:
        out.setdefault((row, r.spec.table_column), {}).update(r.values(metric))
    return out


def row_noise(entries: list[tuple[Run, str]], metric: str, noise: dict | None) -> dict:
    """{(row, test dataset): its run's seed-noise estimate} (report/verdicts.py ``pooled_noise``; ``noise``: metric
    -> run name -> Noise), beside :func:`seed_values`."""
    by_run = (noise or {}).get(metric, {})
    return {(row, r.spec.table_column): by_run[r.name] for r, row in entries if r.name in by_run}


def run_noise(runs: list[Run], metrics) -> tuple[dict, dict]:
    """Every run's seed-noise estimate per metric, pooled within its noise group where the spreads are alike
    (report/verdicts.py), and per metric the groups' equal-variance tests."""
    from reid_repro.report import verdicts as rule

    noise, tests = {}, {}
    for metric in metrics:
        groups: dict = {}
        for r in runs:
            if r.not_run:
                continue
            values = [100 * float(m[metric]) for _, m in sorted(r.per_seed.items()) if metric in m]
            if values:
                groups.setdefault(rule.group_key(r.spec), {})[r.name] = values
        noise[metric], tests[metric] = rule.pooled_noise(groups)
    return noise, tests


def claim_verdict(claim: dict, paper_gain: float | None, row_seeds: dict, versus_seeds: dict,
                  gate: dict | None = None, noise: tuple | None = None) -> dict:
    """One listed claim judged on its rows' seeds (``{seed: value}`` each; report/verdicts.py, ``noise``: the rows'
    seed-noise estimates): the paper's gain where it prints both numbers (else the sign the claim states),
    ``not_worse`` judged as "does not hold" only when the interval lies on the wrong side; a claim whose gate fails
    (or was not measured) reads "not testable here" (``gate``: its status on this claim's setting,
    claims.gate_for)."""
    from reid_repro.report import claims as claim_file
    from reid_repro.report import verdicts as rule

    printed = paper_gain is not None and not pd.isna(paper_gain)
    sign = claim_file.expected_sign(claim, paper_gain if printed else None)
    rs, vs = sorted(row_seeds), sorted(versus_seeds)
    v = rule.verdict(paper_gain if printed and paper_gain != 0 else sign, [row_seeds[s] for s in rs],
                     [versus_seeds[s] for s in vs], *(noise or (None, None)), row_seeds=rs, versus_seeds=vs)
    v["claimed_sign"] = sign
    if not printed:
        v["paper_gain"], v["sign_only"] = None, True
    if claim.get("direction") == "not_worse" and v["verdict"] == rule.HOLDS and v["ci"][0] is not None \
            and (v["ci"][0] if sign > 0 else -v["ci"][1]) <= 0:
        v["verdict"] = rule.INCONCLUSIVE
    if claim.get("gate") and not (gate or {}).get("passed"):
        v["verdict"], v["gate"] = claim_file.NOT_TESTABLE, (gate or {}).get("text", claim["gate"])
    return {**v, "claim": claim["id"], "kind": claim.get("kind", "claim"), "source": claim["source"],
            "quote": claim["quote"]}


def verdict_sentence(v: dict, label: str, claim: dict) -> str:
    """A verdict in one sentence: the rows, where, the paper's gain and ours with its interval, the answer, and
    the claim it judges (its source and quote); context rows and gated claims say so."""
    from reid_repro.report import claims as claim_file

    metric, digits = METRIC_NAMES.get(v["metric"], v["metric"]), 3 if v["metric"] in ("nmi", "early_nmi", "fid") else 1
    if v["metric"] == "fid":      # ours is not Inception FID: say so wherever it is named
        metric = "FID (paper: Inception-v3; ours: a Fréchet distance on the start's features, not Inception FID)"
    n, m = len(v["seeds"]), len(v.get("versus_seeds", v["seeds"]))
    interval = (f"95% CI [{v['ci'][0]:+.{digits}f}, {v['ci'][1]:+.{digits}f}] over {n} and {m} seeds, "
                f"{v.get('interval', 'Welch')}" if v["ci"][0] is not None
                else f"{n} and {m} seeds: no interval (one seed and no pooled noise)")
    paper = (f"paper {v['paper_gain']:+.1f}" if v.get("paper_gain") is not None else
             f"paper: {v['row']} {'above' if claim_file.expected_sign(claim, None) > 0 else 'below'} (no numbers)")
    head = "Context (a supervised row, not a claim): " if v["kind"] == "context" else ""
    answer = v["verdict"] + (f" ({v['gate']})" if v.get("gate") else "")
    unit = " (NMI x 100)" if v["metric"] in ("nmi", "early_nmi") else ""
    return (f"{head}{v['row']} vs {v['versus']}, {label} {metric}{unit}: {paper}, ours {v['our_gain']:+.{digits}f} "
            f"({interval}), {answer}. [{v['claim']}; {claim_file.cite(claim)}]"
            + (f" {STALE_MARK} From results of earlier code or settings: rebuild before reading it." if v.get("stale")
               else ""))


def verdicts(paper: str, table: str, paper_table: dict, frame: pd.DataFrame, values: dict,
             gates: dict | None = None, noise: dict | None = None) -> list[dict]:
    """The table's listed claims (claims.yaml) judged where our runs fill both rows: per claim and dataset, the
    paper's gain and the comparison over seeds. ``values``: metric -> :func:`seed_values` of the table's runs;
    ``noise``: metric -> :func:`row_noise` of them; ``gates``: gate name -> its status (claims.gate_status)."""
    from reid_repro.report import claims as claim_file

    rows = frame.set_index("row")
    out = []
    for claim in claim_file.for_table(paper, table):
        if claim["row"] not in rows.index or claim["versus"] not in rows.index or claim.get("columns"):
            continue
        metric = claim.get("metric", "mAP")
        r, base = rows.loc[claim["row"]], rows.loc[claim["versus"]]
        datasets = claim.get("datasets") or [c.split(".")[0] for c in frame.columns if c.endswith(f".{metric}.ours")]
        for d in datasets:
            if f"{d}.{metric}.paper" not in frame.columns:
                continue
            ours = values.get(metric, {}).get((claim["row"], d))
            ours_base = values.get(metric, {}).get((claim["versus"], d))
            paper_v, paper_base = r[f"{d}.{metric}.paper"], base[f"{d}.{metric}.paper"]
            if not ours or not ours_base or any(x is None or pd.isna(x) for x in (paper_v, paper_base)):
                continue
            by = (noise or {}).get(metric, {})
            v = claim_verdict(claim, paper_v - paper_base, ours, ours_base, claim_file.gate_for(claim, gates, d),
                              (by.get((claim["row"], d)), by.get((claim["versus"], d))))
            v.update(paper=paper, table=table, row=claim["row"], versus=claim["versus"], dataset=d, metric=metric,
                     stale=any(x is not None and not pd.isna(x) and bool(x)
                               for x in (r.get(f"{d}.stale"), base.get(f"{d}.stale"))))
            v["sentence"] = verdict_sentence(v, paper_table["datasets"].get(d, DATASET_NAMES.get(d, d)), claim)
            out.append(v)
    return out


FIDELITY_TWIN = ", all paper (fidelity)"   # a row run with every disagreement read as the paper writes it


def paper_reading_verdicts(paper: str, table: str, paper_table: dict, frame: pd.DataFrame, values: dict,
                           gates: dict | None = None, noise: dict | None = None) -> list[dict]:
    """The table's orderings again with the paper's reading of every disagreement (issue 11): a row ``<row>, all
    paper (fidelity)`` stands in for ``<row>``, so an ordering is judged when both its row and the row it is measured
    against have such a twin; the paper's gain is the original rows'. Each verdict has ``reading: paper``."""
    twins = {row[:-len(FIDELITY_TWIN)]: row for row in frame["row"] if row.endswith(FIDELITY_TWIN)}
    if not twins:
        return []
    by_row = frame.set_index("row")
    read = frame[frame["row"].isin(twins)].copy()
    for c in [c for c in frame.columns if ".ours" in c or c.endswith(".stale")]:   # ours from the twin
        read[c] = [by_row.loc[twins[r], c] for r in read["row"]]
    original = {twin: row for row, twin in twins.items()}
    twin_values, twin_noise = ({m: {(original[name], d): v for (name, d), v in by.items() if name in original}
                                for m, by in x.items()} for x in (values, noise or {}))
    found = verdicts(paper, table, paper_table, read, twin_values, gates, twin_noise)
    for v in found:
        v["reading"] = "paper"
        v["sentence"] = "With the paper's reading: " + v["sentence"]
    return found


INCONCLUSIVE_MEANS = PROSE["inconclusive_means"]


def _table_cells(frame: pd.DataFrame, paper_table: dict, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    """The displayed table: one string per cell, ours in **bold** as mean ± sd over seeds."""
    metrics = paper_table["metrics"]
    datasets = sorted({c.split(".")[0] for c in frame.columns if c.endswith(".ours")},
                      key=lambda d: list(paper_table["datasets"]).index(d) if d in paper_table["datasets"] else 99)
    head = ["Method"] + [f"{METRIC_NAMES[m]}: {paper_table['datasets'][d]} (paper) / {labels.get(d, d)} (ours)"
                         if d in paper_table["datasets"] else f"{METRIC_NAMES[m]}: {labels.get(d, d)} (ours)"
                         for d in datasets for m in metrics]
    rows = []
    for _, r in frame.iterrows():
        cells = [r["row"] + (f" (ours: {r['runs']})" if r["runs"] else "")]
        for d in datasets:
            for m in metrics:
                p, o, sd = r[f"{d}.{m}.paper"], r[f"{d}.{m}.ours"], r[f"{d}.{m}.ours_std"]
                spread = "" if sd is None or pd.isna(sd) else f" ± {sd:.1f}"
                cell = _fmt(p) if o is None or pd.isna(o) else f"{_fmt(p)} / **{_fmt(o)}{spread}**"
                if r.get(f"{d}.stale") is True and not (o is None or pd.isna(o)):
                    cell += f" {STALE_MARK}"
                if r.get(f"{d}.not_run") is True:
                    cell = f"{_fmt(p)} / not run at the default scale"
                if r.get(f"{d}.not_built") is True:
                    cell = f"{_fmt(p)} / {NOT_BUILT}"
                b = r.get(f"{d}.{m}.ours_best_epoch")
                if b is not None and not pd.isna(b):   # what the reference code would have reported
                    cell += f" (best test epoch, the reference codes' pick: {b:.1f})"
                cells.append(cell)
        rows.append(cells)
    return pd.DataFrame(rows, columns=head)


# each paper's headline claim: (table, row, dataset) of its verdict
def short_name(paper: str) -> str:
    """A paper's key as the report writes it (gcl_plus -> GCL+, canu -> CANU)."""
    return {"gcl_plus": "GCL+"}.get(paper, paper.upper())


def headline(found: list[dict], paper: str) -> dict | None:
    """A paper's headline verdict: the claim claims.yaml marks ``headline: <dataset>``."""
    from reid_repro.report import claims as claim_file

    marked = {(c["id"], c["headline"]) for c in claim_file.claims().get(paper, []) if c.get("headline")}
    return next((v for v in found if v["paper"] == paper and (v.get("claim"), v["dataset"]) in marked), None)


def run_claim_verdicts(paper: str, by_name: dict, gates: dict | None = None,
                       labels: dict = DATASET_NAMES, noise: dict | None = None) -> list[dict]:
    """A paper's claims on figures with no table (claims.yaml ``runs: {row, versus}``), judged on their seeds:
    GCL+ Fig. 8's final NMI (``nmi``) and the NMI of the clustering after the first epoch (``early_nmi``). The paper
    draws them (no numbers): the sign only."""
    from reid_repro.report import claims as claim_file

    out = []
    for claim in claim_file.for_runs(paper):
        a, b = (by_name.get(claim["runs"][k]) for k in ("row", "versus"))
        if a is None or b is None:
            continue
        metric = claim.get("metric", "mAP")
        va, vb = ({s: 100 * float(m[metric]) for s, m in r.per_seed.items() if metric in m} for r in (a, b))
        if not va or not vb:
            continue
        dataset = (claim.get("datasets") or [a.spec.test])[0]
        by = (noise or {}).get(metric, {})
        v = claim_verdict(claim, None, va, vb, claim_file.gate_for(claim, gates),
                          tuple(by.get(claim["runs"][k]) for k in ("row", "versus")))
        v.update(paper=paper, table=claim["source"], row=claim["row"], versus=claim["versus"], dataset=dataset,
                 metric=metric, stale=bool(a.stale or b.stale))
        v["sentence"] = verdict_sentence(v, labels.get(dataset, dataset), claim)
        out.append(v)
    return out


GCL_FID_INTRO = PROSE["gcl_fid_intro"]


def gcl_fid_table(ours: dict, paper_table: dict, gates: dict | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """GCL supp. Table 1 beside our FID per angle, and the verdicts on its claims (claims.yaml, ``columns``: the
    views said easier against the others) where we measured the row: one generator, so no interval."""
    from reid_repro.report import claims as claim_file

    angles = list(paper_table["datasets"])
    rows = [{"row": f"{r['row']} (paper, Inception-v3)", **{a: r[a][0] for a in angles}}
            for r in paper_table["rows"]]
    rows.append({"row": f"Market stand-in (ours: {ours['run']}, start's features)",
                 **{a: ours["fid"].get(a) for a in angles}})
    truth = ours.get("true_view") or {}
    if truth:      # ours only: the world's own render of the turned person, which no real dataset has
        for key, label in (("generated", "generated view"), ("input", "the input image (a copy)")):
            rows.append({"row": f"cosine to the world's true view: {label} ({truth['people']} people, ours only)",
                         **{a: truth.get(a, {}).get(key) for a in angles}})
    frame = pd.DataFrame(rows)
    cells = frame.copy()
    cells.columns = ["View"] + [paper_table["datasets"][a] for a in angles]
    cells = cells.map(lambda v: f"{v:.2f}" if isinstance(v, float) else v)
    found = []
    for claim in claim_file.for_table("gcl", "1"):
        if claim["row"] != "Market" or not claim.get("columns"):     # ours: the Market stand-in only
            continue
        easy, hard = claim["columns"]["row"], claim["columns"]["versus"]
        printed = next(r for r in paper_table["rows"] if r["row"] == claim["row"])
        paper_gain = np.mean([printed[a][0] for a in easy]) - np.mean([printed[a][0] for a in hard])
        ours_easy, ours_hard = np.mean([ours["fid"][a] for a in easy]), np.mean([ours["fid"][a] for a in hard])
        v = claim_verdict(claim, paper_gain, {0: ours_easy}, {0: ours_hard}, claim_file.gate_for(claim, gates))
        label = lambda keys: ", ".join(paper_table["datasets"][a] for a in keys)     # noqa: E731
        v.update(paper="gcl", table="1", row=label(easy), versus=label(hard), dataset="market", metric="fid",
                 stale=False)
        v["sentence"] = verdict_sentence(v, "Market stand-in (one generator)", claim)
        if truth:
            closer = [a for a in angles if a in truth and truth[a]["generated"] > truth[a]["input"]]
            v["sentence"] += (f" Against the world's own render of the turned person (ours only), the generated view "
                              f"is closer than a copy of the input at {len(closer)} of {len(angles)} angles"
                              + (f" ({', '.join(paper_table['datasets'][a] for a in closer)})." if closer else "."))
        found.append(v)
    return frame, cells, found


BASELINES = tuple(LAYOUT["baselines"])      # figures.yaml: whose gain over the start is tabled


START_INTRO = PROSE["start_intro"]


def source_of(spec) -> str | None:
    """The source stand-in a domain-adaptation run starts from (``init: source_<s>``); None for any other start."""
    return spec.init.removeprefix("source_") if spec.init.startswith("source_") else None


def baseline_gains(by_name: dict, start: dict, transfers: dict | None = None) -> pd.DataFrame:
    """Per baseline run: the mAP it starts from on its test set, the per-seed final mAP, the mean gain and its 95%
    interval (Student t over seeds), and whether the interval lies above zero (``learns``: what the gates of the
    claims built on a domain-adaptation baseline read, claims.gate_status). A run from the pretrained start starts
    at ``start`` (start.json); a domain-adaptation run, from a source model (``init: source_<s>``), at that model's
    direct transfer, ``transfers[<s>]`` (transfer_<s>.json): what adaptation must improve on."""
    from reid_repro.report import verdicts as rule

    rows = []
    for name in BASELINES:
        r = by_name.get(name)
        source = source_of(r.spec) if r is not None else None
        begins = start if source is None else (transfers or {}).get(source, {})
        if r is None or r.spec.test not in begins:
            continue
        begin = 100 * float(begins[r.spec.test]["mAP"])
        finals = r.values("mAP")
        seeds = sorted(finals)
        iv = rule.paired_interval([finals[s] for s in seeds], [begin] * len(seeds))
        ci = None if iv["n"] < 2 else [round(x, 2) for x in iv["ci"]]
        rows.append({"run": name, "method": r.spec.method, "row": r.spec.row, "dataset": r.spec.test,
                     "source": source or "",
                     "start_mAP": round(begin, 2), "seeds": seeds, "final_mAP": [round(finals[s], 2) for s in seeds],
                     "gain": round(iv["our_gain"], 2), "ci": ci, "learns": bool(ci is not None and ci[0] > 0)})
    return pd.DataFrame(rows)


def _gains_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    rows = []
    for _, r in frame.iterrows():
        ci = "one seed: no interval" if r["ci"] is None else f"[{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]"
        start = (f"{labels.get(r['source'], r['source'])} source model (direct transfer)" if r["source"] else
                 "pretrained start")
        rows.append([r["run"], labels.get(r["dataset"], r["dataset"]), start, f"{r['start_mAP']:.1f}",
                     ", ".join(f"{v:.1f}" for v in r["final_mAP"]), f"{r['gain']:+.1f} {ci}",
                     "yes" if r["learns"] else "**no**"])
    return pd.DataFrame(rows, columns=["Baseline run", "Stand-in", "Starts from", "Start mAP", "Final mAP per seed",
                                       "Gain (95% CI)", "Learns"])


PROBE_INTRO = PROSE["probe_intro"]


def camera_probe_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run whose metrics have the camera probe (evaluation/probe.py): per-seed accuracy in points."""
    rows = []
    for r in runs:
        if not r.per_seed or not all("camera_probe" in m for m in r.per_seed.values()):
            continue
        values = r.values("camera_probe")
        if any(np.isnan(v) for v in values.values()):
            continue
        rows.append({"run": r.name, "row": r.spec.row, "dataset": r.spec.table_column,
                     "probe_seeds": [values[s] for s in sorted(values)],
                     "chance": 100 * float(r.metrics.get("camera_chance", float("nan"))),
                     "mAP": 100 * float(r.metrics["mAP"])})
    return pd.DataFrame(rows)


def _probe_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    def cell(v: list[float]) -> str:
        return f"{np.mean(v):.1f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.1f}"

    rows = [[r["run"], r["row"], labels.get(r["dataset"], r["dataset"]), cell(r["probe_seeds"]),
             f"{r['chance']:.1f}", f"{r['mAP']:.1f}"] for _, r in frame.iterrows()]
    return pd.DataFrame(rows, columns=["Run", "Row", "Stand-in", "Camera probe accuracy (%)", "Chance (%)",
                                       "mAP (%)"])


STUDIES_INTRO = PROSE["studies_intro"]


def _seed_maps(folder: Path) -> dict[int, float]:
    """mAP (%) per seed of a trained run folder (``metrics.json: seeds``); empty when it has not run."""
    f = folder / "metrics.json"
    if not f.is_file():
        return {}
    seeds = json.loads(f.read_text()).get("seeds")
    return {int(s): 100 * float(m["mAP"]) for s, m in seeds.items()} if isinstance(seeds, dict) else {}


def studies_frame(params: dict, studies_dir: str | Path, paper: str | None = None,
                  runs_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per exported study (studies/<name>/best.yaml): the paper's setting and its validation mAP beside
    the best trial's; with ``runs_dir``, the test mAP of the run at the paper's setting (runs/<run>) and at the
    best setting (runs/tuned_<name>, the tuned@ stage) and their paired difference over seeds."""
    from reid_repro.config import load_run
    from reid_repro.report import verdicts as rule

    rows = []
    for name, spec in (params.get("studies") or {}).items():
        best_file = Path(studies_dir) / name / "best.yaml"
        if not best_file.is_file() or spec["run"] not in (params.get("runs") or {}):
            continue
        if paper is not None and paper not in {p for p, _, _ in load_run(params, spec["run"]).targets()}:
            continue
        best = yaml.safe_load(best_file.read_text())
        fmt = ", ".join
        paper_v = best.get("paper_value")
        row = {"study": name, "run": spec["run"], "trials": f"{best['n_complete']} complete, "
               f"{best['n_pruned']} pruned",
               "paper_setting": fmt(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in (best.get("paper_params") or {}).items()),
               "paper_val_mAP": None if paper_v is None else round(100 * paper_v, 2),
               "best_setting": fmt(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in best["best_params"].items()),
               "best_val_mAP": round(100 * best["best_value"], 2),
               "gap": None if paper_v is None else round(100 * (best["best_value"] - paper_v), 2),
               "paper_percentile": best.get("paper_percentile"),
               "importances": ", ".join(f"{k} {v['mean']:.2f} ± {v['sd']:.2f}"
                                        for k, v in list((best.get("importances") or {}).items())[:3]),
               "paper_test_mAP": None, "paper_test_sd": None, "tuned_test_mAP": None, "tuned_test_sd": None,
               "test_gain": None, "test_ci_low": None, "test_ci_high": None, "test_seeds": 0}
        if runs_dir is not None:
            at_paper, tuned = _seed_maps(Path(runs_dir) / spec["run"]), _seed_maps(Path(runs_dir) / f"tuned_{name}")
            for key, values in (("paper", at_paper), ("tuned", tuned)):
                if values:
                    v = list(values.values())
                    row[f"{key}_test_mAP"] = round(float(np.mean(v)), 2)
                    row[f"{key}_test_sd"] = round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else 0.0
            seeds, t, p = rule.paired(sorted(tuned), tuned, at_paper)
            if seeds:
                iv = rule.paired_interval(t, p)
                row.update(test_gain=round(iv["our_gain"], 2), test_ci_low=round(iv["ci"][0], 2),
                           test_ci_high=round(iv["ci"][1], 2), test_seeds=len(seeds))
        rows.append(row)
    return pd.DataFrame(rows)


def _studies_cells(frame: pd.DataFrame) -> pd.DataFrame:
    def test(mean, sd) -> str:
        return "–" if mean is None or pd.isna(mean) else f"{mean:.1f} ± {sd:.1f}"

    def gain(r) -> str:
        if r["test_seeds"] == 0:
            return "–"
        if r["test_seeds"] == 1:
            return f"{r['test_gain']:+.1f} (1 seed)"
        return f"{r['test_gain']:+.1f} [{r['test_ci_low']:+.1f}, {r['test_ci_high']:+.1f}]"

    def rank(value) -> str:
        return "–" if value is None or pd.isna(value) else f"{value:.0f}%"

    rows = [[r["study"], r["run"], r["trials"], r["paper_setting"], _fmt(r["paper_val_mAP"]),
             rank(r.get("paper_percentile")), r["best_setting"], _fmt(r["best_val_mAP"]), _fmt(r["gap"]),
             r.get("importances") or "–", test(r["paper_test_mAP"], r["paper_test_sd"]),
             test(r["tuned_test_mAP"], r["tuned_test_sd"]), gain(r)] for _, r in frame.iterrows()]
    return pd.DataFrame(rows, columns=["Study", "Run", "Trials", "Paper's setting", "its val. mAP",
                                       "Paper's setting beats (of the other trials)", "Best setting",
                                       "its val. mAP ", "Val. gap", "Most important (fANOVA, mean ± sd over 5 seeds)",
                                       "Test mAP, paper's setting", "Test mAP, best setting", "Test gain [95% CI]"])


def study_sentences(frame: pd.DataFrame) -> list[str]:
    out = []
    for _, r in frame.iterrows():
        if r["gap"] is None or pd.isna(r["gap"]):
            first = f"{r['study']}: the paper's setting did not finish (pruned or failed)."
        elif r["gap"] <= 0.5:
            first = (f"{r['study']}: the paper's setting is within {r['gap']:.1f} mAP of the best of its trials on "
                     "the validation identities: near-optimal on our world.")
        else:
            first = (f"{r['study']}: the best setting ({r['best_setting']}) beats the paper's by {r['gap']:.1f} "
                     "mAP on the validation identities (one seed per trial).")
        if r["test_seeds"] >= 2:
            ci = f"{r['test_gain']:+.1f} mAP, 95% CI [{r['test_ci_low']:+.1f}, {r['test_ci_high']:+.1f}] over " \
                 f"{r['test_seeds']} seeds"
            if r["test_ci_low"] > 0:
                first += f" On the test identities the best setting confirms it: {ci}."
            elif r["test_ci_high"] < 0:
                first += f" On the test identities the best setting is worse than the paper's: {ci}."
            else:
                first += f" On the test identities no difference is detectable: {ci}."
        elif r["test_seeds"] == 1:
            first += (f" On the test identities (one seed) the best setting scores {r['test_gain']:+.1f} mAP against "
                      "the paper's: too few seeds for an interval.")
        else:
            first += " The test score of a run at that setting (tuned@ stage) is not built yet."
        out.append(first)
    return out


FIDELITY_INTRO = PROSE["fidelity_intro"]


def reading_counts(both_readings: list[tuple]) -> tuple[dict, list[str]]:
    """Per paper, how many of the orderings run under both readings hold / do not hold / are inconclusive with the
    code's reading (the default runs) and with the paper's (the ``all paper (fidelity)`` twins); and the sentences:
    one count line per paper, then each ordering under the paper's reading."""
    counts: dict = {}
    lines, detail = [], []
    for p, _, code_v, paper_v in both_readings:
        for reading, found in (("code", code_v), ("paper", paper_v)):
            c = counts.setdefault(p, {}).setdefault(reading, {"holds": 0, "does not hold": 0, "inconclusive": 0})
            for v in found:
                c[v["verdict"]] += 1
        detail += [v["sentence"] for v in paper_v]
    for p, c in sorted(counts.items()):
        n = sum(c["code"].values())
        lines.append(f"{short_name(p)}: of the {n} paper ordering{'' if n == 1 else 's'} run with both readings, "
                     + "; ".join(f"with the {reading}'s reading {k['holds']} hold, {k['does not hold']} do not, "
                                 f"{k['inconclusive']} inconclusive" for reading, k in c.items()) + ".")
    return counts, lines + detail


def fidelity_frame(by_name: dict, paper: str | None = None) -> pd.DataFrame:
    """One row per disagreement and measured pair: what the paper says, what the code does, the citation, the
    default and, where both runs exist, mAP of each variant and the paired difference (code - paper)."""
    from reid_repro.report import verdicts as rule
    from reid_repro.report.fidelity import DISAGREEMENTS

    rows = []
    for d in DISAGREEMENTS:
        if paper is not None and d["paper"] != paper:
            continue
        pairs = d["runs"] if isinstance(d["runs"], list) else [d["runs"]]
        for pair in pairs:
            row = {"paper": d["paper"], "disagreement": d["id"], "setting": d["setting"] or "(not a switch)",
                   "paper_says": d["paper_says"], "code_does": d["code_does"], "official_code": d["cite"],
                   "default": d["default"], "code_run": pair[0] if pair else None,
                   "paper_run": pair[1] if pair else None, "dataset": None, "code_mAP": None, "paper_mAP": None,
                   "code_minus_paper": None, "ci": None, "seeds": None, "stale": False, "not_run": None}
            if pair and all(n in by_name for n in pair):
                code, variant = (by_name[n] for n in pair)
                row["stale"] = bool(code.stale or variant.stale)
                seeds_c, seeds_v = code.values("mAP"), variant.values("mAP")
                seeds, cv, vv = rule.paired(sorted(seeds_c), seeds_c, seeds_v)
                if seeds:
                    iv = rule.paired_interval(cv, vv)
                    row.update(dataset=code.spec.test, code_mAP=round(float(np.mean(cv)), 1),
                               paper_mAP=round(float(np.mean(vv)), 1), code_minus_paper=round(iv["our_gain"], 1),
                               ci=None if iv["n"] < 2 else [round(x, 1) for x in iv["ci"]], seeds=seeds)
                else:   # a larger-profile marker says so; a run with no results at all is "not built yet"
                    reasons = [r.not_run for r in (code, variant) if r.not_run and r.not_run != NOT_BUILT]
                    row.update(dataset="not run", not_run=reasons[0] if reasons else None)
            elif pair:
                row["dataset"] = "not run"
            rows.append(row)
    return pd.DataFrame(rows)


def _fidelity_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    rows = []
    for _, r in frame.iterrows():
        if r["code_mAP"] is not None and not pd.isna(r["code_mAP"]):
            ci = "one seed: no interval" if r["ci"] is None else f"95% CI [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]"
            effect = (f"{labels.get(r['dataset'], r['dataset'])}, `{r['code_run']}` vs `{r['paper_run']}`: code "
                      f"{r['code_mAP']:.1f} / paper {r['paper_mAP']:.1f} mAP, code − paper "
                      f"{r['code_minus_paper']:+.1f} ({ci})" + (f" {STALE_MARK}" if r["stale"] else ""))
        elif r["dataset"] == "not run":     # name the runs, so the reader knows what to rebuild
            why = r.get("not_run")
            why = why if isinstance(why, str) and why else "not run yet"
            effect = f"{why} (`{r['code_run']}` vs `{r['paper_run']}`)"
        else:
            effect = "not measured"
        rows.append([short_name(r["paper"]), f"{r['disagreement']} ({r['setting']})", r["paper_says"],
                     f"{r['code_does']} — {r['official_code']}", r["default"], effect])
    return pd.DataFrame(rows, columns=["Paper", "Disagreement (setting)", "The paper says", "Released code (cited)",
                                       "Default", "Effect on our world"])
