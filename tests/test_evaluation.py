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


# ---- stored features (evaluation/stored.py) and `reid-repro evaluate --features` -------------------------------------

def _hand_worked_set():
    """Two queries and four gallery images as unit vectors at angles (degrees), in the Market-1501 protocol: q1
    (pid 1, camera 0) finds g1 (pid 1, camera 1) first (g3 shares its pid and camera: not in its gallery), AP 1;
    q2 (pid 2, camera 0) meets g4 (pid 3) before g2 (pid 2), AP 1/2. mAP 0.75, rank-1 0.5."""
    import pandas as pd

    angle = np.radians([0, 90, 10, 60, 1, 80])
    feats = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    table = pd.DataFrame({"path": [f"{n}.jpg" for n in ("q1", "q2", "g1", "g2", "g3", "g4")],
                          "split": ["query"] * 2 + ["gallery"] * 4, "pid": [1, 2, 1, 2, 1, 3],
                          "camid": [0, 0, 1, 1, 0, 1]})
    return table, feats


def test_stored_features_score_the_hand_worked_answer_and_round_trip(tmp_path):
    from reid_repro.evaluation.stored import read_features, score_features, write_features

    table, feats = _hand_worked_set()
    path = write_features(tmp_path / "features" / "0.parquet", table, feats)
    m = score_features(path)
    assert m["mAP"] == pytest.approx(0.75) and m["rank1"] == pytest.approx(0.5)
    back, got = read_features(path)
    assert back["name"].tolist() == table["path"].tolist() and back["pid"].tolist() == table["pid"].tolist()
    assert got.dtype == np.float32 and np.abs(got - feats).max() <= 2 ** -11          # float16: 11 bits
    only, _ = read_features(path, ("gallery",))
    assert only["name"].tolist() == ["g1.jpg", "g2.jpg", "g3.jpg", "g4.jpg"]


def test_bad_stored_features_name_the_file_and_what_was_expected(tmp_path):
    import pandas as pd

    from reid_repro.evaluation.stored import read_features, score_features, write_features

    table, feats = _hand_worked_set()
    with pytest.raises(ReidReproError, match=r"missing\.parquet: missing; expected a run's stored features"):
        read_features(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ReidReproError, match=r"junk\.parquet: not a readable Parquet file"):
        read_features(tmp_path / "junk.parquet")
    pd.DataFrame({"name": ["a"]}).to_parquet(tmp_path / "cols.parquet")
    with pytest.raises(ReidReproError, match=r"cols\.parquet: columns \['split', 'pid', 'camid', 'feature'\] missing"):
        read_features(tmp_path / "cols.parquet")
    with pytest.raises(ReidReproError, match=r"\(5, 2\) features for 6 images"):
        write_features(tmp_path / "short.parquet", table, feats[:5])
    bad = feats.copy()
    bad[0, 0] = np.nan
    write_features(tmp_path / "nan.parquet", table, bad)
    with pytest.raises(ReidReproError, match="nan.parquet: non-finite stored features"):
        read_features(tmp_path / "nan.parquet")
    write_features(tmp_path / "train.parquet", table.assign(split="train"), feats)
    with pytest.raises(ReidReproError, match="needs query and gallery rows; has 0 and 0"):
        score_features(tmp_path / "train.parquet")


def test_evaluate_scores_a_runs_stored_features_with_and_without_re_ranking(tmp_path):
    """`reid-repro evaluate --features <run>/features` scores every seed's file and their mean; --rerank applies
    the k-reciprocal re-ranking, which on well-separated clusters keeps or raises mAP."""
    import json
    import subprocess
    import sys

    import pandas as pd

    from reid_repro.evaluation.stored import write_features

    table, feats = _hand_worked_set()
    write_features(tmp_path / "run" / "features" / "0.parquet", table, feats)
    rng = np.random.default_rng(0)                 # a second seed: 30 identities in 3 cameras, tight clusters
    centres = rng.normal(size=(30, 16))
    pids = np.repeat(np.arange(1, 31), 6)
    cams = np.tile(np.arange(6) % 3, 30)
    split = np.where(np.tile(np.arange(6), 30) == 0, "query", "gallery")
    points = centres[pids - 1] + 0.3 * rng.normal(size=(len(pids), 16))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    other = pd.DataFrame({"path": [f"{i}.jpg" for i in range(len(pids))], "split": split, "pid": pids, "camid": cams})
    write_features(tmp_path / "run" / "features" / "1.parquet", other, points)

    def evaluate(*extra):
        out = tmp_path / f"scores{len(extra)}.json"
        proc = subprocess.run([sys.executable, "-m", "reid_repro.cli", "evaluate", "--features",
                               str(tmp_path / "run" / "features"), "--out", str(out), *extra],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        return json.loads(out.read_text())

    plain = evaluate()
    files = list(plain["files"])
    assert [f.rsplit("/", 1)[-1] for f in files] == ["0.parquet", "1.parquet"] and plain["rerank"] is False
    assert plain["files"][files[0]]["mAP"] == pytest.approx(0.75)
    assert plain["mean"]["mAP"] == pytest.approx(np.mean([plain["files"][f]["mAP"] for f in files]))
    assert plain["std"]["mAP"] == pytest.approx(np.std([plain["files"][f]["mAP"] for f in files], ddof=1))
    reranked = evaluate("--rerank", "--k1", "5", "--k2", "2")
    assert reranked["rerank"] == {"k1": 5, "k2": 2, "lambda_value": 0.3}
    assert reranked["files"][files[1]]["mAP"] >= plain["files"][files[1]]["mAP"] - 1e-6
    bad = subprocess.run([sys.executable, "-m", "reid_repro.cli", "evaluate", "--features", str(tmp_path / "nothing"),
                          "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert bad.returncode != 0 and "nothing: missing; expected a <seed>.parquet file" in bad.stderr
