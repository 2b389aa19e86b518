"""Images, augmentations, the identity-balanced P x K sampler and feature extraction.

Images are decoded once (in a thread pool) and kept at the model's input size (uint8), so an epoch costs
augmentation, not JPEG decoding. Augmentations are torchvision transforms on uint8 tensors; batches travel to the
device as uint8 and are normalised (and randomly erased) there.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchvision.transforms import v2 as T
from tqdm import tqdm

from reid_repro.errors import ReidReproError

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_split(manifest_dir: str | Path, split: str | tuple[str, ...]) -> pd.DataFrame:
    """Rows of ``manifest.parquet`` in ``split`` (one name or several), in manifest order."""
    path = Path(manifest_dir) / "manifest.parquet"
    if not path.is_file():
        raise ReidReproError(f"{path}: missing; expected the output of `reid-repro prepare` (run `dvc repro`)")
    table = pd.read_parquet(path)
    splits = (split,) if isinstance(split, str) else split
    rows = table[table["split"].isin(splits)].reset_index(drop=True)
    if rows.empty:
        raise ReidReproError(f"{path}: no images in split {splits}")
    return rows


INTERPOLATION = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def decode_workers() -> int:
    """Threads that decode images (PIL releases the GIL while decoding and resizing): one per core, at most 16."""
    return max(1, min(16, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


class ImageCache:
    """Every image of ``table`` decoded once and resized to (height, width): an N x 3 x H x W uint8 tensor.

    Decoding runs in a thread pool (:func:`decode_workers`); the result does not depend on the thread count.
    ``interpolation``: bilinear (the CPU default) or bicubic (the reference codes' ``interpolation=3``)."""

    def __init__(self, root: str | Path, table: pd.DataFrame, height: int, width: int, desc: str = "images",
                 interpolation: str = "bilinear"):
        root = Path(root)
        if not root.is_dir():
            raise ReidReproError(f"{root}: dataset folder not found")
        if interpolation not in INTERPOLATION:
            raise ReidReproError(f"interpolation={interpolation!r}; expected one of {sorted(INTERPOLATION)}")
        resample = INTERPOLATION[interpolation]
        self.images = torch.empty((len(table), 3, height, width), dtype=torch.uint8)

        def decode(item):
            i, rel = item
            try:
                with Image.open(root / rel) as img:
                    small = img.convert("RGB").resize((width, height), resample)
            except (OSError, ValueError) as exc:
                raise ReidReproError(f"{root / rel}: cannot decode image ({exc}); expected a readable JPEG/PNG "
                                     "(re-run `reid-repro prepare` to check the whole dataset)") from exc
            self.images[i] = torch.from_numpy(np.asarray(small).copy()).permute(2, 0, 1)

        with ThreadPoolExecutor(decode_workers()) as pool:
            for _ in tqdm(pool.map(decode, enumerate(table["path"])), total=len(table), desc=f"decode {desc}",
                          unit="img", mininterval=2.0, disable=None):
                pass

    def __len__(self) -> int:
        return len(self.images)


def make_transform(view: str, height: int, width: int):
    """The per-image augmentation of a named view, on uint8 tensors (in the DataLoader's workers). Padding is
    10 px at 256x128, scaled with the input size. Scaling to [0, 1], normalising and random erasing come after,
    on the training device, for the whole batch (:class:`BatchFinish`): workers ship uint8, 4x fewer bytes.

    base:   flip, pad-crop, random erasing (Cluster-Contrast, ISE)
    blur:   flip, pad-crop, Gaussian blur, random erasing (ICE §4.2's strong augmentation)
    jitter: base plus colour jitter and blur (pretraining: features that ignore camera colour casts)
    plain:  none (ICE Table 1's un-augmented targets)
    """
    pad = max(1, round(10 * height / 256))
    geometric = [T.RandomHorizontalFlip(), T.Pad(pad), T.RandomCrop((height, width))]
    blur = [T.RandomApply([T.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5)]
    jitter = [T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8)]
    ops = {"base": geometric, "blur": geometric + blur, "jitter": geometric + jitter + blur, "plain": []}
    if view not in ops:
        raise ReidReproError(f"augmentation view {view!r}; expected one of {sorted(ops)}")
    return T.Compose(ops[view]) if ops[view] else torch.nn.Identity()


class BatchFinish:
    """The end of every view's augmentation, on the device, for a uint8 batch: scale to [0, 1], normalise with
    the ImageNet mean and std, then (all views but ``plain``) torchvision's random erasing drawn per image
    (p 0.5, area 0.02-0.33, ratio 0.3-3.3, value 0 = the mean colour after normalising)."""

    def __init__(self, view: str, p: float = 0.5):
        self.erase = view != "plain"
        self.p = p
        self.eraser = T.RandomErasing(p=1.0, value=0)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        x = normalize_batch(batch)
        if self.erase:
            # the rectangles are drawn on the CPU generator, image by image (what T.RandomErasing does), and
            # written on the device
            for i in torch.nonzero(torch.rand(len(x)) < self.p).flatten().tolist():
                r = self.eraser.make_params([x[i]])
                x[i, :, r["i"]:r["i"] + r["h"], r["j"]:r["j"] + r["w"]] = 0.0
        return x


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x 3 x H x W -> float32 in [0, 1], normalised with the ImageNet mean and std, on images' device."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


class TrainSet(torch.utils.data.Dataset):
    """One augmented tensor per view of a cached image; an item is (*views, index)."""

    def __init__(self, cache: ImageCache, transforms: list):
        self.cache, self.transforms = cache, transforms

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, i):
        img = self.cache.images[i]
        return (*[t(img) for t in self.transforms], i)


# How the references draw an identity's K images (their samplers' per-identity rule; the loop draws P identities
# per batch). ``cross_camera: false``: RandomIdentitySampler (K without replacement, or all K with replacement
# when the identity has fewer). ``cross_camera: true``: the method's ``camera_sampler``:
#   gallery      RandomMultipleGallerySampler (SpCL, Cluster-Contrast, ISE, MMT: utils/data/sampler.py): a random
#                anchor, then K-1 images from the identity's other cameras (without replacement only when there
#                are at least K of them, the code's test), or from its other images when it has one camera;
#   more_camera  ICE's MoreCameraSampler (ice/utils/data/sampler.py): one random image per camera; K of those
#                when there are at least K cameras, else the rest from its other images (with replacement when
#                too few; all K with replacement from the per-camera picks when it has no other image).
# An identity with a single image repeats it (the gallery code skips it and misaligns its batch).
CAMERA_SAMPLERS = ("gallery", "more_camera")


class PKSampler(torch.utils.data.Sampler):
    """``iters`` batches of P labels x K images each, drawn from a seeded generator, an identity's K images by
    the reference's rule (``CAMERA_SAMPLERS`` above; ``camera_sampler`` with ``cross_camera``).
    Under torchrun (``world`` > 1) every rank draws the same global batch and yields its share: identities
    ``rank * P / world`` to ``(rank + 1) * P / world`` of it.
    """

    def __init__(self, labels, cams, batch_ids: int, instances: int, iters: int, seed, cross_camera: bool = False,
                 rank: int = 0, world: int = 1, camera_sampler: str = "gallery"):
        if camera_sampler not in CAMERA_SAMPLERS:
            raise ReidReproError(f"camera_sampler={camera_sampler!r}; expected one of {CAMERA_SAMPLERS}")
        self.rank, self.world, self.camera_sampler = rank, world, camera_sampler
        self.labels, self.cams = np.asarray(labels), np.asarray(cams)
        self.P, self.K, self.iters, self.seed, self.cross = batch_ids, instances, iters, seed, cross_camera
        self.groups = {int(c): np.flatnonzero(self.labels == c) for c in np.unique(self.labels[self.labels >= 0])}
        if len(self.groups) < 2:
            raise ReidReproError(f"only {len(self.groups)} labelled cluster(s); a P x K batch needs at least 2 "
                                 "(lower the DBSCAN eps or check the features)")

    def __len__(self) -> int:
        return self.iters

    def _pick(self, members: np.ndarray, rng) -> np.ndarray:
        K = self.K
        if not self.cross:                                          # RandomIdentitySampler
            return rng.choice(members, K, replace=len(members) < K)
        cams = self.cams[members]
        if self.camera_sampler == "gallery":                        # RandomMultipleGallerySampler
            anchor = rng.integers(len(members))
            pool = members[cams != cams[anchor]]
            if len(pool) == 0:
                pool = np.delete(members, anchor)
            if len(pool) == 0:
                return np.repeat(members[anchor], K)
            return np.concatenate([[members[anchor]], rng.choice(pool, K - 1, replace=len(pool) < K)])
        per_camera = np.array([rng.choice(members[cams == c]) for c in rng.permutation(np.unique(cams))])
        if len(per_camera) >= K:                                    # MoreCameraSampler
            return rng.choice(per_camera, K, replace=False)
        rest = np.setdiff1d(members, per_camera)
        if len(rest) == 0:
            return rng.choice(per_camera, K, replace=True)
        need = K - len(per_camera)
        return np.concatenate([per_camera, rng.choice(rest, need, replace=len(rest) < need)])

    def __iter__(self):
        rng = np.random.default_rng(self.seed)
        keys = np.array(sorted(self.groups))
        P = min(self.P, len(keys))
        if P % self.world:
            raise ReidReproError(f"{P} identities per batch do not split over {self.world} processes")
        share = P // self.world
        for _ in range(self.iters):
            chosen = rng.choice(keys, P, replace=False)
            picks = [self._pick(self.groups[int(c)], rng) for c in chosen]   # all ranks draw alike
            yield np.concatenate(picks[self.rank * share:(self.rank + 1) * share]).tolist()


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: torch.Tensor, device, batch: int = 256) -> np.ndarray:
    """L2-normalised features of uint8 images (N x 3 x H x W), in eval mode; float32 numpy N x d."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch):
        x = normalize_batch(images[start:start + batch].to(device, non_blocking=True))
        out.append(torch.nn.functional.normalize(model(x), dim=1).float().cpu())
    model.train(was_training)
    return torch.cat(out).numpy()
