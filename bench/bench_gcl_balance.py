"""Gradient balance of GCL+'s stage-3 loss terms on the identity encoder, at the committed warm-up.

GCL+'s Full run trains the identity encoder E_id on Eq. 16: the generative losses of Eq. 6 (image and feature
reconstruction, adversarial) reach E_id through f_id, beside the contrastive terms (Eq. 8-10, 12, 14). Its Multi
run has the contrastive term only. On the Market stand-in Full ends far below the start that Multi keeps
(docs/gcl.md, GCL+). This bench measures, on a few batches of real training images at the start of stage 3 (the
warm-up `models/gclw_fu_m`: the stage-1 encoder and its generator), the norm of each loss term's gradient with
respect to E_id's weights (all of them, flattened), so the pull of the generator's losses can be read against the
contrastive ones. Memory and clusters are set as the loop's first epoch sets them (the encoder's features,
Jaccard + DBSCAN at the run's eps). Nothing is timed. Writes bench/results/gcl_balance.json.

Run: python bench/bench_gcl_balance.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

RUNS = ("gclp_fu_m_full", "gclp_fu_m_multi")


def balance(params: dict, run: str, batches: int = 4) -> dict:
    import torch

    from reid_repro.config import load_run
    from reid_repro.training.data import ImageCache, extract_features, load_split, normalize_batch
    from reid_repro.training.run import build, make_method

    spec = load_run(params, run)
    device = torch.device("cpu")
    model_cfg, cfg, model = build(params, spec, device, ROOT / "models")
    info = params["data"][spec.dataset]
    table = load_split(info["manifest"], "train")
    method = make_method(spec.method, cfg, model, device, table, ROOT / "models" / spec.init)
    cache = ImageCache(info["root"], table, model_cfg.height, model_cfg.width, desc=f"{spec.dataset} train",
                       interpolation=model_cfg.interpolation)
    feats = extract_features(model, cache.images, device)
    labels = method.pseudo_labels(0, feats, table["pid"].to_numpy())
    method.on_epoch_start(0, feats, labels, table["camid"].to_numpy())
    clustered = np.flatnonzero(labels >= 0)
    labels_t, cams_t = torch.as_tensor(np.array(labels)), torch.as_tensor(table["camid"].to_numpy().copy())
    rng = np.random.default_rng(0)
    weights = [p for p in model.parameters() if p.requires_grad]
    norms: dict[str, list[float]] = {}
    model.train()
    for _ in range(batches):
        index = torch.as_tensor(rng.choice(clustered, cfg.batch_ids * cfg.instances, replace=False))
        x = normalize_batch(cache.images[index])
        batch = {"images": x, "views": [x, x.flip(3)], "index": index,
                 "labels": labels_t[index], "cams": cams_t[index]}
        if method.gan:
            out = method.generate(batch)
            losses = {**method.gan_losses(out), **method.contrast_losses(batch, out)}
        else:
            f = method.identity(x)[1]
            losses = method.contrast_losses(batch, {"f": f})
        for name, value in losses.items():
            grads = torch.autograd.grad(value, weights, retain_graph=True, allow_unused=True)
            total = torch.sqrt(sum((g.float() ** 2).sum() for g in grads if g is not None))
            norms.setdefault(name, []).append(float(total))
    out = {f"grad_{k}": round(float(np.mean(v)), 4) for k, v in norms.items()}
    generative = sum(v for k, v in out.items() if k in ("grad_img", "grad_feat", "grad_adv", "grad_adv_mix"))
    contrastive = sum(v for k, v in out.items() if k in ("grad_vi", "grad_proto", "grad_mix"))
    out["generative_over_contrastive"] = round(generative / contrastive, 3) if contrastive else None
    return {"clusters": int(labels.max()) + 1, "batch": cfg.batch_ids * cfg.instances, "batches": batches, **out}


def main() -> None:
    import os

    from reid_repro.config import load_params

    os.chdir(ROOT)
    params = load_params("params.yaml")
    write_results("gcl_balance", [{"case": run, **balance(params, run)} for run in RUNS])


if __name__ == "__main__":
    main()
