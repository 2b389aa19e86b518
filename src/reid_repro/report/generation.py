"""GCL+'s novel views as a dataset (``reid-repro generate`` and the figures stage): every training image of a GCL+
run rendered at 45, ..., 315 degrees by its generator, in GCL's layout, with the FID and KID per angle (GCL supp.
Table 1) in a feature space we have (evaluation/fid.py), and the generation grid of GCL+ Table 3.

Kept out of methods/gcl_plus.py so that the runs do not depend on the evaluation-only code used here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from PIL import Image

from reid_repro.errors import ReidReproError
from reid_repro.methods.gcl_plus import ANGLES, GclPlus, grey_render, load_renders
from reid_repro.training.data import normalize_batch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in the loop's normalised pixel space -> uint8 N x 3 x H x W."""
    mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)


@torch.no_grad()
def generate_dataset(params: dict, run: str, out: str | Path, runs_dir: str | Path = "runs",
                     start: str | Path | None = "models/pretrain/model.pt", batch: int = 64,
                     dims: int = 64) -> dict:
    """A GCL+ run's novel views of every training image at 45, ..., 315 degrees, written in GCL's layout
    (``out/<angle>/<image name>``, PNG at the model's input size), with the FID and KID per angle between the real
    training images and each angle's views in the feature space of ``start`` (the pretrained start: no
    Inception weights here; evaluation/fid.py). Returns what ``out/fid.json`` holds."""
    from reid_repro.config import load_run, resolve_run
    from reid_repro.evaluation.fid import fid, kid
    from reid_repro.io import publish_dir, staging_dir, write_json
    from reid_repro.models import ReidNet, load_weights
    from reid_repro.training.data import ImageCache, extract_features, load_split

    spec = load_run(params, run)
    if spec.method != "gcl_plus":
        raise ReidReproError(f"runs.{run}: method {spec.method!r}; novel views come from a gcl_plus run")
    model_cfg, cfg = resolve_run(params, spec)
    if cfg.positive_view != "generated":
        raise ReidReproError(f"runs.{run}: positive_view {cfg.positive_view!r} has no generator")
    info = params["data"][spec.dataset]
    table = load_split(info["manifest"], "train")
    images = ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{spec.dataset} train",
                        interpolation=model_cfg.interpolation).images
    device = torch.device("cpu")
    model = ReidNet.from_config(model_cfg)
    load_weights(model, Path(runs_dir) / run / "model.pt", f"{model_cfg.arch}/{model_cfg.pooling}")
    method = GclPlus(dataclasses.replace(cfg, stage="joint"), model.eval(), device, table, Path(runs_dir) / run)
    method.gen.eval()
    renders = load_renders(method.render_dir, method.render_names, model_cfg.height, model_cfg.width)
    names = method.render_names
    views = {a: torch.empty_like(images) for a in ANGLES}
    for lo in range(0, len(images), batch):
        x = normalize_batch(images[lo:lo + batch])
        f_id, _ = method.identity(x)
        for k, angle in enumerate(ANGLES, start=1):
            code = method.gen["str"](grey_render(renders[lo:lo + batch, k:k + 1]))
            views[angle][lo:lo + batch] = to_uint8(method.gen["dec"](f_id, code))
    out = Path(out)
    staging = staging_dir(out)
    for angle, imgs in views.items():
        (staging / str(angle)).mkdir()
        for name, img in zip(names, imgs):
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(staging / str(angle) / name)
    result = {"run": run, "images": len(names), "angles": list(ANGLES)}
    if start is not None and Path(start).is_file():
        net = ReidNet.from_config(model_cfg)
        load_weights(net, start, f"{model_cfg.arch}/{model_cfg.pooling}")
        from sklearn.decomposition import PCA

        # a covariance of d = 512 features needs far more than the world's ~600 images to be well conditioned:
        # both sets are projected on the real features' first principal components
        real = extract_features(net, images, device)
        pca = PCA(n_components=min(dims, len(real) // 4), random_state=0).fit(real)
        fake = {a: pca.transform(extract_features(net, v, device)) for a, v in views.items()}
        real = pca.transform(real)
        result["feature_space"] = (f"{start}: the pretrained start's L2-normalised features on their first "
                                   f"{pca.n_components_} principal components, not Inception-v3 (not comparable "
                                   "with the paper's values; compare the ordering of angles)")
        result["fid"] = {str(a): round(fid(real, f), 4) for a, f in fake.items()}
        result["kid"] = {str(a): round(kid(real, f), 5) for a, f in fake.items()}
    write_json(staging / "fid.json", result)
    publish_dir(staging, out)
    return result


def gcl_generation_grid(params: dict, run: str, generated: Path, out: Path, people: int = 4) -> Path:
    """GCL+ Table 3: for a few training identities, the image, then per angle 45..315 the structure render
    (top) and the generated view (bottom)."""
    from reid_repro.config import load_model, load_run
    from reid_repro.io import atomic_path
    from reid_repro.training.data import load_split

    spec = load_run(params, run)
    info = params["data"][spec.dataset]
    table = load_split(info["manifest"], "train")
    first = table.groupby("pid", sort=True).head(1).head(people)
    cfg = load_model(params)
    h, w = cfg.height, cfg.width
    meshes = Path(params["gcl_plus"]["meshes_root"]) / spec.dataset
    sheet = Image.new("RGB", ((1 + len(ANGLES)) * w, 2 * h * len(first)), "white")
    for row, path in enumerate(first["path"]):
        name = Path(path).name
        with Image.open(Path(info["root"]) / path) as img:
            sheet.paste(img.convert("RGB").resize((w, h)), (0, 2 * h * row + h // 2))
        for k, angle in enumerate(ANGLES, start=1):
            with Image.open(meshes / f"render_{angle}" / name) as s:
                sheet.paste(s.convert("RGB").resize((w, h)), (k * w, 2 * h * row))
            with Image.open(generated / str(angle) / name) as g:
                sheet.paste(g.convert("RGB").resize((w, h)), (k * w, 2 * h * row + h))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(tmp, format="PNG")
    return out
