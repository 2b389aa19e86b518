"""One training run from params.yaml: build the model and method, train on the shared loop, evaluate, write.

Outputs in ``out``: ``metrics.json`` (final mAP/CMC/mINP and the last epoch's clustering scores, a DVC
metrics file), ``history.parquet`` (one row per epoch), ``model.pt`` (the encoder's weights) and ``run.json``
(resolved settings and provenance). The resumable checkpoint lives in ``.cache/checkpoints`` until the run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import pandas as pd
import torch

from reid_repro import codedeps
from reid_repro.config import RunSpec, params_hash, resolve_run
from reid_repro.device import torch_device
from reid_repro.errors import ReidReproError
from reid_repro.evaluation import features_to_metrics
from reid_repro.io import atomic_path, write_json, write_parquet
from reid_repro.methods import method_class
from reid_repro.models import ReidNet
from reid_repro.training.data import ImageCache, extract_features, load_split
from reid_repro.training.loop import TrainData, fit
from reid_repro.training.tracking import Tracker, environment, git_revision


def _dataset(params: dict, name: str) -> dict:
    data = params.get("data") or {}
    if name not in data:
        raise ReidReproError(f"params.yaml: data.{name}: missing; expected {{root, manifest, format}}")
    return data[name]


def build(params: dict, spec: RunSpec, device, models_dir: str | Path = "models", section: str | None = None):
    """(model config, method config, model) for ``spec``; the model carries its starting weights.

    The method's settings come from ``params[section]`` (default: the method's own section)."""
    model_cfg, cfg = resolve_run(params, spec, section)
    torch.manual_seed(cfg.seed)
    model = ReidNet(model_cfg.arch, model_cfg.last_stride, model_cfg.pooling, imagenet=model_cfg.init == "imagenet")
    if model_cfg.init == "pretrain" and spec.init != "scratch":
        path = Path(models_dir) / spec.init / "model.pt"
        if not path.is_file():
            raise ReidReproError(f"{path}: missing; run {spec.init!r} starts from it (run `dvc repro pretrain`)")
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if not k.startswith("pool.")]:
            raise ReidReproError(f"{path}: does not fit model {model_cfg.arch}/{model_cfg.pooling} "
                                 f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model_cfg, cfg, model.to(device)


def test_set(params: dict, test: str, model_cfg) -> tuple[pd.DataFrame, ImageCache]:
    """The query and gallery images of ``test``, decoded once per run."""
    info = _dataset(params, test)
    table = load_split(info["manifest"], ("query", "gallery"))
    return table, ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{test} query+gallery")


def evaluate(encoder, test: tuple[pd.DataFrame, ImageCache], device) -> dict:
    table, cache = test
    feats = extract_features(encoder, cache.images, device)
    q = (table["split"] == "query").to_numpy()
    m = features_to_metrics(feats[q], feats[~q], table["pid"].to_numpy()[q], table["pid"].to_numpy()[~q],
                            table["camid"].to_numpy()[q], table["camid"].to_numpy()[~q])
    return {"mAP": m["mAP"], "rank1": float(m["cmc"][0]), "rank5": float(m["cmc"][4]),
            "rank10": float(m["cmc"][9]), "mINP": m["mINP"]}


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def run_inputs(params: dict, spec: RunSpec, settings: dict, models_dir: str | Path = "models") -> dict:
    """Everything a run's result depends on, by content: its resolved settings, the manifests' checksums of its
    training and test data, the starting weights and the code it imports. The resume checkpoint is keyed on
    the hash of this, so a checkpoint from other data, weights or code is never resumed."""
    manifests = {}
    for name in dict.fromkeys((spec.dataset, spec.test)):
        info_file = Path(_dataset(params, name)["manifest"]) / "dataset.json"
        if not info_file.is_file():
            raise ReidReproError(f"{info_file}: missing; run `reid-repro prepare` (dvc repro prepare@{name})")
        manifests[name] = json.loads(info_file.read_text())["checksum"]
    init = Path(models_dir) / spec.init / "model.pt"
    kind = "pretrain" if spec.method == "supervised" else "train"
    return {"settings": settings, "manifests": manifests,
            "init": _file_digest(init) if settings["model"]["init"] == "pretrain" and init.is_file() else None,
            "code": codedeps.digest(codedeps.stage_files(kind, None if kind == "pretrain" else spec.method))}


def execute(params: dict, name: str, spec: RunSpec, out: str | Path, stage: str, root: str | Path = ".",
            models_dir: str | Path = "models", track: bool = True, stop_after: int | None = None,
            section: str | None = None, evaluate_start: bool = True) -> dict:
    """Train and evaluate run ``name``; returns the metrics written to ``out/metrics.json``.

    With ``stop_after`` the run stops after that many epochs, leaving its checkpoint (to test resuming).
    ``evaluate_start`` also evaluates the starting weights (``initial_*`` metrics); pretraining from scratch
    skips it.
    """
    start = time.perf_counter()
    device = torch_device()
    model_cfg, cfg, model = build(params, spec, device, models_dir, section)
    settings = {"run": dataclasses.asdict(spec), "model": dataclasses.asdict(model_cfg),
                "method": dataclasses.asdict(cfg), "scale": params.get("scale", "cpu")}
    key = params_hash(settings)
    inputs = run_inputs(params, spec, settings, models_dir)
    input_key = params_hash(inputs)
    info = _dataset(params, spec.dataset)
    table = load_split(info["manifest"], "train")
    data = TrainData(ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{spec.dataset} train"),
                     table["pid"].to_numpy(), table["camid"].to_numpy())
    method = method_class(spec.method)(cfg, model, device, **({"num_classes": int(table["pid"].nunique())}
                                                       if spec.method == "supervised" else {}))
    checkpoint = Path(root) / ".cache" / "checkpoints" / f"{name}.pt"
    run_id_file = checkpoint.with_suffix(".mlflow")
    tracker = None
    if track:
        tags = {"paper": spec.paper, "table": spec.table, "row": spec.row, "method": spec.method,
                "dataset": spec.dataset, "test": spec.test, "seed": cfg.seed, "git_revision": git_revision(root),
                "params_hash": key, "dvc_stage": stage, "scale": settings["scale"]}
        flat = {f"{part}.{k}": v for part in ("model", "method") for k, v in settings[part].items()}
        old = None
        if run_id_file.is_file() and checkpoint.is_file():
            saved_key, _, saved_id = run_id_file.read_text().strip().partition(" ")
            old = saved_id if saved_key == input_key and saved_id else None
        tracker = Tracker(spec.paper or "reid-repro", name, tags, flat, root=root, run_id=old)
        run_id_file.parent.mkdir(parents=True, exist_ok=True)
        run_id_file.write_text(f"{input_key} {tracker.run_id}")
    test = test_set(params, spec.test, model_cfg)
    initial = evaluate(method.encoder(), test, device) if evaluate_start else {}   # the starting point
    try:
        history = fit(method, cfg, data, checkpoint, tracker.log_epoch if tracker else None, stop_after,
                      key=input_key)
        if len(history) < cfg.epochs:
            if tracker:
                tracker.finish("KILLED")
            return {"stopped_after_epoch": len(history)}
        metrics = evaluate(method.encoder(), test, device)
    except BaseException:
        if tracker:
            tracker.finish("FAILED")
        raise
    last = history[-1]
    metrics.update({k: last[k] for k in ("nmi", "ami", "ari", "fmi", "v_measure", "num_clusters", "num_outliers",
                                         "num_true_ids", "lost_ids")})
    metrics.update({f"initial_{k}": v for k, v in initial.items()})
    metrics["initial_nmi"] = history[0]["nmi"]
    metrics["epochs"] = len(history)
    metrics["train_seconds"] = float(sum(r["seconds"] for r in history))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "history.parquet", pd.DataFrame(history))
    with atomic_path(out / "model.pt") as tmp:
        torch.save(method.encoder().state_dict(), tmp)
    write_json(out / "run.json", {"name": name, "stage": stage, "params_hash": key, "git_revision": git_revision(root),
                                  "inputs": {k: v for k, v in inputs.items() if k != "settings"},
                                  "input_key": input_key, "environment": environment(), **settings})
    write_json(out / "metrics.json", metrics)
    if tracker:
        tracker.log_metrics({f"final_{k}": v for k, v in metrics.items()}, step=len(history))
        for f in ("run.json", "metrics.json", "history.parquet"):
            tracker.log_artifact(out / f)
        tracker.finish()
    checkpoint.unlink(missing_ok=True)
    run_id_file.unlink(missing_ok=True)
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics
