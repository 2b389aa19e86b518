"""Dataset folder formats -> one table of images.

Each reader returns a ``pandas.DataFrame`` with the manifest columns
``path`` (relative to the root given), ``pid``, ``camid`` (0-based), ``split`` (train, query or gallery),
``dataset``, and the frame/sequence fields a format has (``-1`` where it has none).

Readers only look at names and list files; decoding is checked in :mod:`reid_repro.data.manifest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from reid_repro.errors import ReidReproError

COLUMNS = ["path", "pid", "camid", "split", "dataset", "sequence", "frame"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")

# Market-1501: 0002_c1s1_000451_03.jpg  (pid, camera, sequence, frame, box index)
MARKET_NAME = re.compile(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
# DukeMTMC-reID: 0001_c2_f0046182.jpg  (pid, camera, frame)
DUKE_NAME = re.compile(r"^(-?\d+)_c(\d+)_f(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
# MSMT17: 0000_000_01_0303morning_0015_0.jpg  (pid, index, camera, date+time, frame, box)
MSMT_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_(\w+?)_(\d+)_(\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)

MARKET_SPLITS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class FolderFormat:
    """A Market-style layout: one folder per split, identity and camera in the file name."""

    name: str
    pattern: re.Pattern
    has_sequence: bool


FOLDER_FORMATS = {
    "market1501": FolderFormat("market1501", MARKET_NAME, has_sequence=True),
    "dukemtmc": FolderFormat("dukemtmc", DUKE_NAME, has_sequence=False),
}

MSMT_VERSIONS = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}
MSMT_LISTS = {"train": "list_train.txt", "val": "list_val.txt", "query": "list_query.txt", "gallery": "list_gallery.txt"}


def _require_dir(path: Path, what: str) -> None:
    if not path.exists():
        raise ReidReproError(f"{path}: does not exist; expected {what}")
    if not path.is_dir():
        raise ReidReproError(f"{path}: is not a folder; expected {what}")


def _find_layout_root(root: Path, required: list[str], what: str) -> Path:
    """``root`` itself, or its single child folder, that holds every name in ``required``."""
    _require_dir(root, what)
    if all((root / name).exists() for name in required):
        return root
    children = [c for c in sorted(root.iterdir()) if c.is_dir() and all((c / n).exists() for n in required)]
    if len(children) == 1:
        return children[0]
    present = sorted(p.name for p in root.iterdir())[:12]
    raise ReidReproError(
        f"{root}: wrong layout; expected {what} with {', '.join(required)} "
        f"(directly or in one sub-folder), found {present or 'an empty folder'}"
    )


def read_folder_dataset(root: Path, fmt: FolderFormat) -> pd.DataFrame:
    """Market-1501 or DukeMTMC-reID. Junk images (pid -1) are dropped; distractors (pid 0) are kept."""
    base = _find_layout_root(root, list(MARKET_SPLITS.values()), f"a {fmt.name} dataset")
    rows = []
    for split, folder in MARKET_SPLITS.items():
        for path in sorted((base / folder).iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            match = fmt.pattern.match(path.name)
            if match is None:
                raise ReidReproError(
                    f"{path}: file name does not parse as {fmt.name} "
                    f"(expected a name like {'0002_c1s1_000451_03.jpg' if fmt.has_sequence else '0001_c2_f0046182.jpg'})"
                )
            pid, cam = int(match.group(1)), int(match.group(2))
            if pid == -1:
                continue  # junk boxes, ignored by the standard protocol
            if cam < 1:
                raise ReidReproError(f"{path}: camera index c{cam} is not 1-based")
            if fmt.has_sequence:
                sequence, frame = int(match.group(3)), int(match.group(4))
            else:
                sequence, frame = -1, int(match.group(3))
            rows.append((path.relative_to(root).as_posix(), pid, cam - 1, split, fmt.name, sequence, frame))
    return pd.DataFrame(rows, columns=COLUMNS)


def read_msmt17(root: Path, train_only: bool = False) -> pd.DataFrame:
    """MSMT17 V1 or V2 from its list files. train+val (32,621 images) is the training set unless ``train_only``."""
    _require_dir(root, "an MSMT17 dataset")
    base = None
    for candidate in [root, *(root / v for v in MSMT_VERSIONS)]:
        if (candidate / MSMT_LISTS["train"]).exists():
            base = candidate
            break
    if base is None:
        raise ReidReproError(
            f"{root}: wrong layout; expected MSMT17_V1 or MSMT17_V2 with {', '.join(MSMT_LISTS.values())}"
        )
    version = next((v for v, (tr, te) in MSMT_VERSIONS.items() if (base / tr).is_dir() and (base / te).is_dir()), None)
    if version is None:
        expected = " or ".join(f"{tr}/ and {te}/" for tr, te in MSMT_VERSIONS.values())
        raise ReidReproError(f"{base}: wrong layout; expected image folders {expected}")
    train_dir, test_dir = MSMT_VERSIONS[version]
    lists = [("train", "train", train_dir)] + ([] if train_only else [("val", "train", train_dir)])
    lists += [("query", "query", test_dir), ("gallery", "gallery", test_dir)]
    rows = []
    for key, split, folder in lists:
        list_file = base / MSMT_LISTS[key]
        if not list_file.exists():
            raise ReidReproError(f"{list_file}: missing; expected the MSMT17 list file for {key}")
        for lineno, line in enumerate(list_file.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise ReidReproError(f"{list_file}:{lineno}: expected '<relative image path> <pid>', got {line!r}")
            rel, pid = parts[0], int(parts[1])
            match = MSMT_NAME.match(Path(rel).name)
            if match is None:
                raise ReidReproError(
                    f"{list_file}:{lineno}: file name {Path(rel).name!r} does not parse as MSMT17 "
                    "(expected a name like 0000_000_01_0303morning_0015_0.jpg)"
                )
            image = base / folder / rel
            if not image.is_file():
                raise ReidReproError(f"{list_file}:{lineno}: lists {image}, which does not exist")
            rows.append((image.relative_to(root).as_posix(), pid, int(match.group(3)) - 1, split, "msmt17", -1,
                         int(match.group(5))))
    return pd.DataFrame(rows, columns=COLUMNS)


# One entry per image dataset name the CLI accepts; synthetic domains use the Market-1501 layout on purpose (the
# video readers, data/video.py, join these in data/manifest.py).
READERS = {
    "market1501": lambda root, **kw: read_folder_dataset(root, FOLDER_FORMATS["market1501"]),
    "dukemtmc": lambda root, **kw: read_folder_dataset(root, FOLDER_FORMATS["dukemtmc"]),
    "msmt17": lambda root, train_only=False, **kw: read_msmt17(root, train_only=train_only),
}
