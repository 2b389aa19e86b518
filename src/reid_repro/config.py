"""Typed loading of ``params.yaml``: frozen dataclasses, unknown or missing keys are errors naming the key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path

import yaml

from reid_repro.errors import ReidReproError


@dataclasses.dataclass(frozen=True)
class Profile:
    """World size. Counts are per domain before the domain's ``id_scale``."""

    train_ids: int
    test_ids: int
    distractor_ids: int
    images_per_id: int
    junk_images: int


@dataclasses.dataclass(frozen=True)
class Domain:
    """One stand-in dataset: its cameras and the distribution its camera styles are drawn from."""

    cameras: int
    id_scale: float
    style_strength: float
    hue: float            # centre of the background hue range, in [0, 1)
    hue_spread: float


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    seed: int
    profile: str
    height: int
    width: int
    body_model: str
    smpl_model_dir: typing.Optional[str]
    profiles: typing.Dict[str, Profile]
    domains: typing.Dict[str, Domain]

    def __post_init__(self):
        if self.profile not in self.profiles:
            raise ReidReproError(f"params.yaml: world.profile={self.profile!r}; expected one of {sorted(self.profiles)}")
        if not (32 <= self.height <= 512 and 16 <= self.width <= 256):
            raise ReidReproError(f"params.yaml: world.height/width={self.height}x{self.width}; expected 32..512 x 16..256")
        if self.body_model not in ("anny", "smplx"):
            raise ReidReproError(f"params.yaml: world.body_model={self.body_model!r}; expected 'anny' or 'smplx'")
        for name, d in self.domains.items():
            if not 2 <= d.cameras <= 99:
                raise ReidReproError(f"params.yaml: world.domains.{name}.cameras={d.cameras}; expected 2..99")

    @property
    def sizes(self) -> Profile:
        return self.profiles[self.profile]


def _convert(value, tp, key: str):
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ReidReproError(f"params.yaml: {key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is typing.Union:
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return None if value is None else _convert(value, inner, key)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ReidReproError(f"params.yaml: {key}={value!r}; expected {getattr(tp, '__name__', tp)}")


def from_dict(cls, data, key: str):
    """Build dataclass ``cls`` from ``data``; every field required, no field unknown."""
    if not isinstance(data, dict):
        raise ReidReproError(f"params.yaml: {key}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ReidReproError(f"params.yaml: {key}.{unknown[0]}: unknown key; expected one of {sorted(fields)}")
    missing = sorted(set(fields) - set(data))
    if missing:
        raise ReidReproError(f"params.yaml: {key}.{missing[0]}: missing")
    hints = typing.get_type_hints(cls)
    return cls(**{name: _convert(data[name], hints[name], f"{key}.{name}") for name in fields})


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: params file not found")
    return yaml.safe_load(path.read_text()) or {}


def load_world(path: str | Path = "params.yaml") -> WorldConfig:
    params = load_params(path)
    if "world" not in params:
        raise ReidReproError(f"{path}: no 'world' section")
    return from_dict(WorldConfig, params["world"], "world")


def params_hash(section) -> str:
    """A stable short hash of a params section, recorded with every run."""
    blob = json.dumps(dataclasses.asdict(section) if dataclasses.is_dataclass(section) else section, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
