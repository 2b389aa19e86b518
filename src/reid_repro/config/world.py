"""conf/world.yaml ``world``: the synthetic world's sizes, domains, looks (reid_repro.world renders it)."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path


from reid_repro.errors import ReidReproError

from reid_repro.config.core import SETTINGS, from_dict, load_params

FILE = SETTINGS["world"].as_posix()        # where the world section lives (beside params.yaml)


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
        raise ReidReproError(f"{FILE}: {key}={values!r}; expected [lo, hi] with {low} <= lo <= hi <= {high}")


def _weights(weights: dict | None, names: tuple, key: str) -> None:
    """Weights over ``names`` (null: the look's default draw): each >= 0, not all 0, no other name."""
    if weights is not None and (set(weights) - set(names) or any(w < 0 for w in weights.values())
                                or sum(weights.values()) <= 0):
        raise ReidReproError(f"{FILE}: {key}={weights!r}; expected weights >= 0 (not all 0) over {list(names)}")


TEXTURES = ("none", "stripes", "logo", "checks", "vstripes", "colorblock")
BODY_FACTORS = ("gender", "age", "muscle", "weight", "height", "proportions")   # the body model's shape keys
BAGS = ("none", "back", "front")


@dataclasses.dataclass(frozen=True)
class Look:
    """What sets a domain apart beyond its camera styles (issue 38: a domain gap from the properties synthetic
    re-ID datasets show open the largest gaps: clothing distribution, light, scenes, resolution, viewpoints).

    Each field's neutral value draws what the first worlds drew, number for number (params.yaml's ``neutral``
    look keeps them but for the frame, fitted since issue 38): the clothing ranges of
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
    # the people (issue 38: a domain's own population, as a summer campus and a winter city differ); null: the
    # first worlds' draws, number for number (every body factor U(0.15, 0.85), bags none / back / front
    # 0.4 / 0.4 / 0.2)
    body: typing.Optional[typing.Dict[str, typing.List[float]]] = None    # [lo, hi] of some of BODY_FACTORS
    bags: typing.Optional[typing.Dict[str, float]] = None                 # weights over BAGS

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
                raise ReidReproError(f"{FILE}: {key}.{name}={getattr(self, name)!r}: out of range")
        for name, value in (self.body or {}).items():
            if name not in BODY_FACTORS:
                raise ReidReproError(f"{FILE}: {key}.body.{name}: unknown body factor; expected one of "
                                     f"{list(BODY_FACTORS)}")
            _range(value, f"{key}.body.{name}", 0.0, 1.0)
        _weights(self.bags, BAGS, f"{key}.bags")
        _weights(self.textures, TEXTURES, f"{key}.textures")


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
            raise ReidReproError(f"{FILE}: world.profile={self.profile!r}; expected one of {sorted(self.profiles)}")
        if not (32 <= self.height <= 512 and 16 <= self.width <= 256):
            raise ReidReproError(f"{FILE}: world.height/width={self.height}x{self.width}; expected 32..512 x 16..256")
        if self.body_model not in ("anny", "smplx"):
            raise ReidReproError(f"{FILE}: world.body_model={self.body_model!r}; expected 'anny' or 'smplx'")
        for name, look in self.looks.items():
            look.check(f"world.looks.{name}")
        for name, d in self.domains.items():
            if not 2 <= d.cameras <= 99:
                raise ReidReproError(f"{FILE}: world.domains.{name}.cameras={d.cameras}; expected 2..99")
            if d.look not in self.looks:
                raise ReidReproError(f"{FILE}: world.domains.{name}.look={d.look!r}; expected one of "
                                     f"{sorted(self.looks)} (world.looks)")
            if self.looks[d.look].low_res_cameras > d.cameras:
                raise ReidReproError(f"{FILE}: world.looks.{d.look}.low_res_cameras="
                                     f"{self.looks[d.look].low_res_cameras}: more than domain {name}'s "
                                     f"{d.cameras} cameras")

    def look(self, domain: str) -> Look:
        return self.looks[self.domains[domain].look]

    @property
    def sizes(self) -> Profile:
        return self.profiles[self.profile]


def load_world(path: str | Path = "params.yaml") -> WorldConfig:
    params = load_params(path, with_runs=False)      # the world needs no runs
    if "world" not in params:
        raise ReidReproError(f"{path}: no 'world' section")
    return from_dict(WorldConfig, params["world"], "world")
