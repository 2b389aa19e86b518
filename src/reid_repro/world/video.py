"""The video stand-ins (GCL+ §5.1, Table 10): tracklets of people walking under one camera, written in the real
datasets' layouts (MARS; DukeMTMC-VideoReID), so that the real loaders (data/video.py) are the ones exercised.

A video domain borrows an image domain's cameras (``cameras_of``: the same camera styles, light, scenes and look,
drawn from that domain's streams), and draws identities of its own from streams ``[seed, domain, 10 + role,
k]``, apart from every image domain's: rendering it changes no image. Each tracklet is one person under one
camera, one walking direction, one light tint and occluder for all its frames; from frame to frame the walk
cycle advances by ``phase_step``, the detector's box follows the person through the scene (the background
slides by ``speed`` x the sideways part of the walk, reflected at the scene's ends), the box jitters a little
and the person grows or shrinks as they walk towards or away from the camera. Camera noise is drawn per frame.

Layouts (``<out>/<domain>/``):

- ``mars``: ``bbox_train/<pid>/<pid>C<cam>T<tracklet>F<frame>.jpg`` (e.g. ``0001C1T0001F001.jpg``) and
  ``bbox_test/`` with distractors (``0000``) and junk (``00-1``); ``info/train_name.txt``, ``test_name.txt``
  list the images, ``info/tracks_train_info.mat`` and ``tracks_test_info.mat`` hold one row per tracklet
  (first and last 1-based line of the name list, pid, camera), ``info/query_IDX.mat`` the 1-based rows of the
  test tracklets that are queries (MARS's gallery is every test tracklet, the queries included).
- ``dukemtmc-videoreid``: ``{train,query,gallery}/<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<n>.jpg``: one query
  tracklet per test identity, the rest of its tracklets in ``gallery/`` (the dataset's README: "a video for each ID
  is used as the query and the remaining videos are placed in the gallery").

``ground_truth.parquet`` has one row per written frame: path, split, pid, camid, tracklet, frame, and what the
seed drew (yaw, phase, placement, occlusion, body shape, clothes).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from reid_repro.config import WorldConfig
from reid_repro.config.video import VideoConfig
from reid_repro.io import write_json, write_parquet
from reid_repro.world.body import SHAPE_KEYS, Mesh, yaw_matrix
from reid_repro.world.generate import (LOOK_STREAM, Identity, _light_color, _occlude, _placement, _yaw,
                                       apply_camera, background, bag_mesh, camera_styles, fitted, query_positions,
                                       sample_identity, vertex_colors)
from reid_repro.world.render import Placement, Renderer

VIDEO_ROLES = {"train": 10, "test": 11, "distractor": 12, "junk": 13}   # the image world uses 0..3


@dataclass
class Tracklet:
    pid: int                       # -1: junk, 0: distractor
    cam: int                       # 0-based
    split: str                     # train | query | gallery
    number: int = 0                # the domain's tracklet number (ground truth's ``tracklet``)
    images: list = field(default_factory=list)     # PIL images, in frame order
    truth: list = field(default_factory=list)      # one dict per frame: what the seed drew


def _reflect(x: float, high: int) -> int:
    """``x`` folded into [0, high] (a triangle wave): the box turning back at the scene's ends."""
    period = 2 * high
    x = x % period if period else 0.0
    return int(round(x if x <= high else period - x))


class VideoWriter:
    """Renders the tracklets of one video domain; all randomness comes from the streams named above."""

    def __init__(self, world: WorldConfig, video: VideoConfig, body, renderer: Renderer):
        self.world, self.video, self.body, self.renderer = world, video, body, renderer

    def tracklet(self, person: Identity, styles, cam: int, n: int, rng: np.random.Generator, look, step: float,
                 speed: float, split: str) -> Tracklet:
        """``n`` consecutive frames of ``person`` under camera ``cam``."""
        h, w = self.world.height, self.world.width
        style = styles[cam]
        yaw = _yaw(rng, look.yaw_arc, style.yaw_centre)
        phase0 = float(rng.uniform(0, 2 * np.pi))
        place0 = _placement(rng)
        shift0, tint = float(rng.integers(0, w)), rng.uniform(0.75, 1.25, 3)
        occluded = bool(rng.random() < look.occlusion)
        occluder_seed = int(rng.integers(2**31))
        first_occluded, last_occluded = sorted(int(v) for v in rng.integers(0, n, 2))
        # the yaw is the walking direction, 0 facing the camera (-y): sideways part sin, towards the camera cos
        sideways, towards = math.sin(math.radians(yaw)), math.cos(math.radians(yaw))
        phases = [phase0 + step * t for t in range(n)]
        meshes = self.body.meshes(person.shape, phases, [0.0] * n)
        colors = vertex_colors(person, meshes[0])
        out = Tracklet(person.pid, cam, split)
        drawn = {**{f"shape_{k}": person.shape[k] for k in SHAPE_KEYS}, "upper": "#%02x%02x%02x" % person.upper,
                 "lower": "#%02x%02x%02x" % person.lower, "texture": person.texture, "bag": person.bag}
        for t, mesh in enumerate(meshes):
            place = Placement(dx=place0.dx + float(rng.normal(0, 0.01)), dz=place0.dz + float(rng.normal(0, 0.005)),
                              scale=float(np.clip(place0.scale * (1 + 0.003 * towards * speed * t), 0.8, 1.25)))
            if look.fit is not None:
                place = fitted(place, mesh.vertices[:, 2], look.fit, self.renderer.view_height)
            v = mesh.vertices @ yaw_matrix(yaw).T
            bag = bag_mesh(person, Mesh(v, mesh.faces, mesh.parts), yaw)
            rgb, mask = self.renderer.render(v, mesh.faces, colors, place, extras=[bag] if bag else [],
                                             light=style.light, ambient=style.ambient,
                                             light_azimuth=style.light_azimuth, light_color=_light_color(style))
            bg = background(style, h, w, _reflect(shift0 + speed * sideways * t, w), tint)
            img = np.where(mask[..., None], rgb.astype(np.float64), bg)
            if occluded and first_occluded <= t <= last_occluded:
                _occlude(img, np.random.default_rng(occluder_seed))     # one occluder, held while it lasts
            out.images.append(apply_camera(img, style, rng))
            out.truth.append({"yaw": yaw, "phase": phases[t], "dx": place.dx, "dz": place.dz, "scale": place.scale,
                              "occluded": bool(occluded and first_occluded <= t <= last_occluded), **drawn})
        return out

    def junk(self, styles, cam: int, n: int, rng: np.random.Generator) -> Tracklet:
        """A junk tracklet (MARS's pid -1): frames of the camera's scene with nobody in them."""
        h, w = self.world.height, self.world.width
        out = Tracklet(-1, cam, "gallery")
        shift0 = float(rng.integers(0, w))
        for t in range(n):
            bg = background(styles[cam], h, w, _reflect(shift0 + t, w))
            out.images.append(apply_camera(bg, styles[cam], rng))
            out.truth.append({"yaw": 0.0, "phase": 0.0, "dx": 0.0, "dz": 0.0, "scale": 1.0, "occluded": False,
                              **{f"shape_{k}": np.nan for k in SHAPE_KEYS}, "upper": "",
                              "lower": "", "texture": "", "bag": ""})
        return out

    def domain_tracklets(self, name: str) -> list[Tracklet]:
        """Every tracklet of video domain ``name``: training, test (queries marked), distractors, junk."""
        world, dom = self.world, self.video.domains[name]
        sizes = self.video.sizes
        image_domain = world.domains[dom.cameras_of]
        index = list(world.domains).index(dom.cameras_of)     # the image domain's camera and look streams
        look = world.look(dom.cameras_of)
        styles = camera_styles(image_domain, np.random.default_rng([world.seed, index]), look,
                               np.random.default_rng([world.seed, index, LOOK_STREAM]))
        lo, hi = self.video.frame_range(name)
        vindex = list(self.video.domains).index(name)
        people = [("train", pid, k) for k, pid in enumerate(range(1, sizes.train_ids + 1))]
        people += [("test", pid, k) for k, pid in
                   enumerate(range(sizes.train_ids + 1, sizes.train_ids + sizes.test_ids + 1))]
        people += [("distractor", 0, k) for k in range(sizes.distractor_ids)]
        tracklets = []
        for role, pid, k in tqdm(people, desc=f"video {name}", unit="id", mininterval=2.0, disable=None):
            rng = np.random.default_rng([world.seed, vindex, VIDEO_ROLES[role], k])
            person = sample_identity(pid, image_domain, rng, look)
            mean = dom.tracklets_per_id if role == "train" else dom.test_tracklets_per_id
            count = max(len(person.cameras), int(rng.poisson(mean)))
            if role == "distractor":
                cams = [int(c) for c in rng.choice(person.cameras, max(1, count // 2))]
            else:                       # every camera of the identity's subset at least once
                cams = list(person.cameras) + [int(c) for c in rng.choice(person.cameras, count - len(person.cameras))]
            splits = ["train"] * len(cams) if role == "train" else ["gallery"] * len(cams)
            if role == "test":
                for i in query_positions(cams, dom.queries_per_id):
                    splits[i] = "query"
            for cam, split in zip(cams, splits):
                n = int(rng.integers(lo, hi + 1))
                tracklets.append(self.tracklet(person, styles, cam, n, rng, look, dom.phase_step, dom.speed, split))
        rng = np.random.default_rng([world.seed, vindex, VIDEO_ROLES["junk"]])
        for _ in range(sizes.junk_tracklets if dom.layout == "mars" else 0):
            tracklets.append(self.junk(styles, int(rng.integers(image_domain.cameras)), int(rng.integers(lo, hi + 1)),
                                       rng))
        for number, tr in enumerate(tracklets):
            tr.number = number
        return tracklets

    def write_domain(self, name: str, out: Path) -> pd.DataFrame:
        root = Path(out) / name
        if root.exists():
            shutil.rmtree(root)
        tracklets = self.domain_tracklets(name)
        layout = self.video.domains[name].layout
        table = pd.DataFrame(WRITERS[layout](root, tracklets))
        table.insert(0, "domain", name)
        write_parquet(root / "ground_truth.parquet", table)
        return table


def _truth_row(rel: str, tracklet: Tracklet, t: int) -> dict:
    return {"path": rel, "split": tracklet.split, "pid": tracklet.pid, "camid": tracklet.cam,
            "tracklet": tracklet.number, "frame": t + 1, **tracklet.truth[t]}


# the 116-byte text at the head of a MAT v5 file: scipy writes the time of writing there, which would make every
# rebuild of the stand-in differ in bytes from the last (and every stage that reads it stale)
MAT_TEXT = b"MATLAB 5.0 MAT-file Platform: posix, Created by: reid-repro video-world"


def savemat(path: Path, arrays: dict) -> None:
    """``scipy.io.savemat`` with a fixed header text, so that the same seed writes the same bytes."""
    import io

    from scipy.io import savemat as scipy_savemat

    buffer = io.BytesIO()
    scipy_savemat(buffer, arrays)
    path.write_bytes(MAT_TEXT.ljust(116, b"\0") + buffer.getvalue()[116:])


def write_mars(root: Path, tracklets: list[Tracklet]) -> list[dict]:
    """MARS: bbox_train/ and bbox_test/ with info/ (see the module docstring)."""
    rows = []
    info = root / "info"
    info.mkdir(parents=True)
    query_rows = []
    for split, folder, names_file, mat, key in (("train", "bbox_train", "train_name.txt", "tracks_train_info.mat",
                                                 "track_train_info"),
                                                ("test", "bbox_test", "test_name.txt", "tracks_test_info.mat",
                                                 "track_test_info")):
        chosen = [tr for tr in tracklets if (tr.split == "train") == (split == "train")]
        # MARS lists the tracklets by identity folder (junk 00-1 first, then 0000, 0001, ...) and camera
        chosen.sort(key=lambda tr: (tr.pid, tr.cam))
        names, tracks, per_cam = [], [], {}
        for tr in chosen:
            pid = "00-1" if tr.pid < 0 else f"{tr.pid:04d}"
            per_cam[(tr.pid, tr.cam)] = per_cam.get((tr.pid, tr.cam), 0) + 1
            (root / folder / pid).mkdir(parents=True, exist_ok=True)
            start = len(names) + 1
            for t, img in enumerate(tr.images):
                name = f"{pid}C{tr.cam + 1}T{per_cam[(tr.pid, tr.cam)]:04d}F{t + 1:03d}.jpg"
                img.save(root / folder / pid / name, quality=92)
                names.append(name)
                rows.append(_truth_row(f"{folder}/{pid}/{name}", tr, t))
            tracks.append([start, len(names), tr.pid, tr.cam + 1])
            if tr.split == "query":
                query_rows.append(len(tracks))                     # 1-based row of the test tracks
        (info / names_file).write_text("".join(f"{n}\n" for n in names))
        savemat(info / mat, {key: np.asarray(tracks, dtype=np.float64).reshape(-1, 4)})
    savemat(info / "query_IDX.mat", {"query_IDX": np.asarray(query_rows, dtype=np.float64).reshape(1, -1)})
    return rows


def write_duke_video(root: Path, tracklets: list[Tracklet]) -> list[dict]:
    """DukeMTMC-VideoReID: {train,query,gallery}/<pid>/<tracklet>/<pid>_C<cam>_F<frame>_X<n>.jpg (X: the frame's
    number in its camera's video)."""
    rows, per_id, clock = [], {}, {}
    for tr in tracklets:
        per_id[tr.pid] = per_id.get(tr.pid, 0) + 1
        pid = f"{tr.pid:04d}"
        where = root / tr.split / pid / f"{per_id[tr.pid]:04d}"
        where.mkdir(parents=True, exist_ok=True)
        for t, img in enumerate(tr.images):
            clock[tr.cam] = clock.get(tr.cam, 0) + 12          # the dataset samples every 12th video frame
            name = f"{pid}_C{tr.cam + 1}_F{t + 1:04d}_X{clock[tr.cam]:05d}.jpg"
            img.save(where / name, quality=92)
            rows.append(_truth_row(where.relative_to(root).joinpath(name).as_posix(), tr, t))
    return rows


WRITERS = {"mars": write_mars, "dukemtmc-videoreid": write_duke_video}


def generate_video(world: WorldConfig, video: VideoConfig, out: str | Path, body,
                   renderer: Renderer | None = None) -> dict:
    """Write every video domain under ``out``; returns the counts written to ``out/video.json``."""
    out = Path(out)
    renderer = renderer or Renderer(world.height, world.width)
    writer = VideoWriter(world, video, body, renderer)
    summary = {"seed": world.seed, "profile": video.profile, "height": world.height, "width": world.width,
               "domains": {}}
    for name, dom in video.domains.items():
        table = writer.write_domain(name, out)
        people = table[table["pid"] > 0]
        tracks = table.drop_duplicates(["split", "tracklet"])
        summary["domains"][name] = {
            "layout": dom.layout, "cameras_of": dom.cameras_of,
            **{f"{s}_tracklets": int((tracks["split"] == s).sum()) for s in ("train", "query", "gallery")},
            **{f"{s}_frames": int((table["split"] == s).sum()) for s in ("train", "query", "gallery")},
            "train_ids": int(people.query("split == 'train'")["pid"].nunique()),
            "test_ids": int(people.query("split != 'train'")["pid"].nunique()),
            "mean_frames_per_tracklet": round(float(table.groupby(["split", "tracklet"]).size().mean()), 2),
        }
    write_json(out / "video.json", summary)
    return summary


