"""Loading params.yaml: typed conversion of a mapping into a frozen dataclass (unknown or missing keys are
errors naming the file and the key), the params file with its settings files and declared runs, the scale and a
section's hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path

import yaml

from reid_repro.errors import ReidReproError

PAPERS = Path("conf") / "runs"            # conf/runs/<paper>.yaml, relative to the project root
GENERATED = Path("conf") / "runs.json"    # what they expand into (reid_repro.declare), read here
# sections kept in settings files of their own beside params.yaml (issue 40): every DVC stage parses params.yaml
# and walks it once per key it reads, and these are read by a few stages only (the world's, the studies'); with
# them out `dvc status` on the whole pipeline took 9.0 s of CPU against 13.1 (bench/results/exp_dvc_status_s33.json)
SETTINGS = {"world": Path("conf") / "world.yaml", "video": Path("conf") / "world.yaml",
            "studies": Path("conf") / "studies.yaml"}


def settings_file(key: str) -> str:
    """The file a params key lives in: ``world.looks.x`` -> conf/world.yaml, ``ise.lambda0`` -> params.yaml."""
    return SETTINGS.get(key.split(".")[0].split("[")[0], Path("params.yaml")).as_posix()


def _convert(value, tp, key: str):
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ReidReproError(f"{settings_file(key)}: {key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ReidReproError(f"{settings_file(key)}: {key}: expected a list, got {value!r}")
        (vt,) = typing.get_args(tp)
        return [_convert(v, vt, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is typing.Union:
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(value, inner, key)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ReidReproError(f"{settings_file(key)}: {key}={value!r}; expected {getattr(tp, '__name__', tp)}")


def from_dict(cls, data, key: str):
    """Build dataclass ``cls`` from ``data``; every field required, no field unknown."""
    if not isinstance(data, dict):
        raise ReidReproError(f"{settings_file(key)}: {key}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ReidReproError(f"{settings_file(key)}: {key}.{unknown[0]}: unknown key; expected one of "
                             f"{sorted(fields)}")
    missing = sorted(set(fields) - set(data))
    if missing:
        raise ReidReproError(f"{settings_file(key)}: {key}.{missing[0]}: missing")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _convert(data[name], hints[name], f"{key}.{name}") for name in fields})


def load_params(path: str | Path = "params.yaml", with_runs: bool = True) -> dict:
    """params.yaml with its declared runs: ``runs`` and ``larger.runs`` from the generated conf/runs.json beside it
    (reid_repro.declare: conf/runs/<paper>.yaml, one line per row). A self-contained params file (a scratch
    experiment's, a test's) may hold ``runs`` inline instead, with no conf/runs.json beside it. ``with_runs``
    False: the settings alone (what the world stage reads)."""
    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: params file not found")
    params = with_settings(path, yaml.safe_load(path.read_text()) or {})
    if not with_runs:
        return params
    beside = path.parent / GENERATED
    if "runs" in params:
        if beside.is_file():
            raise ReidReproError(f"{path}: runs are declared per paper in {PAPERS}/<paper>.yaml (expanded "
                                 f"into {beside}); params.yaml holds no runs section beside it")
        return params
    if not beside.is_file() and "world" not in params:        # not a project's params file: nothing to add
        return params
    declared = load_declared(path)
    params["runs"] = declared["runs"]
    larger = params.get("larger")
    if isinstance(larger, dict) and "runs" not in larger:
        params["larger"] = {**larger, "runs": declared["larger_runs"]}
        # (a non-boolean switch is validate_params' error: larger.enabled=...; expected true or false)
        if isinstance(larger.get("enabled"), bool) and \
                declared["larger_stages"] != larger_stages(larger, declared["larger_runs"]):
            if larger.get("enabled") is True:
                raise ReidReproError(f"{beside}: larger_stages is not the larger profile of {path}, which sets "
                                     "larger.enabled: true (its stages template from every one of larger.warmups "
                                     "and larger_runs, as declared); `reid-repro pipeline --write` writes them "
                                     "(`make repro LARGER=1` does it for you)")
            raise ReidReproError(f"{beside}: larger_stages lists larger-profile stages, but {path} sets "
                                 "larger.enabled: false; `reid-repro pipeline --write` takes them out")
    elif larger is None and declared["larger_runs"]:
        raise ReidReproError(f"{path}: larger: missing; {beside} declares larger-profile runs "
                             "(params.yaml: larger: {enabled, warmups})")
    return params


def larger_stages(larger: dict | None, larger_runs: dict, enabled: bool | None = None) -> dict:
    """What the larger profile's stages template from (conf/runs.json ``larger_stages``): {"warmups": params.yaml
    ``larger.warmups``, "runs": the larger runs} while the profile is enabled (``enabled`` None: as ``larger``
    says), else both empty."""
    larger = larger or {}
    on = bool(larger.get("enabled")) if enabled is None else enabled
    return {"warmups": dict(larger.get("warmups") or {}) if on else {}, "runs": dict(larger_runs) if on else {}}


def with_settings(path: Path, params: dict) -> dict:
    """``params`` (params.yaml at ``path``) with the sections of the settings files beside it (:data:`SETTINGS`:
    conf/world.yaml holds ``world`` and ``video``, conf/studies.yaml ``studies``). A section lives in one file:
    held by both, or a settings file holding another section, is an error naming both. A self-contained params
    file (a test's, a scratch experiment's) with no settings file beside it may hold the sections itself."""
    if not isinstance(params, dict):
        raise ReidReproError(f"{path}: expected a mapping of sections, got {type(params).__name__}")
    params = dict(params)
    for rel in dict.fromkeys(SETTINGS.values()):
        file = path.parent / rel
        if not file.is_file():
            continue
        try:
            found = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ReidReproError(f"{file}: not valid YAML ({exc})") from None
        own = [k for k, v in SETTINGS.items() if v == rel]
        if not isinstance(found, dict) or set(found) - set(own):
            raise ReidReproError(f"{file}: expected the sections {own}, got "
                                 f"{sorted(found) if isinstance(found, dict) else found!r}")
        both = sorted(set(found) & set(params))
        if both:
            raise ReidReproError(f"{path}: {both[0]}: also in {file}; a section lives in one file (its settings: "
                                 f"{file})")
        params.update(found)
    return params


def load_declared(params_file: str | Path) -> dict:
    """The generated runs beside ``params_file`` (``<its folder>/conf/runs.json``): {runs, larger_runs, tuning,
    larger_stages}."""
    path = Path(params_file).parent / GENERATED
    if not path.is_file():
        raise ReidReproError(f"{path}: runs file not found; `reid-repro pipeline --write` writes it from "
                             f"{PAPERS}/*.yaml")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReidReproError(f"{path}: not valid JSON ({exc}); `reid-repro pipeline --write` writes it again") \
            from None
    keys = ["larger_runs", "larger_stages", "runs", "tuning"]
    if not isinstance(data, dict) or sorted(data) != keys or not isinstance(data["larger_stages"], dict) \
            or sorted(data["larger_stages"]) != ["runs", "warmups"]:
        raise ReidReproError(f"{path}: expected the keys runs, larger_runs, tuning and larger_stages (runs, "
                             "warmups); `reid-repro pipeline --write` writes it again")
    return data


def params_hash(section) -> str:
    """A stable short hash of a params section, recorded with every run."""
    blob = json.dumps(dataclasses.asdict(section) if dataclasses.is_dataclass(section) else section, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


SCALES = ("cpu", "paper")


def _scale(params: dict) -> str:
    scale = params.get("scale", "cpu")
    if scale not in SCALES:
        raise ReidReproError(f"params.yaml: scale={scale!r}; expected one of {SCALES}")
    return scale
