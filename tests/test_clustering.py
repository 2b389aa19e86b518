"""Clustering core against plain dense implementations of the definitions."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics

from reid_repro.clustering import (camera_centroids, centroids, clustering_scores, dbscan_labels, eps_from_quantile,
                                   jaccard_distance, relabel)
from reid_repro.errors import ReidReproError


def clustered_features(n=240, d=32, ids=30, noise=0.6, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, ids, n)
    x = rng.standard_normal((ids, d))[labels] + noise * rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def dense_jaccard(x, k1, k2):
    """The definition, written out with dense arrays and Python sets."""
    n = len(x)
    x64 = x.astype(np.float64)
    dist = 2.0 - 2.0 * x64 @ x64.T
    self_first = dist.copy()
    np.fill_diagonal(self_first, -1.0)
    rank = np.argsort(self_first, axis=1, kind="stable")[:, :k1]

    def recip(i, k):
        fwd = rank[i, :k + 1]
        return [j for j in fwd if i in rank[j, :k + 1]]

    V = np.zeros((n, n))
    half = int(np.around(k1 / 2))
    for i in range(n):
        r = recip(i, k1)
        expanded = set(r)
        for c in r:
            cand = recip(c, half)
            if len(set(cand) & set(r)) > 2 / 3 * len(cand):
                expanded |= set(cand)
        idx = np.array(sorted(expanded))
        w = np.exp(-dist[i, idx])
        V[i, idx] = w / w.sum()
    if k2 > 1:
        V = np.stack([V[rank[i, :k2]].mean(0) for i in range(n)])
    J = np.zeros((n, n))
    for i in range(n):
        s = np.minimum(V[i][None, :], V).sum(1)
        J[i] = 1 - s / (2 - s)
    return np.maximum(J, 0)


def to_dense(J):
    out = np.ones(J.shape)
    coo = J.tocoo()
    out[coo.row, coo.col] = coo.data
    return out


@pytest.mark.parametrize("k1,k2", [(20, 6), (15, 1), (25, 4)])
def test_sparse_jaccard_matches_dense_definition(k1, k2):
    x, _ = clustered_features()
    J = jaccard_distance(x, k1=k1, k2=k2)
    assert sp.isspmatrix_csr(J) or sp.issparse(J)
    np.testing.assert_allclose(to_dense(J), dense_jaccard(x, k1, k2), atol=1e-6)


def test_every_pair_below_one_is_stored_zeros_included():
    x, _ = clustered_features()
    x[1] = x[0]  # an exact duplicate gives J == 0 off the diagonal
    J = jaccard_distance(x, k1=20, k2=6)
    dense = dense_jaccard(x, 20, 6)
    assert J.nnz == int((dense < 1 - 1e-9).sum())
    assert J[0, 1] == pytest.approx(0.0, abs=1e-6) and (J[0].indices == 1).any()
    np.testing.assert_allclose(J.diagonal(), 0.0, atol=1e-6)


def test_dbscan_identical_from_dense_and_sparse():
    x, _ = clustered_features(n=300, noise=0.8)
    J = jaccard_distance(x, k1=20, k2=6)
    for eps in (0.3, 0.5, 0.6):
        sparse_labels = dbscan_labels(J, eps, min_samples=4)
        dense_labels = dbscan_labels(to_dense(J), eps, min_samples=4)
        np.testing.assert_array_equal(sparse_labels, dense_labels)
    assert sparse_labels.max() >= 5


def test_jaccard_clusters_recover_identities():
    x, labels = clustered_features(n=300, noise=0.5)
    pred = dbscan_labels(jaccard_distance(x, k1=20, k2=6), 0.6)
    assert metrics.normalized_mutual_info_score(labels, pred) > 0.9


def test_bad_parameters_are_rejected():
    x, _ = clustered_features(n=50)
    with pytest.raises(ReidReproError, match="k2"):
        jaccard_distance(x, k1=5, k2=6)
    with pytest.raises(ReidReproError, match="eps"):
        dbscan_labels(jaccard_distance(x, k1=10, k2=2), eps=0)


def test_eps_rule_mean_of_smallest_fraction():
    rng = np.random.default_rng(1)
    d = rng.random((40, 40))
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    upper = np.sort(d[np.triu_indices(40, 1)])
    top = int(round(0.05 * len(upper)))
    assert eps_from_quantile(d, rho=0.05) == pytest.approx(upper[:top].mean())
    sparse = sp.csr_matrix(np.where(d < 0.5, d, 0))  # absent pairs mean 1 > every stored value
    assert eps_from_quantile(sparse, rho=0.05) == pytest.approx(upper[:top].mean())


def test_relabel_and_centroids():
    labels = np.array([7, -1, 3, 7, 3, 9])
    np.testing.assert_array_equal(relabel(labels), [1, -1, 0, 1, 0, 2])
    feats = np.array([[1, 0], [5, 5], [0, 1], [1, 0], [0, 3], [2, 2]], dtype=np.float32)
    cent = centroids(feats, relabel(labels), normalize=False)
    np.testing.assert_allclose(cent, [[0, 2], [1, 0], [2, 2]])
    np.testing.assert_allclose(np.linalg.norm(centroids(feats, relabel(labels)), axis=1), 1, atol=1e-6)


def test_camera_centroids_only_for_present_cameras():
    feats = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0]]
    labels = np.array([0, 0, 1, -1, 0])
    cams = np.array([0, 1, 1, 2, 0])
    cent, cluster, cam = camera_centroids(feats, labels, cams, normalize=False)
    assert list(zip(cluster, cam)) == [(0, 0), (0, 1), (1, 1)]
    np.testing.assert_allclose(cent[0], [1, 0, 0, 0])
    np.testing.assert_allclose(cent[2], [0, 0, 1, 0])


def test_clustering_scores():
    true = np.array([0, 0, 1, 1, 2, 2])
    cams = np.array([0, 1, 0, 1, 0, 1])
    perfect = clustering_scores(true, true, cams)
    assert perfect["nmi"] == pytest.approx(1) and perfect["ari"] == pytest.approx(1)
    assert perfect["num_clusters"] == 3 and perfect["num_outliers"] == 0 and perfect["lost_ids"] == 0
    assert perfect["mi_pseudo_camera"] == pytest.approx(0)
    # identity 2 lost to outliers; clusters split by camera -> MI with camera > 0
    pseudo = np.array([0, 1, 0, 1, -1, -1])
    s = clustering_scores(pseudo, true, cams)
    assert s["lost_ids"] == 1 and s["num_outliers"] == 2 and s["num_clusters"] == 2
    assert s["mi_pseudo_camera"] == pytest.approx(np.log(2))
    singletons = np.array([0, 1, 0, 1, 2, 3])
    assert s["nmi"] == pytest.approx(metrics.normalized_mutual_info_score(true, singletons))
    assert s["fmi"] == pytest.approx(metrics.fowlkes_mallows_score(true, singletons))


def test_the_eps_rule_shared_by_mmt_ssg_and_gcl():
    """fixed: the loop's eps; quantile: the mean of the smallest rho fraction of the pairs (worked by hand: 6 pairs,
    rho 1/3 -> the 2 smallest, 0.1 and 0.2 -> 0.15); anything else a named error."""
    from reid_repro.clustering import eps_by_rule

    d = np.array([[0, .1, .2, .3], [.1, 0, .4, .5], [.2, .4, 0, .6], [.3, .5, .6, 0]], dtype=np.float32)
    assert eps_by_rule(d, "fixed", 0.5, 1 / 3) == 0.5
    assert eps_by_rule(d, "quantile", 0.5, 1 / 3) == pytest.approx(0.15)
    with pytest.raises(ReidReproError, match=r"eps_rule='median'; expected one of \('fixed', 'quantile'\)"):
        eps_by_rule(d, "median", 0.5, 1 / 3)
