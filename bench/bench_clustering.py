"""Clustering core speed and memory: k-reciprocal Jaccard distance + DBSCAN.

Cases (targets from issue 2), clustered features, d=2048, k1=30, k2=6, eps=0.6:
  market: N=12,936 (Market-1501 train, 751 ids)    target <= 5 s and <= 1.5 GB peak RSS
  msmt:   N=32,621 (MSMT17 train+val, 1,041 ids)   target <= 4 GB peak RSS
Timings exclude numba's one-off compilation (cached on disk after the first run); it is reported apart.
Run: python bench/bench_clustering.py   (writes bench/results/clustering.json)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, run_case, write_results  # noqa: E402

CASES = {"market": (12936, 751, 5.0, 1536), "msmt": (32621, 1041, None, 4096)}


def one_case(name: str) -> dict:
    from reid_repro.clustering import clustering_scores, dbscan_labels, jaccard_distance

    n, ids, t_target, rss_target = CASES[name]
    rng = np.random.default_rng(0)
    pids = rng.integers(0, ids, n)
    x = rng.standard_normal((ids, 2048), dtype=np.float32)[pids]
    x += rng.standard_normal((n, 2048), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    t0 = time.perf_counter()
    dbscan_labels(jaccard_distance(x[:300]), 0.6)          # compile or load the numba kernels
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    dist = jaccard_distance(x, k1=30, k2=6)
    t1 = time.perf_counter()
    labels = dbscan_labels(dist, eps=0.6, min_samples=4)
    t2 = time.perf_counter()
    scores = clustering_scores(labels, pids, np.zeros(n, dtype=int))
    return {"case": name, "n": n, "dim": 2048, "seconds": round(t2 - t0, 3), "jaccard_seconds": round(t1 - t0, 3),
            "dbscan_seconds": round(t2 - t1, 3), "numba_warmup_seconds": round(warm, 3),
            "stored_pairs_per_row": round(dist.nnz / n, 1), "peak_rss_mb": round(peak_rss_mb()),
            "target_seconds": t_target, "target_rss_mb": rss_target, "clusters": scores["num_clusters"],
            "nmi": round(scores["nmi"], 4)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case)))
    else:
        write_results("clustering", [run_case(__file__, c) for c in CASES])
