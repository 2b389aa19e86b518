"""The ``prepare`` stage: a dataset folder -> ``manifest.parquet`` + ``dataset.json``.

Every image is decoded once (at reduced JPEG scale) so a corrupt file fails here, with its path,
instead of in the middle of training. Both outputs are renamed into place only after everything succeeded.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from reid_repro.data import formats, video
from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path, write_json

SPLITS = ("train", "query", "gallery")
# every dataset layout the prepare stage reads (config.DATA_FORMATS names them, with imagenet)
READERS = {**formats.READERS, "mars": lambda root, **kw: video.read_mars(root),
           "dukemtmc-videoreid": lambda root, **kw: video.read_duke_video(root)}


def read_dataset(name: str, root: str | Path, train_only: bool = False) -> pd.DataFrame:
    if name not in READERS:
        raise ReidReproError(f"unknown dataset {name!r}; expected one of {sorted(READERS)}")
    return READERS[name](Path(root), train_only=train_only)


def _check_image(path: Path) -> str:
    """Decode ``path`` and return the sha256 of its bytes; raise ReidReproError if it does not decode."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReidReproError(f"{path}: cannot be read ({exc})") from exc
    try:
        with Image.open(path) as img:
            img.draft("RGB", (1, 1))  # JPEG: decode the whole stream at 1/8 scale; truncation still fails
            img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ReidReproError(f"{path}: image does not decode ({exc}); expected a readable JPEG or PNG") from exc
    return hashlib.sha256(data).hexdigest()


def content_checksum(frame: pd.DataFrame, digests: list[str]) -> str:
    """One sha256 over every row's path, labels and file digest, in path order."""
    h = hashlib.sha256()
    order = sorted(range(len(frame)), key=lambda i: frame["path"].iat[i])
    for i in order:
        row = frame.iloc[i]
        h.update(f"{row.path}\0{row.pid}\0{row.camid}\0{row.split}\0{digests[i]}\n".encode())
    return h.hexdigest()


def summarize(frame: pd.DataFrame) -> dict:
    """Counts per split: images, identities, cameras (and tracklets, for a video dataset)."""
    out = {}
    for split in SPLITS:
        part = frame[frame["split"] == split]
        out[split] = {
            "images": int(len(part)),
            "identities": int(part["pid"].nunique()),
            "cameras": int(part["camid"].nunique()),
            **({"tracklets": int(part["tracklet"].nunique())} if "tracklet" in part else {}),
        }
    return out


def build_manifest(dataset: str, root: str | Path, train_only: bool = False, name: str | None = None,
                   workers: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Read and verify a dataset; return the manifest table and the ``dataset.json`` content."""
    root = Path(root)
    frame = read_dataset(dataset, root, train_only=train_only)
    if frame.empty:
        raise ReidReproError(f"{root}: no images found; expected a {dataset} dataset")
    if name:
        frame["dataset"] = name
    for split in SPLITS:
        if not (frame["split"] == split).any():
            raise ReidReproError(f"{root}: the {split} split has no images")
    paths = [root / p for p in frame["path"]]
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        digests = list(tqdm(pool.map(_check_image, paths), total=len(paths), desc=f"verify {frame['dataset'].iat[0]}",
                            unit="img", mininterval=1.0, disable=None))
    info = {
        "dataset": str(frame["dataset"].iat[0]),
        "format": dataset,
        "train_only": bool(train_only),
        "splits": summarize(frame),
        "checksum": content_checksum(frame, digests),
    }
    ints = ["pid", "camid", "sequence", "frame", *(["tracklet"] if "tracklet" in frame else [])]
    return frame.astype({c: "int64" for c in ints}), info


def prepare(dataset: str, root: str | Path, out: str | Path, train_only: bool = False, name: str | None = None) -> dict:
    """Write ``out/manifest.parquet`` and ``out/dataset.json``. On any error neither is written."""
    frame, info = build_manifest(dataset, root, train_only=train_only, name=name)
    out = Path(out)
    with atomic_path(out / "manifest.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
        write_json(out / "dataset.json", info)
    return info


def prepare_imagenet(root: str | Path, out: str | Path, name: str | None = None) -> dict:
    """Format ``imagenet``: ``root`` holds torchvision ImageNet checkpoints (``<arch>-<hash>.pth``, as torch's hub
    cache keeps them), the start the papers train from. Each must load as a state dict with a 1000-class
    classifier; ``out/dataset.json`` records each file's sha256, so the pretrain stage (which converts the one for
    ``model.arch``) re-runs when a file changes."""
    import torch

    root = Path(root)
    if not root.is_dir():
        raise ReidReproError(f"{root}: not a folder; expected a folder of torchvision ImageNet checkpoints "
                             "(e.g. resnet50-0676ba61.pth from ~/.cache/torch/hub/checkpoints)")
    files = sorted(root.glob("*.pth"))
    if not files:
        raise ReidReproError(f"{root}: no *.pth file; expected torchvision ImageNet checkpoints such as "
                             "resnet50-0676ba61.pth")
    digests = {}
    for path in files:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:   # truncated or not a torch file
            raise ReidReproError(f"{path}: cannot read the checkpoint ({exc}); expected a torchvision state dict")
        fc = state.get("fc.weight") if isinstance(state, dict) else None
        if fc is None or fc.shape[0] != 1000:
            raise ReidReproError(f"{path}: not an ImageNet ResNet state dict (no 1000-class fc.weight)")
        digests[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    checksum = hashlib.sha256("".join(f"{k}\0{v}\n" for k, v in digests.items()).encode()).hexdigest()
    info = {"dataset": name or "imagenet", "format": "imagenet", "checkpoints": digests, "checksum": checksum}
    write_json(Path(out) / "dataset.json", info)
    return info
