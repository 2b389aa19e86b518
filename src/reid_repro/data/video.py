"""Video re-ID datasets -> one table of frames with a ``tracklet`` column (GCL+ §5.1, Table 10).

Each reader returns the manifest columns of :mod:`reid_repro.data.formats` plus ``tracklet`` (an integer unique
within the dataset; a tracklet's frames share it) and ``frame`` (the frame's index within its tracklet). Junk
tracklets (pid -1) are dropped, which is what the protocol's junk rule does to them; distractors (pid 0) stay.

MARS (Zheng et al., ECCV 2016): ``bbox_train/<pid>/``, ``bbox_test/<pid>/`` with images named
``0001C1T0001F001.jpg`` (pid, camera, tracklet, frame), and ``info/``: ``train_name.txt`` / ``test_name.txt``
(one image name per line), ``tracks_train_info.mat`` / ``tracks_test_info.mat`` (``track_train_info`` /
``track_test_info``: one row per tracklet, [first line, last line (1-based, inclusive), pid, camera 1-6]) and
``query_IDX.mat`` (``query_IDX``: the 1-based rows of the test tracklets that are queries). The official
evaluation (liangzheng06/MARS-evaluation ``test_mars.m``) ranks every test tracklet, the queries included, so a
query tracklet's frames appear twice in the table: once in ``query``, once in ``gallery`` (torchreid removes them
from the gallery, which leaves 140 real queries without a match).

DukeMTMC-VideoReID (Wu et al., CVPR 2018): ``{train,query,gallery}/<pid>/<tracklet>/`` with frames named
``0001_C6_F0099_X30823.jpg`` (pid, camera, frame within the tracklet, X or D and the frame's number in the video;
the older ``0001C6F0099X30823.jpg`` is read too). Some real tracklets start at F0002.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from reid_repro.data.formats import COLUMNS, IMAGE_SUFFIXES, _find_layout_root
from reid_repro.errors import ReidReproError

VIDEO_COLUMNS = [*COLUMNS, "tracklet"]

MARS_NAME = re.compile(r"^(\d{4}|00-1)C(\d)T(\d{4})F(\d{3})\.jpg$", re.IGNORECASE)
MARS_INFO = {"train": ("train_name.txt", "tracks_train_info.mat", "track_train_info", "bbox_train"),
             "test": ("test_name.txt", "tracks_test_info.mat", "track_test_info", "bbox_test")}
DUKE_VIDEO_NAME = re.compile(r"^(\d{4})_?C(\d+)_?F(\d+)_?[XD](\d+)\.(jpg|jpeg|png)$", re.IGNORECASE)
DUKE_VIDEO_SPLITS = ("train", "query", "gallery")


def _load_mat(path: Path, key: str, columns: int | None) -> np.ndarray:
    from scipy.io import loadmat

    if not path.is_file():
        raise ReidReproError(f"{path}: missing; expected the MARS file holding {key!r} (info/ of the dataset)")
    try:
        content = loadmat(path)
    except Exception as exc:     # scipy raises ValueError, TypeError or its own MatReadError on a bad file
        raise ReidReproError(f"{path}: cannot be read as a MATLAB file ({exc})") from exc
    if key not in content:
        found = sorted(k for k in content if not k.startswith("__"))
        raise ReidReproError(f"{path}: no variable {key!r}; found {found}")
    value = np.asarray(content[key])
    if columns is not None and (value.ndim != 2 or value.shape[1] != columns):
        raise ReidReproError(f"{path}: {key} has shape {value.shape}; expected N x {columns} "
                             "(first line, last line, pid, camera)")
    return value


def _names(path: Path) -> list[str]:
    if not path.is_file():
        raise ReidReproError(f"{path}: missing; expected the MARS list of image names (info/ of the dataset)")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_mars(root: Path) -> pd.DataFrame:
    """MARS from ``info/``; every listed frame must exist under ``bbox_train/`` or ``bbox_test/``."""
    base = _find_layout_root(root, ["bbox_train", "bbox_test", "info"], "a MARS dataset")
    tracks, rows = {}, []
    for part, (names_file, mat_file, key, folder) in MARS_INFO.items():
        names = _names(base / "info" / names_file)
        table = _load_mat(base / "info" / mat_file, key, 4).astype(np.int64)
        tracks[part] = table
        offset = 0 if part == "train" else len(tracks["train"])
        for i, (start, end, pid, cam) in enumerate(table):
            where = f"{base / 'info' / mat_file} row {i + 1}"
            if not 1 <= start <= end <= len(names):
                raise ReidReproError(f"{where}: lines {start}-{end}; expected 1 <= first <= last <= {len(names)}, "
                                     f"the lines of {names_file}")
            if pid == -1:
                continue                                       # junk tracklets: ignored by the protocol
            if not 1 <= cam <= 9:
                raise ReidReproError(f"{where}: camera {cam}; expected 1-based (MARS: 1-6)")
            for frame_name in names[start - 1:end]:
                match = MARS_NAME.match(frame_name)
                if match is None:
                    raise ReidReproError(f"{base / 'info' / names_file}: {frame_name!r} does not parse as MARS "
                                         "(expected a name like 0001C1T0001F001.jpg)")
                if int(match.group(1)) != pid or int(match.group(2)) != cam:
                    raise ReidReproError(f"{where}: pid {pid}, camera {cam}, but it lists {frame_name}")
                path = base / folder / frame_name[:4] / frame_name
                if not path.is_file():
                    raise ReidReproError(f"{path}: missing; {where} lists it as a frame of its tracklet")
                split = "train" if part == "train" else "gallery"
                rows.append((path.relative_to(root).as_posix(), int(pid), int(cam) - 1, split, "mars", -1,
                             int(match.group(4)), offset + i))
    frame = pd.DataFrame(rows, columns=VIDEO_COLUMNS)
    query_rows = _load_mat(base / "info" / "query_IDX.mat", "query_IDX", None).astype(np.int64).ravel()
    test = tracks["test"]
    bad = [int(q) for q in query_rows if not 1 <= q <= len(test)]
    if bad:
        raise ReidReproError(f"{base / 'info' / 'query_IDX.mat'}: query_IDX {bad[0]}; expected a 1-based row of "
                             f"track_test_info (1-{len(test)})")
    not_people = [int(q) for q in query_rows if test[q - 1, 2] <= 0]
    if not_people:
        raise ReidReproError(f"{base / 'info' / 'query_IDX.mat'}: query_IDX {not_people[0]} is a junk or distractor "
                             f"tracklet (pid {test[not_people[0] - 1, 2]}); expected a person's")
    queries = frame[frame["tracklet"].isin(len(tracks["train"]) + query_rows - 1)].assign(split="query")
    return pd.concat([frame, queries], ignore_index=True)


def read_duke_video(root: Path) -> pd.DataFrame:
    """DukeMTMC-VideoReID from its folders; every query identity must have a tracklet in ``gallery/``."""
    base = _find_layout_root(root, list(DUKE_VIDEO_SPLITS), "a DukeMTMC-VideoReID dataset")
    rows, number = [], 0
    for split in DUKE_VIDEO_SPLITS:
        for pid_dir in sorted(p for p in (base / split).iterdir() if p.is_dir()):
            if not pid_dir.name.lstrip("-").isdigit():
                raise ReidReproError(f"{pid_dir}: not an identity folder; expected <pid>/<tracklet>/<frames> "
                                     "(e.g. 0001/0001/0001_C6_F0001_X30823.jpg)")
            pid = int(pid_dir.name)
            for track_dir in sorted(p for p in pid_dir.iterdir() if p.is_dir()):
                frames = sorted(p for p in track_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not frames:
                    raise ReidReproError(f"{track_dir}: a tracklet without frames; expected its images "
                                         "(<pid>_C<cam>_F<frame>_X<n>.jpg)")
                cams = set()
                for path in frames:
                    match = DUKE_VIDEO_NAME.match(path.name)
                    if match is None:
                        raise ReidReproError(f"{path}: file name does not parse as DukeMTMC-VideoReID (expected "
                                             "a name like 0001_C6_F0099_X30823.jpg)")
                    if int(match.group(1)) != pid:
                        raise ReidReproError(f"{path}: pid {int(match.group(1))} in a folder of identity {pid}")
                    cam = int(match.group(2))
                    if cam < 1:
                        raise ReidReproError(f"{path}: camera index C{cam} is not 1-based")
                    cams.add(cam)
                    rows.append((path.relative_to(root).as_posix(), pid, cam - 1, split, "dukemtmc-videoreid", -1,
                                 int(match.group(3)), number))
                if len(cams) > 1:
                    raise ReidReproError(f"{track_dir}: frames of cameras {sorted(cams)}; a tracklet is one camera's")
                number += 1
    frame = pd.DataFrame(rows, columns=VIDEO_COLUMNS)
    missing = sorted(set(frame.loc[frame["split"] == "query", "pid"]) - set(frame.loc[frame["split"] == "gallery",
                                                                                      "pid"]))
    if missing:
        raise ReidReproError(f"{base / 'query' / f'{missing[0]:04d}'}: identity {missing[0]} has a query tracklet "
                             f"but none in {base / 'gallery'}; expected every query identity in the gallery")
    return frame
