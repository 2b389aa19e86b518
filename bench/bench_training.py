"""One baseline training run on the default Market stand-in, against a bare forward/backward loop.

Cases (targets from issue 4):
  bare_fp32, bare_bf16: the same model, optimiser and batch shape on random tensors, nothing else, in each
        model.precision (bf16: autocast over the backbone)                            -> images/s
  run:  `reid-repro train --run cc_market` as the pipeline runs it (MLflow on)      -> wall <= 40 s,
        iteration throughput >= 0.8 x bare; also the share of clustering/extraction per epoch and the
        mAP/NMI at the pretrained start and after training.
Needs the default pipeline's world, manifests and pretrain checkpoint (`make repro`). Each case runs in its own
process. Run: python bench/bench_training.py   (writes bench/results/training.json)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, run_case, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def bare(precision: str) -> dict:
    import dataclasses

    import torch

    from reid_repro.config import load_model, load_params
    from reid_repro.models import ReidNet

    params = load_params(ROOT / "params.yaml")
    mcfg = dataclasses.replace(load_model(params), precision=precision)
    loop = params["cluster_contrast"]["loop"]
    batch = loop["batch_ids"] * loop["instances"]
    torch.manual_seed(0)
    model = ReidNet.from_config(mcfg)
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    x = torch.randn(batch, 3, mcfg.height, mcfg.width)
    target = torch.randn(batch, model.dim)

    def step():
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), target).backward()
        opt.step()

    for _ in range(2):
        t0 = time.perf_counter()
        step()
    # 60 timed steps, fewer where a step is slow (emulated bf16 takes seconds): about 30 s at most
    n = max(3, min(60, int(30 / (time.perf_counter() - t0))))
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    dt = time.perf_counter() - t0
    return {"case": f"bare_{precision}", "steps": n, "batch": batch, "input": f"{mcfg.height}x{mcfg.width}", "arch": mcfg.arch,
            "images_per_second": round(n * batch / dt, 1), "ms_per_iteration": round(1000 * dt / n, 1)}


def run() -> dict:
    import os

    import pandas as pd

    from reid_repro.config import load_params, load_run
    from reid_repro.training.run import execute

    os.chdir(ROOT)
    params = load_params("params.yaml")
    t0 = time.perf_counter()
    m = execute(params, "bench_cc_market", load_run(params, "cc_market"), ROOT / ".cache" / "bench_run",
                stage="bench", track=True, evaluate_start=True)
    wall = time.perf_counter() - t0
    h = pd.read_parquet(ROOT / ".cache" / "bench_run" / "history.parquet")
    loop = params["cluster_contrast"]["loop"]
    batch = loop["batch_ids"] * loop["instances"]
    iter_seconds = (h["seconds"] - h["cluster_seconds"]).sum()
    from reid_repro.models import resolve_precision

    precision = resolve_precision(params["model"]["cpu"]["precision"], "cpu")
    return {"case": "run", "precision": precision, "wall_seconds": round(wall, 1),
            "target_wall_seconds": 40,
            "epochs": len(h), "iterations": int(len(h) * loop["iters"]), "batch": batch,
            "iteration_images_per_second": round(len(h) * loop["iters"] * batch / iter_seconds, 1),
            "cluster_and_extract_seconds": round(h["cluster_seconds"].sum(), 1),
            "outside_iterations_share": round(1 - iter_seconds / wall, 3),
            "initial_mAP": round(m["initial_mAP"], 4), "final_mAP": round(m["mAP"], 4),
            "initial_rank1": round(m["initial_rank1"], 4), "final_rank1": round(m["rank1"], 4),
            "initial_nmi": round(m["initial_nmi"], 4), "final_nmi": round(m["nmi"], 4),
            "peak_rss_mb": round(peak_rss_mb())}


CASES = {"bare_fp32": lambda: bare("fp32"), "bare_bf16": lambda: bare("bf16"), "run": run}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=sorted(CASES))
    args = parser.parse_args()
    if args.case:
        print(json.dumps(CASES[args.case]()))
    else:
        rows = {c: run_case(__file__, c) for c in CASES}
        precision = rows["run"]["precision"]
        rows["ratio"] = {"case": "ratio", "precision": precision, "iteration_throughput_vs_bare": round(
            rows["run"]["iteration_images_per_second"] / rows[f"bare_{precision}"]["images_per_second"], 3),
            "target": 0.8, "bf16_speedup_bare": round(rows["bare_bf16"]["images_per_second"]
                                                      / rows["bare_fp32"]["images_per_second"], 2)}
        rows = list(rows.values())
        write_results("training", rows)
