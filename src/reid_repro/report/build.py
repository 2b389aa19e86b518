"""The report's orchestration: collect the runs, build each paper table's section (runs.py, tables.py, plots.py),
the baselines', studies' and paper-vs-code sections, the summary and coverage, and write them.

It reads only DVC-tracked inputs (params.yaml, ``runs/<name>/{metrics.json,run.json,seeds/<s>/history.parquet}``,
the pretrained start ``models/start.json``) and the paper numbers typed into ``paper_numbers.yaml``, and writes
``index.html`` and ``results.md`` from one list of sections through two templates (page.py), one CSV per table
under ``tables/`` and PNG figures under ``figures/``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import pandas as pd

from reid_repro.config import load_run
from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path, publish_dir, staging_dir, write_json
from reid_repro.report.page import PAGES, PROSE, Section, _anchor, render_page
from reid_repro.report.plots import (EXTRA_FIGURES, MODEL_FIGURE_RUNS, MODEL_FIGURES, curves_figure,
                                     reproduction_figure)
from reid_repro.report.runs import NOT_BUILT, STALE_MARK, STALE_NOTE, Run, collect_runs, write_plot_data
from reid_repro.report.tables import (BASELINES, FIDELITY_INTRO, GCL_FID_INTRO, INCONCLUSIVE_MEANS, PROBE_INTRO,
                                      START_INTRO, STUDIES_INTRO, baseline_gains, camera_probe_frame, check_rows,
                                      dataset_labels, differs_from_paper, _fidelity_cells, fidelity_frame, _gains_cells,
                                      gcl_fid_table, headline, paper_numbers, paper_reading_verdicts, _probe_cells,
                                      reading_counts, row_noise, run_claim_verdicts, run_noise, seed_values,
                                      short_name, source_of, _studies_cells, studies_frame, study_sentences,
                                      _table_cells, table_findings, table_frame, verdict_metric, verdicts)

WHY_DIFFERENT = PROSE["why_different"]
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


def _provenance(runs: list[Run], params_hash_value: str) -> dict:
    first = runs[0].info if runs else {}
    return {"git_revisions": sorted({r.info.get("git_revision", "unknown") for r in runs}),
            "params_hash": params_hash_value, "environment": first.get("environment", {}),
            "report_machine": {"python": platform.python_version(), "platform": platform.platform()}}




def build_report(params: dict, runs_dir: str | Path, out_dir: str | Path, paper: str | None = None,
                 start: str | Path | None = None, model_figures: str | Path | None = None,
                 studies: str | Path | None = None, allow_missing: bool = False) -> dict:
    """Write the report of every declared run to ``out_dir``; with ``paper``, of that paper's runs only. With
    ``allow_missing`` a declared run with no results is listed as not built yet instead of stopping the build.
    ``start`` is the pretrained start's evaluation (``models/start.json``) for the baselines' gains; a
    domain-adaptation baseline's start is its source model's direct transfer, ``transfer_<source>.json`` beside it."""
    from reid_repro.config import larger_section, params_hash

    out_dir = Path(out_dir)
    numbers = paper_numbers()
    check_rows(params, numbers)
    if paper is not None:
        if paper not in numbers:
            raise ReidReproError(f"--paper {paper!r}: expected one of {sorted(numbers)}")
        def mine(runs: dict) -> dict:     # its runs and shared baselines
            return {k: v for k, v in runs.items() if any(p == paper for p, _, _ in load_run(params, k).targets())}
        larger = larger_section(params)
        params = {**params, "runs": mine(params["runs"]), "larger": {**larger, "runs": mine(larger["runs"])}}
    found_runs = collect_runs(params, runs_dir, allow_missing)
    runs = [r for r in found_runs if not r.not_run]     # trained; the others only fill their table cells
    labels = dataset_labels(params.get("data"))     # our columns: the stand-in, or the real dataset used
    # tables and figures are built in staging folders and published together at the end, so a build that
    # fails halfway leaves the previous report whole (never old and new tables mixed)
    tables_dir, figures_dir = staging_dir(out_dir / "tables"), staging_dir(out_dir / "figures")
    plots_dir = staging_dir(out_dir / "plots")
    write_plot_data(runs, plots_dir)
    # the page's sections in order; the template draws them and the table of contents at the end
    transfers = read_transfers(Path(start).parent if start is not None else None)
    why = WHY_DIFFERENT.format(domain_gap=domain_gap_clause(transfers))
    sections = [Section("how-ours-differ", "How our numbers differ from the papers'", text=why)]
    summary = {"tables": [], "figures": []}
    all_verdicts: list[dict] = []
    groups: dict[tuple, list[tuple[Run, str]]] = {}
    for r in found_runs:
        for paper_, table, row in r.spec.targets():
            if paper is None or paper_ == paper:     # a shared baseline's rows in other papers stay out
                groups.setdefault((paper_, table), []).append((r, row))
    from reid_repro.report.items import EXAMPLES, section_order

    def links(names) -> list[tuple[str, str]]:
        """(run, relative link to its folder) for the runs a section reads, from wherever the page is written."""
        rel = Path(os.path.relpath(Path(runs_dir).resolve(), out_dir.resolve()))
        return [(n, (rel / n / "metrics.json").as_posix()) for n in names]

    # each claim's quality gate, from what the figures stage measured (claims.py: gate_status)
    from reid_repro.report import claims as claim_file

    figures_in = Path(model_figures if model_figures is not None else out_dir / "model_figures")
    fid_file = figures_in / "gcl_fid.json"
    gcl_measured = json.loads(fid_file.read_text()) if fid_file.is_file() else None
    gates = {name: claim_file.gate_status(name, gcl_measured) for name in claim_file.gates()}
    summary["gates"] = gates
    partial: dict[str, int] = {}     # table anchor -> how many of its cells are larger-profile rows not run
    unbuilt: dict[str, tuple] = {}   # table anchor -> (its cells of runs not built yet, its trained runs)
    ours_cells: dict[str, int] = {}  # table anchor -> how many cells our runs fill (trained or not)
    both_readings: list[tuple] = []  # (paper, table, verdicts with the code's reading, with the paper's)
    # every run's seed-noise estimate per metric a claim reads, pooled within its noise group (report/verdicts.py)
    claim_metrics = {"mAP"} | {c.get("metric", "mAP") for items in claim_file.claims().values() for c in items}
    noise, noise_tests = run_noise(runs, sorted(claim_metrics | {verdict_metric(t) for p in numbers.values()
                                                                 for t in p.values()}))
    summary["noise_groups"] = noise_tests
    # (name_p, not paper: `paper` is the argument that selects one paper's report)
    for (name_p, table), entries in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1])
                                                                           if kv[0][1].isdigit() else 99)):
        if name_p not in numbers or table not in numbers[name_p]:
            raise ReidReproError(f"runs {[r.name for r, _ in entries]}: paper {name_p!r} table {table!r} is not "
                                 "in paper_numbers.yaml")
        pt = numbers[name_p][table]
        members = list({r.name: r for r, _ in entries}.values())
        frame = table_frame(pt, entries)
        slug = f"{name_p}_table{table}"
        with atomic_path(tables_dir / f"{slug}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        trained = [m for m in members if not m.not_run]
        fig = curves_figure(trained, figures_dir / f"{slug}_curves.png", pt["title"]) if trained else None
        cells = _table_cells(frame, pt, labels)
        metrics = {verdict_metric(pt)} | {c.get("metric", "mAP") for c in claim_file.for_table(name_p, table)}
        values = {m: seed_values(entries, m) for m in sorted(metrics)}
        noise_here = {m: row_noise(entries, m, noise) for m in sorted(metrics)}
        found = verdicts(name_p, table, pt, frame, values, gates, noise_here)
        all_verdicts += found
        read = paper_reading_verdicts(name_p, table, pt, frame, values, gates, noise_here)
        if read:       # the same orderings under both readings, for the paper-vs-code section
            judged = {(v["row"], v["versus"], v["dataset"]) for v in read}
            both_readings.append((name_p, table, [v for v in found if (v["row"], v["versus"], v["dataset"])
                                                  in judged], read))
        sentences = [v["sentence"] for v in found]
        stale_here = [m.name for m in trained if m.stale]
        note = " ".join(x for x in (differs_from_paper(members),
                                    f"{STALE_NOTE} Here: {', '.join(stale_here)}." if stale_here else "",
                                    *table_findings(pt, found)) if x)
        if fig is not None:
            summary["figures"].append(f"figures/{fig.name}")
        sections.append(Section(f"{name_p}-table-{_anchor(table)}", pt["title"], csv=f"tables/{slug}.csv",
                                cells=cells, sentences=sentences, note=note,
                                rebuild=" ".join(("train_larger@" if m.spec.larger else "train@") + m.name
                                                 for m in members),
                                example=EXAMPLES.get(f"{name_p}-table-{_anchor(table)}", ""),
                                runs=links(m.name for m in members),
                                figure=f"figures/{fig.name}" if fig is not None else "",
                                alt="NMI and cluster count per epoch"))
        summary["tables"].append(slug)
        partial[f"{name_p}-table-{_anchor(table)}"] = int(frame[[c for c in frame.columns
                                                                 if c.endswith(".not_run")]].to_numpy().sum())
        unbuilt[f"{name_p}-table-{_anchor(table)}"] = (
            int(frame[[c for c in frame.columns if c.endswith(".not_built")]].to_numpy().sum()), len(trained))
        metric = verdict_metric(pt)       # the cells our runs fill, trained or not: (row, dataset) pairs
        ours_cells[f"{name_p}-table-{_anchor(table)}"] = int(sum(
            (frame[f"{d}.{metric}.ours"].notna() | frame[f"{d}.not_run"].astype(bool)
             | frame[f"{d}.not_built"].astype(bool)).sum()
            for d in {c.split(".")[0] for c in frame.columns if c.endswith(f".{metric}.ours")}))
    by_name = {r.name: r for r in runs}

    def add_table(slug: str, anchor: str, title: str, intro: str, frame: pd.DataFrame, cells: pd.DataFrame):
        """A section of one table: its data as tables/<slug>.csv, its cells in results.md and on the page."""
        with atomic_path(tables_dir / f"{slug}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        sections.append(Section(anchor, title, text=intro, cells=cells))
        summary["tables"].append(slug)

    if start is not None:
        start_file = Path(start)
        if not start_file.is_file():
            raise ReidReproError(f"{start_file}: missing; run `dvc repro start` (the pretrained start's mAP)")
        # a domain-adaptation baseline starts at its source model's direct transfer
        missing = sorted({source_of(by_name[b].spec) for b in BASELINES if b in by_name} - {None} - set(transfers))
        if missing:
            name = missing[0]
            raise ReidReproError(f"{start_file.with_name(f'transfer_{name}.json')}: missing; run `dvc repro "
                                 f"transfer@{name}` (the {name} source model's direct transfer, beside the start's "
                                 "evaluation)")
        gains = baseline_gains(by_name, json.loads(start_file.read_text()), transfers)
        if len(gains):
            add_table("baseline_gains", "baseline-gains", "Does the baseline learn?", START_INTRO, gains,
                      _gains_cells(gains, labels))
            summary["baselines_learn"] = {r["run"]: r["learns"] for _, r in gains.iterrows()}
    fid = fidelity_frame(by_name, paper)
    if len(fid):
        add_table("fidelity", "paper-vs-code", "Paper vs released code", FIDELITY_INTRO, fid,
                  _fidelity_cells(fid, labels))
        counts, lines = reading_counts(both_readings)
        summary["orderings_by_reading"] = counts
        sections[-1].sentences = lines
        with atomic_path(tables_dir / "fidelity_orderings.csv") as tmp:
            pd.DataFrame([{k: v[k] for k in ("paper", "table", "row", "versus", "dataset", "paper_gain",
                                              "our_gain", "ci", "verdict")} | {"reading": v.get("reading", "code")}
                          for _, _, code_v, paper_v in both_readings for v in code_v + paper_v]).to_csv(tmp,
                                                                                                        index=False)
    if studies is not None:
        tuned = studies_frame(params, studies, paper, runs_dir)
        if len(tuned):
            add_table("studies", "studies", "Studies: is the paper's setting optimal on our world?", STUDIES_INTRO,
                      tuned, _studies_cells(tuned))
            found = study_sentences(tuned)
            sections[-1].sentences = found
            sections[-1].rebuild = " ".join(f"tune@{n} tuned@{n}" for n in tuned["study"])
            for name in tuned["study"]:      # each study's importances and contour (its other plots: studies/<name>)
                for kind, title in (("importances", "parameter importances (fANOVA over its finished trials)"),
                                    ("contour", "validation mAP over its two most important parameters")):
                    plot = Path(studies) / name / f"{kind}.png"
                    if plot.is_file():
                        shutil.copyfile(plot, figures_dir / f"study_{name}_{kind}.png")
                        sections.append(Section(f"studies-{name}-{kind}", f"Study {name}: {title}",
                                                alt=f"study {name} {kind}", figure=f"figures/study_{name}_{kind}.png",
                                                width=600, rebuild=f"tune@{name}", level=3))
                        summary["figures"].append(f"figures/study_{name}_{kind}.png")
    probe = camera_probe_frame([r for r in runs if r.spec.paper == "canu"])
    if len(probe):
        add_table("camera_probe", "canu-camera-probe", "CANU: camera left in the features (linear probe)",
                  PROBE_INTRO, probe, _probe_cells(probe, labels))
    for title, (fn, names) in EXTRA_FIGURES.items():
        if all(n in by_name for n in names):
            fig = fn([by_name[n] for n in names], figures_dir / f"{title}.png")
            anchor = _anchor(title.replace("_", " "))
            sections.append(Section(anchor, fn.__doc__.splitlines()[0], figure=f"figures/{fig.name}", alt=title,
                                    rebuild=" ".join(("train_larger@" if by_name[n].spec.larger else "train@") + n
                                                     for n in names), example=EXAMPLES.get(anchor, ""),
                                    runs=links(names)))
            summary["figures"].append(f"figures/{fig.name}")
            if title == "gcl_plus_fig8_nmi":
                found = run_claim_verdicts("gcl_plus", by_name, gates, labels, noise)
                sections[-1].sentences = [v["sentence"] for v in found]
                all_verdicts += found
    for name, caption in MODEL_FIGURES.items():     # from the figures stage, when it ran
        if paper is not None and not name.startswith(f"{paper}_"):
            continue
        png = Path(model_figures if model_figures is not None else out_dir / "model_figures") / f"{name}.png"
        if png.is_file():
            src = Path(os.path.relpath(png.resolve(), out_dir.resolve())).as_posix()
            anchor = _anchor(name.replace("_", " "))
            sections.append(Section(anchor, caption, figure=src, alt=name,
                                    rebuild="figures", example=EXAMPLES.get(anchor, ""),
                                    runs=links(MODEL_FIGURE_RUNS[name])))
            summary["figures"].append(src)
    if gcl_measured is not None and (paper is None or paper in ("gcl", "gcl_plus")):
        frame, cells, found = gcl_fid_table(gcl_measured, numbers["gcl"]["1"], gates)
        add_table("gcl_table1", "gcl-table-1", numbers["gcl"]["1"]["title"], GCL_FID_INTRO, frame, cells)
        sections[-1].sentences = [v["sentence"] for v in found]
        all_verdicts += found
    # each paper's items in the paper's own table and figure order; the sections no item owns (how ours
    # differ first; the baselines' gains and paper vs code) keep their place around them
    rank = {anchor: i for i, anchor in enumerate(section_order())}
    sections.sort(key=lambda sec: (0, 0) if sec.id == "how-ours-differ" else
                  (1, rank[sec.id]) if sec.id in rank else (2, 0))
    # only listed claims count; context rows (supervised) are shown beside them, never counted
    counted = [v for v in all_verdicts if v.get("kind", "claim") == "claim"]
    kinds = claim_file.COUNTED
    summary["verdicts"] = {k: sum(v["verdict"] == k for v in counted) for k in kinds}
    per_paper = {}
    for v in counted:
        per_paper.setdefault(v["paper"], dict.fromkeys(kinds, 0))[v["verdict"]] += 1
    counts = "; ".join(f"{short_name(p)}: {c['holds']} hold, {c['does not hold']} do not, {c['inconclusive']} "
                       f"inconclusive, {c[claim_file.NOT_TESTABLE]} not testable here"
                       for p, c in sorted(per_paper.items()))
    context = len(all_verdicts) - len(counted)
    from reid_repro.report.verdicts import agreement

    summary["agreement"] = {"all": agreement(counted),
                            **{p_name: agreement([v for v in counted if v["paper"] == p_name]) for p_name in per_paper}}
    line = (f"Of {len(counted)} verdicts on the papers' stated claims (claims.yaml; {counts}); "
            f"{context} comparisons with a supervised row are shown as context, not counted. Each verdict is listed "
            "under its table with the claim it judges, and in `verdicts.json`. "
            + agreement_sentence(summary["agreement"]))
    summary["stale_runs"] = {r.name: r.stale for r in runs if r.stale}
    summary["not_built"] = [r.name for r in found_runs if r.not_run == NOT_BUILT]
    stale_verdicts = sum(bool(v.get("stale")) for v in all_verdicts)
    stale = summary["stale_runs"]
    by_reason: dict[str, list[str]] = {}
    for name, why in stale.items():
        by_reason.setdefault(why, []).append(name)
    # a few stale runs are named here; many are counted by reason (every name: report.json `stale_runs`, and the
    # note under each table)
    named = (", ".join(f"{n} ({why})" for n, why in stale.items()) if len(stale) <= 12 else
             "; ".join(f"{len(names)} {why}" for why, names in by_reason.items())
             + " (each table's note names its runs; every name: `report.json`, `stale_runs`)")
    stale_line = (f"{len(stale)} of {len(runs)} trained runs hold results of earlier code or settings than this "
                  f"checkout's (marked {STALE_MARK}; {stale_verdicts} of the {len(all_verdicts)} orderings read one of "
                  f"them): {named}." if stale else
                  f"All {len(runs)} trained runs were built with this checkout's code and settings.")
    if summary["not_built"]:
        stale_line += (f" {len(summary['not_built'])} declared runs are not built yet (their cells say so; "
                       "`dvc status` names their stages).")
    repro_fig = reproduction_figure(counted, figures_dir / "reproduction.png")
    summary["figures"].insert(0, f"figures/{repro_fig.name}")
    heads = [f"{short_name(p_name)} headline — {h['sentence']}" for p_name in sorted(per_paper)
             if (h := headline(all_verdicts, p_name))]
    from reid_repro.report.items import IN_PART, PAPERS, REPRODUCED, coverage

    cov_list = coverage({s.id for s in sections}, paper, partial, unbuilt, ours_cells)
    cov = pd.DataFrame(cov_list)
    with atomic_path(tables_dir / "coverage.csv") as tmp:
        cov.to_csv(tmp, index=False)
    summary["tables"].append("coverage")
    summary["coverage"] = {p_name: {"items": int(len(g)), "reproduced": int((g["state"] == REPRODUCED).sum()),
                                    "in_part": int((g["state"] == IN_PART).sum())}
                           for p_name, g in cov.groupby("paper", sort=False)}
    cards = [{"name": PAPERS[k], **v, "claims": per_paper.get(k)} for k, v in summary["coverage"].items()]
    # the scale caveat (how ours differ) stands first, before the first verdict; then the summary and coverage
    sections[1:1] = [Section("summary", "Summary", figure=f"figures/{repro_fig.name}", alt="reproduction plot",
                             width=1000),
                     Section("coverage", "Coverage: every table and figure of the five papers")]
    summary["verdicts_by_paper"] = per_paper
    prov = _provenance(runs, params_hash({k: params[k] for k in sorted(params)}))
    sections.append(Section("provenance", "Provenance", pre=json.dumps(prov, indent=2)))
    values = dict(cards=cards, line=line, stale=stale_line, heads=heads, inconclusive=INCONCLUSIVE_MEANS,
                  coverage=cov_list)
    pages = {name: render_page(sections, template, **values) for name, template in PAGES.items()}
    rows = [{"claim": v["claim"], "where": f"{v['paper']} {v['table']}: {v['row']} ({v['dataset']})",
             "paper_gain": v["paper_gain"], "our_gain": v["our_gain"], "verdict": v["verdict"]}
            for v in counted if not v.get("sign_only")]
    with atomic_path(plots_dir / "reproduction.csv") as tmp:
        pd.DataFrame(rows, columns=["claim", "where", "paper_gain", "our_gain", "verdict"]).to_csv(tmp, index=False)
    publish_dir(plots_dir, out_dir / "plots")
    publish_dir(tables_dir, out_dir / "tables")
    publish_dir(figures_dir, out_dir / "figures")
    write_json(out_dir / "verdicts.json", all_verdicts)
    for name, text in pages.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text(text)
    write_json(out_dir / "report.json", summary)
    return summary
