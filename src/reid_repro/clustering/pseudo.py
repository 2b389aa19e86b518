"""Pseudo-label utilities: relabelling and (per-camera) centroids."""

from __future__ import annotations

import numpy as np


def relabel(labels) -> np.ndarray:
    """Map the non-negative labels to 0..C-1 by sorted value; negatives (outliers) become -1."""
    labels = np.asarray(labels)
    out = np.full(labels.shape, -1, dtype=np.int64)
    keep = labels >= 0
    _, out[keep] = np.unique(labels[keep], return_inverse=True)
    return out


def centroids(features, labels, normalize: bool = True) -> np.ndarray:
    """C x d mean feature of each cluster 0..C-1 (outliers ignored), L2-normalised by default."""
    features, labels = np.asarray(features, dtype=np.float32), np.asarray(labels)
    keep = labels >= 0
    num = int(labels[keep].max()) + 1 if keep.any() else 0
    sums = np.zeros((num, features.shape[1]), dtype=np.float64)
    np.add.at(sums, labels[keep], features[keep])
    counts = np.bincount(labels[keep], minlength=num)[:, None]
    cent = sums / np.maximum(counts, 1)
    if normalize:
        cent /= np.maximum(np.linalg.norm(cent, axis=1, keepdims=True), 1e-12)
    return cent.astype(np.float32)


def camera_centroids(features, labels, camids, normalize: bool = True):
    """Centroids of every (cluster, camera) pair present in the data.

    Returns (centroids P x d, cluster of each proxy, camera of each proxy); a camera with no sample of a
    cluster has no proxy for it.
    """
    labels, camids = np.asarray(labels), np.asarray(camids)
    keep = labels >= 0
    pairs, proxy = np.unique(np.stack([labels[keep], camids[keep]], 1), axis=0, return_inverse=True)
    proxy_labels = np.full(labels.shape, -1, dtype=np.int64)
    proxy_labels[keep] = proxy.reshape(-1)
    return centroids(features, proxy_labels, normalize), pairs[:, 0], pairs[:, 1]
