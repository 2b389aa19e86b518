"""Seconds per iteration of GCL+ stage 2 (warm-up) and stage 3 (joint) at the CPU default size, and of a run
without the generator (Table 6 "Multi"), each through the loop's run_steps against the same computation done by
hand (the method's forward and losses, one backward and one step per optimiser, no Step machinery): issue 13's
target is a loop overhead of at most 10%. From the per-iteration times and params.yaml it also estimates what
the declared GCL+ stages add to the default `dvc repro` (clustering, evaluation and image decoding excluded).

Random images, random structure renders and a fixed clustering of 96 training images in 24 clusters; ResNet-18
at the CPU model size, the gcl_plus section's widths and batch (16 distinct images).

    python bench/bench_gcl.py          -> bench/results/gcl.json
    python bench/bench_gcl.py --from-runs   only the budget as built (case budget_built: the training seconds the
        committed GCL+ warm-ups and runs record), keeping the timed cases in gcl.json
    python bench/bench_gcl.py --device cuda   -> bench/results/gcl_gpu.json: the same cases at `scale: paper`
        (ResNet-50 at 256x128, the gcl_plus paper widths and batch) on the GPU, in the precision the run would use
"""

from __future__ import annotations

import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import replace_case, seconds_per_call, train_seconds, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
N_TRAIN = 96


def _setup(tmp: Path, device, **overrides):
    import numpy as np
    import pandas as pd
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from reid_repro.config import load_method_config, load_model, load_params
    from reid_repro.methods import gcl_plus as G
    from reid_repro.models import ReidNet

    params = load_params(ROOT / "params.yaml")
    params["scale"] = "cpu" if device.type == "cpu" else "paper"
    mcfg = load_model(params)
    names = [f"{i:04d}_c1s1_000000_00.png" for i in range(N_TRAIN)]
    rng = np.random.default_rng(0)
    for folder in ["render"] + [f"render_{a}" for a in G.ANGLES]:
        (tmp / "bench" / folder).mkdir(parents=True, exist_ok=True)
        for n in names:
            if not (tmp / "bench" / folder / n).is_file():
                Image.fromarray(rng.integers(0, 256, (mcfg.height, mcfg.width), dtype=np.uint8)).save(
                    tmp / "bench" / folder / n)
    table = pd.DataFrame({"path": names, "dataset": "bench", "pid": np.arange(N_TRAIN) // 4,
                          "camid": np.arange(N_TRAIN) % 6})
    cfg = load_method_config(params, "gcl_plus", G.GclPlusConfig, {"meshes_root": str(tmp), **overrides})
    torch.manual_seed(0)
    init = tmp / "warm"
    if cfg.stage == "joint" and cfg.positive_view == "generated" and not (init / "artifacts.pt").is_file():
        warm = G.GclPlus(load_method_config(params, "gcl_plus", G.GclPlusConfig,
                                            {"meshes_root": str(tmp), "stage": "warmup"}),
                         ReidNet.from_config(mcfg).to(device), device, table)
        init.mkdir(exist_ok=True)
        torch.save(warm.artifacts(), init / "artifacts.pt")
    method = G.GclPlus(cfg, ReidNet.from_config(mcfg).to(device).train(), device, table, init)
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(N_TRAIN, method.model.dim, generator=g), dim=1).numpy()
    labels = table["pid"].to_numpy()
    if cfg.stage == "joint":
        method.memory = torch.as_tensor(feats, device=device)
    else:
        labels = method.pseudo_labels(0, feats, labels)
    method.on_epoch_start(0, feats, labels, table["camid"].to_numpy())
    n = cfg.batch_ids * cfg.instances
    x = torch.randn(n, 3, mcfg.height, mcfg.width, generator=g)
    index = torch.randperm(N_TRAIN, generator=g)[:n]
    x = x.to(device)
    batch = {"images": x, "views": [x, x.flip(3)], "index": index,
             "labels": torch.as_tensor(labels)[index].to(device), "cams": torch.zeros(n, dtype=torch.long, device=device)}
    return method, batch, cfg, mcfg


def _by_hand(method, batch):
    """The same updates without the loop: forward, D's backward and step, then E_id's and G's."""
    opts = {k: o for k, (o, _) in method.optimizers().items()}

    def step():
        if method.warmup:
            method.model.eval()
        if not method.gan:
            f = method.identity(batch["views"][0])[1]
            loss = sum(method.contrast_losses(batch, {"f": f}).values())
            opts["model"].zero_grad()
            loss.backward()
            opts["model"].step()
            method._last_batch = (batch["index"], f)
            method.after_step()
            return
        out = method.generate(batch)
        opts["dis"].zero_grad()
        method.discriminator_loss(out).backward()
        opts["dis"].step()
        losses = method.gan_losses(out)
        if not method.warmup:
            losses.update(method.contrast_losses(batch, out))
        for name in method.encoder_optimizers:
            opts[name].zero_grad()
        sum(losses.values()).backward()
        for name in method.encoder_optimizers:
            opts[name].step()
        method._last_batch = None if method.warmup else (batch["index"], out["f"])
        method.after_step()
    return step


def _through_loop(method, batch):
    from reid_repro.training.loop import run_steps

    opts = {k: o for k, (o, _) in method.optimizers().items()}

    def step():
        run_steps(method.training_step(batch), opts, defaultdict(float), method.encoder_optimizers)
        method.after_step()
    return step


def budget_built() -> list[dict]:
    """The GCL+ stages as built: training seconds recorded by the committed warm-ups (``models/<w>/metrics.json``)
    and by every seed of the committed GCL+ runs (``runs/<r>/seeds/*/metrics.json``), per profile; clustering,
    evaluation and DVC's own time are not counted. A larger-profile stage holds only its not-run marker."""
    import json

    from reid_repro.config import declared_runs, load_params, load_run

    params = load_params(ROOT / "params.yaml")
    specs = {n: load_run(params, n) for n in declared_runs(params)}
    specs = {n: s for n, s in specs.items() if s.method == "gcl_plus"}
    larger = params.get("larger", {}).get("warmups", {})
    rows = []
    for profile, warmups in (("default", params["gcl_warmups"]), ("larger", larger)):
        names = [n for n, s in specs.items() if s.larger == (profile == "larger")]
        seeds = {n: train_seconds(ROOT / "runs" / n / "seeds") for n in names}
        built = [n for n in names if len(seeds[n]) == params["seeds"]]
        warm = {w: json.loads(f.read_text()).get("train_seconds") for w in warmups
                if (f := ROOT / "models" / w / "metrics.json").is_file()}
        warm = {w: t for w, t in warm.items() if t is not None}
        run_s = sum(sum(seeds[n]) for n in built)
        rows.append({"case": "budget_built", "profile": profile, "warmups": len(warmups),
                     "warmups_built": len(warm), "warmups_s": round(sum(warm.values())), "runs": len(names),
                     "runs_built": len(built), "runs_s": round(run_s), "total_s": round(sum(warm.values()) + run_s),
                     "target_s": 3 * 3600 if profile == "default" else None,
                     "per_run_s": {n: round(sum(seeds[n])) for n in built},
                     "per_warmup_s": {w: round(t) for w, t in warm.items()}})
    return rows


def main() -> None:
    import argparse

    import torch

    from reid_repro.config import load_params
    from reid_repro.device import device_info, prepare_device

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu (default: the CPU size) or cuda (paper scale)")
    ap.add_argument("--iters", type=int, default=4)
    ap.add_argument("--from-runs", action="store_true", help="only the budget as built, from the committed runs")
    args = ap.parse_args()
    if args.from_runs:
        replace_case("gcl", "budget_built", budget_built())
        return
    device = torch.device(args.device)
    prepare_device(device)
    rows, per_iter = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for case, overrides in (("stage2", {"stage": "warmup"}), ("stage3", {}),
                                ("multi", {"positive_view": "augmented", "mixup": "none", "proto_loss": False,
                                           "mix_loss_on": False})):
            method, batch, cfg, mcfg = _setup(Path(tmp), device, **overrides)
            hand = seconds_per_call(_by_hand(method, batch), device, args.iters)
            method, batch, cfg, mcfg = _setup(Path(tmp), device, **overrides)
            loop = seconds_per_call(_through_loop(method, batch), device, args.iters)
            per_iter[case] = loop
            rows.append({"case": case, "s_per_iter_loop": round(loop, 3), "s_per_iter_by_hand": round(hand, 3),
                         "loop_overhead": round(loop / hand - 1, 3), "target_overhead": 0.10,
                         "batch": int(len(batch["index"])), "input": f"{mcfg.height}x{mcfg.width}",
                         "arch": mcfg.arch, "precision": method.model.compute_precision(device)})
    if device.type != "cpu":
        rows.append({"case": "device", **device_info(device)})
        write_results("gcl_gpu", rows)
        return
    params = load_params(ROOT / "params.yaml")
    loop = params["gcl_plus"]["loop"]
    iters3 = loop["epochs"] * loop["iters"]
    warm_iters = [w["overrides"].get("epochs", loop["epochs"]) * w["overrides"].get("iters", loop["iters"])
                  for w in params["gcl_warmups"].values()]
    runs = [r for r in params["runs"].values() if r["method"] == "gcl_plus"]
    gan = [r for r in runs if r["overrides"].get("positive_view", "generated") == "generated"]
    seeds = params["seeds"]
    budget = {"warmups_s": round(sum(warm_iters) * per_iter["stage2"]),
              "gan_runs_s": round(len(gan) * seeds * iters3 * per_iter["stage3"]),
              "multi_runs_s": round((len(runs) - len(gan)) * seeds * iters3 * per_iter["multi"]),
              "gan_runs": len(gan), "multi_runs": len(runs) - len(gan), "seeds": seeds,
              "iters_per_run": iters3, "target_s": 3 * 3600}
    budget["total_s"] = budget["warmups_s"] + budget["gan_runs_s"] + budget["multi_runs_s"]
    rows.append({"case": "budget", **budget, "cpu": torch.backends.cpu.get_cpu_capability(),
                 "threads": torch.get_num_threads()})
    write_results("gcl", rows)


if __name__ == "__main__":
    main()
