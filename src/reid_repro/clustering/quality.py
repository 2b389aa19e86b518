"""Clustering quality against ground truth. For logging only: never fed back into training."""

from __future__ import annotations

import numpy as np
from sklearn import metrics


def clustering_scores(pseudo_labels, true_ids, camids) -> dict:
    """NMI, AMI, ARI, FMI, V-measure, counts, camera mutual information and lost identities.

    The partition scores treat every outlier (-1) as its own singleton cluster, so a run cannot look good by
    discarding hard samples. ``mi_pseudo_camera`` and ``mi_true_camera`` are in nats.
    """
    pseudo, true, cams = np.asarray(pseudo_labels), np.asarray(true_ids), np.asarray(camids)
    outlier = pseudo < 0
    singletons = pseudo.copy()
    singletons[outlier] = pseudo.max(initial=-1) + 1 + np.arange(int(outlier.sum()))
    clustered_ids = np.unique(true[~outlier])
    return {
        "nmi": float(metrics.normalized_mutual_info_score(true, singletons)),
        "ami": float(metrics.adjusted_mutual_info_score(true, singletons)),
        "ari": float(metrics.adjusted_rand_score(true, singletons)),
        "fmi": float(metrics.fowlkes_mallows_score(true, singletons)),
        "v_measure": float(metrics.v_measure_score(true, singletons)),
        "num_clusters": int(len(np.unique(pseudo[~outlier]))),
        "num_outliers": int(outlier.sum()),
        "num_true_ids": int(len(np.unique(true))),
        "mi_pseudo_camera": float(metrics.mutual_info_score(cams[~outlier], pseudo[~outlier])) if (~outlier).any() else 0.0,
        "mi_true_camera": float(metrics.mutual_info_score(cams, true)),
        "lost_ids": int(len(np.unique(true)) - len(clustered_ids)),
    }
