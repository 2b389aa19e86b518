"""The report's orchestration: collect the runs, build each paper table's section and the figures' (sections.py),
the baselines', studies' and paper-vs-code sections (tables.py), the summary and coverage (summary.py, items.py),
and write them.

It reads only DVC-tracked inputs (params.yaml, ``runs/<name>/{metrics.json,run.json,seeds/<s>/history.parquet}``,
the pretrained start ``models/start.json``) and the paper numbers typed into ``paper_numbers.yaml``, and writes
``index.html`` and ``results.md`` from one list of sections through two templates (page.py), one CSV per table
under ``tables/`` and PNG figures under ``figures/``.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pandas as pd

from reid_repro.config import load_run
from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path, publish_dir, staging_dir, write_json
from reid_repro.report import claims as claim_file
from reid_repro.report.items import IN_PART, PAPERS, REPRODUCED, coverage, section_order
from reid_repro.report.page import PAGES, PROSE, Section, render_page
from reid_repro.report.plots import reproduction_figure
from reid_repro.report.runs import Run, collect_runs, write_plot_data
from reid_repro.report.sections import (Build, TableSection, model_figure_sections, paper_table_section,
                                        run_figure_sections, study_plot_sections)
from reid_repro.report.summary import count_verdicts, domain_gap_clause, read_transfers, stale_summary
from reid_repro.report.tables import (BASELINES, FIDELITY_INTRO, GCL_FID_INTRO, INCONCLUSIVE_MEANS, PROBE_INTRO,
                                      START_INTRO, STUDIES_INTRO, baseline_gains, camera_probe_frame, check_rows,
                                      dataset_labels, _fidelity_cells, fidelity_frame, _gains_cells, gcl_fid_table,
                                      headline, paper_numbers, _probe_cells, reading_counts, run_noise, short_name,
                                      source_of, _studies_cells, studies_frame, study_sentences, verdict_metric)

WHY_DIFFERENT = PROSE["why_different"]


def _provenance(runs: list[Run], params_hash_value: str) -> dict:
    first = runs[0].info if runs else {}
    return {"git_revisions": sorted({r.info.get("git_revision", "unknown") for r in runs}),
            "params_hash": params_hash_value, "environment": first.get("environment", {}),
            "report_machine": {"python": platform.python_version(), "platform": platform.platform()}}


def _baseline_gains(by_name: dict, start: str | Path | None, transfers: dict) -> pd.DataFrame:
    """tables.baseline_gains of this build's baselines (empty without ``start``), after checking that the start's
    and each needed source model's evaluation exist."""
    if start is None:
        return pd.DataFrame()
    start_file = Path(start)
    if not start_file.is_file():
        raise ReidReproError(f"{start_file}: missing; run `dvc repro start` (the pretrained start's mAP)")
    missing = sorted({source_of(by_name[n].spec) for n in BASELINES if n in by_name} - {None} - set(transfers))
    if missing:
        name = missing[0]
        raise ReidReproError(f"{start_file.with_name(f'transfer_{name}.json')}: missing; run `dvc repro "
                             f"transfer@{name}` (the {name} source model's direct transfer, beside the start's "
                             "evaluation)")
    return baseline_gains(by_name, json.loads(start_file.read_text()), transfers)


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
    by_name = {r.name: r for r in runs}
    # tables and figures are built in staging folders and published together at the end, so a build that
    # fails halfway leaves the previous report whole (never old and new tables mixed)
    tables_dir, figures_dir = staging_dir(out_dir / "tables"), staging_dir(out_dir / "figures")
    plots_dir = staging_dir(out_dir / "plots")
    write_plot_data(runs, plots_dir)
    # each claim's quality gate, from what the figures stage measured (claims.py: gate_status)
    figures_in = Path(model_figures if model_figures is not None else out_dir / "model_figures")
    fid_file = figures_in / "gcl_fid.json"
    gcl_measured = json.loads(fid_file.read_text()) if fid_file.is_file() else None
    # each baseline's gain over its start; a domain-adaptation baseline starts at its source model's direct
    # transfer, and the claims built on it are testable only where it learns (gates.yaml: mmt_learns, ssg_learns)
    transfers = read_transfers(Path(start).parent if start is not None else None)
    gains = _baseline_gains(by_name, start, transfers)
    gates = {name: claim_file.gate_status(name, gains.to_dict("records") if spec.get("method") else gcl_measured)
             for name, spec in claim_file.gates().items()}
    # every run's seed-noise estimate per metric a claim reads, pooled within its noise group (report/verdicts.py)
    claim_metrics = {"mAP"} | {c.get("metric", "mAP") for items in claim_file.claims().values() for c in items}
    noise, noise_tests = run_noise(runs, sorted(claim_metrics | {verdict_metric(t) for p in numbers.values()
                                                                 for t in p.values()}))
    # our columns: the stand-in, or the real dataset used
    b = Build(out_dir, Path(runs_dir), tables_dir, figures_dir, dataset_labels(params.get("data")), gates, noise)
    summary = {"tables": [], "figures": b.figures, "gates": gates, "noise_groups": noise_tests}
    # the page's sections in order; the template draws them and the table of contents at the end
    sections = [Section("how-ours-differ", "How our numbers differ from the papers'",
                        text=WHY_DIFFERENT.format(domain_gap=domain_gap_clause(transfers)))]
    groups: dict[tuple, list[tuple[Run, str]]] = {}
    for r in found_runs:
        for paper_, table, row in r.spec.targets():
            if paper is None or paper_ == paper:     # a shared baseline's rows in other papers stay out
                groups.setdefault((paper_, table), []).append((r, row))
    tables: list[TableSection] = []
    # (name_p, not paper: `paper` is the argument that selects one paper's report)
    for (name_p, table), entries in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1])
                                                                           if kv[0][1].isdigit() else 99)):
        if name_p not in numbers or table not in numbers[name_p]:
            raise ReidReproError(f"runs {[r.name for r, _ in entries]}: paper {name_p!r} table {table!r} is not "
                                 "in paper_numbers.yaml")
        tables.append(paper_table_section(b, name_p, table, numbers[name_p][table], entries))
        sections.append(tables[-1].section)
        summary["tables"].append(tables[-1].slug)
    # (paper, table, verdicts with the code's reading, with the paper's) of the tables judged under both readings
    both_readings = [t.both_readings for t in tables if t.both_readings]

    def add_table(slug: str, anchor: str, title: str, intro: str, frame: pd.DataFrame, cells: pd.DataFrame):
        """A section of one table: its data as tables/<slug>.csv, its cells in results.md and on the page."""
        b.write_csv(slug, frame)
        sections.append(Section(anchor, title, text=intro, cells=cells))
        summary["tables"].append(slug)

    if len(gains):
        add_table("baseline_gains", "baseline-gains", "Does the baseline learn?", START_INTRO, gains,
                  _gains_cells(gains, b.labels))
        summary["baselines_learn"] = {r["run"]: r["learns"] for _, r in gains.iterrows()}
    fid = fidelity_frame(by_name, paper)
    if len(fid):
        add_table("fidelity", "paper-vs-code", "Paper vs released code", FIDELITY_INTRO, fid,
                  _fidelity_cells(fid, b.labels))
        summary["orderings_by_reading"], sections[-1].sentences = reading_counts(both_readings)
        b.write_csv("fidelity_orderings", pd.DataFrame(
            [{k: v[k] for k in ("paper", "table", "row", "versus", "dataset", "paper_gain", "our_gain", "ci",
                                "verdict")} | {"reading": v.get("reading", "code")}
             for _, _, code_v, paper_v in both_readings for v in code_v + paper_v]))
    if studies is not None:
        tuned = studies_frame(params, studies, paper, runs_dir)
        if len(tuned):
            add_table("studies", "studies", "Studies: is the paper's setting optimal on our world?", STUDIES_INTRO,
                      tuned, _studies_cells(tuned))
            sections[-1].sentences = study_sentences(tuned)
            sections[-1].rebuild = " ".join(f"tune@{n} tuned@{n}" for n in tuned["study"])
            sections += study_plot_sections(b, studies, tuned["study"])
    probe = camera_probe_frame([r for r in runs if r.spec.paper == "canu"])
    if len(probe):
        add_table("camera_probe", "canu-camera-probe", "CANU: camera left in the features (linear probe)",
                  PROBE_INTRO, probe, _probe_cells(probe, b.labels))
    sections += run_figure_sections(b, by_name)
    sections += model_figure_sections(b, figures_in, paper)     # from the figures stage, when it ran
    if gcl_measured is not None and (paper is None or paper in ("gcl", "gcl_plus")):
        frame, cells, found = gcl_fid_table(gcl_measured, numbers["gcl"]["1"], gates)
        add_table("gcl_table1", "gcl-table-1", numbers["gcl"]["1"]["title"], GCL_FID_INTRO, frame, cells)
        sections[-1].sentences = [v["sentence"] for v in found]
        b.verdicts += found
    # each paper's items in the paper's own table and figure order; the sections no item owns (how ours
    # differ first; the baselines' gains and paper vs code) keep their place around them
    rank = {anchor: i for i, anchor in enumerate(section_order())}
    sections.sort(key=lambda sec: (0, 0) if sec.id == "how-ours-differ" else
                  (1, rank[sec.id]) if sec.id in rank else (2, 0))
    # only listed claims count; context rows (supervised) are shown beside them, never counted
    all_verdicts, tally = b.verdicts, count_verdicts(b.verdicts)
    counted, per_paper = tally["counted"], tally["per_paper"]
    summary["verdicts"], summary["agreement"] = tally["verdicts"], tally["agreement"]
    summary["stale_runs"], summary["not_built"], stale_line = stale_summary(runs, found_runs, all_verdicts)
    repro_fig = reproduction_figure(counted, figures_dir / "reproduction.png")
    summary["figures"].insert(0, f"figures/{repro_fig.name}")
    heads = [f"{short_name(p_name)} headline — {h['sentence']}" for p_name in sorted(per_paper)
             if (h := headline(all_verdicts, p_name))]
    cov_list = coverage({s.id for s in sections}, paper, {t.section.id: t.not_run for t in tables},
                        {t.section.id: (t.not_built, t.trained) for t in tables},
                        {t.section.id: t.ours for t in tables})
    cov = pd.DataFrame(cov_list)
    b.write_csv("coverage", cov)
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
    values = dict(cards=cards, line=tally["line"], stale=stale_line, heads=heads, inconclusive=INCONCLUSIVE_MEANS,
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
