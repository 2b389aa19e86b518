"""``reid-repro figures``: t-SNE and retrieval figures from trained runs."""

from __future__ import annotations

HELP = ("t-SNE and retrieval figures from trained runs, GCL+'s novel views and FID per angle -> "
        "reports/model_figures, data/generated/<run>")


def add_arguments(p) -> None:
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="reports/model_figures")
    p.add_argument("--generated", default="data/generated", help="GCL+ novel views: <generated>/<run>/<angle>/")
    p.add_argument("--models", default="models", help="starting checkpoints (GCL+ Fig. 9 reads its warm-up's)")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.report.embeddings import build_figures

    made = build_figures(load_params(args.params), args.runs, args.out, args.generated, args.models)
    return f"figures: {len(made)} model figures (t-SNE, retrieval grid, GCL+ generations) -> {args.out}"
