"""The mesh stage: GCL render layout, placement agreeing with the image, and the two real-data sources."""

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reid_repro.io import MARKER
from reid_repro.data.manifest import prepare
from reid_repro.errors import ReidReproError
from reid_repro.world import meshes

FOLDERS = ["render", "render_45", "render_90", "render_135", "render_180", "render_225", "render_270", "render_315"]


@pytest.fixture(scope="module")
def renders(world, body, renderer, tmp_path_factory):
    out, _ = world
    target = tmp_path_factory.mktemp("meshes") / "market"
    info = meshes.synthetic_renders(out / "market", target, body, renderer)
    return out, target, info


def test_layout_matches_gcl(renders):
    out, target, info = renders
    truth = pd.read_parquet(out / "market" / "ground_truth.parquet")
    names = sorted(p.split("/")[-1] for p in truth.loc[truth["split"] == "train", "path"])
    assert [meshes.render_dir(a) for a in meshes.ANGLES] == FOLDERS
    assert sorted(p.name for p in target.iterdir() if p.name != MARKER) == sorted(FOLDERS)
    for folder in FOLDERS:
        assert sorted(p.name for p in (target / folder).iterdir()) == names
    meshes.check_layout(target, names)
    assert info == {"source": "synthetic", "images": len(names), "renders": 8 * len(names), "true_views": 0}
    assert not target.with_name("market.partial").exists()


def test_render_sits_where_the_person_is(renders, body, renderer):
    from reid_repro.world.render import Placement

    out, target, _ = renders
    truth = pd.read_parquet(out / "market" / "ground_truth.parquet").query("split == 'train'")
    for row in truth.head(6).itertuples():
        name = row.path.split("/")[-1]
        image = Image.open(out / "market" / row.path)
        grey = np.asarray(Image.open(target / "render" / name).convert("L"))
        assert grey.shape == image.size[::-1]                       # same aspect ratio and size as the image
        # the silhouette the world drew for this image (same shape, phase, yaw and placement, no bag)
        mesh = body.meshes({k: getattr(row, f"shape_{k}") for k in
                            ("gender", "age", "muscle", "weight", "height", "proportions")}, [row.phase], [row.yaw])[0]
        _, mask = renderer.render(mesh.vertices, mesh.faces, (255, 255, 255), Placement(row.dx, row.dz, row.scale))
        assert (mask & (grey <= 10)).sum() <= 0.01 * mask.sum()      # the render covers the person...
        body_px = grey > 40                                          # ...and little else (JPEG halo aside)
        iou = (body_px & mask).sum() / (body_px | mask).sum()
        assert iou > 0.9, (name, iou)


def test_turning_changes_the_silhouette_and_a_full_turn_returns(renders, body, renderer):
    from reid_repro.world.render import Placement

    mesh = body.meshes({k: 0.5 for k in ("gender", "age", "muscle", "weight", "height", "proportions")}, [0.0],
                       [0.0])[0]
    front, side, back, again = renderer.turntable(mesh.vertices, mesh.faces, [0, 90, 180, 360], Placement())
    width = [np.ptp(np.flatnonzero((m > 20)[28:34].any(0))) for m in (front, side)]
    assert width[0] > 1.3 * width[1]                                  # shoulders frontal vs side
    assert np.array_equal(front, again)
    # seen from the back, an orthographic silhouette is the mirror image of the front one
    mirrored = np.fliplr(back > 20)
    assert ((front > 20) & mirrored).sum() / ((front > 20) | mirrored).sum() > 0.9


def test_link_existing_renders(renders, tmp_path):
    out, target, _ = renders
    prepare("market1501", out / "market", tmp_path / "manifest")
    manifest = tmp_path / "manifest" / "manifest.parquet"
    info = meshes.link_renders(target, manifest, tmp_path / "linked")
    assert (tmp_path / "linked").is_symlink() and info["images"] == len(list((target / "render").iterdir()))

    broken = tmp_path / "broken"
    shutil.copytree(target, broken)
    shutil.rmtree(broken / "render_135")
    with pytest.raises(ReidReproError, match="render_135: missing"):
        meshes.link_renders(broken, manifest, tmp_path / "linked")
    assert (tmp_path / "linked").is_symlink()          # the previous link is untouched
    shutil.copytree(target / "render_135", broken / "render_135")
    victim = sorted((broken / "render_90").iterdir())[0]
    victim.unlink()
    with pytest.raises(ReidReproError, match=f"render_90: no render for 1 training images, e.g. '{victim.name}'"):
        meshes.link_renders(broken, manifest, tmp_path / "linked")


def test_param_file_source_errors(renders, body, renderer, tmp_path):
    out, _, _ = renders
    prepare("market1501", out / "market", tmp_path / "manifest")
    manifest = tmp_path / "manifest" / "manifest.parquet"
    with pytest.raises(ReidReproError, match="needs SMPL parameters rendered by the smplx body model"):
        meshes.param_renders(tmp_path / "p.parquet", manifest, tmp_path / "o", body, renderer)
    names = [p.split("/")[-1] for p in pd.read_parquet(manifest).query("split == 'train'")["path"]]
    with pytest.raises(ReidReproError, match="p.parquet: parameter file not found"):
        meshes.read_param_file(tmp_path / "p.parquet", names)
    table = pd.DataFrame({"name": names, "betas": [[0.0] * 10] * len(names), "body_pose": [[0.0] * 69] * len(names),
                          "global_orient": [[0.0] * 3] * len(names), "dx": 0.0, "dz": 0.0, "scale": 1.0})
    table.drop(columns="betas").to_parquet(tmp_path / "p.parquet")
    with pytest.raises(ReidReproError, match="column 'betas' missing"):
        meshes.read_param_file(tmp_path / "p.parquet", names)
    table.assign(body_pose=[[0.0] * 72] * len(names)).to_parquet(tmp_path / "p.parquet")
    with pytest.raises(ReidReproError, match="'body_pose' .* wrong length; expected 69"):
        meshes.read_param_file(tmp_path / "p.parquet", names)
    table.iloc[1:].to_parquet(tmp_path / "p.parquet")
    with pytest.raises(ReidReproError, match="no parameters for 1 training images"):
        meshes.read_param_file(tmp_path / "p.parquet", names)
    table.to_parquet(tmp_path / "p.parquet")
    assert len(meshes.read_param_file(tmp_path / "p.parquet", names)) == len(names)


def test_true_views_are_the_worlds_own_render_of_the_person_turned(world, body, renderer, tmp_path):
    """With the world's config the mesh stage also writes true_<angle>/ for the first image of the first
    identities: the identity drawn again from its stream and rendered turned. At 0 degrees its silhouette is the
    image's own (the renderer's foreground count at generation); turned, it is another view."""
    from conftest import tiny_config
    from reid_repro.world.generate import true_view

    out, _ = world
    cfg = tiny_config()
    info = meshes.synthetic_renders(out / "market", tmp_path / "market", body, renderer, world=cfg, true_views=2)
    truth = pd.read_parquet(out / "market" / "ground_truth.parquet").query("split == 'train'")
    first = truth.sort_values(["pid", "path"]).groupby("pid").head(1).head(2)
    assert info["true_views"] == 2 * len(meshes.ANGLES)
    for angle in meshes.ANGLES:
        assert sorted(p.name for p in (tmp_path / "market" / f"true_{angle}").iterdir()) == \
            sorted(p.split("/")[-1] for p in first["path"])
    stats = pd.read_parquet(out / "market" / "render_stats.parquet").set_index("path")["foreground_pixels"]
    for row in first.itertuples():
        rgb0, mask0 = true_view(cfg, "market", row, 0.0, body, renderer)
        assert int(mask0.sum()) == int(stats[row.path])
        rgb180, mask180 = true_view(cfg, "market", row, 180.0, body, renderer)
        assert rgb0.shape == rgb180.shape == (128, 64, 3) and (rgb0 != rgb180).any()
    with pytest.raises(ReidReproError, match="world.domains.msmt: no such domain"):
        true_view(cfg, "msmt", next(first.itertuples()), 0.0, body, renderer)
