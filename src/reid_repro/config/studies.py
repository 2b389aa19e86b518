"""conf/studies.yaml ``studies``: the Optuna studies (reid_repro/tuning.py runs them) and their tuned runs."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import yaml

from reid_repro.errors import ReidReproError

from reid_repro.config.core import SETTINGS
from reid_repro.config.runs import RunSpec, load_run

FILE = SETTINGS["studies"].as_posix()      # where the studies section lives (beside params.yaml)


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
    run: str                        # the declared run whose settings are tuned (conf/runs/<paper>.yaml)
    n_trials: int
    seed: int
    pruner: str                     # none | median | halving
    space: typing.Dict[str, Dimension]
    multivariate: bool = True       # multivariate TPE (one joint density: the parameters interact)
    validation: float = 0.2         # the fraction of training identities held out (data/validation.py)
    dataset: str = ""               # the run's, repeated for the DVC stage's dependencies (checked)
    init: str = ""
    method: str = ""
    base: str = ""


def load_study(params: dict, name: str) -> StudyConfig:
    """params.yaml ``studies.<name>`` (an Optuna study, reid_repro/tuning.py), checked: the run exists and its
    dataset, init, method and base are repeated right, every dimension is well formed (that it names a setting of
    the run's method is checked by :func:`validate_params`)."""
    studies = params.get("studies") or {}
    if name not in studies:
        raise ReidReproError(f"{FILE}: studies.{name}: no such study; expected one of {sorted(studies)}")
    raw = studies[name]
    if not isinstance(raw, dict) or sorted(raw) != sorted(f.name for f in dataclasses.fields(StudyConfig)):
        raise ReidReproError(f"{FILE}: studies.{name}: expected keys "
                             f"{[f.name for f in dataclasses.fields(StudyConfig)]}, got {raw!r}")
    if raw["run"] not in (params.get("runs") or {}):
        raise ReidReproError(f"{FILE}: studies.{name}.run={raw['run']!r}; expected a declared run")
    run = params["runs"][raw["run"]]
    for key in ("dataset", "init", "method", "base"):
        if raw[key] != run[key]:
            raise ReidReproError(f"{FILE}: studies.{name}.{key}={raw[key]!r}; expected {run[key]!r}, the run's "
                                 "(the tune stage's dependencies)")
    if run.get("test") != run["dataset"]:
        raise ReidReproError(f"{FILE}: studies.{name}.run={raw['run']!r} tests on {run.get('test')!r}; a "
                             f"studied run must train and test on one domain ({run['dataset']!r}: the tuned@ stage "
                             "that retrains it at the best setting depends on that one)")
    if not isinstance(raw["validation"], float) or not 0 < raw["validation"] < 1:
        raise ReidReproError(f"{FILE}: studies.{name}.validation={raw['validation']!r}; expected a fraction")
    if not isinstance(raw["n_trials"], int) or raw["n_trials"] < 1:
        raise ReidReproError(f"{FILE}: studies.{name}.n_trials={raw['n_trials']!r}; expected an integer >= 1")
    if raw["pruner"] not in PRUNERS:
        raise ReidReproError(f"{FILE}: studies.{name}.pruner={raw['pruner']!r}; expected one of {PRUNERS}")
    space = {}
    for key, dim in (raw["space"] or {}).items():
        where = f"{FILE}: studies.{name}.space.{key}"
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
        raise ReidReproError(f"{FILE}: studies.{name}.space: empty; expected at least one setting")
    if not isinstance(raw["multivariate"], bool):
        raise ReidReproError(f"{FILE}: studies.{name}.multivariate={raw['multivariate']!r}; expected true or "
                             "false")
    return StudyConfig(raw["run"], raw["n_trials"], int(raw["seed"]), raw["pruner"], space,
                       multivariate=raw["multivariate"], validation=raw["validation"], dataset=raw["dataset"],
                       init=raw["init"], method=raw["method"], base=raw["base"])


def tuned_run(params: dict, name: str, studies_dir: str | Path = "studies") -> RunSpec:
    """The ``tuned@<name>`` stage's run: study ``name``'s run with its best trial's settings
    (``studies/<name>/best.yaml: best_params``) over the run's own overrides, trained and tested like the run
    itself (every seed, the test split), so the report can put its test mAP beside the paper-setting run's."""
    cfg = load_study(params, name)
    best_file = Path(studies_dir) / name / "best.yaml"
    if not best_file.is_file():
        raise ReidReproError(f"{best_file}: missing; run the study first (`dvc repro tune@{name}`)")
    best = yaml.safe_load(best_file.read_text())
    if not isinstance(best, dict) or not isinstance(best.get("best_params"), dict):
        raise ReidReproError(f"{best_file}: expected a mapping with best_params (written by `reid-repro tune`)")
    unknown = sorted(set(best["best_params"]) - set(cfg.space))
    if unknown:
        raise ReidReproError(f"{best_file}: best_params.{unknown[0]} is not in studies.{name}.space "
                             f"{sorted(cfg.space)}; the study changed since it ran (`dvc repro tune@{name}`)")
    spec = load_run(params, cfg.run)
    return dataclasses.replace(spec, overrides={**spec.overrides, **best["best_params"]})
