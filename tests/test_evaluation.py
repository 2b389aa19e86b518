"""Retrieval metrics against an independent per-query computation (sklearn AP on the filtered gallery)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from reid_repro.errors import ReidReproError
from reid_repro.evaluation import evaluate_ranking, features_to_metrics


def oracle(distmat, q_pids, g_pids, q_cams, g_cams, max_rank):
    aps, inps, cmc, valid = [], [], np.zeros(max_rank), 0
    for i in range(len(q_pids)):
        keep = ~((g_pids == q_pids[i]) & (g_cams == q_cams[i]))
        d, match = distmat[i][keep], (g_pids[keep] == q_pids[i])
        if not match.any():
            continue
        valid += 1
        aps.append(average_precision_score(match, -d))
        order = np.lexsort((match, d))        # ties: negatives first (pessimistic)
        hits = np.flatnonzero(match[order])
        if hits[0] < max_rank:
            cmc[hits[0]:] += 1
        inps.append(match.sum() / (hits[-1] + 1))
    return {"mAP": np.mean(aps), "cmc": cmc / valid, "mINP": np.mean(inps), "num_valid_queries": valid}


def random_problem(q=40, g=300, ids=25, cams=4, seed=0, quantize=None):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(1, ids, q), rng.integers(0, ids, g)   # pid 0 = distractors
    q_cams, g_cams = rng.integers(0, cams, q), rng.integers(0, cams, g)
    dist = rng.random((q, g)) + 0.8 * (q_pids[:, None] != g_pids[None, :])
    if quantize:
        dist = np.round(dist * quantize) / quantize    # many ties
    return dist.astype(np.float32), q_pids, g_pids, q_cams, g_cams


def assert_same(ours, ref):
    assert ours["num_valid_queries"] == ref["num_valid_queries"]
    assert ours["mAP"] == pytest.approx(ref["mAP"], abs=1e-9)
    assert ours["mINP"] == pytest.approx(ref["mINP"], abs=1e-9)
    np.testing.assert_allclose(ours["cmc"], ref["cmc"], atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_matches_independent_oracle(seed):
    problem = random_problem(seed=seed)
    ours = evaluate_ranking(*problem, max_rank=10, block=7)
    assert_same(ours, oracle(*problem, 10))
    assert 0 <= ours["mAP"] <= 1 and len(ours["cmc"]) == 10


@pytest.mark.parametrize("quantize", [2, 5, 20])
def test_ties(quantize):
    problem = random_problem(seed=4, quantize=quantize)
    assert_same(evaluate_ranking(*problem, max_rank=5), oracle(*problem, 5))


def test_all_tied_distances_hand_computed():
    # 1 query (pid 1, cam 0); gallery: two positives and two negatives, all at the same distance
    dist = np.zeros((1, 4), dtype=np.float32)
    res = evaluate_ranking(dist, np.array([1]), np.array([1, 2, 1, 3]), np.array([0]), np.array([1, 1, 2, 1]), 4)
    assert res["mAP"] == pytest.approx(0.5)        # precision 2/4 at the single threshold
    np.testing.assert_allclose(res["cmc"], [0, 0, 1, 1])   # pessimistic: both negatives first
    assert res["mINP"] == pytest.approx(2 / 4)


def test_queries_without_valid_match_are_skipped_and_counted():
    dist = np.array([[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]], dtype=np.float32)
    # query 0's only same-id item is in its own camera -> ignored -> no valid match
    res = evaluate_ranking(dist, np.array([5, 6]), np.array([5, 6, 7]), np.array([0, 0]), np.array([0, 1, 1]), 3)
    assert res["num_valid_queries"] == 1 and res["num_skipped_queries"] == 1
    assert res["mAP"] == pytest.approx(1.0)
    with pytest.raises(ReidReproError, match="no query"):
        evaluate_ranking(dist[:1], np.array([5]), np.array([5, 6, 7]), np.array([0]), np.array([0, 1, 1]))


def test_distractors_are_negatives():
    dist = np.array([[0.1, 0.2, 0.3]], dtype=np.float32)
    res = evaluate_ranking(dist, np.array([4]), np.array([0, 0, 4]), np.array([0]), np.array([1, 2, 1]), 3)
    assert res["mAP"] == pytest.approx(1 / 3)
    np.testing.assert_allclose(res["cmc"], [0, 0, 1])


def test_single_camera_gallery():
    problem = list(random_problem(seed=5))
    problem[4] = np.zeros_like(problem[4])     # every gallery image from camera 0
    res = evaluate_ranking(*problem, max_rank=10)
    assert_same(res, oracle(*problem, 10))
    assert res["num_skipped_queries"] == len(problem[1]) - res["num_valid_queries"]
    assert res["num_skipped_queries"] >= int((problem[3] == 0).sum())   # camera-0 queries have nothing left


def test_shape_mismatch_is_an_error():
    with pytest.raises(ReidReproError, match="3x2"):
        evaluate_ranking(np.zeros((3, 2)), np.arange(2), np.arange(2), np.arange(3), np.arange(2))


def test_features_to_metrics_equals_distmat_path():
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 20, 260)
    cams = rng.integers(0, 3, 260)
    feats = (rng.standard_normal((20, 16))[ids] + 0.7 * rng.standard_normal((260, 16))).astype(np.float32)
    qf, gf = feats[:60], feats[60:]
    dist = ((qf[:, None, :].astype(np.float64) - gf[None, :, :]) ** 2).sum(-1)
    args = (ids[:60], ids[60:], cams[:60], cams[60:])
    ref = oracle(dist, *args, 10)
    assert_same(features_to_metrics(qf, gf, *args, block=16), ref)
    qn, gn = (f / np.linalg.norm(f, axis=1, keepdims=True) for f in (qf, gf))
    cos = oracle(1 - qn.astype(np.float64) @ gn.T, *args, 10)
    assert_same(features_to_metrics(qf, gf, *args, metric="cosine"), cos)


def test_rerank_is_deterministic_and_helps_on_clustered_data():
    rng = np.random.default_rng(3)
    ids = np.repeat(np.arange(30), 12)
    cams = np.tile(np.arange(4), 90)
    feats = (rng.standard_normal((30, 32))[ids] + 1.1 * rng.standard_normal((360, 32))).astype(np.float32)
    q = np.arange(360) % 6 == 0
    args = (feats[q], feats[~q], ids[q], ids[~q], cams[q], cams[~q])
    plain = features_to_metrics(*args, metric="cosine")
    rr = features_to_metrics(*args, rerank=True)
    assert rr["mAP"] > plain["mAP"]
    assert features_to_metrics(*args, rerank=True)["mAP"] == rr["mAP"]


def test_camera_probe_reads_the_camera_only_when_the_features_carry_it():
    """Features that encode the camera (a per-camera direction plus noise) give a held-out accuracy near 1;
    features drawn independently of the camera stay near chance (the majority camera's share). Folds are
    grouped by identity, so every identity is scored by a probe that never saw it."""
    from reid_repro.evaluation.probe import camera_probe

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(60), 6)
    cams = np.tile(np.arange(3), 120)
    noise = rng.normal(size=(len(pids), 16))
    carrying = noise * 0.1 + np.eye(16)[cams] * 3.0
    full = camera_probe(carrying, cams, pids)
    assert full["camera_chance"] == pytest.approx(1 / 3) and full["camera_probe"] > 0.95
    blind = camera_probe(noise, cams, pids)
    assert abs(blind["camera_probe"] - 1 / 3) < 0.12
    assert np.isnan(camera_probe(noise, np.zeros_like(cams), pids)["camera_probe"])      # one camera: undefined
