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
import typing
from pathlib import Path

import optuna
import pandas as pd
import yaml

from reid_repro.errors import ReidReproError

PRUNERS = ("none", "median", "halving")
KINDS = ("float", "int", "categorical")


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One tuned setting: a key of the run's method settings and its range."""

    kind: str                       # float | int | categorical
    low: typing.Optional[float] = None
    high: typing.Optional[float] = None
    log: bool = False
    choices: typing.Optional[list] = None


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    run: str                        # the declared run whose settings are tuned (params.yaml: runs)
    n_trials: int
    seed: int
    pruner: str                     # none | median | halving
    space: typing.Dict[str, Dimension]


def load_study(params: dict, name: str) -> StudyConfig:
    """params.yaml ``studies.<name>``, checked: the run exists, every dimension is well formed and names a setting
    of the run's method (validated against the method's config by the caller)."""
    studies = params.get("studies") or {}
    if name not in studies:
        raise ReidReproError(f"params.yaml: studies.{name}: no such study; expected one of {sorted(studies)}")
    raw = studies[name]
    if not isinstance(raw, dict) or sorted(raw) != sorted(f.name for f in dataclasses.fields(StudyConfig)):
        raise ReidReproError(f"params.yaml: studies.{name}: expected keys "
                             f"{[f.name for f in dataclasses.fields(StudyConfig)]}, got {raw!r}")
    if raw["run"] not in (params.get("runs") or {}):
        raise ReidReproError(f"params.yaml: studies.{name}.run={raw['run']!r}; expected a declared run")
    if not isinstance(raw["n_trials"], int) or raw["n_trials"] < 1:
        raise ReidReproError(f"params.yaml: studies.{name}.n_trials={raw['n_trials']!r}; expected an integer >= 1")
    if raw["pruner"] not in PRUNERS:
        raise ReidReproError(f"params.yaml: studies.{name}.pruner={raw['pruner']!r}; expected one of {PRUNERS}")
    space = {}
    for key, dim in (raw["space"] or {}).items():
        where = f"params.yaml: studies.{name}.space.{key}"
        if not isinstance(dim, dict) or dim.get("kind") not in KINDS:
            raise ReidReproError(f"{where}: expected {{kind: float|int|categorical, ...}}, got {dim!r}")
        unknown = set(dim) - {f.name for f in dataclasses.fields(Dimension)}
        if unknown:
            raise ReidReproError(f"{where}.{sorted(unknown)[0]}: unknown key")
        d = Dimension(**dim)
        if d.kind == "categorical":
            if not d.choices:
                raise ReidReproError(f"{where}: a categorical dimension needs choices")
        elif d.low is None or d.high is None or not d.low < d.high or (d.log and d.low <= 0):
            raise ReidReproError(f"{where}: expected low < high (and low > 0 with log), got {d.low}, {d.high}")
        space[key] = d
    if not space:
        raise ReidReproError(f"params.yaml: studies.{name}.space: empty; expected at least one setting")
    return StudyConfig(raw["run"], raw["n_trials"], int(raw["seed"]), raw["pruner"], space)


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


class TrialSeededSampler(optuna.samplers.BaseSampler):
    """TPE rebuilt before every trial with the seed (study seed, finished trials): a study resumed after a crash
    draws what the uninterrupted study would have drawn."""

    def __init__(self, seed: int):
        self.seed = seed
        self._inner = optuna.samplers.TPESampler(seed=seed)

    def _reseed(self, study: optuna.Study) -> None:
        done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                            optuna.trial.TrialState.PRUNED)))
        seed = int.from_bytes(hashlib.sha256(f"{self.seed}:{done}".encode()).digest()[:4], "little")
        self._inner = optuna.samplers.TPESampler(seed=seed)

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
    """none; median (prune a trial below the median of earlier trials at the same epoch, after 3 complete trials
    and 2 epochs); halving (successive halving from the first epoch)."""
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
                  "pruner": cfg.pruner, "run": cfg.run, "settings": settings, "digest": digest}
    text = json.dumps(definition, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def repo_root() -> Path:
    """Where shared state lives: DVC's repository root when a stage runs (also under `dvc exp run --queue` or
    `--temp`, which run in a temporary copy), else the working directory."""
    return Path(os.environ.get("DVC_ROOT") or ".").resolve()


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


def open_study(name: str, seed: int, pruner: str, store=None) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=store if store is not None else storage(),
                               sampler=TrialSeededSampler(seed), pruner=make_pruner(pruner), direction="maximize",
                               load_if_exists=True)


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
    result = {"study": study.study_name, "best_value": float(best.value), "best_trial": best.number,
              "best_params": dict(best.params), "n_complete": len(complete),
              "n_pruned": sum(t.state == optuna.trial.TrialState.PRUNED for t in kept),
              "paper_params": dict(paper_trial.params) if paper_trial else paper,
              "paper_value": float(paper_trial.value) if paper_trial and paper_trial.value is not None else None}
    with atomic_path(out / "best.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(result, sort_keys=False))
    _plots(study, out)
    return result


def _plots(study: optuna.Study, out: Path) -> None:
    """Optimisation history, parameter importances (two or more parameters and enough trials) and slices."""
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
