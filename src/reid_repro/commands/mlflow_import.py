"""``reid-repro mlflow-import``: the committed runs into an MLflow store, so that `make mlflow-ui` on a fresh clone
shows every run.

Training records each seed as an MLflow run in ``mlflow.db`` (training/tracking.py), a machine's own store: it is
not committed (a SQLite file that every run rewrites, with absolute artifact paths). Everything it shows is
committed, though, per seed in ``runs/<run>/seeds/<s>/``: ``run.json`` (settings, provenance: the tags and
params training logs), ``history.parquet`` (one row per epoch: the per-epoch metrics) and ``metrics.json`` (the
final ``final_*`` metrics). This command rebuilds the MLflow runs from those files, with the tags training
sets, plus ``reid_repro.source`` (the folder) and ``reid_repro.input_key``. It is idempotent: a seed already in
the store (imported: the same folder and input key; trained here: the same run name, settings hash and git
revision) is skipped, so a store that training filled keeps its own runs and gains only those it lacks.
"""

from __future__ import annotations

HELP = "rebuild MLflow runs (tags, params, per-epoch metrics) from the committed runs/ for `make mlflow-ui`"


def add_arguments(p) -> None:
    p.add_argument("--runs", default="runs", help="the committed runs folder")
    p.add_argument("--uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI or sqlite "
                                                "mlflow.db at the repository root)")


def seed_folders(runs):
    """Every committed seed folder with its three files, sorted."""
    from pathlib import Path

    return sorted(f for f in Path(runs).glob("*/seeds/*")
                  if all((f / n).is_file() for n in ("run.json", "history.parquet", "metrics.json")))


def import_seed(client, folder, experiments: dict, seen: set) -> bool:
    """One seed folder as one MLflow run (module docstring); False when it is in the store already."""
    import json
    import math

    import pandas as pd
    from mlflow.entities import Metric, Param, RunTag

    info = json.loads((folder / "run.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    key = (str(folder), info.get("input_key", ""))
    if key in seen or (info.get("name"), info.get("params_hash"), info.get("git_revision")) in seen:
        return False
    spec = info.get("run") or {}
    experiment = spec.get("paper") or "reid-repro"
    if experiment not in experiments:
        found = client.get_experiment_by_name(experiment)
        experiments[experiment] = found.experiment_id if found else client.create_experiment(experiment)
    device = (info.get("environment") or {}).get("device") or {}
    tags = {"paper": spec.get("paper"), "table": spec.get("table"), "row": spec.get("row"),
            "method": spec.get("method"), "dataset": spec.get("dataset"), "test": spec.get("test"),
            "seed": (info.get("method") or {}).get("seed"), "git_revision": info.get("git_revision"),
            "params_hash": info.get("params_hash"), "dvc_stage": info.get("stage"), "scale": info.get("scale"),
            "precision": (info.get("inputs") or {}).get("precision"),
            **{f"device.{k}": v for k, v in device.items() if v is not None},
            "reid_repro.source": key[0], "reid_repro.input_key": key[1],
            "mlflow.runName": info.get("name", folder.parent.parent.name)}
    run = client.create_run(experiments[experiment], run_name=tags["mlflow.runName"],
                            tags={k: str(v) for k, v in tags.items() if v is not None})
    rid = run.info.run_id
    params = [Param(f"{part}.{k}", str(v)[:6000]) for part in ("model", "method")
              for k, v in sorted((info.get(part) or {}).items())]
    history = pd.read_parquet(folder / "history.parquet")
    stamp = run.info.start_time
    rows = [Metric(col, float(v), stamp, int(r["epoch"])) for r in history.to_dict("records")
            for col, v in r.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    last = int(history["epoch"].max()) if len(history) else 0
    rows += [Metric(f"final_{k}", float(v), stamp, last) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    for i in range(0, max(len(params), len(rows)), 100):
        client.log_batch(rid, metrics=rows[i:i + 100], params=params[i:i + 100],
                         tags=[RunTag("reid_repro.imported", "true")] if i == 0 else [])
    client.set_terminated(rid, "FINISHED")
    seen.add(key)
    return True


def run(args) -> str:
    import logging

    from mlflow.tracking import MlflowClient

    from reid_repro.training.tracking import default_tracking_uri, repo_root

    logging.getLogger("alembic").setLevel(logging.WARNING)
    uri = args.uri or default_tracking_uri(repo_root())
    client = MlflowClient(uri)
    seen = set()
    for exp in client.search_experiments():
        for r in client.search_runs([exp.experiment_id], max_results=50000):
            tags = r.data.tags
            if "reid_repro.source" in tags:
                seen.add((tags["reid_repro.source"], tags.get("reid_repro.input_key", "")))
            seen.add((tags.get("mlflow.runName"), tags.get("params_hash"), tags.get("git_revision")))
    folders = seed_folders(args.runs)
    added = sum(import_seed(client, f, {}, seen) for f in folders)
    return f"mlflow-import: {added} runs added, {len(folders) - added} already there ({len(folders)} seeds in {args.runs}; {uri})"
