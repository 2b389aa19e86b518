"""A run's embeddings as a file: what it writes after training, what the figures and ``reid-repro evaluate
--features`` read, so that a metric (re-ranking, another distance) is scored without retraining.

One Parquet file per seed (``runs/<run>/features/<seed>.parquet``): one row per image of the test set's query and
gallery and of the training set, with its ``name`` (the image path of the manifest), ``split`` (query | gallery |
train), ``pid``, ``camid``, for a video dataset its ``tracklet`` (scored by the video protocol), and ``feature``,
the L2-normalised embedding the evaluation scored, stored as float16 (a fixed-size list, so pyarrow reads it back as
one N x d array). Float16 keeps 11 bits of each coordinate: scores from the stored features agree with the run's own
to about 1e-3 mAP (tests/test_evaluation.py measures it).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from reid_repro.errors import ReidReproError

COLUMNS = ("name", "split", "pid", "camid")
SPLITS = ("query", "gallery", "train")


def write_features(path: str | os.PathLike, table: pd.DataFrame, features: np.ndarray) -> Path:
    """Write ``features`` (N x d, row i of ``table``) with ``table``'s path, split, pid and camid."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from reid_repro.io import atomic_path

    feats = np.ascontiguousarray(features, dtype=np.float16)
    if feats.ndim != 2 or len(feats) != len(table):
        raise ReidReproError(f"{path}: {feats.shape} features for {len(table)} images; expected one row each")
    unknown = set(table["split"]) - set(SPLITS)
    if unknown:
        raise ReidReproError(f"{path}: splits {sorted(unknown)}; expected {SPLITS}")
    arrays = {"name": pa.array(table["path"].astype(str).tolist()), "split": pa.array(table["split"].tolist()),
              "pid": pa.array(table["pid"].to_numpy(np.int64)), "camid": pa.array(table["camid"].to_numpy(np.int64)),
              **({"tracklet": pa.array(table["tracklet"].to_numpy(np.int64))} if "tracklet" in table else {}),
              "feature": pa.FixedSizeListArray.from_arrays(pa.array(feats.ravel()), feats.shape[1])}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(pa.table(arrays), tmp)
    return path


def seed_files(folder: str | os.PathLike) -> list[Path]:
    """A run's ``features/<seed>.parquet`` files in seed order ([] where the folder is missing or holds none)."""
    folder = Path(folder)
    found = [f for f in folder.glob("*.parquet") if f.stem.isdigit()] if folder.is_dir() else []
    return sorted(found, key=lambda f: int(f.stem))


def read_features(path: str | os.PathLike, splits: tuple[str, ...] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """(table with name, split, pid, camid and, for a video dataset, tracklet; float32 N x d features) of the rows
    in ``splits`` (default: all)."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ReidReproError(f"{path}: missing; expected a run's stored features (runs/<run>/features/<seed>.parquet, "
                             "written by `reid-repro train`)")
    try:
        data = pq.read_table(path)
    except Exception as exc:              # pyarrow's errors have no common base class worth naming
        raise ReidReproError(f"{path}: not a readable Parquet file ({exc})") from None
    missing = [c for c in (*COLUMNS, "feature") if c not in data.column_names]
    if missing:
        raise ReidReproError(f"{path}: columns {missing} missing; expected {[*COLUMNS, 'feature']}")
    column = data.column("feature").combine_chunks()
    width = column.type.list_size
    feats = np.asarray(column.flatten()).reshape(-1, width).astype(np.float32)
    table = data.drop_columns(["feature"]).to_pandas()
    if splits is not None:
        keep = table["split"].isin(splits).to_numpy()
        table, feats = table[keep].reset_index(drop=True), feats[keep]
    if not np.isfinite(feats).all():
        raise ReidReproError(f"{path}: non-finite stored features")
    return table, feats


def score_features(path: str | os.PathLike, rerank: bool = False, **options) -> dict:
    """mAP / CMC / mINP of stored features under the protocol of their test set (evaluation/protocol.py: the
    Market-1501 protocol, or tracklets for a video dataset), with ``rerank`` the k-reciprocal re-ranking (Zhong
    et al., CVPR 2017; ``options``: k1, k2, lambda_value, metric)."""
    from reid_repro.evaluation.protocol import score_table

    table, feats = read_features(path, ("query", "gallery"))
    q = (table["split"] == "query").to_numpy()
    if not q.any() or q.all():
        raise ReidReproError(f"{path}: needs query and gallery rows; has {int(q.sum())} and {int((~q).sum())}")
    return score_table(table, feats, rerank=rerank, **options)
