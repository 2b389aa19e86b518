"""Feature extraction by batch size: seconds and whether the features are bit for bit those of 256 a batch.

Every epoch of every clustering method extracts the features of all its training images (training/loop.py:
epoch_features) and every run extracts its test set at the end: 54% of a Cluster-Contrast run's time on a 2-core
Xeon (py-spy on the rebuild's train@cc_duke, 2026-12-07). This measures the extraction batch (training/data.py:
256) on the CPU default's images (the Market stand-in's training images, the pretrained start) under whatever
numerics the shell set (scripts/cpu_avx2.env for the reference), each size timed ``--repeats`` times, interleaved,
the fastest kept.

Found (2-core Xeon, reference numerics, bench/results/extract.json): alone on the machine every batch from 64 to
384 extracts the 2,404 images in the same time within the run-to-run spread (3.7-4.6 s), and 512-4096 are 12-40%
slower; every size gives the same bits (a batch of one image would not: oneDNN takes another kernel). Beside
another job using both cores, 1024 a batch was 30% faster than 256: a measurement taken beside the rebuild chain
says nothing about the chain's own speed. So the batch stays 256.

Run: . scripts/cpu_avx2.env; python bench/bench_extract.py   (writes bench/results/extract.json)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="market")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import torch

    from reid_repro import numerics
    from reid_repro.config import load_params
    from reid_repro.config.model import load_model
    from reid_repro.models import ReidNet, load_weights
    from reid_repro.training.data import ImageCache, extract_features, load_split

    params = load_params(ROOT / "params.yaml")
    cfg = load_model(params)
    info = params["data"][args.dataset]
    table = load_split(ROOT / info["manifest"], "train")
    images = ImageCache(ROOT / info["root"], table, cfg.height, cfg.width, interpolation=cfg.interpolation).images
    model = ReidNet.from_config(cfg)
    load_weights(model, ROOT / "models" / "pretrain" / "model.pt")
    reference = extract_features(model, images, "cpu", batch=256)
    seconds = {b: [] for b in args.sizes}
    same = {}
    for _ in range(args.repeats):
        for b in args.sizes:
            t = time.perf_counter()
            out = extract_features(model, images, "cpu", batch=b)
            seconds[b].append(time.perf_counter() - t)
            same[b] = bool(np.array_equal(out, reference))
    rows = [{"case": f"batch {b}", "images": len(images), "size": [cfg.height, cfg.width], "arch": cfg.arch,
             "seconds": round(min(seconds[b]), 3), "vs_256": round(min(seconds[b]) / min(seconds[256]), 3)
             if 256 in seconds else None, "identical_to_256": same[b], "threads": torch.get_num_threads(),
             "numerics": numerics.describe(), "cpu": numerics.cpu()} for b in args.sizes]
    write_results("extract", rows)


if __name__ == "__main__":
    main()
