"""``reid-repro tune``: one Optuna study of params.yaml: studies (reid_repro/tuning.py)."""

from __future__ import annotations

HELP = "run one Optuna study (params.yaml: studies) on held-out training identities -> studies/<name>"


def add_arguments(p) -> None:
    p.add_argument("--study", required=True, help="a key of params.yaml: studies")
    p.add_argument("--out", required=True, help="e.g. studies/<name>: best.yaml, trials.csv, metrics.json, plots")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the trials in MLflow")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.tuning import tune

    r = tune(load_params(args.params), args.study, args.out, track=not args.no_mlflow)
    paper = "not finished" if r["paper_value"] is None else f"{100 * r['paper_value']:.1f}"
    return (f"tune {args.study}: best mAP {100 * r['best_value']:.1f} (trial {r['best_trial']}; the paper's setting "
            f"{paper}), {r['n_complete']} complete, {r['n_pruned']} pruned ({r['study']}) -> {args.out}")
