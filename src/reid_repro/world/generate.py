"""The synthetic person world: identities rendered from a body model, written in the Market-1501 layout.

Id-related factors (GCL+ Table 1): upper/lower clothing colours with a texture (stripes or a logo), sleeve and
trouser length, hair colour, body shape, a bag on the back or the front, shoes.
Id-unrelated factors: walk-cycle phase, yaw (360 degrees), per-camera illumination, colour cast, blur, noise and
resolution, per-camera backgrounds, crop jitter and partial occlusion.

A domain's look (``world.looks``, config.Look) sets the distributions apart from the camera styles: the clothes'
hue, saturation and value ranges, sleeve and trouser lengths and textures (identity), and per camera the light's
intensity, direction and colour, the scene's clutter, the resolution and the arc of walking directions seen
(not identity). The neutral look draws what the first worlds drew, number for number; what a look adds per
camera comes from a stream of its own (``[seed, domain, 7]``), so the camera styles' draws do not move.

Each domain writes ``<out>/<domain>/{bounding_box_train,query,bounding_box_test}/`` with Market file names and
``<out>/<domain>/ground_truth.parquet`` with one row per image (labels, body shape, yaw, phase, camera style).
The same seed gives byte-identical images.
"""

from __future__ import annotations

import colorsys
import math
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter
from tqdm import tqdm

from reid_repro.config import BAGS, TEXTURES, Domain, Look, WorldConfig
from reid_repro.errors import ReidReproError
from reid_repro.io import write_json, write_parquet
from reid_repro.world.body import PARTS, SHAPE_KEYS, Mesh, yaw_matrix
from reid_repro.world.render import Placement, Renderer

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
PRETRAIN = "pretrain"
P = {name: i for i, name in enumerate(PARTS)}
HAIR = [(20, 15, 10), (60, 40, 20), (120, 80, 40), (200, 170, 90), (90, 90, 90), (150, 40, 20)]
SKIN = [(240, 200, 170), (220, 170, 130), (180, 130, 90), (120, 80, 55), (80, 55, 40)]


@dataclass(frozen=True)
class CameraStyle:
    gain: tuple          # per-channel colour cast x brightness
    gamma: float
    blur: float          # Gaussian blur radius, pixels
    noise: float         # Gaussian noise sigma, 0..255
    resolution: float    # down-sampling factor before up-sampling back, (0, 1]
    bg_top: tuple
    bg_bottom: tuple
    bg_seed: int
    light: float = 3.0           # the directional light's intensity (the look's; 3.0 in the neutral look)
    ambient: float = 0.45
    light_azimuth: float = 0.0   # degrees the light is turned about the vertical from the camera's direction
    warmth: float = 0.0          # the light's colour: < 0 blue, > 0 warm
    yaw_centre: float = 0.0      # the walking direction the camera faces (with the look's yaw_arc < 360)
    panels: int = 6
    clutter: float = 0.0


@dataclass(frozen=True)
class Identity:
    pid: int
    shape: dict
    upper: tuple
    lower: tuple
    texture: str          # none | stripes | logo
    texture_color: tuple
    long_sleeves: bool
    long_trousers: bool
    hair: tuple
    long_hair: bool
    skin: tuple
    shoes: tuple
    bag: str              # none | back | front
    bag_color: tuple
    cameras: tuple


def _hsv(h, s, v):
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _q(x: float) -> float:
    """A style value rounded to 6 decimals: the table and the renderer use the same number on every machine."""
    return round(float(x), 6)


def camera_styles(domain: Domain, rng: np.random.Generator, look: Look | None = None,
                  look_rng: np.random.Generator | None = None) -> list[CameraStyle]:
    """Camera styles strong enough that generic features cluster partly by camera; with ``look``, each camera's
    light, scene and resolution from it, drawn from ``look_rng`` (without a look: the styles alone).

    ``math.exp``, not ``np.exp``: NumPy's AVX-512 exp differs from the C library's in the last bit for a few
    percent of inputs, which made the ground truth of two machines of the same kind differ."""
    if look is not None and look_rng is None:
        raise ValueError("camera_styles: a look needs its own stream (look_rng)")
    k = domain.style_strength
    styles = []
    for c in range(domain.cameras):
        cast = np.clip(1 + k * rng.normal(0, 0.18, 3), 0.55, 1.5)
        bright = math.exp(k * float(rng.normal(0, 0.3)))
        hue = domain.hue + rng.uniform(-domain.hue_spread, domain.hue_spread)
        gamma = _q(math.exp(k * float(rng.normal(0, 0.15))))      # the draws in the first worlds' order
        blur, noise = _q(k * rng.uniform(0, 0.9)), _q(k * rng.uniform(1, 8))
        shrink = rng.uniform(0, 0.45)
        bg_top = _hsv(hue, rng.uniform(0.1, 0.6), rng.uniform(0.4, 0.95))
        bg_bottom = _hsv(hue + rng.uniform(-0.1, 0.1), rng.uniform(0.05, 0.5), rng.uniform(0.2, 0.7))
        style = CameraStyle(gain=tuple(_q(g * bright) for g in cast), gamma=gamma, blur=blur, noise=noise,
                            resolution=_q(np.clip(1 - k * shrink, 0.35, 1)), bg_top=bg_top, bg_bottom=bg_bottom,
                            bg_seed=int(rng.integers(2**31)))
        if look is not None:
            resolution = style.resolution
            if c < look.low_res_cameras:
                resolution = _q(look.low_res_factor)
            elif look.resolution is not None:     # the same draw, mapped onto the look's range
                lo, hi = look.resolution
                resolution = _q(lo + (hi - lo) * shrink / 0.45)
            style = replace(
                style, resolution=resolution, light=_q(look_rng.uniform(*look.light)),
                ambient=_q(look_rng.uniform(*look.ambient)),
                light_azimuth=_q(look_rng.uniform(-look.light_azimuth, look.light_azimuth)) + 0.0,   # no -0.0
                warmth=_q(look_rng.uniform(*look.warmth)), yaw_centre=_q(look_rng.uniform(0, 360)),
                panels=look.panels, clutter=look.clutter)
        styles.append(style)
    return styles


def _in(unit: float, lo_hi: list) -> float:
    """A uniform draw on [0, 1) mapped onto [lo, hi); [0, 1] returns the draw itself, bit for bit."""
    lo, hi = lo_hi
    return unit if (lo, hi) == (0.0, 1.0) else lo + (hi - lo) * unit


def _weighted(rng: np.random.Generator, names: tuple, weights: dict) -> str:
    """One of the ``names`` that ``weights`` names, in proportion to its weight."""
    names = [n for n in names if n in weights]
    p = np.array([weights[n] for n in names], dtype=np.float64)
    return str(rng.choice(names, p=p / p.sum()))


def _texture(rng: np.random.Generator, weights: dict | None) -> str:
    if weights is None:            # the first worlds' draw: one of three, alike
        return str(rng.choice(["none", "stripes", "logo"]))
    return _weighted(rng, TEXTURES, weights)


def _bag(rng: np.random.Generator, weights: dict | None) -> str:
    """A bag from ``weights`` over BAGS; None: the first worlds' none / back / front at 0.4 / 0.4 / 0.2."""
    if weights is None:
        return str(rng.choice(list(BAGS), p=[0.4, 0.4, 0.2]))
    return _weighted(rng, BAGS, weights)


def sample_identity(pid: int, domain: Domain, rng: np.random.Generator, look: Look) -> Identity:
    """One identity's factors, the clothes, body and bags drawn from ``look``'s distributions."""
    n_cams = int(rng.integers(2, min(domain.cameras, 5) + 1))
    return Identity(
        pid=pid,
        shape={k: float(rng.uniform(*(look.body or {}).get(k, (0.15, 0.85)))) for k in SHAPE_KEYS},
        upper=_hsv(_in(rng.random(), look.clothing_hue), rng.uniform(*look.upper_saturation),
                   rng.uniform(*look.upper_value)),
        lower=_hsv(_in(rng.random(), look.clothing_hue), rng.uniform(*look.lower_saturation),
                   rng.uniform(*look.lower_value)),
        texture=_texture(rng, look.textures),
        texture_color=_hsv(rng.random(), rng.uniform(0.3, 1), rng.uniform(0.5, 1)),
        long_sleeves=bool(rng.random() < look.long_sleeves), long_trousers=bool(rng.random() < look.long_trousers),
        hair=HAIR[int(rng.integers(len(HAIR)))], long_hair=bool(rng.random() < 0.4),
        skin=SKIN[int(rng.integers(len(SKIN)))],
        shoes=_hsv(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.1, 0.9)),
        bag=_bag(rng, look.bags),
        bag_color=_hsv(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.15, 0.8)),
        cameras=tuple(int(c) for c in np.sort(rng.choice(domain.cameras, n_cams, replace=False))),
    )


ROLES = {"train": 0, "test": 1, "distractor": 2, "junk": 3}


def query_positions(cams: list[int], limit: int) -> list[int]:
    """Which of a test identity's images are queries: the first image in each of up to ``limit`` cameras
    (Market-1501 keeps one query per camera and identity), and only where an image of the identity in
    another camera stays in the gallery, so every query has a cross-camera match."""
    first = {}
    for i, c in enumerate(cams):
        first.setdefault(c, i)
    chosen = list(first.values())[:limit]
    gallery_cams = lambda q: {c for i, c in enumerate(cams) if i not in q}  # noqa: E731
    while chosen and any(gallery_cams(chosen) <= {cams[i]} for i in chosen):
        chosen.pop()
    return chosen


def vertex_colors(person: Identity, mesh: Mesh) -> np.ndarray:
    """Per-vertex RGB from the identity's factors, on an upright mesh facing -y."""
    v, part = mesh.vertices, mesh.parts
    colors = np.tile(np.array(person.skin, np.uint8), (len(v), 1))
    upper = np.isin(part, [P["torso"]] + ([P["upper_arm"], P["lower_arm"]] if person.long_sleeves else [P["upper_arm"]]))
    waist = v[part == P["torso"], 2].min() + 0.12
    lower = np.isin(part, [P["thigh"]] + ([P["shin"]] if person.long_trousers else [])) | (
        (part == P["torso"]) & (v[:, 2] < waist))
    colors[upper & ~lower] = person.upper
    colors[lower] = person.lower
    torso = (part == P["torso"]) & (v[:, 2] >= waist)
    around = np.arctan2(v[:, 0], -v[:, 1])            # angle about the body's axis, 0 at the front
    if person.texture == "stripes":
        colors[torso & (np.floor(v[:, 2] / 0.06) % 2 == 0)] = person.texture_color
    elif person.texture == "checks":                  # plaid: bands crossed with sectors
        colors[torso & ((np.floor(v[:, 2] / 0.06) + np.floor(around / (np.pi / 6))) % 2 == 0)] = \
            person.texture_color
    elif person.texture == "vstripes":
        colors[torso & (np.floor(around / (np.pi / 8)) % 2 == 0)] = person.texture_color
    elif person.texture == "colorblock":              # two-tone top: the chest and shoulders another colour
        top_z = v[part == P["torso"], 2].max()
        colors[torso & (v[:, 2] > (waist + top_z) / 2)] = person.texture_color
    elif person.texture == "logo":
        chest = v[torso, 2].max() - 0.2
        front = v[torso, 1].min() + 0.06
        colors[torso & (np.abs(v[:, 0]) < 0.09) & (np.abs(v[:, 2] - chest) < 0.09) & (v[:, 1] < front)] = \
            person.texture_color
    head = part == P["head"]
    top = v[head, 2].max()
    hair = head & ((v[:, 2] > top - 0.07) | ((v[:, 1] > v[head, 1].mean()) & (v[:, 2] > top - (0.3 if person.long_hair else 0.16))))
    colors[hair] = person.hair
    colors[part == P["foot"]] = person.shoes
    return colors


def bag_mesh(person: Identity, mesh: Mesh, yaw: float):
    """A box on the back or the front of the (yawed) torso, or None."""
    if person.bag == "none":
        return None
    import trimesh

    torso = mesh.vertices[mesh.parts == P["torso"]]
    facing = yaw_matrix(yaw) @ np.array([0.0, -1.0, 0.0])
    size = (0.3, 0.12, 0.36) if person.bag == "back" else (0.26, 0.08, 0.22)
    side = -1.0 if person.bag == "back" else 1.0
    upright = torso @ yaw_matrix(yaw)            # back to the body frame to measure depth
    depth = (upright[:, 1].max() - upright[:, 1].min()) / 2
    centre = torso.mean(0) + side * facing * (depth + size[1] / 2)
    centre[2] = np.percentile(torso[:, 2], 70 if person.bag == "back" else 45)
    transform = np.eye(4)
    transform[:3, :3] = yaw_matrix(yaw)
    transform[:3, 3] = centre
    box = trimesh.creation.box(extents=size, transform=transform)
    return box.vertices.astype(np.float32), box.faces, person.bag_color


def background(style: CameraStyle, height: int, width: int, shift: int, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
    """The camera's scene (fixed layout per camera), seen at a horizontal ``shift`` under a per-image ``tint``
    (light changing over the day, a different spot of the scene)."""
    rng = np.random.default_rng(style.bg_seed)
    t = np.linspace(0, 1, height)[:, None, None]
    img = (1 - t) * np.array(style.bg_top) + t * np.array(style.bg_bottom)
    img = np.repeat(img, width * 2, axis=1)
    for _ in range(style.panels):   # wall panels, poles, doors: fixed per camera
        x0, w = rng.integers(0, width * 2), rng.integers(3, width // 2)
        y0 = rng.integers(0, height // 2)
        img[y0:, x0:x0 + w] = img[y0:, x0:x0 + w] * rng.uniform(0.6, 1.3) + rng.uniform(-20, 20, 3)
    floor = int(height * rng.uniform(0.78, 0.9))
    img[floor:] *= 0.8
    for _ in range(int(round(style.clutter * width))):   # clutter: thin poles, railings, signs
        x0, w = rng.integers(0, width * 2), rng.integers(1, 3)
        y0 = rng.integers(0, height - 4)
        img[y0:y0 + rng.integers(4, height), x0:x0 + w] = rng.uniform(0, 255, 3)
    return img[:, shift:shift + width] * np.asarray(tint)


def apply_camera(rgb: np.ndarray, style: CameraStyle, rng: np.random.Generator) -> Image.Image:
    h, w = rgb.shape[:2]
    # gamma through a 256-entry table of math.pow (np.power's AVX-512 path differs in the last bit)
    lut = np.array([math.pow(i / 255.0, style.gamma) for i in range(256)])
    x = lut[np.clip(rgb, 0, 255).astype(np.uint8)] * np.array(style.gain)
    img = Image.fromarray(np.clip(x * 255, 0, 255).astype(np.uint8))
    if style.resolution < 1:
        small = (max(8, int(w * style.resolution)), max(16, int(h * style.resolution)))
        img = img.resize(small, Image.BILINEAR).resize((w, h), Image.BILINEAR)
    if style.blur > 0.05:
        img = img.filter(ImageFilter.GaussianBlur(style.blur))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, style.noise, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


LOOK_STREAM = 7      # the look's per-camera draws: [seed, domain index, 7], apart from the camera styles'


def _yaw(rng: np.random.Generator, arc: float, centre: float) -> float:
    """The walking direction of one image: any (the first worlds' draw) when the camera sees the full circle,
    else within ``arc`` degrees about the camera's ``centre``, walking towards it or away (one draw either way)."""
    if arc >= 360:
        return float(rng.uniform(0, 360))
    u = float(rng.uniform(0, 1))
    away = 180.0 if u >= 0.5 else 0.0
    return (centre + away + (2 * (u % 0.5) - 0.5) * arc) % 360.0


def _light_color(style: CameraStyle):
    """The light's RGB from the camera's warmth (None: white, pyrender's default, for the neutral look)."""
    if style.warmth == 0:
        return None
    return (1 + 0.35 * style.warmth, 1.0, 1 - 0.35 * style.warmth)


def _placement(rng: np.random.Generator) -> Placement:
    return Placement(dx=float(rng.uniform(-0.08, 0.08)), dz=float(rng.uniform(-0.06, 0.06)),
                     scale=float(rng.uniform(0.92, 1.08)))


def fitted(place: Placement, heights: np.ndarray, fit: float, view_height: float) -> Placement:
    """A detector's box around the person (vertex heights ``heights``, metres): the frame spans the person's
    height times ``fit``, centred on the person; the draw's jitter (offsets, zoom) kept relative to that frame.
    The renderer's fixed frame is ``view_height`` tall, centred 0.85 m up."""
    low, top = float(heights.min()), float(heights.max())
    frame = (top - low) * fit
    unit = frame / view_height                 # offsets were drawn for the fixed frame
    return Placement(dx=place.dx * unit, dz=(low + top) / 2 - 0.85 + place.dz * unit,
                     scale=place.scale * view_height / frame)


def _occlude(img: np.ndarray, rng: np.random.Generator) -> None:
    h, w = img.shape[:2]
    oh, ow = int(h * rng.uniform(0.2, 0.4)), int(w * rng.uniform(0.3, 0.6))
    y0 = h - oh if rng.random() < 0.6 else int(rng.integers(0, h - oh))
    x0 = int(rng.integers(0, w - ow + 1))
    img[y0:y0 + oh, x0:x0 + ow] = rng.uniform(30, 220, 3)


class WorldWriter:
    """Renders identities and writes one domain; all randomness comes from the generator passed in."""

    def __init__(self, cfg: WorldConfig, body, renderer: Renderer):
        self.cfg, self.body, self.renderer = cfg, body, renderer

    def person_images(self, person: Identity, styles, shots, rng, fit: float | None = None):
        """shots: list of (camera, yaw, phase, placement, occluded). Yields (image, foreground pixels, placement
        used): with ``fit`` (config.Look) the shot's placement is fitted to the person (``fitted``)."""
        meshes = self.body.meshes(person.shape, [s[2] for s in shots], [0.0] * len(shots))
        colors = vertex_colors(person, meshes[0])
        h, w = self.cfg.height, self.cfg.width
        for mesh, (cam, yaw, _, place, occluded) in zip(meshes, shots):
            if fit is not None:
                place = fitted(place, mesh.vertices[:, 2], fit, self.renderer.view_height)
            v = mesh.vertices @ yaw_matrix(yaw).T
            yawed = Mesh(v, mesh.faces, mesh.parts)
            bag = bag_mesh(person, yawed, yaw)
            style = styles[cam]
            rgb, mask = self.renderer.render(v, mesh.faces, colors, place, extras=[bag] if bag else [],
                                             light=style.light, ambient=style.ambient,
                                             light_azimuth=style.light_azimuth, light_color=_light_color(style))
            bg = background(styles[cam], h, w, int(rng.integers(0, w)), rng.uniform(0.75, 1.25, 3))
            img = np.where(mask[..., None], rgb.astype(np.float64), bg)
            if occluded:
                _occlude(img, rng)
            yield apply_camera(img, styles[cam], rng), int(mask.sum()), place

    def write_domain(self, name: str, domain: Domain, out: Path, index: int) -> pd.DataFrame:
        """Every identity draws from its own stream ``[seed, domain, role, k]``, so growing the test set
        (cheap: test images are only rendered and embedded) leaves the training images as they were."""
        cfg, sizes = self.cfg, self.cfg.sizes
        look = cfg.looks[domain.look]
        styles = camera_styles(domain, np.random.default_rng([cfg.seed, index]), look,
                               np.random.default_rng([cfg.seed, index, LOOK_STREAM]))
        n_train = max(2, int(round(sizes.train_ids * domain.id_scale)))
        n_test = max(2, int(round(sizes.test_ids * domain.id_scale * domain.test_id_scale)))
        n_distr = int(round(sizes.distractor_ids * domain.id_scale))
        root = out / name
        if root.exists():
            shutil.rmtree(root)
        for folder in SPLIT_FOLDERS.values():
            (root / folder).mkdir(parents=True)
        rows, stats = [], []
        people = [("train", pid, k) for k, pid in enumerate(range(1, n_train + 1))]
        people += [("test", pid, k) for k, pid in enumerate(range(n_train + 1, n_train + n_test + 1))]
        people += [("distractor", 0, k) for k in range(n_distr)]
        frames = iter(range(1, 10**6))
        for role, pid, k in tqdm(people, desc=f"world {name}", unit="id", mininterval=2.0, disable=None):
            rng = np.random.default_rng([cfg.seed, index, ROLES[role], k])
            person = sample_identity(pid, domain, rng, look)
            mean = sizes.images_per_id if role == "train" else sizes.test_images_per_id
            n = max(len(person.cameras), int(rng.poisson(mean)))
            if role == "distractor":   # a few gallery images each, all labelled pid 0
                cams = [int(c) for c in rng.choice(person.cameras, max(1, n // 3))]
            else:                      # every camera of the identity's subset at least once
                cams = list(person.cameras) + [int(c) for c in rng.choice(person.cameras, n - len(person.cameras))]
            shots = [(c, _yaw(rng, look.yaw_arc, styles[c].yaw_centre), float(rng.uniform(0, 2 * np.pi)),
                      _placement(rng), bool(rng.random() < look.occlusion)) for c in cams]
            splits = ["train"] * n if role == "train" else ["gallery"] * n
            if role == "test":
                for i in query_positions(cams, sizes.queries_per_id):
                    splits[i] = "query"
            images = self.person_images(person, styles, shots, rng, look.fit)
            for (img, fill, place), shot, split in zip(images, shots, splits):
                shot = (*shot[:3], place, *shot[4:])       # the placement rendered (fitted with look.fit)
                rows.append(self._save(root, img, person, shot, split, next(frames), styles))
                stats.append({"path": rows[-1]["path"], "foreground_pixels": fill})
        rng = np.random.default_rng([cfg.seed, index, ROLES["junk"]])
        for _ in range(sizes.junk_images):   # junk boxes: background or a sliver of a person, pid -1
            cam = int(rng.integers(domain.cameras))
            bg = background(styles[cam], cfg.height, cfg.width, int(rng.integers(0, cfg.width)))
            junk = Identity(-1, {}, (0, 0, 0), (0, 0, 0), "none", (0, 0, 0), False, False, (0, 0, 0), False,
                            (0, 0, 0), (0, 0, 0), "none", (0, 0, 0), (cam,))
            rows.append(self._save(root, apply_camera(bg, styles[cam], rng), junk, (cam, 0.0, 0.0, Placement(), False),
                                   "gallery", next(frames), styles))
            stats.append({"path": rows[-1]["path"], "foreground_pixels": 0})
        table = pd.DataFrame(rows)
        table.insert(0, "domain", name)
        # ground_truth.parquet holds only what the seed draws (identical on every machine); what the OpenGL
        # renderer measured (it may differ in a few pixels between drivers) goes beside it
        write_parquet(root / "ground_truth.parquet", table)
        write_parquet(root / "render_stats.parquet", pd.DataFrame(stats))
        return table

    def _save(self, root, img, person, shot, split, frame, styles) -> dict:
        cam, yaw, phase, place, occluded = shot
        pid = "-1" if person.pid < 0 else f"{person.pid:04d}"
        rel = f"{SPLIT_FOLDERS[split]}/{pid}_c{cam + 1}s1_{frame:06d}_00.jpg"
        img.save(root / rel, quality=92)
        style = styles[cam]
        row = {"path": rel, "split": split, "pid": person.pid, "camid": cam, "frame": frame, "yaw": yaw,
               "phase": phase, "dx": place.dx, "dz": place.dz, "scale": place.scale, "occluded": occluded,
               **{f"shape_{k}": person.shape.get(k, np.nan) for k in SHAPE_KEYS},
               "upper": "#%02x%02x%02x" % person.upper, "lower": "#%02x%02x%02x" % person.lower,
               "texture": person.texture, "hair": "#%02x%02x%02x" % person.hair, "bag": person.bag,
               "shoes": "#%02x%02x%02x" % person.shoes, "long_sleeves": person.long_sleeves,
               "long_trousers": person.long_trousers, "cam_gain": list(style.gain), "cam_blur": style.blur,
               "cam_noise": style.noise, "cam_resolution": style.resolution, "cam_gamma": style.gamma,
               "cam_light": style.light, "cam_ambient": style.ambient, "cam_light_azimuth": style.light_azimuth,
               "cam_warmth": style.warmth}
        return row


def true_view(cfg: WorldConfig, domain: str, row, turn: float, body, renderer: Renderer,
              background=(128, 128, 128)) -> tuple[np.ndarray, np.ndarray]:
    """The world's own render of training image ``row`` (a row of its ground_truth.parquet) with the person turned
    by ``turn`` degrees: the same identity (drawn again from its stream, as write_domain drew it: clothes, hair,
    bag, body shape), walk phase and placement, on a plain background and without the camera's style (both
    id-unrelated). RGB (H x W x 3 uint8) and the foreground mask; at ``turn`` 0 the mask is the image's own."""
    if domain not in cfg.domains:
        raise ReidReproError(f"world.domains.{domain}: no such domain; expected one of {sorted(cfg.domains)}")
    index = list(cfg.domains).index(domain)
    k = int(row.pid) - 1                                   # training identities are pid 1..n, stream k = pid - 1
    person = sample_identity(int(row.pid), cfg.domains[domain], np.random.default_rng([cfg.seed, index,
                                                                                      ROLES["train"], k]),
                             cfg.look(domain))
    mesh = body.meshes(person.shape, [float(row.phase)], [0.0])[0]      # un-yawed, as person_images
    colors = vertex_colors(person, mesh)
    yaw = float(row.yaw) + turn
    v = mesh.vertices @ yaw_matrix(yaw).T
    bag = bag_mesh(person, Mesh(v, mesh.faces, mesh.parts), yaw)
    place = Placement(float(row.dx), float(row.dz), float(row.scale))
    rgb, mask = renderer.render(v, mesh.faces, colors, place, extras=[bag] if bag else [])
    rgb = np.where(mask[..., None], rgb, np.asarray(background, np.uint8)).astype(np.uint8)
    return rgb, mask


def generate_world(cfg: WorldConfig, out: str | Path, body, renderer: Renderer | None = None) -> dict:
    """Write every domain of ``cfg`` under ``out``; returns the counts written to ``out/world.json``."""
    out = Path(out)
    renderer = renderer or Renderer(cfg.height, cfg.width)
    writer = WorldWriter(cfg, body, renderer)
    summary = {"seed": cfg.seed, "profile": cfg.profile, "height": cfg.height, "width": cfg.width, "domains": {}}
    for index, (name, domain) in enumerate(cfg.domains.items()):
        table = writer.write_domain(name, domain, out, index)
        kept = table[table["pid"] >= 0]
        summary["domains"][name] = {
            "cameras": domain.cameras,
            **{s: int((kept["split"] == s).sum()) for s in SPLIT_FOLDERS},
            "train_ids": int(kept.query("split == 'train'")["pid"].nunique()),
            "test_ids": int(kept.query("split != 'train' and pid > 0")["pid"].nunique()),
            "junk": int((table["pid"] < 0).sum()),
            "distractor_images": int((table["pid"] == 0).sum()),
            "domain": asdict(domain),
            "look": asdict(cfg.look(name)),       # the look it was drawn with (tests: the world drawn again)
        }
    write_json(out / "world.json", summary)
    return summary
