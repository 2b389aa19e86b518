"""The video protocol (GCL+ §5.1: "all the frames from each tracklet are used to calculate a unified tracklet
representation"): a tracklet's feature is the mean of its frames' L2-normalised features, normalised again (BUC,
the paper's baseline: ``eval_feas`` in vana77/Bottom-up-Clustering ``evaluators.py``), and tracklets are ranked as
images are (evaluation/ranking.py): gallery tracklets of the query's identity *and* camera are ignored (MARS's
``evaluation_mars.m`` junk rule, which also removes the query tracklet itself from MARS's gallery of every test
tracklet), distractors (pid 0) are negatives, and junk tracklets (pid -1) were dropped by the readers
(data/video.py), which is what the junk rule does. AP is the area under the precision-recall steps of
evaluation/ranking.py (the image protocol's), not MARS-evaluation's trapezoid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from reid_repro.errors import ReidReproError
from reid_repro.evaluation.features import features_to_metrics


def mean_features(features: np.ndarray, groups: np.ndarray, count: int) -> np.ndarray:
    """Row g: the mean of the L2-normalised rows of ``features`` whose ``groups`` entry is g (0..count-1),
    L2-normalised: a tracklet's feature from its frames'. Summed in place (``index_add_``), without a copy of
    ``features`` (MARS's 681,089 test frames at 2,048 dimensions are 5.6 GB)."""
    x = torch.nn.functional.normalize(torch.as_tensor(np.ascontiguousarray(features, dtype=np.float32)), dim=1)
    index = torch.as_tensor(np.asarray(groups, dtype=np.int64))
    sums = torch.zeros((count, x.shape[1]), dtype=torch.float32).index_add_(0, index, x)
    return torch.nn.functional.normalize(sums, dim=1).numpy()


def pool_tracklets(table: pd.DataFrame, features: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per (split, tracklet) of ``table`` (frames, in the order of ``features``) with its pid and camid,
    and the tracklets' features (:func:`mean_features`)."""
    if "tracklet" not in table:
        raise ReidReproError("frame table has no 'tracklet' column; expected a video dataset's manifest "
                             "(data/video.py: mars, dukemtmc-videoreid)")
    if len(table) != len(features):
        raise ReidReproError(f"{len(features)} frame features for {len(table)} frames")
    keys = table[["split", "tracklet"]].reset_index(drop=True)
    codes = np.array(keys.groupby(["split", "tracklet"], sort=False).ngroup(), dtype=np.int64)
    groups = table.assign(_code=codes).groupby("_code", sort=True)
    info = groups.agg(split=("split", "first"), tracklet=("tracklet", "first"), pid=("pid", "first"),
                      camid=("camid", "first"), frames=("pid", "size"),
                      pids=("pid", "nunique"), cams=("camid", "nunique"))
    mixed = info[(info["pids"] > 1) | (info["cams"] > 1)]
    if len(mixed):
        row = mixed.iloc[0]
        raise ReidReproError(f"tracklet {row.tracklet} ({row.split}) holds frames of {row.pids} identities and "
                             f"{row.cams} cameras; expected one person under one camera")
    return info.drop(columns=["pids", "cams"]).reset_index(drop=True), mean_features(features, codes, len(info))


def score_tracklets(table: pd.DataFrame, features: np.ndarray, **options) -> dict:
    """mAP, CMC and mINP of the query tracklets against the gallery tracklets of ``table`` (frames of the query
    and gallery splits with their features); ``options`` go to features_to_metrics (e.g. ``rerank``)."""
    tracks, pooled = pool_tracklets(table, features)
    q, g = (tracks["split"] == "query").to_numpy(), (tracks["split"] == "gallery").to_numpy()
    if not q.any() or not g.any():
        raise ReidReproError(f"{int(q.sum())} query and {int(g.sum())} gallery tracklets; expected both")
    result = features_to_metrics(pooled[q], pooled[g], tracks["pid"][q].to_numpy(), tracks["pid"][g].to_numpy(),
                                 tracks["camid"][q].to_numpy(), tracks["camid"][g].to_numpy(), **options)
    return {**result, "num_query_tracklets": int(q.sum()), "num_gallery_tracklets": int(g.sum())}
