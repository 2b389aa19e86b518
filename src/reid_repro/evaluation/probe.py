"""How much camera information is left in the features: a linear probe (CANU-ReID's claim, measured).

A multinomial logistic regression (scikit-learn) predicts the camera from the L2-normalised test features.
Folds are grouped by identity (``GroupKFold``), so the probe is scored on identities it never saw: what it
recovers is the camera, not an identity that happens to be filmed by one camera. Chance is the share of the
most frequent camera (reported beside it).
"""

from __future__ import annotations

import numpy as np


def camera_probe(features: np.ndarray, camids: np.ndarray, pids: np.ndarray, folds: int = 3,
                 seed: int = 0) -> dict:
    """{"camera_probe": mean held-out accuracy, "camera_chance": majority-camera share} over identity-grouped
    folds; ``nan`` when there are fewer than two cameras or fewer identities than folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score

    x = np.asarray(features, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    camids, pids = np.asarray(camids), np.asarray(pids)
    chance = float(np.bincount(np.unique(camids, return_inverse=True)[1]).max() / len(camids)) if len(camids) else \
        float("nan")
    if len(np.unique(camids)) < 2 or len(np.unique(pids)) < folds:
        return {"camera_probe": float("nan"), "camera_chance": chance}
    probe = LogisticRegression(C=1.0, max_iter=500, random_state=seed)
    scores = cross_val_score(probe, x, camids, groups=pids, cv=GroupKFold(n_splits=folds))
    return {"camera_probe": float(np.mean(scores)), "camera_chance": chance}
