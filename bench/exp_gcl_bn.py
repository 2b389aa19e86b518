"""Do GCL+'s generated views spoil the identity encoder's BatchNorm statistics? An experiment on committed models.

In stage 3 the identity encoder also runs in train mode on the generated views (x'_new, the cycle image, the
D-Mixup image), so its BatchNorm running means and variances, which evaluation uses, average real and generated
images. If the generated views are far from real ones (after the CPU warm-up they are coloured blobs), the
statistics drift even where the weights learn. This script evaluates each committed model as it is and again after
re-estimating every BatchNorm layer's running statistics on the real training images of its dataset (a cumulative
average over one pass in train mode, no gradients, no augmentation): if the Full run's mAP comes back while the
Multi run's (real images only) does not move, the drop lives in the statistics, not in the weights.

Run: python bench/exp_gcl_bn.py   (writes bench/results/exp_gcl_bn.json; reads models and manifests only)
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# (label, checkpoint, dataset): the Full and Multi runs' first seed and the encoder both start from (the warm-up
# keeps the stage-1 encoder unchanged)
MODELS = [("gclp_fu_m_full", "runs/gclp_fu_m_full/model.pt", "market"),
          ("gclp_fu_m_multi", "runs/gclp_fu_m_multi/model.pt", "market"),
          ("gclw_fu_m (start of both)", "models/gclw_fu_m/model.pt", "market")]


@torch.no_grad()
def reestimate_bn(model: torch.nn.Module, images: torch.Tensor, device, batch: int = 64) -> None:
    """Every BatchNorm's running mean/var replaced by the cumulative average over ``images`` (uint8 N x 3 x H x W)."""
    from reid_repro.training.data import normalize_batch

    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None                       # cumulative moving average over the pass
    model.train()
    for start in range(0, len(images), batch):
        model(normalize_batch(images[start:start + batch].to(device)))
    for m, momentum in zip(layers, saved):
        m.momentum = momentum
    model.eval()


def main() -> None:
    import os

    os.chdir(ROOT)
    from reid_repro.config import load_model, load_params
    from reid_repro.device import params_device
    from reid_repro.models import ReidNet
    from reid_repro.training.data import ImageCache, load_split
    from reid_repro.training.run import evaluate, load_weights, test_set

    params = load_params("params.yaml")
    model_cfg = load_model(params)
    device = params_device(params)
    tests, trains, rows = {}, {}, []
    for label, path, dataset in MODELS:
        if dataset not in tests:
            tests[dataset] = test_set(params, dataset, model_cfg)
            info = params["data"][dataset]
            table = load_split(info["manifest"], "train")
            trains[dataset] = ImageCache(info["root"], table, model_cfg.height, model_cfg.width,
                                         desc=f"{dataset} train", interpolation=model_cfg.interpolation).images
        model = ReidNet.from_config(model_cfg)
        load_weights(model, path, model_cfg)
        model = model.to(device).eval()
        before = evaluate(model, tests[dataset], device, probe=False)
        reestimate_bn(model, trains[dataset], device)
        after = evaluate(model, tests[dataset], device, probe=False)
        rows.append({"model": label, "checkpoint": path, "dataset": dataset, "train_images": len(trains[dataset]),
                     "mAP": round(100 * before["mAP"], 2), "rank1": round(100 * before["rank1"], 2),
                     "mAP_bn_reestimated": round(100 * after["mAP"], 2),
                     "rank1_bn_reestimated": round(100 * after["rank1"], 2)})
        print(rows[-1], flush=True)
    write_results("exp_gcl_bn", rows)


if __name__ == "__main__":
    main()
