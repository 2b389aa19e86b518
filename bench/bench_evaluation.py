"""Retrieval evaluation speed and memory: features -> mAP/CMC/mINP.

Cases (targets from issue 2):
  market: 3,368 queries x 15,913 gallery, d=2048          target <= 2.5 s
  msmt:   11,659 queries x 82,161 gallery, d=2048         target <= 8 GB peak RSS
Run: python bench/bench_evaluation.py   (writes bench/results/evaluation.json)
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

CASES = {"market": (3368, 15913, 751, 6, 2.5, None), "msmt": (11659, 82161, 3060, 15, None, 8192)}


def features(n, centers, cams, rng):
    pids = rng.integers(0, len(centers), n)
    x = centers[pids]
    x += 3.5 * rng.standard_normal(x.shape, dtype=np.float32)
    return x, pids, rng.integers(0, cams, n)


def one_case(name: str) -> dict:
    from reid_repro.evaluation import features_to_metrics

    q, g, ids, cams, t_target, rss_target = CASES[name]
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((ids, 2048), dtype=np.float32)
    qf, qp, qc = features(q, centers, cams, rng)
    gf, gp, gc = features(g, centers, cams, rng)
    features_to_metrics(qf[:64], gf[:512], qp[:64], gp[:512], qc[:64], gc[:512])  # warm-up
    times = []
    for _ in range(3 if name == "market" else 1):
        t0 = time.perf_counter()
        res = features_to_metrics(qf, gf, qp, gp, qc, gc)
        times.append(time.perf_counter() - t0)
    return {"case": name, "queries": q, "gallery": g, "dim": 2048, "seconds": round(min(times), 3),
            "seconds_all": [round(t, 3) for t in times], "peak_rss_mb": round(peak_rss_mb()),
            "target_seconds": t_target, "target_rss_mb": rss_target, "mAP": round(res["mAP"], 4)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(one_case(args.case)))
    else:
        write_results("evaluation", [run_case(__file__, c) for c in CASES])
