"""GCL+'s novel views as a dataset (``reid-repro generate`` and the figures stage): every training image of a GCL+
run rendered at 45, ..., 315 degrees by its generator, in GCL's layout, with the FID and KID per angle (GCL supp.
Table 1) in a feature space we have (evaluation/fid.py), and the generation grid of GCL+ Table 3.

Kept out of methods/gcl_plus/ so that the runs do not depend on the evaluation-only code used here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from reid_repro.errors import ReidReproError
from reid_repro.methods.base import RunContext
from reid_repro.methods.gcl_plus import ANGLES, GclPlus, grey_image, grey_render, load_renders
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
    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_run
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
    method = GclPlus(dataclasses.replace(cfg, stage="joint"), model.eval(), device,
                     RunContext(train_table=table, init_dir=Path(runs_dir) / run))
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
        truth = true_view_similarity(net, images, views, names, method.render_dir, device)
        if truth:
            result["true_view"] = truth
    write_json(staging / "fid.json", result)
    publish_dir(staging, out)
    return result


@torch.no_grad()
def true_view_similarity(net, images: torch.Tensor, views: dict, names: list[str], meshes: Path, device) -> dict:
    """Where the meshes stage wrote the world's own render of a person at each angle (``true_<angle>/``, synthetic
    meshes): per angle, the mean cosine similarity (the start's L2-normalised features) between that true view and
    the generated view, and between it and the input image itself (what copying the input would score). A
    generator that learnt the turned person scores above the copy; {} when there are no true views."""
    from reid_repro.training.data import extract_features

    have = [i for i, n in enumerate(names) if all((meshes / f"true_{a}" / n).is_file() for a in ANGLES)]
    if not have:
        return {}
    h, w = images.shape[2:]

    def load(folder: str) -> torch.Tensor:
        out = []
        for i in have:
            with Image.open(meshes / folder / names[i]) as img:
                out.append(torch.from_numpy(np.array(img.convert("RGB").resize((w, h)))).permute(2, 0, 1))
        return torch.stack(out)

    inputs = extract_features(net, images[have], device)
    result = {"people": len(have)}
    for a in ANGLES:
        true = extract_features(net, load(f"true_{a}"), device)
        gen = extract_features(net, views[a][have], device)
        result[str(a)] = {"generated": round(float((true * gen).sum(1).mean()), 4),
                          "input": round(float((true * inputs).sum(1).mean()), 4)}
    return result


def gcl_generation_grid(params: dict, run: str, generated: Path, out: Path, people: int = 4) -> Path:
    """GCL+ Table 3: for a few training identities, the image, then per angle 45..315 the structure render (top),
    the generated view (middle) and, where the meshes stage rendered it (synthetic meshes: ``true_<angle>/``), the
    world's own render of the person at that view (bottom): the row the paper could not have."""
    from reid_repro.config import load_model, load_run
    from reid_repro.io import atomic_path

    spec = load_run(params, run)
    info = params["data"][spec.dataset]
    first, _ = _people(params, spec.dataset, people)
    cfg = load_model(params)
    h, w = cfg.height, cfg.width
    meshes = Path(params["gcl_plus"]["meshes_root"]) / spec.dataset
    names = [Path(p).name for p in first["path"]]
    truth = all((meshes / f"true_{a}" / n).is_file() for a in ANGLES for n in names)
    per = 3 if truth else 2
    sheet = Image.new("RGB", ((1 + len(ANGLES)) * w, per * h * len(first)), "white")
    for row, (path, name) in enumerate(zip(first["path"], names)):
        top = per * h * row
        with Image.open(Path(info["root"]) / path) as img:
            sheet.paste(img.convert("RGB").resize((w, h)), (0, top + (per - 1) * h // 2))
        for k, angle in enumerate(ANGLES, start=1):
            files = [meshes / f"render_{angle}" / name, generated / str(angle) / name]
            files += [meshes / f"true_{angle}" / name] if truth else []
            for j, f in enumerate(files):
                with Image.open(f) as im:
                    sheet.paste(im.convert("RGB").resize((w, h)), (k * w, top + j * h))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(tmp, format="PNG")
    return out


class _Views:
    """A GCL+ generator ready to draw: the identity encoder (``weights``), the generator of ``artifacts_dir``
    (a run folder, or a warm-up's models/<name>) and the training images with their structure renders."""

    @torch.no_grad()
    def __init__(self, params: dict, run: str, weights: Path, artifacts_dir: Path, names: list[str]):
        from reid_repro.assemble import resolve_run
        from reid_repro.config import load_run
        from reid_repro.models import ReidNet, load_weights
        from reid_repro.training.data import ImageCache, load_split

        spec = load_run(params, run)
        model_cfg, cfg = resolve_run(params, spec)
        info = params["data"][spec.dataset]
        table = load_split(info["manifest"], "train")
        model = ReidNet.from_config(model_cfg)
        load_weights(model, weights, f"{model_cfg.arch}/{model_cfg.pooling}")
        self.method = GclPlus(dataclasses.replace(cfg, stage="joint", structure="rotation",
                                                  positive_view="generated"),
                              model.eval(), torch.device("cpu"), RunContext(train_table=table, init_dir=artifacts_dir))
        self.method.gen.eval()
        wanted = table[table["path"].map(lambda p: Path(p).name).isin(set(names))]
        order = {n: i for i, n in enumerate(names)}
        wanted = wanted.assign(_o=wanted["path"].map(lambda p: order[Path(p).name])).sort_values("_o")
        self.table = wanted.drop(columns="_o").reset_index(drop=True)
        self.images = ImageCache(info["root"], self.table, model_cfg.height, model_cfg.width, desc="figure images",
                                 interpolation=model_cfg.interpolation).images
        self.renders = load_renders(self.method.render_dir, [Path(p).name for p in self.table["path"]],
                                    model_cfg.height, model_cfg.width)

    @torch.no_grad()
    def identity(self, idx) -> torch.Tensor:
        return self.method.identity(normalize_batch(self.images[idx]))[0]

    def structure(self, idx, kind: str = "rotation", angle: int = 0) -> torch.Tensor:
        """The structure input in [-1, 1] (N x 1 x H x W) of images ``idx``: their mesh render turned by ``angle``
        (rotation; mesh_switch hands another image's unturned render) or, for gray_switch, the grey image."""
        if kind == "gray_switch":
            return grey_image(normalize_batch(self.images[idx]))
        k = 0 if angle == 0 else ANGLES.index(angle) + 1
        return grey_render(self.renders[idx, k:k + 1])

    @torch.no_grad()
    def decode(self, f_id: torch.Tensor, structure: torch.Tensor) -> torch.Tensor:
        """uint8 views of identity features ``f_id`` on the structure inputs ``structure``."""
        return to_uint8(self.method.gen["dec"](f_id, self.method.gen["str"](structure)))

    def draw(self, f_id: torch.Tensor, idx, angle: int) -> torch.Tensor:
        """uint8 views of identity features ``f_id`` on the structure of images ``idx`` turned by ``angle``."""
        return self.decode(f_id, self.structure(idx, "rotation", angle))


def _people(params: dict, dataset: str, n: int, skip: int = 0):
    """The first training image (by path) of the first ``n`` identities after ``skip`` (by pid): the rule the
    meshes stage uses for its true views, so the grids can draw the world's render beside the generator's."""
    from reid_repro.training.data import load_split

    table = load_split(params["data"][dataset]["manifest"], "train")
    first = table.sort_values(["pid", "path"]).groupby("pid", sort=True).head(1)
    return first.iloc[skip:skip + n].reset_index(drop=True), table


def _sheet(cells: list[list], h: int, w: int, labels: list[str], title: str, out: Path, scale: int = 3,
           row_labels: list[str] | None = None) -> Path:
    """A labelled grid of uint8 C x H x W tensors (None: an empty cell) as a PNG, each column headed by its label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reid_repro.io import atomic_path

    rows, cols = len(cells), len(labels)
    fig, axes = plt.subplots(rows, cols, figsize=(0.75 * scale * cols * w / h + 0.3, 0.75 * scale * rows + 0.6),
                             squeeze=False)
    for r, row in enumerate(cells):
        for c, img in enumerate(row):
            ax = axes[r][c]
            ax.axis("off")           # an empty cell is a blank image of the same size: every column lines up
            ax.imshow(img.permute(1, 2, 0).numpy() if img is not None else np.full((h, w, 3), 255, np.uint8))
            if r == 0:
                ax.set_title(labels[c], fontsize=7)
            if c == 0 and row_labels:
                ax.text(-0.08, 0.5, row_labels[r], rotation=90, transform=ax.transAxes, ha="right", va="center",
                        fontsize=7)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out


def _pair_views(params: dict, run: str, runs_dir: Path, pairs: int, item: str, skip: int = 0):
    """(dataset, pairs, views) for a grid of training-identity pairs P1, P2 (images 2k and 2k + 1 of ``views``): the
    first ``2 pairs`` identities after ``skip`` (or from the first, when fewer than two are left there) and the run's
    generator ready to draw them."""
    from reid_repro.config import load_run

    dataset = load_run(params, run).dataset
    people, _ = _people(params, dataset, 2 * pairs, skip=skip)
    if skip and len(people) < 2:
        people, _ = _people(params, dataset, 2 * pairs)
    if len(people) < 2:
        raise ReidReproError(f"{dataset}: {item} needs two training identities")
    names = [Path(p).name for p in people["path"]]
    return dataset, len(people) // 2, _Views(params, run, Path(runs_dir) / run / "model.pt", Path(runs_dir) / run,
                                             names)


def mixup_grid(params: dict, run: str, runs_dir: Path, out: Path, pairs: int = 4) -> Path:
    """GCL+ Table 2: interpolations of two training identities P1 and P2 at λ = 0.5: image-level Mixup (the pixel
    blend) and D-Mixup (the generator decoding 0.5 f_id(P1) + 0.5 f_id(P2) on P1's structure, Eq. 4); F-Mixup needs
    a VAE-GAN decoder the harness does not have, so its column is left out."""
    dataset, pairs, views = _pair_views(params, run, runs_dir, pairs, "GCL+ Table 2")
    rows = []
    for k in range(pairs):
        a, b = [2 * k], [2 * k + 1]
        f = 0.5 * views.identity(a) + 0.5 * views.identity(b)
        pixel = ((views.images[a].float() + views.images[b].float()) / 2).round().to(torch.uint8)[0]
        rows.append([views.images[a[0]], views.images[b[0]], pixel, views.draw(f, a, 0)[0]])
    return _sheet(rows, *views.images.shape[2:], ["P1 (1.0 P1)", "P2 (1.0 P2)", "Mixup 0.5/0.5", "D-Mixup 0.5/0.5"],
                  f"GCL+ Table 2 on the {dataset} stand-in ({run}); F-Mixup not implemented", out)


INTERPOLATION = (1.0, 0.8, 0.6, 0.4, 0.2, 0.0)     # P1's weight in the mixed identity features, GCL+ Fig. 3


def interpolation_grid(params: dict, run: str, runs_dir: Path, out: Path, pairs: int = 3) -> Path:
    """GCL+ Fig. 3: the identity features of two training persons interpolated, λ f_id(P1) + (1 - λ) f_id(P2) for
    λ from 1 to 0, each decoded by the run's generator on P1's structure (Eq. 4's D-Mixup without the max(λ, 1 - λ)
    rule, so that the whole path is drawn), between the two images."""
    dataset, pairs, views = _pair_views(params, run, runs_dir, pairs, "GCL+ Fig. 3", skip=8)
    rows = []
    for k in range(pairs):
        a, b = [2 * k], [2 * k + 1]
        fa, fb = views.identity(a), views.identity(b)
        rows.append([views.images[a[0]], *[views.draw(lam * fa + (1 - lam) * fb, a, 0)[0] for lam in INTERPOLATION],
                     views.images[b[0]]])
    labels = ["P1"] + [f"λ {lam:.1f}" for lam in INTERPOLATION] + ["P2"]
    return _sheet(rows, *views.images.shape[2:], labels,
                  f"GCL+ Fig. 3 on the {dataset} stand-in ({run}): λ f_id(P1) + (1 - λ) f_id(P2) on P1's structure",
                  out)


def shown(structure: torch.Tensor) -> torch.Tensor:
    """A structure input in [-1, 1] (N x 1 x H x W) as uint8 grey N x 3 x H x W, to draw beside the views."""
    return ((structure + 1) / 2 * 255).round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1)


SWITCH_ANGLE = 180        # GCL+ Fig. 2's mesh rotation: P1's own mesh turned (any angle of ANGLES draws)


def structure_grid(params: dict, run: str, runs_dir: Path, out: Path, pairs: int = 3) -> Path:
    """GCL+ Fig. 2: the three ways of giving the generator a new structure (§3.1, Remark) for pairs of training
    persons P1, P2: 2D gray image switch (DG-Net: P2's grey image), mesh switch (P2's mesh render) and mesh rotation
    (P1's own mesh turned 180°), each structure input beside what the run's generator draws from P1's identity
    features on it. The run's generator was trained on mesh renders, so the mesh-switch and rotation inputs are of
    the kind it learned; a grey photograph is not, and the generator trained on grey images is Table 4's
    larger-profile row (gclp_d2m_gray), so the gray-switch column shows its structure input and no generation."""
    dataset, pairs, views = _pair_views(params, run, runs_dir, pairs, "GCL+ Fig. 2", skip=16)
    rows = []
    for k in range(pairs):
        a, b = [2 * k], [2 * k + 1]
        f = views.identity(a)
        mesh, turned = views.structure(b, "mesh_switch"), views.structure(a, "rotation", SWITCH_ANGLE)
        rows.append([views.images[a[0]], views.images[b[0]], shown(views.structure(b, "gray_switch"))[0], None,
                     shown(mesh)[0], views.decode(f, mesh)[0], shown(turned)[0], views.decode(f, turned)[0]])
    labels = ["P1", "P2", "gray switch: P2 grey", "(gclp_d2m_gray)", "mesh switch: P2 mesh", "generated",
              f"rotation: P1 mesh {SWITCH_ANGLE}°", "generated"]
    return _sheet(rows, *views.images.shape[2:], labels,
                  f"GCL+ Fig. 2 on the {dataset} stand-in ({run}): P1's identity on each new structure; the "
                  "gray-switch generator is a larger-profile row", out)


CONTRAST_ANGLES = (90, 180, 270)


def contrast_grid(params: dict, run: str, warmup: str, runs_dir: Path, models_dir: Path, out: Path,
                  people: int = 3, item: str = "GCL+ Fig. 9", tags: tuple[str, str] = ("w/o L_contrast", "GCL+"),
                  skip: int = 0) -> Path:
    """GCL+ Fig. 9: rotated views of a few identities by the generator trained without L_contrast (the stage-2
    warm-up: the generative losses only, on the frozen stage-1 encoder) and by the full run (stage 3, with the
    contrastive module), beside two other real images of the same identity (the views the contrast pulls in).
    GCL supp. Fig. 1 is the same grid with the view-invariant losses as the difference (``item``, ``tags``: the
    warm-up against the Rotation run, whose only contrast is Eq. 8-10)."""
    from reid_repro.config import load_run

    dataset = load_run(params, run).dataset
    first, table = _people(params, dataset, people, skip=skip)
    if not len(first):                         # fewer identities than ``skip``: from the first
        first, table = _people(params, dataset, people)
    names = [Path(p).name for p in first["path"]]
    others = []
    for pid, path in zip(first["pid"], first["path"]):
        rest = table[(table["pid"] == pid) & (table["path"] != path)].sort_values("path")["path"].head(2)
        others.append([Path(p).name for p in rest])
    extra = [n for o in others for n in o]
    full = _Views(params, run, Path(runs_dir) / run / "model.pt", Path(runs_dir) / run, names + extra)
    warm = _Views(params, run, Path(models_dir) / warmup / "model.pt", Path(models_dir) / warmup, names)
    where = {Path(p).name: i for i, p in enumerate(full.table["path"])}
    rows = []
    for i, name in enumerate(names):
        real = [full.images[where[n]] for n in [name] + others[i]] + [None] * (2 - len(others[i]))
        for v in (warm, full):
            j = [where[name]] if v is full else [i]
            f = v.identity(j)
            rows.append(real + [v.draw(f, j, a)[0] for a in CONTRAST_ANGLES])
    labels = ["image", "same id", "same id"] + [f"{a}°" for a in CONTRAST_ANGLES]
    return _sheet(rows, *full.images.shape[2:], labels,
                  f"{item} ({run}): per identity, top row the generator {tags[0]} ({warmup}), bottom row "
                  f"{tags[1]}", out, row_labels=list(tags) * len(names))


def failure_grid(params: dict, run: str, runs_dir: Path, out: Path, cases: int = 4, pool: int = 64) -> Path:
    """GCL+ Fig. 12: failure cases of rotation-based generation, chosen by a measure: among the first ``pool``
    training images, those whose 180° view keeps the least of their identity (the cosine similarity of the run's
    own identity feature f of the view and of the image, lowest first)."""
    import torch.nn.functional as F

    from reid_repro.config import load_run
    from reid_repro.training.data import load_split

    dataset = load_run(params, run).dataset
    table = load_split(params["data"][dataset]["manifest"], "train").sort_values("path").head(pool)
    names = [Path(p).name for p in table["path"]]
    views = _Views(params, run, Path(runs_dir) / run / "model.pt", Path(runs_dir) / run, names)
    idx = list(range(len(views.table)))
    with torch.no_grad():
        f_id = views.identity(idx)
        back = views.draw(f_id, idx, 180)
        f = views.method.identity(normalize_batch(views.images))[1]
        f_back = views.method.identity(normalize_batch(back))[1]
        sim = F.cosine_similarity(f, f_back, dim=1)
    worst = torch.argsort(sim)[:cases].tolist()
    rows = [[views.images[i]] + [views.draw(f_id[i:i + 1], [i], a)[0] for a in (90, 180, 270)] for i in worst]
    sims = ", ".join(f"{sim[i]:.2f}" for i in worst)
    return _sheet(rows, *views.images.shape[2:], ["image", "90°", "180°", "270°"],
                  f"GCL+ Fig. 12 ({run}): the {cases} of {len(idx)} images whose 180° view keeps the least identity "
                  f"(cosine {sims})", out)


def views_grid(params: dict, run: str, generated: Path, out: Path, people: int = 8, skip: int = 4) -> Path:
    """GCL supp. Figs. 3-5: generated novel views of more identities (after the ``skip`` of Table 3's grid), per
    identity the image then its views at 45°…315° (from the run's generated dataset)."""
    from reid_repro.config import load_model, load_run

    dataset = load_run(params, run).dataset
    first, _ = _people(params, dataset, people, skip)
    if first.empty:                 # a small world: fewer identities than Table 3's grid already shows
        first, _ = _people(params, dataset, people)
    cfg = load_model(params)
    root = Path(params["data"][dataset]["root"])
    def tensor(file: Path) -> torch.Tensor:
        with Image.open(file) as img:
            return torch.from_numpy(np.array(img.convert("RGB").resize((cfg.width, cfg.height)))).permute(2, 0, 1)

    rows = [[tensor(root / path)] + [tensor(Path(generated) / str(a) / Path(path).name) for a in ANGLES]
            for path in first["path"]]
    return _sheet(rows, cfg.height, cfg.width, ["image"] + [f"{a}°" for a in ANGLES],
                  f"GCL supp. Figs. 3-5 ({run}, {dataset} stand-in): generated novel views", out, scale=2)


TRACKLET_ANGLE = 180      # GCL+ Fig. 11: each frame of a tracklet turned by the same angle


def tracklet_grid(params: dict, runs: list[str], runs_dir: Path, out: Path, frames: int = 6) -> Path:
    """GCL+ Fig. 11: per video run, one training tracklet's frames (its first ``frames``; the tracklet of the
    first identity, by pid, with the most frames) and below them the run's generator rotating each frame: the
    frame's own identity features on its own mesh turned ``TRACKLET_ANGLE`` degrees, as the video runs train (every
    sampled frame is a training image with its own structure render)."""
    from reid_repro.config import load_run
    from reid_repro.training.data import load_split

    rows, labels, size = [], [], None
    for run in runs:
        dataset = load_run(params, run).dataset
        table = load_split(params["data"][dataset]["manifest"], "train")
        if "tracklet" not in table:
            raise ReidReproError(f"GCL+ Fig. 11: run {run} trains on {dataset}, not a video dataset (no tracklets)")
        first = table[table["pid"] == table["pid"].min()]
        longest = first.groupby("tracklet").size().idxmax()
        chosen = first[first["tracklet"] == longest].sort_values("frame").head(frames)
        names = [Path(p).name for p in chosen["path"]]
        views = _Views(params, run, Path(runs_dir) / run / "model.pt", Path(runs_dir) / run, names)
        idx = list(range(len(views.table)))
        turned = views.draw(views.identity(idx), idx, TRACKLET_ANGLE)
        pad = [None] * (frames - len(idx))
        rows += [list(views.images) + pad, list(turned) + pad]
        labels += [f"{dataset}: frames", f"{dataset}: {TRACKLET_ANGLE}°"]
        size = views.images.shape[2:]
    return _sheet(rows, *size, [f"frame {i + 1}" for i in range(frames)],
                  f"GCL+ Fig. 11 ({', '.join(runs)}): tracklet frames before and after rotation", out,
                  row_labels=labels)
