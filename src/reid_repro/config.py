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
    images_per_id: int        # training identities: Poisson mean of their images
    test_images_per_id: int   # test identities: Poisson mean (queries + gallery)
    queries_per_id: int       # test identities: at most this many queries, one per camera
    junk_images: int


@dataclasses.dataclass(frozen=True)
class Domain:
    """One stand-in dataset: its cameras, the distribution its camera styles are drawn from, and its look."""

    cameras: int
    id_scale: float
    test_id_scale: float  # test identities = profile test_ids x this (0 for a domain nobody tests on)
    style_strength: float
    hue: float            # centre of the background hue range, in [0, 1)
    hue_spread: float
    look: str             # a key of world.looks: the domain's clothing, light, scenes, resolution and viewpoints


def _range(values: list, key: str, low: float, high: float) -> None:
    if len(values) != 2 or not low <= values[0] <= values[1] <= high:
        raise ReidReproError(f"params.yaml: {key}={values!r}; expected [lo, hi] with {low} <= lo <= hi <= {high}")


TEXTURES = ("none", "stripes", "logo", "checks", "vstripes", "colorblock")


@dataclasses.dataclass(frozen=True)
class Look:
    """What sets a domain apart beyond its camera styles (issue 38: a domain gap from the properties synthetic
    re-ID datasets show open the largest gaps: clothing distribution, light, scenes, resolution, viewpoints).

    Each field's neutral value draws what the first worlds drew, number for number: the clothing ranges of
    ``generate.sample_identity`` before looks existed, one light from the camera (intensity 3, ambient 0.45),
    six background panels without clutter, ``resolution: null`` (the style's own ``1 - k U(0, 0.45)``), yaw
    over the full circle, occlusion 0.12 and the fixed frame (``fit: null``)."""

    clothing_hue: typing.List[float]       # [lo, hi] of the clothes' hue (wraps at 1); [0, 1]: any
    upper_saturation: typing.List[float]
    upper_value: typing.List[float]
    lower_saturation: typing.List[float]
    lower_value: typing.List[float]
    long_sleeves: float                    # probability
    long_trousers: float
    textures: typing.Optional[typing.Dict[str, float]]   # weights over TEXTURES; null: none/stripes/logo alike
    light: typing.List[float]              # [lo, hi] of the directional light's intensity, per camera
    ambient: typing.List[float]            # [lo, hi] of the ambient light, per camera
    light_azimuth: float                   # the light turns up to +- this many degrees about the vertical, per camera
    warmth: typing.List[float]             # [lo, hi]: the light's colour, from blue (< 0) to warm (> 0)
    panels: int                            # background panels (walls, poles, doors) per camera scene
    clutter: float                         # fine vertical structure over the background, 0..1
    resolution: typing.Optional[typing.List[float]]     # [lo, hi] per camera; null: 1 - style_strength U(0, 0.45)
    low_res_cameras: int                   # this many of the domain's cameras (the first) at low_res_factor
    low_res_factor: float
    yaw_arc: float                         # degrees of walking direction a camera sees (both ways); 360: all
    occlusion: float                       # probability that an image is partly occluded
    # null: the first worlds' fixed frame (2 m tall, centred 0.85 m up, whatever the person's height: a person
    # covers ~19% of the box); a number: a detector's box, fitted to the person as Market-1501's DPM boxes and
    # DukeMTMC-reID's hand-drawn ones are: the frame is the person's height times ``fit``, centred on the person
    fit: typing.Optional[float] = None

    def check(self, key: str) -> None:
        """Every value in range; errors name ``key`` (world.looks.<name>) and the field."""
        for name in ("clothing_hue", "upper_saturation", "upper_value", "lower_saturation", "lower_value"):
            _range(getattr(self, name), f"{key}.{name}", 0.0, 2.0 if name == "clothing_hue" else 1.0)
        _range(self.light, f"{key}.light", 0.0, 20.0)
        _range(self.ambient, f"{key}.ambient", 0.0, 2.0)
        _range(self.warmth, f"{key}.warmth", -1.0, 1.0)
        if self.resolution is not None:
            _range(self.resolution, f"{key}.resolution", 0.05, 1.0)
        checks = {"long_sleeves": 0 <= self.long_sleeves <= 1, "long_trousers": 0 <= self.long_trousers <= 1,
                  "light_azimuth": 0 <= self.light_azimuth <= 180, "panels": 0 <= self.panels <= 64,
                  "clutter": 0 <= self.clutter <= 1, "low_res_cameras": self.low_res_cameras >= 0,
                  "low_res_factor": 0.05 <= self.low_res_factor <= 1, "yaw_arc": 0 < self.yaw_arc <= 360,
                  "occlusion": 0 <= self.occlusion <= 1,
                  "fit": self.fit is None or 1.0 <= self.fit <= 3.0}
        for name, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}.{name}={getattr(self, name)!r}: out of range")
        if self.textures is not None:
            bad = sorted(set(self.textures) - set(TEXTURES))
            if bad or not self.textures or any(w < 0 for w in self.textures.values()) \
                    or sum(self.textures.values()) <= 0:
                raise ReidReproError(f"params.yaml: {key}.textures={self.textures!r}; expected weights "
                                     f">= 0 (not all 0) over {list(TEXTURES)}")


@dataclasses.dataclass(frozen=True)
class WorldConfig:
    seed: int
    profile: str
    height: int
    width: int
    body_model: str
    smpl_model_dir: typing.Optional[str]
    profiles: typing.Dict[str, Profile]
    looks: typing.Dict[str, Look]
    domains: typing.Dict[str, Domain]

    def __post_init__(self):
        if self.profile not in self.profiles:
            raise ReidReproError(f"params.yaml: world.profile={self.profile!r}; expected one of {sorted(self.profiles)}")
        if not (32 <= self.height <= 512 and 16 <= self.width <= 256):
            raise ReidReproError(f"params.yaml: world.height/width={self.height}x{self.width}; expected 32..512 x 16..256")
        if self.body_model not in ("anny", "smplx"):
            raise ReidReproError(f"params.yaml: world.body_model={self.body_model!r}; expected 'anny' or 'smplx'")
        for name, look in self.looks.items():
            look.check(f"world.looks.{name}")
        for name, d in self.domains.items():
            if not 2 <= d.cameras <= 99:
                raise ReidReproError(f"params.yaml: world.domains.{name}.cameras={d.cameras}; expected 2..99")
            if d.look not in self.looks:
                raise ReidReproError(f"params.yaml: world.domains.{name}.look={d.look!r}; expected one of "
                                     f"{sorted(self.looks)} (world.looks)")
            if self.looks[d.look].low_res_cameras > d.cameras:
                raise ReidReproError(f"params.yaml: world.looks.{d.look}.low_res_cameras="
                                     f"{self.looks[d.look].low_res_cameras}: more than domain {name}'s "
                                     f"{d.cameras} cameras")

    def look(self, domain: str) -> Look:
        return self.looks[self.domains[domain].look]

    @property
    def sizes(self) -> Profile:
        return self.profiles[self.profile]


def _convert(value, tp, key: str):
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ReidReproError(f"params.yaml: {key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list):
            raise ReidReproError(f"params.yaml: {key}: expected a list, got {value!r}")
        (vt,) = typing.get_args(tp)
        return [_convert(v, vt, f"{key}[{i}]") for i, v in enumerate(value)]
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
    """params.yaml with its declared runs: ``runs`` and ``larger.runs`` from the generated conf/runs.json beside it
    (reid_repro.declare: conf/runs/<paper>.yaml, one line per row). A self-contained params file (a scratch
    experiment's, a test's) may hold ``runs`` inline instead, with no conf/runs.json beside it."""
    from reid_repro import declare

    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: params file not found")
    params = yaml.safe_load(path.read_text()) or {}
    beside = path.parent / declare.GENERATED
    if "runs" in params:
        if beside.is_file():
            raise ReidReproError(f"{path}: runs are declared per paper in {declare.PAPERS}/<paper>.yaml (expanded "
                                 f"into {beside}); params.yaml holds no runs section beside it")
        return params
    if not beside.is_file() and "world" not in params:        # not a project's params file: nothing to add
        return params
    declared = declare.load(path)
    params["runs"] = declared["runs"]
    larger = params.get("larger")
    if isinstance(larger, dict) and "runs" not in larger:
        params["larger"] = {**larger, "runs": declared["larger_runs"]}
    elif larger is None and declared["larger_runs"]:
        raise ReidReproError(f"{path}: larger: missing; {beside} declares larger-profile runs "
                             "(params.yaml: larger: {enabled, warmups})")
    return params


def load_world(path: str | Path = "params.yaml") -> WorldConfig:
    params = load_params(path)
    if "world" not in params:
        raise ReidReproError(f"{path}: no 'world' section")
    return from_dict(WorldConfig, params["world"], "world")


def params_hash(section) -> str:
    """A stable short hash of a params section, recorded with every run."""
    blob = json.dumps(dataclasses.asdict(section) if dataclasses.is_dataclass(section) else section, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# Models, the shared training loop, methods and declared runs

SCALES = ("cpu", "paper")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str             # resnet18 | resnet34 | resnet50 (torchvision)
    last_stride: int      # 1 (re-ID) or 2 (ImageNet)
    pooling: str          # avg | gem
    height: int           # training and test input size; may be smaller than the stored images
    width: int
    init: str             # what the pretrain stage trains from: scratch | imagenet (torchvision's weights); every
                          # other run starts from a stage's checkpoint (its run's init: pretrain or source_<name>)
    precision: str        # auto | fp32 | bf16 (autocast over the backbone; auto = bf16 where native: models.py)
    bn_groups: int        # ghost batch-norm: BN statistics over this many equal chunks of a training batch
    interpolation: str    # bilinear | bicubic: how images are resized to the input size (decoded once)

    def __post_init__(self):
        if self.last_stride not in (1, 2):
            raise ReidReproError(f"params.yaml: model.last_stride={self.last_stride}; expected 1 or 2")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ReidReproError(f"params.yaml: model.precision={self.precision!r}; expected auto, fp32 or bf16")
        if self.bn_groups < 1:
            raise ReidReproError(f"params.yaml: model.bn_groups={self.bn_groups}; expected an integer >= 1 (1 = BN "
                                 "over the whole batch; 4 = the papers' 4 GPUs)")
        if self.interpolation not in ("bilinear", "bicubic"):
            raise ReidReproError(f"params.yaml: model.interpolation={self.interpolation!r}; expected bilinear or "
                                 "bicubic")
        if self.init not in ("scratch", "imagenet"):
            raise ReidReproError(f"params.yaml: model.init={self.init!r}; expected scratch or imagenet (what the "
                                 "pretrain stage trains from)")
        if not (16 <= self.height <= 512 and 8 <= self.width <= 256):
            raise ReidReproError(f"params.yaml: model.height/width={self.height}x{self.width}; expected "
                                 "16..512 x 8..256")


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """The shared loop's settings: every method's section holds one of these per scale."""

    seed: int
    epochs: int
    iters: int              # iterations per epoch
    batch_ids: int          # P identities (pseudo or true) per batch
    instances: int          # K images of each
    lr: float
    weight_decay: float
    warmup_epochs: int      # linear warm-up from lr/10
    lr_step: int            # multiply the lr by lr_gamma every lr_step epochs
    lr_gamma: float
    eps: float              # DBSCAN radius on the Jaccard distance
    k1: int                 # k-reciprocal neighbours
    k2: int                 # query expansion
    min_samples: int
    labels: str             # pseudo (clustering) | ground_truth (the supervised upper bound)
    cross_camera: bool      # the sampler prefers an identity's images from different cameras
    workers: int            # DataLoader worker processes

    def __post_init__(self):
        checks = {"epochs": self.epochs >= 1, "iters": self.iters >= 1, "batch_ids": self.batch_ids >= 2,
                  "instances": self.instances >= 1, "lr": self.lr > 0, "weight_decay": self.weight_decay >= 0,
                  "warmup_epochs": self.warmup_epochs >= 0, "lr_step": self.lr_step >= 1,
                  "lr_gamma": 0 < self.lr_gamma <= 1, "eps": 0 < self.eps < 1, "k1": self.k1 >= 2,
                  "k2": 1 <= self.k2 <= self.k1, "min_samples": self.min_samples >= 1, "workers": self.workers >= 0,
                  "labels": self.labels in ("pseudo", "ground_truth")}
        for key, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r} is out of range")


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One declared run: a row of a paper table."""

    method: str
    base: str             # the params section the method builds on (its own name unless ISE: cluster_contrast)
    dataset: str          # the training domain (a key of params.yaml: data)
    test: str             # the test domain (the same one unless the row is domain generalisation)
    init: str             # the checkpoint it starts from: models/<init>.pt
    paper: str            # which paper's table the row belongs to
    table: str
    row: str
    overrides: typing.Dict[str, typing.Any]          # applied at every scale
    paper_overrides: typing.Dict[str, typing.Any]    # applied on top at scale: paper (per-dataset paper settings)
    also: typing.List[str]                           # more rows this run fills: "<table>/<row>" of the same paper,
                                                     # or "<paper>:<table>/<row>" of another (a shared baseline)
    ours_only: bool = False   # a row no paper table has (e.g. a stand-in without a paper column): no paper cell
    column: str = ""          # the paper table's column it fills (default: its test domain; UDA: market2duke...)
    larger: bool = False      # a larger-profile row (conf/runs/<paper>.yaml larger: true; trained only with
                              # larger.enabled: true)
    seeds: typing.Optional[int] = None   # trains at least this many seeds (params.yaml seeds if larger): the
                                         # baselines, whose gain over the start needs more seeds than a row's

    @property
    def table_column(self) -> str:
        return self.column or self.test

    def settings_overrides(self, scale: str) -> dict:
        return {**self.overrides, **(self.paper_overrides if scale == "paper" else {})}

    def targets(self) -> list[tuple[str, str, str]]:
        """(paper, table, row) of every row this run fills: its own, then its ``also`` rows."""
        out = [(self.paper, self.table, self.row)]
        for extra in self.also:
            where, _, row = extra.partition("/")
            paper, _, table = where.rpartition(":")
            out.append((paper or self.paper, table, row))
        return out


def _scale(params: dict) -> str:
    scale = params.get("scale", "cpu")
    if scale not in SCALES:
        raise ReidReproError(f"params.yaml: scale={scale!r}; expected one of {SCALES}")
    return scale


MAX_SEEDS = 20


def run_seeds(params: dict, spec: "RunSpec | None" = None) -> int:
    """How many seeds a run trains: ``params.yaml: seeds``, or the run's own ``seeds`` where that is more (seed s
    = the loop's seed + s, the same for every run, so that seed s of a row and of its baseline are paired)."""
    n = params.get("seeds", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SEEDS:
        raise ReidReproError(f"params.yaml: seeds={n!r}; expected an integer from 1 to {MAX_SEEDS}")
    own = spec.seeds if spec is not None else None
    if own is not None and (isinstance(own, bool) or not isinstance(own, int) or not 1 <= own <= MAX_SEEDS):
        raise ReidReproError(f"runs: seeds={own!r} (a run's own); expected an integer from 1 to {MAX_SEEDS}")
    return max(n, own or 0)


def load_model(params: dict) -> ModelConfig:
    scale = _scale(params)
    if "model" not in params or scale not in params["model"]:
        raise ReidReproError(f"params.yaml: model.{scale}: missing")
    return from_dict(ModelConfig, params["model"][scale], f"model.{scale}")


def load_method_config(params: dict, method: str, cls, overrides: dict | None = None, base: str | None = None):
    """Flatten ``params[method]``: its own keys plus its ``loop`` (or ``paper_loop``) keys, then ``overrides``.

    ``base`` names a section whose settings come first (ISE builds on ``cluster_contrast``).
    """
    scale = _scale(params)
    loop_key = "loop" if scale == "cpu" else "paper_loop"
    flat, where = {}, {}
    for name in ([base] if base else []) + [method]:
        section = params.get(name)
        if not isinstance(section, dict):
            raise ReidReproError(f"params.yaml: no '{name}' section")
        if loop_key not in section:
            if name == method and base:
                section = {**section, loop_key: {}}
            else:
                raise ReidReproError(f"params.yaml: {name}.{loop_key}: missing")
        for k, v in section.items():
            if k in ("loop", "paper_loop"):
                if k == loop_key:
                    flat.update(v)
                    where.update({kk: f"{name}.{k}.{kk}" for kk in v})
            else:
                flat[k] = v
                where[k] = f"{name}.{k}"
    for k, v in (overrides or {}).items():
        if k not in flat:
            raise ReidReproError(f"runs override {k!r} is not a setting of {method}; expected one of "
                                 f"{sorted(flat)}")
        flat[k] = v
    try:
        return from_dict(cls, flat, method)
    except ReidReproError as exc:   # name the key as it is written in params.yaml
        import re

        match = re.match(rf"params\.yaml: (?:{method}\.)?(\w+)([=:].*)", str(exc), re.S)
        if match and match.group(1) in where:
            raise ReidReproError(f"params.yaml: {where[match.group(1)]}{match.group(2)}") from None
        raise


LARGER_KEYS = ("enabled", "warmups", "runs")


def larger_section(params: dict) -> dict:
    """params.yaml ``larger``: the rows that do not fit the default budget on 2 cores (GCL+'s other domains and
    its hyperparameter sweeps), declared in the pipeline as their own stages (``warmup_larger@``,
    ``train_larger@``) and trained only when ``enabled`` is true; otherwise each stage writes a marker that the
    report shows as "not run at the default scale". One setting turns them all on:
    ``dvc exp run -S larger.enabled=true``."""
    raw = params.get("larger")
    if raw is None:
        return {"enabled": False, "warmups": {}, "runs": {}}
    if not isinstance(raw, dict) or sorted(raw) != sorted(LARGER_KEYS):
        raise ReidReproError(f"params.yaml: larger: expected keys {list(LARGER_KEYS)}, got "
                             f"{sorted(raw) if isinstance(raw, dict) else raw!r}")
    if not isinstance(raw["enabled"], bool):
        raise ReidReproError(f"params.yaml: larger.enabled={raw['enabled']!r}; expected true or false")
    return {"enabled": raw["enabled"], "warmups": raw["warmups"] or {}, "runs": raw["runs"] or {}}


def declared_runs(params: dict) -> dict:
    """Every declared run: ``runs`` and ``larger.runs`` (conf/runs.json; names are unique across both)."""
    return {**(params.get("runs") or {}), **larger_section(params)["runs"]}


def not_run_reason(params: dict, spec: RunSpec) -> str | None:
    """Why a larger-profile run or warm-up is not trained here (None: it is)."""
    if spec.larger and not larger_section(params)["enabled"]:
        return ("not run at the default scale: a larger-profile row (params.yaml: larger); "
                "`dvc exp run -S larger.enabled=true` (or `make repro LARGER=1`) trains it")
    return None


def load_run(params: dict, key: str) -> RunSpec:
    runs = declared_runs(params)
    if key not in runs:
        raise ReidReproError(f"runs.{key}: no such run; expected one of {sorted(runs)}")
    spec = dict(runs[key])
    spec["larger"] = key not in (params.get("runs") or {})
    for field in ("overrides", "paper_overrides"):
        spec[field] = spec.get(field) or {}
    spec["also"] = spec.get("also") or []
    spec.setdefault("ours_only", False)
    spec.setdefault("column", "")
    spec.setdefault("seeds", None)
    run = from_dict(RunSpec, spec, f"runs.{key}")
    data = params.get("data") or {}
    for field in ("dataset", "test"):
        if getattr(run, field) not in data:
            raise ReidReproError(f"runs.{key}.{field}={getattr(run, field)!r}; expected a key of "
                                 f"data: {sorted(data)}")
        if data[getattr(run, field)].get("format") == "imagenet":
            raise ReidReproError(f"runs.{key}.{field}={getattr(run, field)!r} is a folder of ImageNet "
                                 "checkpoints (format: imagenet), which only pretrain reads; expected a re-ID dataset")
    return run


WARMUP_KEYS = ("dataset", "init", "overrides")


def load_warmup(params: dict, name: str) -> RunSpec:
    """A GCL+ stage-2 warm-up (params.yaml: gcl_warmups.<name>: {dataset, init: a run whose model is the
    identity encoder, overrides}): a gcl_plus run with ``stage: warmup``, written to models/<name>."""
    larger = larger_section(params)["warmups"]
    warmups = {**(params.get("gcl_warmups") or {}), **larger}
    if name not in warmups:
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}: no such warm-up; expected one of {sorted(warmups)}")
    entry = warmups[name]
    if not isinstance(entry, dict) or sorted(entry) != sorted(WARMUP_KEYS):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}: expected keys {list(WARMUP_KEYS)}, got {entry!r}")
    if entry["dataset"] not in (params.get("data") or {}):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}.dataset={entry['dataset']!r}; expected a key of data")
    if entry["init"] not in declared_runs(params):
        raise ReidReproError(f"params.yaml: gcl_warmups.{name}.init={entry['init']!r}; expected a run (stage 1: "
                             "the run whose model is the identity encoder)")
    return RunSpec(method="gcl_plus", base="gcl_plus", dataset=entry["dataset"], test=entry["dataset"],
                   init=entry["init"], paper="gcl_plus", table="", row="stage 2 warm-up",
                   overrides={**(entry["overrides"] or {}), "stage": "warmup"}, paper_overrides={}, also=[],
                   ours_only=True, larger=name in larger)


def pretrain_spec(dataset: str = "pretrain") -> RunSpec:
    """The supervised pretraining run every method starts from (settings: params.yaml ``pretrain``)."""
    return RunSpec(method="supervised", base="supervised", dataset=dataset, test=dataset, init="scratch", paper="",
                   table="", row="pretraining", overrides={}, paper_overrides={}, also=[])


SOURCE_SECOND_SEED = 1   # the second source training (MMT's net 2) uses the loop's seed + this


def source_spec(dataset: str) -> RunSpec:
    """The labelled source training of the UDA settings (settings: params.yaml ``source``): supervised on the
    source stand-in's identities, from the pretrained start (CANU §V-A; MMT's source pretraining)."""
    return RunSpec(method="supervised", base="supervised", dataset=dataset, test=dataset, init="pretrain",
                   paper="", table="", row="source", overrides={}, paper_overrides={}, also=[])


def resolve_run(params: dict, spec: RunSpec, section: str | None = None):
    """(model config, method config) of ``spec`` at ``params['scale']``, with the run's overrides applied.

    The method's settings come from ``params[section]`` (default: the method's own section)."""
    from reid_repro.methods import base_section, method_class

    overrides = spec.settings_overrides(_scale(params))
    model_over = {k.split(".", 1)[1]: v for k, v in overrides.items() if k.startswith("model.")}
    model_cfg = load_model(params)
    if model_over:    # a row that changes the model, e.g. ISE + GeM pooling
        fields = {f.name for f in dataclasses.fields(model_cfg)}
        unknown = sorted(set(model_over) - fields)
        if unknown:
            raise ReidReproError(f"runs override 'model.{unknown[0]}' is not a model setting; "
                                 f"expected one of {sorted(fields)}")
        model_cfg = from_dict(ModelConfig, {**dataclasses.asdict(model_cfg), **model_over}, "model")
    cls = method_class(spec.method)
    base = base_section(spec.method)
    if spec.base != (base or spec.method) and section is None:
        raise ReidReproError(f"params.yaml: run base={spec.base!r} for method {spec.method!r}; expected "
                             f"{base or spec.method!r} (the section its settings build on)")
    cfg = load_method_config(params, section or spec.method, cls.config,
                             {k: v for k, v in overrides.items() if not k.startswith("model.")},
                             base=base)
    return model_cfg, cfg


DATA_KEYS = ("root", "manifest", "format")
MESH_SOURCES = ("synthetic", "params", "renders")


def validate_meshes(params: dict) -> None:
    """params.yaml ``meshes``: per dataset, where its GCL structure renders come from (shape and values). Whether
    they can be made from the dataset is checked by the stages that read them (:func:`check_mesh_source`), so a
    real root with the default ``synthetic`` entry stops only the meshes, warm-up and GCL+ stages, never the
    methods that need no renders."""
    meshes, data = params["meshes"], params["data"]
    if not isinstance(meshes, dict):
        raise ReidReproError("params.yaml: meshes: expected a mapping of dataset name -> {source, from}")
    for name, entry in meshes.items():
        if name not in data:
            raise ReidReproError(f"params.yaml: meshes.{name}: not a dataset; expected keys of data: {sorted(data)}")
        if not isinstance(entry, dict) or sorted(entry) != ["from", "source"]:
            raise ReidReproError(f"params.yaml: meshes.{name}: expected a mapping with keys source and from, got "
                                 f"{entry!r}")
        if entry["source"] not in MESH_SOURCES:
            raise ReidReproError(f"params.yaml: meshes.{name}.source={entry['source']!r}; expected one of "
                                 f"{list(MESH_SOURCES)}")
        if not isinstance(entry["from"], str) or not entry["from"]:
            raise ReidReproError(f"params.yaml: meshes.{name}.from={entry['from']!r}; expected a path")


def check_mesh_source(params: dict, name: str) -> None:
    """The structure renders of dataset ``name`` can be made: ``synthetic`` renders the world's ground truth, so
    it needs the dataset to be that world folder. A real root with synthetic meshes is an error naming what to
    set instead; the meshes stage raises it (and so do the GCL+ stages after it)."""
    validate_meshes(params)
    entry = params["meshes"].get(name)
    if entry is None:
        raise ReidReproError(f"params.yaml: meshes.{name}: missing; GCL/GCL+ need structure renders of data.{name} "
                             "(source renders: a folder of GCL renders, or params: an SMPL parameter parquet)")
    root = params["data"][name]["root"]
    if entry["source"] == "synthetic" and Path(entry["from"]) != Path(root):
        raise ReidReproError(
            f"params.yaml: meshes.{name}: source synthetic renders the synthetic world's truth in "
            f"{entry['from']}, but data.{name}.root is {root}; for a real dataset set meshes.{name}.source to "
            "params (from: an SMPL parameter parquet) or renders (from: a folder of GCL renders). Only the "
            "meshes, GCL+ warm-up and GCL+ stages need them: the other methods train without")


# ---- Optuna studies (params.yaml: studies; reid_repro/tuning.py runs them) ----------------------------------

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
        raise ReidReproError(f"params.yaml: studies.{name}: no such study; expected one of {sorted(studies)}")
    raw = studies[name]
    if not isinstance(raw, dict) or sorted(raw) != sorted(f.name for f in dataclasses.fields(StudyConfig)):
        raise ReidReproError(f"params.yaml: studies.{name}: expected keys "
                             f"{[f.name for f in dataclasses.fields(StudyConfig)]}, got {raw!r}")
    if raw["run"] not in (params.get("runs") or {}):
        raise ReidReproError(f"params.yaml: studies.{name}.run={raw['run']!r}; expected a declared run")
    run = params["runs"][raw["run"]]
    for key in ("dataset", "init", "method", "base"):
        if raw[key] != run[key]:
            raise ReidReproError(f"params.yaml: studies.{name}.{key}={raw[key]!r}; expected {run[key]!r}, the run's "
                                 "(the tune stage's dependencies)")
    if run.get("test") != run["dataset"]:
        raise ReidReproError(f"params.yaml: studies.{name}.run={raw['run']!r} tests on {run.get('test')!r}; a "
                             f"studied run must train and test on one domain ({run['dataset']!r}: the tuned@ stage "
                             "that retrains it at the best setting depends on that one)")
    if not isinstance(raw["validation"], float) or not 0 < raw["validation"] < 1:
        raise ReidReproError(f"params.yaml: studies.{name}.validation={raw['validation']!r}; expected a fraction")
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
    if not isinstance(raw["multivariate"], bool):
        raise ReidReproError(f"params.yaml: studies.{name}.multivariate={raw['multivariate']!r}; expected true or "
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


def validate_params(params: dict) -> None:
    """Check all of ``params.yaml`` (every section at both scales, every run with its overrides at both scales),
    so that a typo anywhere stops every stage at its start with an error naming the key, instead of being
    ignored or surfacing days later at the other scale."""
    from reid_repro.data.formats import DATA_FORMATS
    from reid_repro.methods import base_section, method_class, method_names

    from reid_repro.device import check_device_setting

    sections = ({"world", "scale", "device", "seeds", "data", "meshes", "model", "pretrain", "source", "sources",
                 "runs", "gcl_warmups", "studies", "larger"}
                | (set(method_names()) - {"supervised"}))
    unknown = sorted(set(params) - sections)
    if unknown:
        raise ReidReproError(f"params.yaml: {unknown[0]}: unknown top-level key; expected one of {sorted(sections)}")
    missing = sorted(sections - set(params))
    if missing:
        raise ReidReproError(f"params.yaml: {missing[0]}: missing top-level section")
    _scale(params)
    check_device_setting(params["device"])
    run_seeds(params)
    from_dict(WorldConfig, params["world"], "world")
    data = params["data"]
    if not isinstance(data, dict) or not data:
        raise ReidReproError("params.yaml: data: expected a mapping of dataset name -> {root, manifest, format}")
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise ReidReproError(f"params.yaml: data.{name}: expected a mapping with keys {list(DATA_KEYS)}")
        bad = sorted(set(entry) ^ set(DATA_KEYS))
        if bad:
            what = "unknown key" if bad[0] in entry else "missing"
            raise ReidReproError(f"params.yaml: data.{name}.{bad[0]}: {what}; expected keys {list(DATA_KEYS)}")
        for k in DATA_KEYS:
            if not isinstance(entry[k], str) or not entry[k]:
                raise ReidReproError(f"params.yaml: data.{name}.{k}={entry[k]!r}; expected a path or name")
        if entry["format"] not in DATA_FORMATS:
            raise ReidReproError(f"params.yaml: data.{name}.format={entry['format']!r}; expected one of "
                                 f"{sorted(DATA_FORMATS)}")
    validate_meshes(params)
    model = params["model"]
    if not isinstance(model, dict) or sorted(model) != sorted(SCALES):
        raise ReidReproError(f"params.yaml: model: expected exactly the scales {list(SCALES)}, got "
                             f"{sorted(model) if isinstance(model, dict) else model!r}")
    runs = params["runs"] or {}
    if not isinstance(runs, dict):
        raise ReidReproError("conf/runs.json: runs: expected a mapping of run name -> run")
    larger = larger_section(params)
    sources = params["sources"]
    if not isinstance(sources, list) or not sources or len(set(sources)) != len(sources) \
            or any(d not in data for d in sources):
        raise ReidReproError(f"params.yaml: sources={sources!r}; expected a list of distinct keys of data "
                             f"{sorted(data)} (the stand-ins source@ trains on)")
    starts = ({"pretrain"} | {f"source_{d}" for d in sources} | set(params["gcl_warmups"] or {})
              | set(larger["warmups"]))
    for key, raw in declared_runs(params).items():
        if isinstance(raw, dict) and raw.get("init") not in starts:
            where = "runs" if key in runs else "larger.runs"
            raise ReidReproError(f"params.yaml: {where}.{key}.init={raw.get('init')!r}; expected the model a run "
                                 "starts from (models/<init>): pretrain, source_<dataset> of a dataset in "
                                 "sources, or a GCL+ warm-up")
    for kind, default in (("runs", runs), ("warmups", params["gcl_warmups"] or {})):
        both = sorted(set(default) & set(larger[kind]))
        if both:
            raise ReidReproError(f"params.yaml: larger.{kind}.{both[0]}: also declared at the default scale; "
                                 "expected each name once")
    for scale in SCALES:
        at = {**params, "scale": scale}
        load_model(at)
        resolve_run(at, pretrain_spec(), section="pretrain")
        resolve_run(at, source_spec(next(iter(data))), section="source")
        for name in sorted(set(method_names()) - {"supervised"}):
            load_method_config(at, name, method_class(name).config, base=base_section(name))
        for key in declared_runs(at):
            try:
                spec = load_run(at, key)
                resolve_run(at, spec)
                run_seeds(at, spec)
            except ReidReproError as exc:
                text = str(exc).removeprefix("params.yaml: ")
                raise ReidReproError(f"runs.{key} (scale {scale}): {text}") from None
        for key in params["studies"] or {}:
            study = load_study(at, key)
            fields = {f.name for f in dataclasses.fields(resolve_run(at, load_run(at, study.run))[1])}
            unknown = sorted(set(study.space) - fields)
            if unknown:
                raise ReidReproError(f"params.yaml: studies.{key}.space.{unknown[0]}: not a setting of "
                                     f"{study.method}; expected one of {sorted(fields)}")
        for key in [*(params["gcl_warmups"] or {}), *larger_section(params)["warmups"]]:
            try:
                resolve_run(at, load_warmup(at, key))
            except ReidReproError as exc:
                text = str(exc).removeprefix("params.yaml: ")
                raise ReidReproError(f"params.yaml: gcl_warmups.{key} (scale {scale}): {text}") from None
