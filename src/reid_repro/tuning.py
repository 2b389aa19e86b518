"""Optuna studies of a paper's hyperparameters (params.yaml: studies; issue 14): the reproducible core.

A study tunes the settings of one declared run (its method, data and start) over a search space, trial 0 being
the paper's own setting, so "is the paper's choice optimal here?" has an answer. What makes it reproducible:

- Trials run in sequence and the sampler is rebuilt before every trial, seeded from (study seed, number of
  finished trials): a plain seeded TPE restarts its random state when a crashed study is resumed and then
  diverges from the uninterrupted study; this one does not (tests/test_tuning.py).
- The study's name carries a hash of everything that defines it except its trial count (the run's resolved
  settings, the space, the sampler and pruner, and the caller's digest of code and data), so a stale study is
  never topped up with trials of another revision, and raising ``n_trials`` tops up the same study.
- A trial left RUNNING by a killed process (the journal file storage has no heartbeat) is marked FAIL and its
  parameters are enqueued again; the export takes the first ``n_trials`` finished trials by number.

Storage: ``OPTUNA_STORAGE`` (e.g. a PostgreSQL URL for many hosts) or a journal file at the repository root
(``$DVC_ROOT/optuna.journal``: one file, no server, safe for several processes; not a DVC output, since DVC
deletes outputs before a stage runs and several stages share it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml

from reid_repro.config import Dimension, StudyConfig, load_study, settings_file  # noqa: F401  (the studies' settings)
from reid_repro.errors import ReidReproError
from reid_repro.training.tracking import repo_root

def suggest(trial: optuna.Trial, space: dict[str, Dimension]) -> dict:
    """The trial's setting: one value per dimension, by its kind."""
    out = {}
    for key, d in space.items():
        if d.kind == "float":
            out[key] = trial.suggest_float(key, d.low, d.high, log=d.log)
        elif d.kind == "int":
            out[key] = trial.suggest_int(key, int(d.low), int(d.high), log=d.log)
        else:
            out[key] = trial.suggest_categorical(key, d.choices)
    return out


def tpe(seed: int | None, multivariate: bool) -> optuna.samplers.TPESampler:
    """TPE, multivariate (one joint density over the space, where parameters interact: ISE's lambda0 and
    schedule, GCL+'s loss weights) or one density per parameter; its first 10 trials are random start-up."""
    if multivariate:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    return optuna.samplers.TPESampler(seed=seed)


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE rebuilt before every trial with the seed (study seed, finished trials): a study resumed after a crash
    draws what the uninterrupted study would have drawn."""

    def __init__(self, seed: int, multivariate: bool = False):
        self.seed, self.multivariate = seed, multivariate
        self._inner = tpe(seed, multivariate)

    def _reseed(self, study: optuna.Study) -> None:
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED)))
        seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{done}".encode()).digest()[:4], "little")
        self._inner = tpe(seed, self.multivariate)

    def before_trial(self, study, trial) -> None:
        self._reseed(study)
        self._inner.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._inner.after_trial(study, trial, state, values)


def make_pruner(kind: str) -> optuna.pruners.BasePruner:
    """none; median (prune a trial below the median of earlier trials at the same epoch, once 3 trials are
    complete, from the trial's third epoch on: a trial reports its epochs as steps 0, 1, ... and
    ``n_warmup_steps=2`` leaves steps 0 and 1 alone); halving (successive halving from the first epoch)."""
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def study_name(name: str, cfg: StudyConfig, settings: dict, digest: str = "") -> str:
    """``<name>-<hash>``: the hash covers the study's definition except its trial count, the resolved settings of
    its run and ``digest`` (code and data), so raising n_trials tops up the same study and anything else starts
    a new one."""
    definition = {"space": {k: dataclasses.asdict(v) for k, v in cfg.space.items()}, "seed": cfg.seed,
                  "pruner": cfg.pruner, "run": cfg.run, "settings": settings, "digest": digest,
                  "multivariate": cfg.multivariate}
    text = json.dumps(definition, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def storage(root: str | Path | None = None):
    """``OPTUNA_STORAGE`` if set (an RDB URL: PostgreSQL for several hosts), else the journal file
    ``<root>/optuna.journal``."""
    url = os.environ.get("OPTUNA_STORAGE")
    if url:
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(root or repo_root()) / "optuna.journal"
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def recover_killed(study: optuna.Study) -> int:
    """Trials left RUNNING by a killed sequential run: mark them FAIL and enqueue their parameters again (first
    in line). Returns how many. (With an RDB storage and heartbeats, Optuna's retry callback does this itself.)"""
    stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for t in stale:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
    return len(stale)


def rdb_storage(url: str, heartbeat: int = 60, grace: int = 180):
    """A shared RDB study storage (PostgreSQL for many hosts) with heartbeats: a trial whose worker died (no
    heartbeat for ``grace`` seconds) is failed by the next worker to start a trial and re-run once more, at most
    twice (Optuna's RetryFailedTrialCallback)."""
    from optuna.storages import RDBStorage, RetryFailedTrialCallback

    return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                      heartbeat_stale_trial_callback=RetryFailedTrialCallback(max_retry=2))


def join_study(name: str, store, objective, n_trials: int, pruner: str, multivariate: bool = False) -> int:
    """One scale-out worker: join the existing study ``name`` (create it once, before starting workers: RDB
    table creation races when several create it at once) and run trials until ``n_trials`` of them are complete
    or pruned, counting every worker's. Returns the trials this worker ran. Parallel workers are not
    reproducible trial for trial (the sequential stage is); the export still takes the first n_trials."""
    from optuna.study import MaxTrialsCallback

    study = optuna.load_study(study_name=name, storage=store, sampler=tpe(None, multivariate),
                              pruner=make_pruner(pruner))
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ran: list[int] = []                # counted per trial this process ends (the study's count includes enqueued
    if len(study.get_trials(deepcopy=False, states=done)) < n_trials:          # trials and the other workers')
        study.optimize(objective, catch=(), callbacks=[MaxTrialsCallback(n_trials, states=done),
                                                       lambda _study, trial: ran.append(trial.number)])
    return len(ran)


def open_study(name: str, seed: int, pruner: str, store=None, multivariate: bool = False) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=store if store is not None else storage(),
                               sampler=TrialSeededSampler(seed, multivariate), pruner=make_pruner(pruner),
                               direction="maximize", load_if_exists=True)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sorted(study.get_trials(deepcopy=False, states=states), key=lambda t: t.number)


def run_study(study: optuna.Study, objective, n_trials: int, first: dict | None = None) -> optuna.Study:
    """Tops ``study`` up to ``n_trials`` finished trials, in sequence; ``first`` (the paper's setting) is enqueued
    as trial 0 of an empty study."""
    recover_killed(study)
    if first is not None and not study.trials:
        study.enqueue_trial(first, user_attrs={"paper_setting": True})
    missing = n_trials - len(finished(study))
    if missing > 0:
        study.optimize(objective, n_trials=missing, catch=())
    return study


def export(study: optuna.Study, out: str | Path, n_trials: int, paper: dict | None = None) -> dict:
    """``out/trials.csv`` (every trial: number, state, value, duration, params), ``out/best.yaml`` (best
    parameters and value among the first ``n_trials`` finished trials, and the paper setting's value) and the
    standard plots as PNGs. Returns what best.yaml holds."""
    from reid_repro.io import atomic_path

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kept = finished(study)[:n_trials]
    rows = [{"number": t.number, "state": t.state.name, "value": t.value,
             "seconds": (t.datetime_complete - t.datetime_start).total_seconds()
             if t.datetime_complete and t.datetime_start else None,
             "paper_setting": bool(t.user_attrs.get("paper_setting")),
             **{f"params_{k}": v for k, v in t.params.items()}} for t in kept]
    with atomic_path(out / "trials.csv") as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    complete = [t for t in kept if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise ReidReproError(f"study {study.study_name}: no complete trial among the first {n_trials}")
    best = max(complete, key=lambda t: t.value)
    paper_trial = next((t for t in kept if t.user_attrs.get("paper_setting")), None)
    paper_value = float(paper_trial.value) if paper_trial and paper_trial.value is not None else None
    result = {"study": study.study_name, "best_value": float(best.value), "best_trial": best.number,
              "best_params": dict(best.params), "n_complete": len(complete),
              "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in kept),
              "paper_params": dict(paper_trial.params) if paper_trial else paper,
              "paper_value": paper_value,
              "paper_percentile": paper_percentile(paper_value, [t.value for t in complete]),
              "importances": importances(kept)}
    with atomic_path(out / "best.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(result, sort_keys=False))
    _plots(study, out, list(result["importances"] or {})[:2])
    return result


def paper_percentile(paper: float | None, values: list[float]) -> float | None:
    """Where the paper's setting ranks among the complete trials: the percentage of them it beats, ties counting
    half (100: better than every other trial; 50: the median). None without a complete paper trial."""
    if paper is None or len(values) < 2:
        return None
    others = list(values)
    others.remove(paper)                      # the paper's own trial is one of them
    below = sum(v < paper for v in others) + 0.5 * sum(v == paper for v in others)
    return round(100.0 * below / len(others), 1)


IMPORTANCE_SEEDS = 5


def importances(trials: list[optuna.trial.FrozenTrial], seeds: int = IMPORTANCE_SEEDS) -> dict | None:
    """fANOVA importance of each parameter over the complete trials, its mean and standard deviation over
    ``seeds`` seeds of the evaluator's random forest (how far the ranking can be trusted); None with fewer than
    two parameters or three complete trials."""
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3 or len(complete[0].params) < 2:
        return None
    study = optuna.create_study(direction="maximize")
    study.add_trials(complete)
    runs = [get_param_importances(study, evaluator=FanovaImportanceEvaluator(seed=s), normalize=True)
            for s in range(seeds)]
    keys = sorted(runs[0], key=lambda k: -np.mean([r[k] for r in runs]))
    return {k: {"mean": round(float(np.mean([r[k] for r in runs])), 4),
                "sd": round(float(np.std([r[k] for r in runs], ddof=1)), 4)} for k in keys}


def _plots(study: optuna.Study, out: Path, top: list[str]) -> None:
    """Optimisation history, parameter importances (two or more parameters and enough trials), slices, and the
    contour of the ``top`` two parameters (the most important ones, by :func:`importances`)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as vis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the matplotlib backend is "experimental" in Optuna
        plots = {"history": vis.plot_optimization_history, "slice": vis.plot_slice}
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(complete) >= 2 and len(complete[0].params) >= 2:
            plots["importances"] = vis.plot_param_importances
        for name, fn in plots.items():
            ax = fn(study)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
            fig.savefig(out / f"{name}.png", dpi=90, bbox_inches="tight")
            plt.close(fig)
        if len(top) >= 2:                    # the two most important parameters against each other
            ax = vis.plot_contour(study, params=top)
            fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
            fig.savefig(out / "contour.png", dpi=90, bbox_inches="tight")
            plt.close(fig)
        # the files are stage outputs: where a plot cannot be drawn, say why
        if "importances" not in plots:
            _note(out / "importances.png", "parameter importances need two or more parameters\nand two complete trials")
        if len(top) < 2:
            _note(out / "contour.png", "a contour of the two most important parameters needs two or more\n"
                                       "parameters and three complete trials")


def _note(path: Path, text: str) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 1.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    fig.savefig(path, dpi=90)
    plt.close(fig)


def identify_study(params: dict, name: str) -> tuple[str, StudyConfig, dict]:
    """(the study's full name, its settings, the paper's setting) of study ``name``, without loading any data:
    what a launcher needs to create the study before its workers start."""
    from reid_repro import codedeps
    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_run, params_hash

    cfg = load_study(params, name)
    spec = load_run(params, cfg.run)
    model_cfg, method_cfg = resolve_run(params, spec)
    settings = dataclasses.asdict(method_cfg)
    unknown = sorted(set(cfg.space) - set(settings))
    if unknown:
        raise ReidReproError(f"{settings_file('studies')}: studies.{name}.space.{unknown[0]}: not a setting of "
                             f"{spec.method}; expected one of {sorted(settings)}")
    paper = {k: settings[k] for k in cfg.space}
    info = params["data"][spec.dataset]
    checksum = json.loads((Path(info["manifest"]) / "dataset.json").read_text())["checksum"]
    digest = params_hash({"code": codedeps.digest(codedeps.stage_files("train", spec.method)), "data": checksum,
                          "model": dataclasses.asdict(model_cfg)})
    return study_name(name, cfg, settings, digest), cfg, paper


def prepare_study(params: dict, name: str, root: str | Path | None = None, track: bool = True,
                  models_dir: str | Path = "models"):
    """(the study's full name, its settings, the trial objective, the paper's setting, the MLflow parent run or
    None) of study ``name``: each trial a normal training run of the study's run with the trial's settings on the
    loop, trained without the held-out identities and scored (and pruned per epoch) by mAP on them; the test
    split is never read."""
    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_run
    from reid_repro.data.validation import carve_validation
    from reid_repro.training.data import ImageCache, load_split
    from reid_repro.training.run import execute
    from reid_repro.training.tracking import Tracker

    root = Path(root) if root is not None else repo_root()
    full_name, cfg, paper = identify_study(params, name)
    spec = load_run(params, cfg.run)
    model_cfg, _ = resolve_run(params, spec)
    info = params["data"][spec.dataset]
    table = load_split(info["manifest"], "train")
    rest, query, gallery = carve_validation(table, cfg.validation, cfg.seed)
    val = pd.concat([query, gallery], ignore_index=True)
    size = (model_cfg.height, model_cfg.width, model_cfg.interpolation)
    loaded = {("train", spec.dataset, *size): (rest, ImageCache(info["root"], rest, *size[:2], desc="train - val",
                                                               interpolation=size[2])),
              ("test", spec.dataset, *size): (val, ImageCache(info["root"], val, *size[:2], desc="validation",
                                                             interpolation=size[2]))}
    parent = None
    if track:
        parent = Tracker(f"study-{name}", full_name, {"study": full_name, "run": cfg.run},
                         {f"space.{k}": dataclasses.asdict(v) for k, v in cfg.space.items()}, root=root)

    def objective(trial: optuna.Trial) -> float:
        overrides = suggest(trial, cfg.space)
        trial_spec = dataclasses.replace(spec, overrides={**spec.overrides, **overrides}, test=spec.dataset)
        step = [0]

        def report(value: float) -> None:
            trial.report(value, step[0])
            step[0] += 1
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {step[0]}")
        tags = {"study": full_name, "trial": trial.number, **({"mlflow.parentRunId": parent.run_id} if parent else {})}
        m = execute(params, f"{full_name}-trial{trial.number}", trial_spec,
                    root / ".cache" / "studies" / full_name / str(trial.number), stage=f"tune@{name}", root=root,
                    track=track, loaded=loaded, keep_model=False, epoch_report=report, extra_tags=tags,
                    models_dir=models_dir, features=False)
        return float(m["mAP"])

    return full_name, cfg, objective, paper, parent


def tune(params: dict, name: str, out: str | Path, root: str | Path | None = None, track: bool = True,
         models_dir: str | Path = "models", store=None) -> dict:
    """The ``tune@<name>`` stage: study ``name`` run to its trial count in sequence (resumed or topped up when its
    definition is unchanged; joined by any scale-out workers sharing ``store``), then exported to
    ``out/{best.yaml, trials.csv, metrics.json, *.png}``."""
    from reid_repro.io import write_json

    full_name, cfg, objective, paper, parent = prepare_study(params, name, root, track, models_dir)
    study = open_study(full_name, cfg.seed, cfg.pruner, store if store is not None else storage(root),
                       cfg.multivariate)
    run_study(study, objective, cfg.n_trials, first=paper)
    result = export(study, out, cfg.n_trials, paper)
    metrics = {k: result[k] for k in ("study", "best_value", "best_trial", "n_complete", "n_pruned", "paper_value")}
    write_json(Path(out) / "metrics.json", metrics)
    if parent is not None:
        parent.log_metrics({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None})
        parent.finish()
    return result


def create_shared(params: dict, name: str, store) -> str:
    """Study ``name`` created on the shared storage ``store`` with the paper's setting enqueued as its first trial,
    unless it exists; returns its full name. Workers that start together must find it there: RDB storages race on
    table creation when several create the same study at once (docs/studies.md)."""
    return _ensure_shared(store, *identify_study(params, name))


def _ensure_shared(store, full_name: str, cfg: StudyConfig, paper: dict) -> str:
    study = open_study(full_name, cfg.seed, cfg.pruner, store, cfg.multivariate)
    if not study.trials:
        study.enqueue_trial(paper, user_attrs={"paper_setting": True})
    return full_name


def work(params: dict, name: str, url: str, root: str | Path | None = None, track: bool = True,
         models_dir: str | Path = "models", heartbeat: int = 60, grace: int = 180) -> int:
    """A scale-out worker of study ``name`` on the shared RDB storage ``url`` (``reid-repro tune --worker``): the
    study is created if absent (:func:`create_shared`; ``--n-workers`` creates it before starting its workers),
    then trials until n_trials are finished across all workers. ``heartbeat`` and ``grace`` go to
    :func:`rdb_storage` (bench/bench_study_workers.py shortens them)."""
    store = rdb_storage(url, heartbeat, grace)
    full_name, cfg, objective, paper, parent = prepare_study(params, name, root, track, models_dir)
    _ensure_shared(store, full_name, cfg, paper)                 # what create_shared does, named once
    return join_study(full_name, store, objective, cfg.n_trials, cfg.pruner, cfg.multivariate)
