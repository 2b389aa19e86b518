"""DBSCAN on the sparse Jaccard distance, and the MMT/SSG eps rule."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from reid_repro.errors import ReidReproError


def dbscan_labels(distances, eps: float, min_samples: int = 4, n_jobs: int | None = None) -> np.ndarray:
    """scikit-learn DBSCAN on a precomputed distance matrix, dense or sparse.

    For a sparse matrix only stored entries are neighbour candidates (explicit zeros count), which is why
    :func:`reid_repro.clustering.jaccard.jaccard_distance` stores every pair closer than 1.
    Returns one label per row, -1 for outliers.
    """
    if not 0.0 < eps:
        raise ReidReproError(f"eps={eps}; expected a positive DBSCAN radius")
    if min_samples < 1:
        raise ReidReproError(f"min_samples={min_samples}; expected at least 1")
    n, m = distances.shape
    if n != m:
        raise ReidReproError(f"distances must be square, got {n}x{m}")
    if sp.issparse(distances):
        distances = _within(distances.tocsr(), eps)
    model = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed", n_jobs=n_jobs)
    return model.fit_predict(distances).astype(np.int64)


def _within(distances: sp.csr_matrix, eps: float) -> sp.csr_matrix:
    """Only the stored pairs within ``eps``, rows sorted by value: the same neighbourhoods, far fewer entries.

    DBSCAN never looks past eps, so dropping the rest changes no label; it cuts scikit-learn's work and
    memory (tests/test_clustering.py compares against the unpruned dense matrix).
    """
    keep = distances.data <= eps
    row = np.repeat(np.arange(distances.shape[0]), np.diff(distances.indptr))[keep]
    col, val = distances.indices[keep], distances.data[keep]
    order = np.lexsort((val, row))
    indptr = np.zeros(distances.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(row, minlength=distances.shape[0]), out=indptr[1:])
    return sp.csr_matrix((val[order], col[order], indptr), shape=distances.shape)


EPS_RULES = ("fixed", "quantile")


def eps_by_rule(distances, rule: str, eps: float, rho: float) -> float:
    """DBSCAN's eps under a method's ``eps_rule``: ``fixed`` is the loop's ``eps``; ``quantile`` the MMT, SSG and GCL
    code's rule, :func:`eps_from_quantile` of these distances at ``rho`` (each method says when it applies it)."""
    if rule == "fixed":
        return eps
    if rule == "quantile":
        return eps_from_quantile(distances, rho)
    raise ReidReproError(f"params.yaml: eps_rule={rule!r}; expected one of {EPS_RULES}")


def eps_from_quantile(distances, rho: float = 1.6e-3) -> float:
    """MMT/SSG rule: eps = mean of the smallest ``rho`` fraction of the pairwise distances (upper triangle).

    For a sparse matrix the absent pairs are distance 1, so only stored pairs can be among the smallest as
    long as fewer than ``rho`` of all pairs are needed.
    """
    if not 0.0 < rho < 1.0:
        raise ReidReproError(f"rho={rho}; expected a fraction in (0, 1)")
    n = distances.shape[0]
    total = n * (n - 1) // 2
    top = max(1, int(round(rho * total)))
    if sp.issparse(distances):
        upper = sp.triu(distances, k=1, format="coo")
        values = upper.data
        if len(values) < top:
            values = np.concatenate([values, np.ones(top - len(values), dtype=values.dtype)])
    else:
        values = np.asarray(distances)[np.triu_indices(n, k=1)]
    return float(np.partition(values, top - 1)[:top].mean())
