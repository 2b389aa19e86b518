"""Provenance and MLflow tracking: one MLflow run per training run, metrics logged in batches.

The store is ``sqlite:///<repo>/mlflow.db`` unless MLFLOW_TRACKING_URI is set; artifacts go to
``<repo>/mlartifacts``. Neither is committed nor a DVC output. ``make mlflow-ui`` serves it on 127.0.0.1.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "faiss-cpu", "pandas", "mlflow", "optuna", "dvc", "anny")


def repo_root() -> Path:
    """Where a run's shared state goes (mlflow.db, resume checkpoints, kept results, the studies' journal): DVC's
    repository root while a stage runs, also under `dvc exp run --queue` or `--temp`, whose stages run in a
    temporary copy that is deleted afterwards; else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


def git_revision(root: str | Path = ".") -> str:
    """HEAD's commit, with ``-dirty`` when tracked files differ from it; ``unknown`` outside a git checkout."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return rev.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def environment() -> dict:
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    from reid_repro import numerics

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "cpu": numerics.cpu(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch_threads": torch.get_num_threads(), "packages": versions,
            "numerics": numerics.describe()}


def default_tracking_uri(root: str | Path = ".") -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


class Tracker:
    """One MLflow run. ``run_id`` continues an earlier run (a resumed training run logs into the same one)."""

    def __init__(self, experiment: str, run_name: str, tags: dict, params: dict, root: str | Path = ".",
                 run_id: str | None = None, uri: str | None = None):
        import logging

        logging.getLogger("alembic").setLevel(logging.WARNING)
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(uri or default_tracking_uri(root))
        exp = self.client.get_experiment_by_name(experiment)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(
            experiment, artifact_location=(Path(root).resolve() / "mlartifacts" / experiment).as_uri())
        if run_id is not None:
            try:
                self.client.get_run(run_id)
            except Exception:   # gone from the store (a fresh mlflow.db): start a new one
                run_id = None
        if run_id is None:
            run = self.client.create_run(exp_id, run_name=run_name, tags={k: str(v) for k, v in tags.items()})
            run_id = run.info.run_id
            from mlflow.entities import Param

            items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
            for i in range(0, len(items), 100):
                self.client.log_batch(run_id, params=items[i:i + 100])
        self.run_id = run_id

    def log_metrics(self, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for i in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[i:i + 1000])

    def log_epoch(self, row: dict) -> None:
        self.log_metrics(row, step=int(row["epoch"]))

    def log_artifact(self, path: str | Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status)
