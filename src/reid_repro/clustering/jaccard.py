"""k-reciprocal Jaccard distance (Zhong et al., CVPR 2017), as the papers' shared code computes it.

Semantics follow ``compute_jaccard_distance`` of SpCL / Cluster-Contrast, so their DBSCAN eps values carry over.
For L2-normalised features x and d(i,j) = 2 - 2 x_i . x_j:

- ``rank[i]`` holds the k1 nearest neighbours of i, i itself first (faiss, exact inner product);
- R(i,k) = {j in rank[i,:k+1] : i in rank[j,:k+1]}; ``rank`` has k1 columns, so R(i,k1) sees k1 neighbours;
- R*(i) = R(i,k1) plus R(c, round(k1/2)) for each c in R(i,k1) with more than 2/3 of it inside R(i,k1);
- V[i,j] = exp(-d(i,j)) / sum_{k in R*(i)} exp(-d(i,k)) on R*(i);  with k2 > 1, V[i] <- mean of V[rank[i,:k2]];
- J(i,j) = 1 - s / (2 - s), s = sum_k min(V[i,k], V[j,k]), clipped below at 0.

The result is a CSR matrix that stores every pair with J < 1 (zeros included); an absent entry means 1.

The reference builds a dense N x N matrix (1.8 GB and 15-27 s at N = 12,936 here). The loops below are
compiled with numba because no library computes this min-sum over an inverted index; bench/bench_clustering.py
measures the whole function against its targets.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import scipy.sparse as sp

from reid_repro.device import faiss_has_gpu
from reid_repro.errors import ReidReproError


def knn_inner_product(features: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by inner product with faiss (GPU when faiss-gpu sees one).

    Returns (similarities, indices), each N x k, with every point moved to the front of its own row.
    """
    import faiss

    features = np.ascontiguousarray(features, dtype=np.float32)
    n, d = features.shape
    k = min(k, n)
    if faiss_has_gpu():
        index = faiss.GpuIndexFlatIP(faiss.StandardGpuResources(), d)
    else:
        index = faiss.IndexFlatIP(d)
    index.add(features)
    sims, rank = index.search(features, k)
    _self_first(rank, sims, np.einsum("ij,ij->i", features, features))
    return sims, rank


@nb.njit(cache=True)
def _self_first(rank, sims, self_sims):
    """Exact duplicates can push i behind its twin; put i first as the definition requires."""
    n, k = rank.shape
    for i in range(n):
        if rank[i, 0] == i:
            continue
        pos = k - 1
        for c in range(k):
            if rank[i, c] == i:
                pos = c
                break
        for c in range(pos, 0, -1):
            rank[i, c] = rank[i, c - 1]
            sims[i, c] = sims[i, c - 1]
        rank[i, 0] = i
        sims[i, 0] = self_sims[i]


@nb.njit(cache=True)
def _k_reciprocal(rank, k):
    """CSR (indptr, indices) of R(i,k) = {j in rank[i,:k+1] : i in rank[j,:k+1]}, in rank order."""
    n, width = rank.shape
    k = min(k + 1, width)
    indptr = np.zeros(n + 1, np.int64)
    indices = np.empty(n * k, np.int64)
    nnz = 0
    for i in range(n):
        for a in range(k):
            j = rank[i, a]
            for b in range(k):
                if rank[j, b] == i:
                    indices[nnz] = j
                    nnz += 1
                    break
        indptr[i + 1] = nnz
    return indptr, indices[:nnz]


@nb.njit(cache=True, fastmath=True)
def _dot(x, i, j):
    acc = 0.0
    for t in range(x.shape[1]):
        acc += x[i, t] * x[j, t]
    return acc


@nb.njit(cache=True)
def _expanded_weights(features, rank, sims, r_ptr, r_idx, h_ptr, h_idx):
    """CSR of V: R*(i) and the normalised weights exp(-d(i,j)) on it (float64)."""
    n, width = rank.shape
    stamp = np.full(n, -1, np.int64)      # stamp[j] == i  <=>  j already in R*(i)
    in_r = np.full(n, -1, np.int64)       # in_r[j] == i   <=>  j in R(i,k1)
    knn_pos = np.full(n, -1, np.int64)    # position of j in rank[i] when stamped with i (via knn_owner)
    knn_owner = np.full(n, -1, np.int64)
    indptr = np.zeros(n + 1, np.int64)
    cap = max(16, n * (width + 8))
    indices = np.empty(cap, np.int64)
    data = np.empty(cap, np.float64)
    nnz = 0
    members = np.empty(n, np.int64)
    for i in range(n):
        for c in range(width):
            knn_owner[rank[i, c]] = i
            knn_pos[rank[i, c]] = c
        m = 0
        for p in range(r_ptr[i], r_ptr[i + 1]):
            j = r_idx[p]
            in_r[j] = i
            if stamp[j] != i:
                stamp[j] = i
                members[m] = j
                m += 1
        for p in range(r_ptr[i], r_ptr[i + 1]):
            c = r_idx[p]
            size = h_ptr[c + 1] - h_ptr[c]
            inside = 0
            for q in range(h_ptr[c], h_ptr[c + 1]):
                if in_r[h_idx[q]] == i:
                    inside += 1
            if inside > 2.0 / 3.0 * size:
                for q in range(h_ptr[c], h_ptr[c + 1]):
                    j = h_idx[q]
                    if stamp[j] != i:
                        stamp[j] = i
                        members[m] = j
                        m += 1
        if nnz + m > cap:
            cap = 2 * (nnz + m)
            grown_i = np.empty(cap, np.int64)
            grown_d = np.empty(cap, np.float64)
            grown_i[:nnz] = indices[:nnz]
            grown_d[:nnz] = data[:nnz]
            indices, data = grown_i, grown_d
        total = 0.0
        for a in range(m):
            j = members[a]
            if knn_owner[j] == i:
                sim = sims[i, knn_pos[j]]
            else:
                sim = _dot(features, i, j)
            w = np.exp(-(2.0 - 2.0 * sim))
            indices[nnz + a] = j
            data[nnz + a] = w
            total += w
        for a in range(m):
            data[nnz + a] /= total
        nnz += m
        indptr[i + 1] = nnz
    return indptr, indices[:nnz], data[:nnz]


@nb.njit(cache=True, parallel=True)
def _count_pairs(indptr, indices, t_ptr, t_idx, nchunks):
    """Number of distinct j sharing a column with row i, for every i (first of two passes)."""
    n = len(indptr) - 1
    counts = np.zeros(n, np.int64)
    for c in nb.prange(nchunks):
        stamp = np.full(n, -1, np.int64)
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            m = 0
            for p in range(indptr[i], indptr[i + 1]):
                k = indices[p]
                for q in range(t_ptr[k], t_ptr[k + 1]):
                    j = t_idx[q]
                    if stamp[j] != i:
                        stamp[j] = i
                        m += 1
            counts[i] = m
    return counts


@nb.njit(cache=True, parallel=True)
def _min_sum_jaccard(indptr, indices, data, t_ptr, t_idx, t_data, out_ptr, nchunks):
    """J = max(0, 1 - s / (2 - s)), s = sum_k min(V[i,k], V[j,k]), for every pair sharing a column of V.

    (indptr, indices, data) is V in CSR, (t_ptr, t_idx, t_data) is V in CSC, ``out_ptr`` the CSR row pointer
    from :func:`_count_pairs`. V is strictly positive on its support, so acc[j] == 0 means "not touched yet".
    """
    n = len(indptr) - 1
    out_idx = np.empty(out_ptr[n], np.int32)
    out_val = np.empty(out_ptr[n], np.float32)
    for c in nb.prange(nchunks):
        acc = np.zeros(n, np.float64)
        for i in range(c * n // nchunks, (c + 1) * n // nchunks):
            m = out_ptr[i]
            for p in range(indptr[i], indptr[i + 1]):
                k = indices[p]
                v = data[p]
                for q in range(t_ptr[k], t_ptr[k + 1]):
                    j = t_idx[q]
                    w = t_data[q]
                    if acc[j] == 0.0:
                        out_idx[m] = j
                        m += 1
                    acc[j] += v if v < w else w
            for a in range(out_ptr[i], m):
                j = out_idx[a]
                s = acc[j]
                out_val[a] = max(0.0, 1.0 - s / (2.0 - s))
                acc[j] = 0.0
    return out_idx, out_val


def jaccard_distance(features, k1: int = 30, k2: int = 6) -> sp.csr_matrix:
    """Sparse k-reciprocal Jaccard distance of L2-normalised ``features`` (N x d). Absent entries mean 1."""
    features = np.ascontiguousarray(np.asarray(features, dtype=np.float32))
    if features.ndim != 2 or len(features) < 2:
        raise ReidReproError(f"features must be N x d with N >= 2, got shape {features.shape}")
    if not (1 <= k2 <= k1):
        raise ReidReproError(f"need 1 <= k2 <= k1, got k1={k1}, k2={k2}")
    n = len(features)
    sims, rank = knn_inner_product(features, k1)
    rank = rank.astype(np.int64)
    r_ptr, r_idx = _k_reciprocal(rank, k1)
    h_ptr, h_idx = _k_reciprocal(rank, int(np.around(k1 / 2)))
    v_ptr, v_idx, v_data = _expanded_weights(features, rank, sims.astype(np.float64), r_ptr, r_idx, h_ptr, h_idx)
    V = sp.csr_matrix((v_data, v_idx, v_ptr), shape=(n, n))
    if k2 > 1:
        rows = np.repeat(np.arange(n), k2)
        qe = sp.csr_matrix((np.full(n * k2, 1.0 / k2), (rows, rank[:, :k2].reshape(-1))), shape=(n, n))
        V = (qe @ V).tocsr()
    V.sort_indices()
    Vt = V.tocsc()
    args = (V.indptr.astype(np.int64), V.indices.astype(np.int64), V.data,
            Vt.indptr.astype(np.int64), Vt.indices.astype(np.int64), Vt.data)
    nchunks = 8 * nb.get_num_threads()
    j_ptr = np.zeros(n + 1, np.int64)
    np.cumsum(_count_pairs(args[0], args[1], args[3], args[4], nchunks), out=j_ptr[1:])
    j_idx, j_val = _min_sum_jaccard(*args, j_ptr, nchunks)
    return sp.csr_matrix((j_val, j_idx, j_ptr), shape=(n, n))
