"""The protocol a test set asks for: tracklets (evaluation/video.py) when its table has a ``tracklet`` column (a
video dataset's manifest, data/video.py), images (the Market-1501 protocol, evaluation/features.py) otherwise.
Every caller that scores a query/gallery table (a run's evaluation, stored features) goes through here."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reid_repro.errors import ReidReproError
from reid_repro.evaluation.features import features_to_metrics
from reid_repro.evaluation.video import score_tracklets


def score_table(table: pd.DataFrame, features: np.ndarray, **options) -> dict:
    """mAP, rank-1/5/10 and mINP of ``table``'s query rows against its gallery rows (``features``: one row each);
    ``options`` go to features_to_metrics (rerank, k1, k2, lambda_value, metric)."""
    if "tracklet" in table:
        m = score_tracklets(table, features, **options)
    else:
        q = (table["split"] == "query").to_numpy()
        g = (table["split"] == "gallery").to_numpy()
        if not q.any() or not g.any():
            raise ReidReproError(f"{int(q.sum())} query and {int(g.sum())} gallery rows; expected both")
        pids, cams = table["pid"].to_numpy(), table["camid"].to_numpy()
        m = features_to_metrics(features[q], features[g], pids[q], pids[g], cams[q], cams[g], **options)
    return {"mAP": m["mAP"], "rank1": float(m["cmc"][0]), "rank5": float(m["cmc"][4]), "rank10": float(m["cmc"][9]),
            "mINP": m["mINP"]}
