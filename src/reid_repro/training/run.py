"""One training run from params.yaml: build the model and method, train on the shared loop, evaluate, write.

Outputs in ``out``: ``metrics.json`` (final mAP/CMC/mINP and the last epoch's clustering scores, a DVC
metrics file), ``history.parquet`` (one row per epoch), ``features.parquet`` (the embeddings of the test and
training images, evaluation/stored.py), ``model.pt`` (the encoder's weights) and ``run.json`` (resolved settings and
provenance); a run of several seeds gathers each seed's features in ``features/<seed>.parquet``. The resumable
checkpoint lives in ``.cache/checkpoints`` until the run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from reid_repro import codedeps, numerics
from reid_repro.assemble import resolve_run
from reid_repro.config import RunSpec, params_hash, run_seeds
from reid_repro.device import device_info, params_device, prepare_device
from reid_repro.errors import ReidReproError
from reid_repro.evaluation.protocol import score_table
from reid_repro.evaluation.probe import camera_probe
from reid_repro.evaluation.stored import write_features
from reid_repro.io import atomic_path, write_json, write_parquet
from reid_repro.methods import method_class
from reid_repro.methods.base import RunContext
from reid_repro.models import ReidNet, check_bf16_kernels, load_weights as load_encoder, save_state
from reid_repro.training import distributed
from reid_repro.training.data import ImageCache, extract_features, load_split
from reid_repro.training.finite import NonFiniteError, check_array
from reid_repro.training.loop import TrainData, fit
from reid_repro.training.tracking import Tracker, environment, git_revision, repo_root


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
    # model.init says what a stage that trains from nothing starts from (the pretrain stage: ImageNet at paper
    # scale); every other run starts from a stage's checkpoint: models/pretrain (the world's stand-in pretraining,
    # or the ImageNet start when data.pretrain is format imagenet) or a source model
    model = ReidNet.from_config(model_cfg, imagenet=spec.init == "scratch" and model_cfg.init == "imagenet")
    if spec.init != "scratch":
        path = Path(models_dir) / spec.init / "model.pt"
        if not path.is_file():
            raise ReidReproError(f"{path}: missing; run {spec.init!r} starts from it (run `dvc repro "
                                 f"{'pretrain' if spec.init == 'pretrain' else 'source@' + spec.init[7:]}`)")
        load_weights(model, path, model_cfg)
    model = model.to(device)
    if torch.device(device).type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    return model_cfg, cfg, model


def imagenet_start(params: dict, dataset: str, out: str | Path, root: str | Path = ".") -> dict:
    """The pretrain stage when ``data.<dataset>`` is a folder of torchvision ImageNet checkpoints (format
    imagenet): the network of ``model.<scale>`` with ImageNet weights and a fresh BN neck, written as
    ``out/model.pt``, the start every run loads (the papers' start; nothing is trained). ``out/run.json`` and
    ``out/metrics.json`` name the checkpoint and its sha256; ``out/history.parquet`` has no epochs."""
    from reid_repro.config import pretrain_spec
    from reid_repro.models import imagenet_weights_path

    info = _dataset(params, dataset)
    listed = Path(info["manifest"]) / "dataset.json"
    if not listed.is_file():
        raise ReidReproError(f"{listed}: missing; run `reid-repro prepare --dataset imagenet` "
                             f"(dvc repro prepare@{dataset})")
    model_cfg, _ = resolve_run(params, pretrain_spec(dataset), section="pretrain")
    weights = imagenet_weights_path(model_cfg.arch, info["root"])
    sha = json.loads(listed.read_text())["checkpoints"].get(weights.name)
    if sha is None or sha != _file_digest(weights, full=True):
        raise ReidReproError(f"{weights}: not the file prepare@{dataset} verified; run `dvc repro prepare@{dataset}`")
    model = ReidNet.from_config(model_cfg, imagenet=weights)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_state(model.state_dict(), out / "model.pt")
    save_state({}, out / "artifacts.pt")       # what every start folder holds beside model.pt (none here)
    write_parquet(out / "history.parquet", pd.DataFrame({"epoch": pd.Series([], dtype="int64")}))
    metrics = {"start": "imagenet", "arch": model_cfg.arch, "checkpoint": weights.name, "sha256": sha}
    write_json(out / "run.json", {"name": Path(out).name, "stage": "pretrain", "git_revision": git_revision(root),
                                  "scale": params.get("scale", "cpu"), "model": dataclasses.asdict(model_cfg),
                                  "environment": environment(), **metrics})
    write_json(out / "metrics.json", metrics)
    return metrics


def load_weights(model: ReidNet, path: str | Path, model_cfg) -> None:
    """Load an encoder checkpoint into ``model`` (models.load_weights; the error names the configured model)."""
    load_encoder(model, path, f"{model_cfg.arch}/{model_cfg.pooling}")


def test_set(params: dict, test: str, model_cfg) -> tuple[pd.DataFrame, ImageCache]:
    """The query and gallery images of ``test``, decoded once per run."""
    info = _dataset(params, test)
    table = load_split(info["manifest"], ("query", "gallery"))
    return table, ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{test} query+gallery",
                             interpolation=model_cfg.interpolation)


def evaluate(encoder, test: tuple[pd.DataFrame, ImageCache], device, probe: bool = True,
             keep: dict | None = None) -> dict:
    """mAP/CMC/mINP on the test set and, with ``probe``, the camera probe (not in the per-epoch evaluations);
    ``keep["features"]`` receives the features scored (a dict passed in)."""
    table, cache = test
    feats = extract_features(encoder, cache.images, device)
    check_array("features of the test images", feats, epoch=None)
    if keep is not None:
        keep["features"] = feats
    g = (table["split"] == "gallery").to_numpy()
    pids, cams = table["pid"].to_numpy(), table["camid"].to_numpy()
    # the camera left in the features: a linear probe on the gallery, scored on held-out identities
    found = camera_probe(feats[g], cams[g], pids[g]) if probe else {}
    return {**score_table(table, feats), **found}       # tracklets for a video test set (evaluation/protocol.py)


def make_method(name: str, cfg, model, device, table: pd.DataFrame, init_dir: Path, tracklets=None):
    """The plug-in ``name`` for a run on the training ``table`` from the weights in ``init_dir`` (``tracklets``: a
    video run's tracklet of each image): every method gets the same :class:`~reid_repro.methods.base.RunContext`."""
    return method_class(name)(cfg, model, device, RunContext(train_table=table, init_dir=init_dir,
                                                             tracklets=tracklets))


def _file_digest(path: Path, full: bool = False) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest() if full else h.hexdigest()[:16]


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
    # beside model.pt: a source stage's second training (MMT's net 2) or a GCL+ warm-up's generator
    extra = [init.with_name("artifacts.pt")]
    kind = "pretrain" if spec.method == "supervised" else "train"
    digest = None
    if spec.init != "scratch" and init.is_file():
        digest = _file_digest(init) + "".join(_file_digest(f) for f in extra if f.is_file())
    return {"settings": settings, "manifests": manifests, "init": digest,
            "code": codedeps.digest(codedeps.stage_files(kind, None if kind == "pretrain" else spec.method)),
            **({"frames": spec.frames} if spec.frames is not None else {})}       # a video run's frames per tracklet


def execute(params: dict, name: str, spec: RunSpec, out: str | Path, stage: str, root: str | Path | None = None,
            models_dir: str | Path = "models", track: bool = True, stop_after: int | None = None,
            section: str | None = None, evaluate_start: bool = False, results: str | Path | None = None,
            loaded: dict | None = None, keep_model: bool = True, epoch_report=None,
            extra_tags: dict | None = None, features: bool = True) -> dict:
    """Train and evaluate run ``name``; returns the metrics written to ``out/metrics.json``.

    With ``stop_after`` the run stops after that many epochs, leaving its checkpoint (to test resuming).
    ``evaluate_start`` also evaluates the starting weights (``initial_*`` metrics; the ``start`` stage does this
    once for every run). With ``results`` (a folder) a finished run is kept there under the hash of its inputs
    and copied back instead of trained again when the same inputs come back (another seed count, a resumed
    stage). ``loaded`` shares decoded image sets between calls of one process (the seeds of a run).
    ``keep_model=False`` writes no ``model.pt`` (a run's later seeds: one model per run is kept);
    ``features=False`` no ``features.parquet`` (the starts, the warm-ups and the trials of a study).
    ``epoch_report(mAP)`` is called after every epoch with the test set's mAP (an Optuna trial, whose "test
    set" in ``loaded`` is the validation split, reports and prunes through it); ``extra_tags`` go to MLflow.
    """
    root = Path(root) if root is not None else repo_root()      # shared state: the repository's
    start = time.perf_counter()
    device = params_device(params)
    prepare_device(device)
    distributed.init_from_env(device)        # torchrun: join the process group (training/distributed.py)
    main = distributed.is_main()
    where = device_info(device)               # recorded in run.json and MLflow
    model_cfg, cfg, model = build(params, spec, device, models_dir, section)
    settings = {"run": dataclasses.asdict(spec), "model": dataclasses.asdict(model_cfg),
                "method": dataclasses.asdict(cfg), "scale": params.get("scale", "cpu")}
    key = params_hash(settings)
    inputs = run_inputs(params, spec, settings, models_dir)
    inputs["precision"] = model.compute_precision(device)   # `auto`: fp32 on the CPU, bf16 on recent GPUs
    kernels = numerics.kernel_set() if torch.device(device).type == "cpu" else where.get("gpu") or str(device)
    # what computes the numbers is an input too: another kernel set, MKL branch or thread count gives other
    # numbers, so a kept result or a checkpoint is reused only under the same numerics (the same on every x86
    # machine under the reference)
    inputs["numerics"] = numerics.describe() if torch.device(device).type == "cpu" else kernels
    if inputs["precision"] == "bf16":     # reduced precision: check this machine's kernels first (models.py)
        batch = cfg.batch_ids * cfg.instances
        check_bf16_kernels(model, device, model_cfg.height, model_cfg.width, kernels=kernels,
                           batches=(1, 6, batch // max(model_cfg.bn_groups, 1), batch))
    input_key = params_hash(inputs)
    out = Path(out)
    kept = Path(results) / input_key if results is not None else None
    if distributed.broadcast(kept is not None and (kept / "metrics.json").is_file()):   # rank 0 decides
        if not main:
            return {"rank": distributed.rank(), "reused": True}
        metrics = _restore(kept, out)
        print(f"{name}: the same inputs finished before (key {input_key}); result reused from {kept}")
        return {**metrics, "wall_seconds": time.perf_counter() - start, "reused": True}
    loaded = {} if loaded is None else loaded
    info = _dataset(params, spec.dataset)
    train_key = ("train", spec.dataset, model_cfg.height, model_cfg.width, model_cfg.interpolation)
    if train_key not in loaded:
        table = load_split(info["manifest"], "train")
        loaded[train_key] = (table, ImageCache(info["root"], table, model_cfg.height, model_cfg.width,
                                               desc=f"{spec.dataset} train", interpolation=model_cfg.interpolation))
    table, images = loaded[train_key]
    if spec.frames is not None and "tracklet" not in table:
        raise ReidReproError(f"{info['manifest']}/manifest.parquet: no tracklet column, but run {name} draws "
                             f"{spec.frames} frames per tracklet; expected a video dataset's manifest (format mars "
                             "or dukemtmc-videoreid)")
    tracklets = None if spec.frames is None else table["tracklet"].to_numpy()
    data = TrainData(images, table["pid"].to_numpy(), table["camid"].to_numpy(), tracklets=tracklets,
                     frames=spec.frames or 0)
    method = make_method(spec.method, cfg, model, device, table, Path(models_dir) / spec.init, tracklets)
    checkpoint = Path(root) / ".cache" / "checkpoints" / f"{name}.pt"
    run_id_file = checkpoint.with_suffix(".mlflow")
    tracker = None
    if track and main:
        tags = {"paper": spec.paper, "table": spec.table, "row": spec.row, "method": spec.method,
                "dataset": spec.dataset, "test": spec.test, "seed": cfg.seed, "git_revision": git_revision(root),
                "params_hash": key, "dvc_stage": stage, "scale": settings["scale"], "precision": inputs["precision"],
                **{f"device.{k}": v for k, v in where.items() if v is not None}, **(extra_tags or {})}
        flat = {f"{part}.{k}": v for part in ("model", "method") for k, v in settings[part].items()}
        old = None
        if run_id_file.is_file() and checkpoint.is_file():
            saved_key, _, saved_id = run_id_file.read_text().strip().partition(" ")
            old = saved_id if saved_key == input_key and saved_id else None
        tracker = Tracker(spec.paper or "reid-repro", name, tags, flat, root=root, run_id=old)
        run_id_file.parent.mkdir(parents=True, exist_ok=True)
        run_id_file.write_text(f"{input_key} {tracker.run_id}")
    test_key = ("test", spec.test, model_cfg.height, model_cfg.width, model_cfg.interpolation)

    def test_images():
        if test_key not in loaded:
            loaded[test_key] = test_set(params, spec.test, model_cfg)
        return loaded[test_key]

    initial = evaluate(method.eval_encoder(), test_images(), device) if evaluate_start else {}   # the start
    try:
        # paper scale: test mAP after every epoch, as the reference codes log it (they report the best epoch);
        # our result stays the last epoch's, and the report shows the best epoch beside it, labelled
        per_epoch = None
        if (settings["scale"] == "paper" or epoch_report is not None) and main:
            def per_epoch():
                m = evaluate(method.eval_encoder(), test_images(), device, probe=False)
                if epoch_report is not None:
                    epoch_report(m["mAP"])
                return {"test_mAP": m["mAP"], "test_rank1": m["rank1"]}
        history = fit(method, cfg, data, checkpoint, tracker.log_epoch if tracker else None, stop_after,
                      key=input_key, epoch_eval=per_epoch)
        if len(history) < cfg.epochs:
            if tracker:
                tracker.finish("KILLED")
            return {"stopped_after_epoch": len(history)}
        if not main:                     # rank 0 evaluates and writes
            return {"rank": distributed.rank(), "epochs": len(history)}
        scored: dict = {}
        metrics = evaluate(method.eval_encoder(), test_images(), device, keep=scored)
        if features:     # an output (evaluation/stored.py): the test set's features as scored, the training set's
            train_feats = extract_features(method.eval_encoder(), images.images, device)
            check_array("features of the training images", train_feats, epoch=None)
    except NonFiniteError as exc:
        if tracker:
            tracker.finish("FAILED")
        raise exc.add_context(f"run {name} (seed {cfg.seed}, stage {stage}) on {device} in {inputs['precision']}, "
                              f"CPU kernel set {numerics.kernel_set()}: ") from None
    except BaseException:
        if tracker:
            tracker.finish("FAILED")
        raise
    last = history[-1]
    metrics.update({k: last[k] for k in ("nmi", "ami", "ari", "fmi", "v_measure", "num_clusters", "num_outliers",
                                         "num_true_ids", "lost_ids")})
    metrics.update({f"initial_{k}": v for k, v in initial.items()})
    metrics["initial_nmi"] = history[0]["nmi"]
    metrics["seed"] = cfg.seed
    metrics["epochs"] = len(history)
    metrics["train_seconds"] = float(sum(r["seconds"] for r in history))
    if "test_mAP" in last:    # the reference codes' test-set selection, for the report's side note only
        best = max(history, key=lambda r: r["test_mAP"])
        metrics.update(best_epoch=int(best["epoch"]), best_epoch_mAP=float(best["test_mAP"]))
    out.mkdir(parents=True, exist_ok=True)
    write_parquet(out / "history.parquet", pd.DataFrame(history))
    if features:
        write_features(out / "features.parquet", pd.concat([test_images()[0], table], ignore_index=True),
                       np.concatenate([scored["features"], train_feats]))
    if keep_model:
        save_state(method.eval_encoder().state_dict(), out / "model.pt")
        save_state(method.artifacts(), out / "artifacts.pt")     # Method.artifacts(): GCL+'s generator
    write_json(out / "run.json", {"name": name, "stage": stage, "params_hash": key, "git_revision": git_revision(root),
                                  "inputs": {k: v for k, v in inputs.items() if k != "settings"},
                                  "input_key": input_key, "environment": {**environment(), "device": where},
                                  **settings})
    write_json(out / "metrics.json", metrics)
    if kept is not None:
        _keep(out, kept)
    if tracker:
        tracker.log_metrics({f"final_{k}": v for k, v in metrics.items()}, step=len(history))
        for f in ("run.json", "metrics.json", "history.parquet"):
            tracker.log_artifact(out / f)
        tracker.finish()
    checkpoint.unlink(missing_ok=True)
    run_id_file.unlink(missing_ok=True)
    metrics["wall_seconds"] = time.perf_counter() - start
    return metrics


def _keep(out: Path, kept: Path) -> None:
    """Copy a finished run's files into ``kept`` (built beside it, then renamed: never half there)."""
    staging = kept.with_name(kept.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for f in out.iterdir():           # the results and any method artifacts (Method.artifacts)
        if f.is_file():
            shutil.copy2(f, staging / f.name)
    shutil.rmtree(kept, ignore_errors=True)
    staging.rename(kept)


def _restore(kept: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    for f in kept.iterdir():
        if f.is_file():
            with atomic_path(out / f.name) as tmp:
                shutil.copy2(f, tmp)
    return json.loads((out / "metrics.json").read_text())


SUMMARY_METRICS = ("mAP", "rank1", "rank5", "rank10", "mINP", "nmi", "ami", "ari", "fmi", "v_measure",
                   "num_clusters", "num_outliers", "lost_ids", "camera_probe", "camera_chance")


def seed_list(params: dict, spec: RunSpec) -> list[int]:
    """The seeds run ``spec`` trains: its loop seed + 0 .. n - 1, n = ``params.yaml: seeds`` or the run's own
    ``seeds`` where more. Every run of a table shares the loop seed, so seed s of a row and seed s of its baseline
    share the data order."""
    base = resolve_run(params, spec)[1].seed
    return [base + i for i in range(run_seeds(params, spec))]


def aggregate(per_seed: dict[int, dict]) -> dict:
    """The run's metrics.json: the mean and standard deviation over seeds of each metric, and every seed's
    values under ``seeds.<s>`` (the values the report's verdicts use)."""
    seeds = sorted(per_seed)
    out = {"seed_list": seeds, "num_seeds": len(seeds), "num_true_ids": per_seed[seeds[0]]["num_true_ids"]}
    # paper scale: also the reference codes' best-epoch pick (report side note)
    best = ("best_epoch_mAP", "best_epoch") if all("best_epoch_mAP" in per_seed[s] for s in seeds) else ()
    for k in SUMMARY_METRICS + best[:1]:
        values = np.array([float(per_seed[s][k]) for s in seeds])
        out[k] = float(values.mean())
        out[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    out["train_seconds"] = float(sum(per_seed[s]["train_seconds"] for s in seeds))
    out["seeds"] = {str(s): {k: per_seed[s][k] for k in (*SUMMARY_METRICS, *best, "train_seconds", "epochs")}
                    for s in seeds}
    return out


def write_not_run(out: str | Path, name: str, stage: str, reason: str) -> dict:
    """A larger-profile stage with ``larger.enabled`` false: ``out/run.json`` and ``out/metrics.json`` say why the
    run (or warm-up) was not trained, and nothing else is written; the report shows its cells as not run. The
    marker holds nothing volatile (no git revision, which reads dirty under `dvc exp run`), so re-writing it
    leaves its hash alone and re-runs nothing downstream."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "run.json", {"name": name, "stage": stage, "not_run": reason})
    write_json(out / "metrics.json", {"not_run": reason})
    return {"not_run": reason}


def execute_seeds(params: dict, name: str, spec: RunSpec, out: str | Path, stage: str, root: str | Path | None = None,
                  models_dir: str | Path = "models", track: bool = True, stop_after: int | None = None,
                  reuse: bool = True) -> dict:
    """Run ``name`` once per seed (:func:`seed_list`) into ``out/seeds/<s>/``; ``out/metrics.json`` holds the
    mean, the standard deviation and the per-seed values, ``out/model.pt`` the first seed's weights (the
    figures' model) and ``out/run.json`` the settings and provenance. A finished seed is kept in
    ``.cache/results`` under the hash of its inputs, so an interrupted stage, or one re-run with more seeds,
    trains only the seeds it has not finished (``reuse=False`` trains every seed: `reid-repro verify`)."""
    root = Path(root) if root is not None else repo_root()      # shared state: the repository's
    start = time.perf_counter()
    out = Path(out)
    seeds = seed_list(params, spec)
    # built in .cache/partial/<run> and published into ``out`` only when every seed finished: a run that stops
    # (a non-finite number, an error, a kill) leaves the old results as they were (finished seeds stay in
    # .cache/results, the failing seed's checkpoint in .cache/checkpoints)
    staging = Path(root) / ".cache" / "partial" / name
    if distributed.is_main():
        shutil.rmtree(staging, ignore_errors=True)
    loaded: dict = {}
    per_seed = {}
    try:
        for i, seed in enumerate(seeds):
            run = dataclasses.replace(spec, overrides={**spec.overrides, "seed": seed})
            m = execute(params, f"{name}-seed{seed}", run, staging / "seeds" / str(seed), f"{stage} (seed {seed})",
                        root=root, models_dir=models_dir, track=track, stop_after=stop_after,
                        results=Path(root) / ".cache" / "results" / name if reuse else None, loaded=loaded,
                        keep_model=i == 0)
            if "stopped_after_epoch" in m:
                shutil.rmtree(staging, ignore_errors=True)
                return {**m, "seed": seed}
            if "rank" in m:                  # torchrun, rank > 0: trained its share, rank 0 writes
                continue
            per_seed[seed] = m
            print(f"{name}: seed {seed} ({i + 1}/{len(seeds)}): mAP {100 * m['mAP']:.1f}"
                  + ("  (reused)" if m.get("reused") else f" in {m['wall_seconds']:.0f} s"))
        if not distributed.is_main():
            return {"rank": distributed.rank()}
        first = staging / "seeds" / str(seeds[0])
        if not (first / "model.pt").is_file():
            raise ReidReproError(f"{first / 'model.pt'}: missing after seed {seeds[0]} finished")
        (first / "model.pt").replace(staging / "model.pt")   # one model per run: the first seed's (the figures')
        (first / "artifacts.pt").replace(staging / "artifacts.pt")
        (staging / "features").mkdir()        # every seed's embeddings (evaluation/stored.py), a cached output
        for s in seeds:
            (staging / "seeds" / str(s) / "features.parquet").replace(staging / "features" / f"{s}.parquet")
        info = json.loads((first / "run.json").read_text())
        info.update({"name": name, "stage": stage, "seeds": seeds,
                     "seed_input_keys": {str(s): json.loads((staging / "seeds" / str(s) / "run.json").read_text())
                                         ["input_key"] for s in seeds}})
        write_json(staging / "run.json", info)
        metrics = aggregate(per_seed)
        write_json(staging / "metrics.json", metrics)
    except BaseException:
        if distributed.is_main():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish_run(staging, out)
    return {**metrics, "wall_seconds": time.perf_counter() - start}


def _publish_run(staging: Path, out: Path) -> None:
    """Move a finished run from ``staging`` into ``out``: the seeds folder by two renames (the old one deleted
    after), then each file by a rename over the old one; ``staging`` is removed."""
    out.mkdir(parents=True, exist_ok=True)
    old = out / ".seeds.old"
    shutil.rmtree(old, ignore_errors=True)
    if (out / "seeds").exists():
        (out / "seeds").rename(old)
    (staging / "seeds").rename(out / "seeds")
    shutil.rmtree(old, ignore_errors=True)
    if (out / "features").exists():
        shutil.rmtree(out / "features")
    (staging / "features").rename(out / "features")
    for f in ("model.pt", "artifacts.pt", "run.json", "metrics.json"):
        (staging / f).replace(out / f)
    shutil.rmtree(staging, ignore_errors=True)


def train_source(params: dict, dataset: str, out: str | Path, root: str | Path | None = None,
                 models_dir: str | Path = "models", track: bool = True) -> list[dict]:
    """The source stage: supervised training on the labelled ``dataset`` from the pretrained start (settings:
    params.yaml ``source``), twice: with the loop's seed into ``out/model.pt`` and with the next seed into
    ``out/artifacts.pt`` (key ``model_2``: MMT's two networks start from two source trainings). Each training's record stays in
    ``out/net1`` and ``out/net2`` (metrics, history, run.json); returns both metrics."""
    root = Path(root) if root is not None else repo_root()      # shared state: the repository's
    from reid_repro.config import SOURCE_SECOND_SEED, source_spec

    out = Path(out)
    spec = source_spec(dataset)
    seed = resolve_run(params, spec, section="source")[1].seed
    found = []
    for i, net in enumerate(("net1", "net2")):
        run = dataclasses.replace(spec, overrides={"seed": seed + i * SOURCE_SECOND_SEED})
        found.append(execute(params, f"source_{dataset}-{net}", run, out / net, stage=f"source@{dataset}",
                             root=root, models_dir=models_dir, track=track, section="source", features=False))
    # a start folder holds model.pt and artifacts.pt, the two files the runs starting from it depend on
    (out / "net1" / "model.pt").replace(out / "model.pt")
    save_state({"model_2": torch.load(out / "net2" / "model.pt", map_location="cpu", weights_only=True)},
               out / "artifacts.pt")
    for net in ("net1", "net2"):
        for name in ("model.pt", "artifacts.pt"):               # a supervised model keeps no artifacts
            (out / net / name).unlink(missing_ok=True)
    (out / "model_2.pt").unlink(missing_ok=True)                # where net 2 was kept before
    write_json(out / "metrics.json", {"net1": found[0], "net2": found[1]})
    return found
