"""Retrieval evaluation: ``evaluate_ranking`` from a distance matrix, ``features_to_metrics`` from features."""

from reid_repro.evaluation.features import features_to_metrics
from reid_repro.evaluation.ranking import evaluate_ranking

__all__ = ["evaluate_ranking", "features_to_metrics"]
