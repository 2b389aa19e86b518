"""The report's sections built from runs: one per paper table (its CSV of per-seed values, its curves, its cells
beside the paper's, its verdicts), the studies' plots and the figures drawn from runs or by the figures stage.
report/build.py orders them and adds the summary; page.py renders them."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reid_repro.io import atomic_path
from reid_repro.report import claims as claim_file
from reid_repro.report.items import EXAMPLES
from reid_repro.report.page import Section, _anchor
from reid_repro.report.plots import EXTRA_FIGURES, MODEL_FIGURE_RUNS, MODEL_FIGURES, curves_figure
from reid_repro.report.runs import STALE_NOTE, Run
from reid_repro.report.tables import (_table_cells, differs_from_paper, paper_reading_verdicts, row_noise,
                                      run_claim_verdicts, seed_values, table_findings, table_frame, verdict_metric,
                                      verdicts)


@dataclass
class Build:
    """What every section of one report build shares: where it writes (staging folders, published together at
    the end), the column labels, the claims' quality gates and the runs' seed noise; ``figures`` and ``verdicts``
    collect what the sections add."""
    out_dir: Path
    runs_dir: Path
    tables_dir: Path
    figures_dir: Path
    labels: dict
    gates: dict
    noise: dict
    figures: list[str] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)

    def links(self, names) -> list[tuple[str, str]]:
        """(run, relative link to its folder) for the runs a section reads, from wherever the page is written."""
        rel = Path(os.path.relpath(Path(self.runs_dir).resolve(), self.out_dir.resolve()))
        return [(n, (rel / n / "metrics.json").as_posix()) for n in names]

    def write_csv(self, slug: str, frame: pd.DataFrame) -> None:
        with atomic_path(self.tables_dir / f"{slug}.csv") as tmp:
            frame.to_csv(tmp, index=False)


def rebuild_targets(runs) -> str:
    """The `dvc repro` targets that train ``runs`` (a larger-profile run has its own stage)."""
    return " ".join(("train_larger@" if r.spec.larger else "train@") + r.name for r in runs)


@dataclass
class TableSection:
    """One paper table's section and what the build counts from it."""
    section: Section
    slug: str
    both_readings: tuple | None   # (paper, table, verdicts with the code's reading, with the paper's) or None
    not_run: int                  # cells of larger-profile rows not run
    not_built: int                # cells of runs not built yet
    trained: int                  # its trained runs
    ours: int                     # the cells our runs fill, trained or not


def paper_table_section(b: Build, paper: str, table: str, paper_table: dict,
                        entries: list[tuple[Run, str]]) -> TableSection:
    """A paper table's section: its per-seed CSV, its runs' curves, its cells beside the paper's, its verdicts
    (added to ``b.verdicts``) and the note on settings that differ from the paper's and on stale runs."""
    members = list({r.name: r for r, _ in entries}.values())
    frame = table_frame(paper_table, entries)
    slug = f"{paper}_table{table}"
    b.write_csv(slug, frame)
    trained = [m for m in members if not m.not_run]
    fig = curves_figure(trained, b.figures_dir / f"{slug}_curves.png", paper_table["title"]) if trained else None
    metrics = {verdict_metric(paper_table)} | {c.get("metric", "mAP") for c in claim_file.for_table(paper, table)}
    values = {m: seed_values(entries, m) for m in sorted(metrics)}
    noise_here = {m: row_noise(entries, m, b.noise) for m in sorted(metrics)}
    found = verdicts(paper, table, paper_table, frame, values, b.gates, noise_here)
    b.verdicts += found
    read = paper_reading_verdicts(paper, table, paper_table, frame, values, b.gates, noise_here)
    both = None
    if read:       # the same orderings under both readings, for the paper-vs-code section
        judged = {(v["row"], v["versus"], v["dataset"]) for v in read}
        both = (paper, table, [v for v in found if (v["row"], v["versus"], v["dataset"]) in judged], read)
    stale_here = [m.name for m in trained if m.stale]
    note = " ".join(x for x in (differs_from_paper(members),
                                f"{STALE_NOTE} Here: {', '.join(stale_here)}." if stale_here else "",
                                *table_findings(paper_table, found)) if x)
    if fig is not None:
        b.figures.append(f"figures/{fig.name}")
    anchor = f"{paper}-table-{_anchor(table)}"
    section = Section(anchor, paper_table["title"], csv=f"tables/{slug}.csv",
                      cells=_table_cells(frame, paper_table, b.labels), sentences=[v["sentence"] for v in found],
                      note=note, rebuild=rebuild_targets(members), example=EXAMPLES.get(anchor, ""),
                      runs=b.links(m.name for m in members),
                      figure=f"figures/{fig.name}" if fig is not None else "",
                      alt="NMI and cluster count per epoch")
    metric = verdict_metric(paper_table)       # the cells our runs fill, trained or not: (row, dataset) pairs
    ours = int(sum((frame[f"{d}.{metric}.ours"].notna() | frame[f"{d}.not_run"].astype(bool)
                    | frame[f"{d}.not_built"].astype(bool)).sum()
                   for d in {c.split(".")[0] for c in frame.columns if c.endswith(f".{metric}.ours")}))
    return TableSection(section, slug, both,
                        not_run=int(frame[[c for c in frame.columns if c.endswith(".not_run")]].to_numpy().sum()),
                        not_built=int(frame[[c for c in frame.columns
                                             if c.endswith(".not_built")]].to_numpy().sum()),
                        trained=len(trained), ours=ours)


STUDY_PLOTS = (("importances", "parameter importances (fANOVA over its finished trials)"),
               ("contour", "validation mAP over its two most important parameters"))


def study_plot_sections(b: Build, studies: str | Path, names) -> list[Section]:
    """Each study's importances and contour (its other plots: studies/<name>), copied beside the page."""
    out = []
    for name in names:
        for kind, title in STUDY_PLOTS:
            plot = Path(studies) / name / f"{kind}.png"
            if plot.is_file():
                shutil.copyfile(plot, b.figures_dir / f"study_{name}_{kind}.png")
                out.append(Section(f"studies-{name}-{kind}", f"Study {name}: {title}", alt=f"study {name} {kind}",
                                   figure=f"figures/study_{name}_{kind}.png", width=600, rebuild=f"tune@{name}",
                                   level=3))
                b.figures.append(f"figures/study_{name}_{kind}.png")
    return out


def run_figure_sections(b: Build, by_name: dict[str, Run]) -> list[Section]:
    """The figures drawn from runs' histories (plots.py: EXTRA_FIGURES) whose runs are all trained; Fig. 8's
    section carries GCL+'s run-level verdicts (added to ``b.verdicts``)."""
    out = []
    for title, (fn, names) in EXTRA_FIGURES.items():
        if all(n in by_name for n in names):
            fig = fn([by_name[n] for n in names], b.figures_dir / f"{title}.png")
            anchor = _anchor(title.replace("_", " "))
            out.append(Section(anchor, fn.__doc__.splitlines()[0], figure=f"figures/{fig.name}", alt=title,
                               rebuild=rebuild_targets(by_name[n] for n in names),
                               example=EXAMPLES.get(anchor, ""), runs=b.links(names)))
            b.figures.append(f"figures/{fig.name}")
            if title == "gcl_plus_fig8_nmi":
                found = run_claim_verdicts("gcl_plus", by_name, b.gates, b.labels, b.noise)
                out[-1].sentences = [v["sentence"] for v in found]
                b.verdicts += found
    return out


def model_figure_sections(b: Build, model_figures: Path, paper: str | None) -> list[Section]:
    """The figures the figures stage drew (plots.py: MODEL_FIGURES), where it ran; with ``paper``, that paper's."""
    out = []
    for name, caption in MODEL_FIGURES.items():
        if paper is not None and not name.startswith(f"{paper}_"):
            continue
        png = model_figures / f"{name}.png"
        if png.is_file():
            src = Path(os.path.relpath(png.resolve(), b.out_dir.resolve())).as_posix()
            anchor = _anchor(name.replace("_", " "))
            out.append(Section(anchor, caption, figure=src, alt=name, rebuild="figures",
                               example=EXAMPLES.get(anchor, ""), runs=b.links(MODEL_FIGURE_RUNS[name])))
            b.figures.append(src)
    return out
