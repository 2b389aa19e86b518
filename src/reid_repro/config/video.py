"""conf/world.yaml ``video``: the tracklet stand-ins of the video datasets (GCL+ §5.1, Table 10), rendered by
reid_repro.world.video beside the image world, in its own stage so that no image domain changes."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from reid_repro.config.core import SETTINGS, from_dict, load_params
from reid_repro.config.world import WorldConfig, _range
from reid_repro.errors import ReidReproError

FILE = SETTINGS["video"].as_posix()        # where the video section lives (beside params.yaml)

# the real datasets' folder layouts the stand-ins are written in (data/video.py reads them)
VIDEO_LAYOUTS = ("mars", "dukemtmc-videoreid")


@dataclasses.dataclass(frozen=True)
class VideoProfile:
    """Size of every video domain: identities, and how long its tracklets are (``frame_scale`` x the domain's
    ``frames``)."""

    train_ids: int
    test_ids: int
    distractor_ids: int      # test-set identities nobody queries (pid 0 in both layouts)
    junk_tracklets: int      # MARS's junk (pid -1: boxes of background or a sliver of a person); 0 for Duke
    frame_scale: float


@dataclasses.dataclass(frozen=True)
class VideoDomain:
    """One video stand-in: the cameras, camera styles and look of an image domain of ``world.domains``
    (``cameras_of``: MARS was filmed by Market-1501's six campus cameras, DukeMTMC-VideoReID by DukeMTMC-reID's
    eight), with identities of its own, walking through tracklets of consecutive frames."""

    layout: str                      # mars | dukemtmc-videoreid
    cameras_of: str                  # a key of world.domains
    tracklets_per_id: float          # training identities: Poisson mean of their tracklets
    test_tracklets_per_id: float     # test identities: Poisson mean (queries + gallery)
    queries_per_id: int              # at most this many query tracklets per test identity, one per camera
    frames: typing.List[int]         # [lo, hi] frames per tracklet (uniform), before the profile's frame_scale
    phase_step: float                # walk-cycle radians per frame (2 pi / 12: a stride every 12 frames)
    speed: float                     # pixels per frame the box moves through the scene, across the view


@dataclasses.dataclass(frozen=True)
class VideoConfig:
    profile: str
    profiles: typing.Dict[str, VideoProfile]
    domains: typing.Dict[str, VideoDomain]

    def __post_init__(self):
        if self.profile not in self.profiles:
            raise ReidReproError(f"{FILE}: video.profile={self.profile!r}; expected one of "
                                 f"{sorted(self.profiles)}")
        for name, p in self.profiles.items():
            key = f"video.profiles.{name}"
            if p.train_ids < 2 or p.test_ids < 2 or p.distractor_ids < 0 or p.junk_tracklets < 0:
                raise ReidReproError(f"{FILE}: {key}: train_ids and test_ids >= 2, distractor_ids and "
                                     f"junk_tracklets >= 0 expected, got {dataclasses.asdict(p)}")
            if not 0 < p.frame_scale <= 10:
                raise ReidReproError(f"{FILE}: {key}.frame_scale={p.frame_scale}; expected in (0, 10]")
        for name, d in self.domains.items():
            key = f"video.domains.{name}"
            if d.layout not in VIDEO_LAYOUTS:
                raise ReidReproError(f"{FILE}: {key}.layout={d.layout!r}; expected one of {VIDEO_LAYOUTS}")
            if not (d.tracklets_per_id >= 1 and d.test_tracklets_per_id >= 2 and d.queries_per_id >= 1):
                raise ReidReproError(f"{FILE}: {key}: tracklets_per_id >= 1, test_tracklets_per_id >= 2 and "
                                     "queries_per_id >= 1 expected")
            _range(d.frames, f"{key}.frames", 1, 10_000)
            if not (0 <= d.phase_step <= 3.2 and 0 <= d.speed <= 64):
                raise ReidReproError(f"{FILE}: {key}: phase_step in [0, 3.2] and speed in [0, 64] expected, "
                                     f"got {d.phase_step}, {d.speed}")

    @property
    def sizes(self) -> VideoProfile:
        return self.profiles[self.profile]

    def frame_range(self, domain: str) -> tuple[int, int]:
        """[lo, hi] frames per tracklet of ``domain`` at the profile in use (at least 1)."""
        lo, hi = self.domains[domain].frames
        s = self.sizes.frame_scale
        return max(1, int(round(lo * s))), max(1, int(round(hi * s)))

    def check_world(self, world: WorldConfig) -> None:
        """Every domain's ``cameras_of`` names an image domain of ``world``."""
        for name, d in self.domains.items():
            if d.cameras_of not in world.domains:
                raise ReidReproError(f"{FILE}: video.domains.{name}.cameras_of={d.cameras_of!r}; expected "
                                     f"one of world.domains {sorted(world.domains)}")


def load_video(path: str | Path = "params.yaml") -> VideoConfig:
    params = load_params(path, with_runs=False)
    if "video" not in params:
        raise ReidReproError(f"{path}: no 'video' section")
    return from_dict(VideoConfig, params["video"], "video")
