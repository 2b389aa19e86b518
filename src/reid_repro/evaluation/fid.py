"""Distances between two sets of image features: the Fréchet distance of FID (Heusel et al., NeurIPS 2017) and
the kernel distance of KID (Bińkowski et al., ICLR 2018), in whatever feature space the caller extracts.

FID proper is this distance on Inception-v3 pool features; no Inception weights can be downloaded here, so GCL's
FID per angle (GCL supp. Table 1) is computed in the feature space of the pretrained start and labelled so: its
values are not comparable with the paper's, only its ordering over angles is.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (N - 1 normalisation) of N x d features."""
    f = np.asarray(features, dtype=np.float64)
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), the Fréchet distance of two Gaussians. A near-singular
    product gets the usual small diagonal offset; the imaginary part of the root (numerical) is dropped."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    s1, s2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    root = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(root).all():
        offset = np.eye(len(s1)) * 1e-6
        root = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(root))


def fid(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between the Gaussians fitted to two feature sets."""
    return frechet_distance(*feature_stats(a), *feature_stats(b))


def kid(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with the polynomial kernel k(x, y) = (x.y / d + 1)^3, over all pairs."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = a.shape[1]

    def k(x, y):
        return (x @ y.T / d + 1.0) ** 3
    kaa, kbb, kab = k(a, a), k(b, b), k(a, b)
    m, n = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (m * (m - 1)) + (kbb.sum() - np.trace(kbb)) / (n * (n - 1))
                 - 2 * kab.mean())
