"""Gradient balance of ICE's loss terms at the pretrained start, with the paper's and the code's reading.

For each stand-in and each fidelity, a few P x K batches (true identities standing in for clusters, as in the
ICE/ISE audit) go through ``Ice.training_step``; for every loss term we measure the norm of its gradient with
respect to the online network's raw BN-neck feature (mean over the batch's rows, then over batches), and the
ratio h.ins / (proxy terms) that decides how strongly the instance losses pull against the proxies.
Writes bench/results/loss_balance.json. Nothing here is timed; it reads models/pretrain/model.pt.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

DOMAINS = ("market", "duke", "msmt")


def balance(params: dict, domain: str, fidelity: str, batches: int = 3) -> dict:
    import torch

    from reid_repro.clustering import relabel
    from reid_repro.config import load_run
    from reid_repro.training.data import (BatchFinish, ImageCache, PKSampler, TrainSet, extract_features, load_split,
                                         make_transform)
    from reid_repro.training.run import build

    spec = load_run(params, f"ice_aware_full_{domain}")
    over = {"fidelity": fidelity, "cross_camera": fidelity == "code"}
    spec = dataclasses.replace(spec, overrides={**spec.overrides, **over})
    device = torch.device("cpu")
    model_cfg, cfg, model = build(params, spec, device, ROOT / "models")
    from reid_repro.methods import method_class

    method = method_class("ice")(cfg, model, device)
    info = params["data"][domain]
    table = load_split(info["manifest"], "train")
    cache = ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{domain} train",
                       interpolation=model_cfg.interpolation)
    labels, cams = relabel(table["pid"].to_numpy()), table["camid"].to_numpy()
    method.on_epoch_start(0, extract_features(method.encoder(), cache.images, device), labels, cams)
    torch.manual_seed(0)
    transforms = [make_transform(v, *cache.images.shape[2:]) for v in method.views]
    data = TrainSet(cache, transforms)
    sampler = PKSampler(labels, cams, cfg.batch_ids, cfg.instances, batches, [0, 0], cfg.cross_camera)
    captured = {}
    model.register_forward_hook(lambda m, i, o: captured.__setitem__("raw", o) if "raw" not in captured else None)
    norms: dict[str, list[float]] = {}
    model.train()
    for idx in sampler:
        items = [data[i] for i in idx]
        views = [BatchFinish(view)(torch.stack([it[v] for it in items])) for v, view in enumerate(method.views)]
        index = torch.tensor(idx)
        batch = {"images": views[0], "views": views, "index": index, "labels": torch.as_tensor(labels[idx]),
                 "cams": torch.as_tensor(cams[idx])}
        captured.clear()
        losses = method.training_step(batch)
        raw = captured["raw"]
        for name, value in losses.items():
            (g,) = torch.autograd.grad(value, raw, retain_graph=True, allow_unused=True)
            norms.setdefault(name, []).append(0.0 if g is None else float(g.norm(dim=1).mean()))
    out = {k: round(float(np.mean(v)), 4) for k, v in norms.items()}
    proxy = out.get("agnostic", 0) + out.get("cross", 0)
    out["h_ins_over_proxy"] = round(out.get("h_ins", 0) / proxy, 3) if proxy else None
    return out


def main() -> None:
    import os

    from reid_repro.config import load_params

    os.chdir(ROOT)
    params = load_params("params.yaml")
    rows = [{"case": f"{d}/{fid}", **balance(params, d, fid)} for d in DOMAINS for fid in ("paper", "code")]
    write_results("loss_balance", rows)


if __name__ == "__main__":
    main()
