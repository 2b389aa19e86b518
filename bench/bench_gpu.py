"""Paper scale on the device this finds (issue 18 §4): is the loop as fast as the bare network, and where does
an epoch's time go?

On a GPU (CUDA): `scale: paper` as configured (ResNet-50 at 256x128, batch 16 x 16 = 256 of Cluster-Contrast,
`model.precision` auto = bf16 autocast on Ampere or newer, channels_last, cudnn.benchmark, ghost BN over
`model.bn_groups`), on random images, with 12,936 training images (Market-1501's count) for the epoch parts.
On a CPU it runs the same code at a tiny size (ResNet-18 at 64x32, batch 8 x 4, 512 training images), so the
script stays runnable everywhere; those figures say nothing about a GPU.

Cases:
  bare:       forward + backward + Adam step of the same model on the same uint8 batch, normalised on the device
  loop:       one Cluster-Contrast step through the loop's run_steps (memory loss, backward, step, memory update)
  extract:    features of every training image (the per-epoch clustering input), batch 256
  cluster:    k-reciprocal Jaccard distance + DBSCAN on those features
  evaluate:   query x gallery ranking (mAP/CMC) on a test set the size of Market-1501's (3,368 x 15,913), CPU: 1/16
Targets: loop >= 0.95 x bare throughput; a whole epoch (iterations + extract + cluster) <= 1.15 x its iterations.
Writes bench/results/gpu.json (gpu_cpu.json on a CPU) with the device name.

    python bench/bench_gpu.py [--iters 20]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, seconds_per_call  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import numpy as np
    import torch

    from reid_repro.config import load_method_config, load_model, load_params
    from reid_repro.device import device_info, prepare_device, torch_device
    from reid_repro.evaluation import features_to_metrics
    from reid_repro.methods import method_class
    from reid_repro.models import ReidNet
    from reid_repro.training.data import BatchFinish, extract_features
    from reid_repro.training.loop import run_steps

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=20)
    args = ap.parse_args()
    device = torch_device("auto", "cpu")
    prepare_device(device)
    gpu = device.type == "cuda"
    params = load_params(ROOT / "params.yaml")
    params["scale"] = "paper" if gpu else "cpu"
    mcfg = load_model(params)
    cfg = load_method_config(params, "cluster_contrast", method_class("cluster_contrast").config,
                             {} if gpu else {"batch_ids": 8, "instances": 4})
    batch_size = cfg.batch_ids * cfg.instances
    n_train, n_query, n_gallery = (12936, 3368, 15913) if gpu else (512, 210, 994)
    torch.manual_seed(0)
    model = ReidNet.from_config(mcfg).to(device).train()
    if gpu:
        model = model.to(memory_format=torch.channels_last)
    finish = BatchFinish("base")
    images = torch.randint(0, 256, (batch_size, 3, mcfg.height, mcfg.width), dtype=torch.uint8)
    images = images.pin_memory() if gpu else images
    rows = {"device": device_info(device), "scale": params["scale"], "batch": batch_size,
            "input": [mcfg.height, mcfg.width], "arch": mcfg.arch, "precision": model.compute_precision(device),
            "bn_groups": mcfg.bn_groups}

    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)

    def bare():
        x = finish(images.to(device, non_blocking=True))
        loss = model(x).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    method = method_class("cluster_contrast")(cfg, model, device)
    clusters = batch_size // cfg.instances * 4
    labels = np.repeat(np.arange(clusters), 4)
    feats = np.random.default_rng(0).normal(size=(len(labels), model.dim)).astype(np.float32)
    method.on_epoch_start(0, feats / np.linalg.norm(feats, axis=1, keepdims=True), labels, labels % 6)
    optimizers = {n: o for n, (o, _) in method.optimizers().items()}
    y = torch.as_tensor(np.repeat(np.arange(cfg.batch_ids), cfg.instances), device=device)
    sums: dict = defaultdict(float)

    def loop_step():
        x = finish(images.to(device, non_blocking=True))
        batch = {"images": x, "views": [x], "labels": y, "cams": y % 6, "index": torch.arange(batch_size)}
        run_steps(method.training_step(batch), optimizers, sums)
        method.after_step()

    rows["bare_s_per_iter"] = seconds_per_call(bare, device, args.iters, warmup=3)
    rows["loop_s_per_iter"] = seconds_per_call(loop_step, device, args.iters, warmup=3)
    rows["loop_vs_bare_throughput"] = rows["bare_s_per_iter"] / rows["loop_s_per_iter"]

    train = torch.randint(0, 256, (n_train, 3, mcfg.height, mcfg.width), dtype=torch.uint8)
    t = time.perf_counter()
    train_feats = extract_features(model, train, device)
    rows["extract_s"] = time.perf_counter() - t
    t = time.perf_counter()
    method.pseudo_labels(0, train_feats, np.zeros(n_train, dtype=int))
    rows["cluster_s"] = time.perf_counter() - t
    g = np.random.default_rng(1)
    q = g.normal(size=(n_query, model.dim)).astype(np.float32)
    gal = g.normal(size=(n_gallery, model.dim)).astype(np.float32)
    t = time.perf_counter()
    features_to_metrics(q, gal, g.integers(0, 750, n_query), g.integers(0, 750, n_gallery),
                        g.integers(0, 6, n_query), g.integers(0, 6, n_gallery))
    rows["evaluate_s"] = time.perf_counter() - t
    iters = cfg.iters
    rows["epoch_iterations_s"] = iters * rows["loop_s_per_iter"]
    rows["epoch_s"] = rows["epoch_iterations_s"] + rows["extract_s"] + rows["cluster_s"]
    rows["epoch_vs_iterations"] = rows["epoch_s"] / rows["epoch_iterations_s"]
    rows["targets_met"] = {"loop >= 0.95 x bare": rows["loop_vs_bare_throughput"] >= 0.95,
                           "epoch <= 1.15 x iterations": rows["epoch_vs_iterations"] <= 1.15}
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / ("gpu.json" if gpu else "gpu_cpu.json")
    path.write_text(json.dumps({"machine": machine(), **rows}, indent=2, default=str) + "\n")
    print(json.dumps(rows, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
