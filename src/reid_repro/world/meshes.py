"""Structure renders for GCL/GCL+ guidance: the grey body mesh of every training image at 8 viewpoints.

Layout (the one the GCL code reads): ``<out>/render/``, ``<out>/render_45/`` ... ``<out>/render_315/``, each with
one file per training image under the image's own file name. ``render/`` is the original view; ``render_<a>/``
turns the body by ``a`` degrees about the vertical axis. Every render keeps the image's size and puts the mesh
where the person is (same offset and scale).

Three sources:
- ``synthetic``: the world's ``ground_truth.parquet`` (body shape, walk phase, yaw, placement of each image);
- ``params``: a user's per-image SMPL parameter file (e.g. converted HMR/SPIN output), see ``PARAM_COLUMNS``;
- ``renders``: a user's folder of GCL-format renders, validated and linked, not copied.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from reid_repro.errors import ReidReproError
from reid_repro.io import check_replaceable, publish_dir, publish_link, staging_dir
from reid_repro.world.body import SHAPE_KEYS, Mesh
from reid_repro.world.render import Placement

ANGLES = tuple(range(0, 360, 45))
# per-image parameter file (parquet) for real data: SMPL betas, axis-angle pose and orientation (SMPL's y-up
# camera frame, as HMR/SPIN write them), and where the person sits in the crop (our Placement: horizontal and
# vertical offset in metres, zoom relative to a 2 m tall view)
PARAM_COLUMNS = {"name": None, "betas": 10, "body_pose": 69, "global_orient": 3, "dx": None, "dz": None,
                 "scale": None}


def render_dir(angle: int) -> str:
    return "render" if angle == 0 else f"render_{angle}"


def _staging(out: Path) -> Path:
    check_replaceable(out)
    staging = staging_dir(out)
    for angle in ANGLES:
        (staging / render_dir(angle)).mkdir(parents=True)
    return staging


def _publish(staging: Path, out: Path) -> None:
    publish_dir(staging, out)      # the previous renders stay whole until the new set is complete


def _save_turntable(renderer, mesh: Mesh, yaw: float, place: Placement, name: str, staging: Path) -> None:
    for angle, grey in zip(ANGLES, renderer.turntable(mesh.vertices, mesh.faces, [yaw + a for a in ANGLES], place)):
        Image.fromarray(grey).convert("RGB").save(staging / render_dir(angle) / name, quality=95)


TRUE_VIEWS = 8      # identities whose first training image also gets the world's own render at every angle


def synthetic_renders(domain_root: str | Path, out: str | Path, body, renderer, world=None,
                      true_views: int = TRUE_VIEWS) -> dict:
    """Renders for every training image of one world domain, from its ground truth. With ``world`` (the
    WorldConfig that drew the domain) also ``true_<angle>/``: for the first training image (by path) of the first
    ``true_views`` identities (by pid), the world's own textured render of the person turned by each angle
    (world.generate.true_view): what a perfect generator would draw, for the figures beside GCL+'s views."""
    domain_root, out = Path(domain_root), Path(out)
    truth_file = domain_root / "ground_truth.parquet"
    if not truth_file.is_file():
        raise ReidReproError(f"{truth_file}: missing; expected the world's per-image ground truth "
                             "(run `reid-repro world` first)")
    train = pd.read_parquet(truth_file).query("split == 'train'")
    staging = _staging(out)
    for pid, group in tqdm(train.groupby("pid", sort=True), desc=f"meshes {domain_root.name}", unit="id",
                           mininterval=2.0, disable=None):
        shape = {k: float(group[f"shape_{k}"].iat[0]) for k in SHAPE_KEYS}
        meshes = body.meshes(shape, list(group["phase"]), [0.0] * len(group))   # un-yawed, turned by the renderer
        for mesh, row in zip(meshes, group.itertuples()):
            _save_turntable(renderer, mesh, row.yaw, Placement(row.dx, row.dz, row.scale), Path(row.path).name,
                            staging)
    truths = 0
    if world is not None and domain_root.name in world.domains and true_views > 0:
        from reid_repro.world.generate import true_view

        first = train.sort_values(["pid", "path"]).groupby("pid", sort=True).head(1).head(true_views)
        for angle in ANGLES:
            (staging / f"true_{angle}").mkdir()
            for row in first.itertuples():
                rgb, _ = true_view(world, domain_root.name, row, float(angle), body, renderer)
                Image.fromarray(rgb).save(staging / f"true_{angle}" / Path(row.path).name, quality=95)
                truths += 1
    _publish(staging, out)
    return {"source": "synthetic", "images": len(train), "renders": len(train) * len(ANGLES), "true_views": truths}


def _train_names(manifest: str | Path) -> list[str]:
    manifest = Path(manifest)
    if not manifest.is_file():
        raise ReidReproError(f"{manifest}: missing; expected a manifest.parquet from `reid-repro prepare`")
    table = pd.read_parquet(manifest, columns=["path", "split"])
    names = [Path(p).name for p in table.loc[table["split"] == "train", "path"]]
    if len(set(names)) != len(names):
        raise ReidReproError(f"{manifest}: training image file names are not unique; the render layout keys "
                             "renders by file name")
    return names


def read_param_file(path: str | Path, names: list[str]) -> pd.DataFrame:
    """Validate a per-image SMPL parameter file against the training images; returns it indexed by name."""
    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: parameter file not found; expected a parquet with columns "
                             f"{sorted(PARAM_COLUMNS)}")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:   # pyarrow raises several types for a file that is not parquet
        raise ReidReproError(f"{path}: not a readable parquet file ({exc})") from exc
    missing = sorted(set(PARAM_COLUMNS) - set(table.columns))
    if missing:
        raise ReidReproError(f"{path}: column {missing[0]!r} missing; expected columns {sorted(PARAM_COLUMNS)}")
    for column, size in PARAM_COLUMNS.items():
        if size is not None:
            bad = table[column].map(lambda v: len(v) if hasattr(v, "__len__") else -1) != size
            if bad.any():
                raise ReidReproError(f"{path}: column {column!r} of row {table['name'][bad].iat[0]!r} has "
                                     f"the wrong length; expected {size} values")
    table = table.set_index("name")
    absent = sorted(set(names) - set(table.index))
    if absent:
        raise ReidReproError(f"{path}: no parameters for {len(absent)} training images, e.g. {absent[0]!r}")
    return table


def param_renders(param_file: str | Path, manifest: str | Path, out: str | Path, body, renderer) -> dict:
    """Renders for real data from a per-image SMPL parameter file (needs the smplx body model)."""
    if not hasattr(body, "posed"):
        raise ReidReproError("the params source needs SMPL parameters rendered by the smplx body model; set "
                             "world.body_model: smplx and world.smpl_model_dir in params.yaml")
    names = _train_names(manifest)
    table = read_param_file(param_file, names)
    out = Path(out)
    staging = _staging(out)
    for name in tqdm(names, desc="meshes (params)", unit="img", mininterval=2.0, disable=None):
        row = table.loc[name]
        mesh = body.posed(np.asarray(row["betas"]), np.asarray(row["body_pose"]), np.asarray(row["global_orient"]))
        _save_turntable(renderer, mesh, 0.0, Placement(float(row["dx"]), float(row["dz"]), float(row["scale"])),
                        name, staging)
    _publish(staging, out)
    return {"source": "params", "images": len(names), "renders": len(names) * len(ANGLES)}


def link_renders(renders: str | Path, manifest: str | Path, out: str | Path) -> dict:
    """Validate a user's GCL-format render folder (8 sub-folders, one readable image per training image) and
    link ``out`` to it."""
    renders, out = Path(renders).resolve(), Path(out)
    names = _train_names(manifest)
    for angle in ANGLES:
        folder = renders / render_dir(angle)
        if not folder.is_dir():
            raise ReidReproError(f"{folder}: missing; a GCL render folder holds {', '.join(map(render_dir, ANGLES))}")
        present = set(os.listdir(folder))
        absent = [n for n in names if n not in present]
        if absent:
            raise ReidReproError(f"{folder}: no render for {len(absent)} training images, e.g. {absent[0]!r}")
        try:   # decode one file per folder; a full decode of every render is left to the loader
            with Image.open(folder / names[0]) as img:
                img.load()
        except Exception as exc:
            raise ReidReproError(f"{folder / names[0]}: not a readable image ({exc})") from exc
    publish_link(renders, out)
    return {"source": "renders", "images": len(names), "renders": len(names) * len(ANGLES)}


def check_layout(out: str | Path, names: list[str]) -> None:
    """Raise unless ``out`` holds exactly one render per name in each of the 8 folders."""
    out = Path(out)
    for angle in ANGLES:
        folder = out / render_dir(angle)
        got = sorted(os.listdir(folder)) if folder.is_dir() else []
        if got != sorted(names):
            raise ReidReproError(f"{folder}: {len(got)} renders; expected one per training image ({len(names)})")


def turntable_sheet(out: str | Path, images_root: str | Path, image_path: str, sheet: str | Path) -> Path:
    """One person: the image, then its structure render at each of the 8 angles."""
    from reid_repro.io import atomic_path
    from reid_repro.world.sheet import grid

    out, name = Path(out), Path(image_path).name
    photo = Image.open(Path(images_root) / image_path).convert("RGB")
    row = [photo] + [Image.open(out / render_dir(a) / name).convert("RGB") for a in ANGLES]
    img = grid([row], [name.split("_")[0]], photo.size)
    header = Image.new("RGB", (img.width, 14), (255, 255, 255))
    from PIL import ImageDraw

    draw = ImageDraw.Draw(header)
    for i, label in enumerate(["image"] + [f"{a} deg" for a in ANGLES]):
        draw.text((60 + i * photo.width + 2, 1), label, fill=(0, 0, 0))
    full = Image.new("RGB", (img.width, img.height + 14), (255, 255, 255))
    full.paste(header, (0, 0))
    full.paste(img, (0, 14))
    with atomic_path(sheet) as tmp:
        full.save(tmp, format="PNG")
    return Path(sheet)
