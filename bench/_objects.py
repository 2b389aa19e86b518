"""An ImageNet stand-in for issue 38's start experiments (bench/world_plan.md, candidate ``objects``): procedural
objects rendered by the world's renderer under the world's camera styles, one class per object shape.

Each class is a fixed assembly of 2-4 primitives (box, cylinder, cone, capsule, sphere, torus) with its own
proportions and layout; an image of the class jitters those proportions (+-15%), paints every part a random colour
(colour is not the label), turns the object to a random yaw and a small tilt, places it as the world places a
person, and puts it on a camera's background under that camera's style. No person, so no identity of this world
is learnt: the label is the shape. Written in the Market-1501 layout (pid = class, camid = camera), so
``prepare`` and the supervised pretraining read it unchanged.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

PRIMITIVES = ("box", "cylinder", "cone", "capsule", "sphere", "torus")


def _class_parts(rng: np.random.Generator) -> list[dict]:
    """A class: 2-4 primitives stacked and offset into one object about a person's height."""
    parts, z = [], 0.0
    for _ in range(int(rng.integers(2, 5))):
        kind = PRIMITIVES[int(rng.integers(len(PRIMITIVES)))]
        size = rng.uniform([0.15, 0.15, 0.15], [0.7, 0.5, 0.8])
        offset = (float(rng.uniform(-0.2, 0.2)), float(rng.uniform(-0.1, 0.1)))
        parts.append({"kind": kind, "size": size, "offset": offset, "z": z})
        z += float(size[2]) * float(rng.uniform(0.6, 1.0))
    scale = 1.7 / max(z + float(parts[-1]["size"][2]) / 2, 0.5)        # the assembly ~1.7 m tall
    for p in parts:
        p["size"] = p["size"] * scale
        p["z"] *= scale
        p["offset"] = (p["offset"][0] * scale, p["offset"][1] * scale)
    return parts


def _primitive(kind: str, size: np.ndarray):
    import trimesh

    w, d, h = (float(s) for s in size)
    if kind == "box":
        m = trimesh.creation.box(extents=(w, d, h))
    elif kind == "cylinder":
        m = trimesh.creation.cylinder(radius=w / 2, height=h, sections=24)
    elif kind == "cone":
        m = trimesh.creation.cone(radius=w / 2, height=h, sections=24)
        m.apply_translation((0, 0, -h / 2))
    elif kind == "capsule":
        m = trimesh.creation.capsule(radius=min(w, d) / 2, height=max(h - min(w, d), 0.01), count=[12, 12])
    elif kind == "sphere":
        m = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
        m.apply_scale((w / 2, d / 2, h / 2))
    else:
        m = trimesh.creation.torus(major_radius=w / 2, minor_radius=max(min(w, h) / 6, 0.03), major_sections=24,
                                   minor_sections=12)
        m.apply_transform(trimesh.transformations.rotation_matrix(math.pi / 2, (1, 0, 0)))
    return m


def render_objects(out: Path, classes: int = 40, images_per_class: int = 30, cameras: int = 12, seed: int = 0,
                   height: int = 128, width: int = 64, style_strength: float = 1.0) -> int:
    """Write ``out`` in the Market-1501 layout; returns the number of images."""
    from reid_repro.config import Domain
    from reid_repro.world.body import yaw_matrix
    from reid_repro.world.generate import _placement, apply_camera, background, camera_styles
    from reid_repro.world.render import Renderer

    domain = Domain(cameras=cameras, id_scale=1.0, test_id_scale=0.0, style_strength=style_strength, hue=0.8,
                    hue_spread=0.5, look="neutral")
    styles = camera_styles(domain, np.random.default_rng([seed, 99]))
    renderer = Renderer(height, width)
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    frame, written = 0, 0
    for c in range(classes):
        parts = _class_parts(np.random.default_rng([seed, 100, c]))
        rng = np.random.default_rng([seed, 101, c])
        for i in range(images_per_class):
            meshes = []
            yaw, tilt = float(rng.uniform(0, 360)), float(rng.uniform(-12, 12))
            ct, st = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
            rot = yaw_matrix(yaw) @ np.array([[1, 0, 0], [0, ct, -st], [0, st, ct]])
            for p in parts:
                m = _primitive(p["kind"], p["size"] * rng.uniform(0.85, 1.15, 3))
                bottom = m.vertices[:, 2].min()
                v = m.vertices + np.array([p["offset"][0], p["offset"][1], p["z"] - bottom])
                colour = tuple(int(x) for x in rng.integers(20, 236, 3))
                meshes.append(((v @ rot.T).astype(np.float32), np.asarray(m.faces), colour))
            cam = int(rng.integers(cameras))
            (v0, f0, c0), extras = meshes[0], meshes[1:]
            rgb, mask = renderer.render(v0, f0, c0, _placement(rng), extras=extras)
            bg = background(styles[cam], height, width, int(rng.integers(0, width)), rng.uniform(0.75, 1.25, 3))
            img = apply_camera(np.where(mask[..., None], rgb.astype(np.float64), bg), styles[cam], rng)
            frame += 1
            # the layout needs a query and a gallery: the last two images of the first two classes
            split = "bounding_box_train"
            if c < 2 and i >= images_per_class - 2:
                split = "query" if i == images_per_class - 1 else "bounding_box_test"
            img.save(out / split / f"{c + 1:04d}_c{cam + 1}s1_{frame:06d}_00.jpg", quality=92)
            written += 1
    renderer.close()
    return written
