"""``reid-repro tune``: one Optuna study of conf/studies.yaml: studies (reid_repro/tuning.py).

As a DVC stage (``tune@<name>``) it runs the study in sequence and exports it. On many hosts, the same command
with ``--worker`` and a shared ``--storage postgresql+psycopg://...`` joins the study as a worker (``--n-workers
N`` starts N of them on this host); the stage then finds the study complete and only exports it
(docs/studies.md, "Studies on many machines")."""

from __future__ import annotations

HELP = "run one Optuna study (conf/studies.yaml: studies) on held-out training identities -> studies/<name>"


def add_arguments(p) -> None:
    p.add_argument("--study", required=True, help="a key of conf/studies.yaml: studies")
    p.add_argument("--out", default=None, help="e.g. studies/<name>: best.yaml, trials.csv, metrics.json, plots")
    p.add_argument("--storage", default=None,
                   help="a shared RDB URL (default: OPTUNA_STORAGE, else optuna.journal at the repository root)")
    p.add_argument("--worker", action="store_true", help="join the study on --storage and run trials; no export")
    p.add_argument("--n-workers", type=int, default=1, help="with --worker: this many worker processes here")
    p.add_argument("--create", action="store_true",
                   help="create the study on the shared storage (the paper's setting as trial 0) and exit: once, "
                        "before workers start elsewhere at the same moment (a job array)")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the trials in MLflow")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    import os
    import subprocess
    import sys

    from reid_repro import tuning
    from reid_repro.config import load_params
    from reid_repro.errors import ReidReproError

    params = load_params(args.params)
    url = args.storage or os.environ.get("OPTUNA_STORAGE")
    if args.worker or args.create:
        if not url or "://" not in url:
            raise ReidReproError("--worker and --create need a shared RDB storage: "
                                 "--storage postgresql+psycopg://user@host/db "
                                 "(or OPTUNA_STORAGE)")
        if args.create:
            return f"tune {args.study}: study {tuning.create_shared(params, args.study, tuning.rdb_storage(url))} " \
                   f"on {url.split('@')[-1]}"
        if args.n_workers > 1:
            tuning.create_shared(params, args.study, tuning.rdb_storage(url))   # once, before the workers
            cmd = [sys.executable, "-m", "reid_repro.cli", "tune", "--study", args.study, "--storage", url,
                   "--worker", "--params", args.params] + (["--no-mlflow"] if args.no_mlflow else [])
            procs = [subprocess.Popen(cmd) for _ in range(args.n_workers)]
            codes = [p.wait() for p in procs]
            if any(codes):
                raise ReidReproError(f"{sum(c != 0 for c in codes)} of {args.n_workers} workers failed")
            return f"tune {args.study}: {args.n_workers} workers done on {url.split('@')[-1]}"
        ran = tuning.work(params, args.study, url, track=not args.no_mlflow)
        return f"tune {args.study}: this worker ran {ran} trials on {url.split('@')[-1]}"
    if not args.out:
        raise ReidReproError("--out: required unless --worker (where the study's outputs go)")
    store = tuning.rdb_storage(url) if url and "://" in url else None
    r = tuning.tune(params, args.study, args.out, track=not args.no_mlflow, store=store)
    paper = "not finished" if r["paper_value"] is None else f"{100 * r['paper_value']:.1f}"
    return (f"tune {args.study}: best mAP {100 * r['best_value']:.1f} (trial {r['best_trial']}; the paper's setting "
            f"{paper}), {r['n_complete']} complete, {r['n_pruned']} pruned ({r['study']}) -> {args.out}")
