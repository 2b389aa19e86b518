"""Clustering core: k-reciprocal Jaccard distance, DBSCAN, pseudo labels and cluster quality."""

from reid_repro.clustering.dbscan import EPS_RULES, dbscan_labels, eps_by_rule, eps_from_quantile
from reid_repro.clustering.jaccard import jaccard_distance
from reid_repro.clustering.pseudo import camera_centroids, centroids, relabel
from reid_repro.clustering.quality import clustering_scores

__all__ = ["EPS_RULES", "jaccard_distance", "dbscan_labels", "eps_by_rule", "eps_from_quantile",
           "relabel", "centroids", "camera_centroids",
           "clustering_scores"]
