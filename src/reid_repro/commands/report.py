"""``reid-repro report``: tables beside the papers' numbers, curves, verdicts and provenance."""

from __future__ import annotations

HELP = "tables beside the papers' numbers, curves and provenance -> reports/"


def add_arguments(p) -> None:
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="reports")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--start", default="models/start.json",
                   help="the pretrained start's evaluation (the `start` stage); '' to leave it out")
    p.add_argument("--paper", default=None, help="only this paper's runs (ise, ice, canu); `make paper P=ise`")
    p.add_argument("--studies", default="studies", help="the tune stages' outputs (studies/<name>/best.yaml)")
    p.add_argument("--allow-missing", action="store_true",
                   help="list a declared run with no results as not built yet instead of stopping (a half-built "
                        "pipeline's report; `dvc repro report` never needs it)")
    p.add_argument("--model-figures", default=None,
                   help="the figures stage's folder (default <out>/model_figures; a paper's report reads "
                        "reports/model_figures)")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.report.build import build_report

    summary = build_report(load_params(args.params), args.runs, args.out, paper=args.paper,
                           start=args.start or None, model_figures=args.model_figures,
                           studies=args.studies or None, allow_missing=args.allow_missing)
    return f"report: {len(summary['tables'])} tables, {len(summary['figures'])} figures -> {args.out}/index.html"
