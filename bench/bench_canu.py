"""What CANU's camera adversaries cost on top of MMT, per training step (issue 12: at most 15% beyond the
networks' own cost).

Cases, each on the CPU default's batch (8 identities x 4 images at 64x32, ResNet-18, `model.precision` as
configured), random images and a fixed clustering of 64 training images in 16 clusters over 6 cameras:
  bare:  the same networks with nothing else: two students forward and backward on one view, two mean
         teachers forward on the other view, one Adam step each (what MMT cannot avoid);
  mmt:   one MMT step (methods/mmt.py) through the loop's run_steps, with the teachers' update;
  canu:  one CANU-MMT step (methods/canu.py): the discriminators' step, then the networks' step with the
         adversarial term;
  ssg, canu_ssg: one SSG step (methods/ssg.py: three part embeddings, four semi-hard triplets) and one CANU-SSG
         step (three conditional discriminators), on the same batch and a fixed grouping.
Writes bench/results/canu.json: ms per step, CANU's overhead over bare and over MMT, and the budget: the training
time of the CANU paper's declared runs (seeds x epochs x iterations x the step of their method; clustering and
evaluation not counted), for the default profile and the larger one; and the budget as built: the training
seconds that the committed runs (`runs/<run>/seeds/*/metrics.json`) and source models record, per profile, with a
not-yet-built run estimated from the built runs of its method (per seed) and said so.

    python bench/bench_canu.py              # time the steps, then both budgets
    python bench/bench_canu.py --from-runs  # only the budget as built (keeps the step timings in canu.json)
    python bench/bench_canu.py --device cuda  # the steps at `scale: paper` (ResNet-50 at 256x128, the papers'
                                              # batches) on the GPU -> bench/results/canu_gpu.json, no budgets
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import replace_case, seconds_per_call, train_seconds, write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _setup(name: str, device):
    import numpy as np
    import pandas as pd
    import torch
    import torch.nn.functional as F

    from reid_repro.config import load_method_config, load_model, load_params
    from reid_repro.methods import base_section, method_class
    from reid_repro.models import ReidNet

    params = load_params(ROOT / "params.yaml")
    params["scale"] = "cpu" if device.type == "cpu" else "paper"
    mcfg = load_model(params)
    torch.manual_seed(0)
    cfg = load_method_config(params, name, method_class(name).config, {}, base=base_section(name))
    n_train = max(64, cfg.batch_ids * cfg.instances)     # every batch index is a training image
    extras = {"num_train": n_train, "init_dir": None} if name in ("mmt", "canu") else {}
    if name in ("canu", "canu_ssg"):
        extras["train_table"] = pd.DataFrame({"camid": np.arange(n_train) % 6})
    method = method_class(name)(cfg, ReidNet.from_config(mcfg).to(device).train(), device, **extras)
    g = torch.Generator().manual_seed(1)
    labels = np.repeat(np.arange(n_train // 4), 4)
    parts = 3 if name in ("ssg", "canu_ssg") else 1           # SSG clusters three part embeddings
    feats = F.normalize(torch.randn(n_train, parts * method.model.dim, generator=g), dim=1).numpy()
    if parts == 3:
        method._part_labels = np.stack([labels] * 3, 1)        # a fixed grouping: every part the same
    method.on_epoch_start(0, feats, labels, np.arange(n_train) % 6)
    shape = (cfg.batch_ids * cfg.instances, 3, mcfg.height, mcfg.width)
    views = [torch.randn(shape, generator=g).to(device), torch.randn(shape, generator=g).to(device)]
    labels = torch.arange(cfg.batch_ids).repeat_interleave(cfg.instances).to(device)
    batch = {"images": views[0], "views": views, "labels": labels,
             "cams": torch.arange(shape[0], device=device) % 6, "index": torch.arange(shape[0])}
    return method, batch, mcfg


def main(argv: list[str]) -> None:
    if "--from-runs" in argv:
        replace_case("canu", "budget_built", budget_built())
        return
    import torch

    from reid_repro.device import device_info, prepare_device
    from reid_repro.models import ReidNet
    from reid_repro.training.loop import run_steps

    device = torch.device(argv[argv.index("--device") + 1] if "--device" in argv else "cpu")
    prepare_device(device)
    rows = []
    method, batch, mcfg = _setup("mmt", device)
    nets = [ReidNet.from_config(mcfg).to(device).train() for _ in range(2)]
    teachers = [ReidNet.from_config(mcfg).to(device).train() for _ in range(2)]
    opts = [torch.optim.Adam(n.parameters(), lr=3.5e-4) for n in nets]

    def bare():
        for net, teacher, opt in zip(nets, teachers, opts):
            opt.zero_grad()
            with torch.no_grad():
                target = teacher(batch["views"][1])
            ((net(batch["views"][0]) - target) ** 2).mean().backward()
            opt.step()

    rows.append({"case": "bare", "ms_per_step": round(1000 * seconds_per_call(bare, device, 6), 1)})
    for name in ("mmt", "canu", "ssg", "canu_ssg"):
        method, batch, _ = _setup(name, device)
        optimizers = {k: o for k, (o, _) in method.optimizers().items()}

        def step():
            run_steps(method.training_step(batch), optimizers, defaultdict(float))
            method.after_step()

        rows.append({"case": name, "ms_per_step": round(1000 * seconds_per_call(step, device, 6), 1),
                     "batch": int(batch["labels"].numel()), "precision": method.model.compute_precision(device)})
    by = {r["case"]: r["ms_per_step"] for r in rows}
    rows.append({"case": "overhead", "canu_over_bare": round(by["canu"] / by["bare"] - 1, 3),
                 "canu_over_mmt": round(by["canu"] / by["mmt"] - 1, 3), "target_over_bare": 0.15,
                 "input": f"{mcfg.height}x{mcfg.width}", "arch": mcfg.arch})
    if device.type != "cpu":
        write_results("canu_gpu", rows + [{"case": "device", **device_info(device)}])
        return
    rows += budget(by) + budget_built()
    write_results("canu", rows)


def budget(ms: dict) -> list[dict]:
    """Training minutes of the CANU paper's declared runs, per profile: seeds x epochs x iterations x the measured
    step of the run's method (plain and conditional adversaries cost alike). Clustering, evaluation and the source
    stages are not counted."""
    from reid_repro.assemble import resolve_run
    from reid_repro.config import declared_runs, load_params, load_run

    params = load_params(ROOT / "params.yaml")
    out = {"default": [0, 0.0], "larger": [0, 0.0]}
    for name in declared_runs(params):
        spec = load_run(params, name)
        if spec.paper != "canu":
            continue
        _, cfg = resolve_run(params, spec)
        minutes = params["seeds"] * cfg.epochs * cfg.iters * ms[spec.method] / 60000
        profile = out["larger" if spec.larger else "default"]
        profile[0] += 1
        profile[1] += minutes
    return [{"case": "budget", "profile": k, "runs": n, "train_minutes": round(m, 1), "target_minutes": 120
             if k == "default" else None} for k, (n, m) in out.items()]


def budget_built() -> list[dict]:
    """The CANU paper's runs as built: each profile's training minutes from the seconds the committed runs record
    (seeds' ``train_seconds``; evaluation and DVC's own time not counted), a run not built yet estimated as seeds x
    the mean seed of the built runs of its method; plus the two source models (shared with GCL+'s UDA rows)."""
    from reid_repro.config import declared_runs, load_params, load_run

    params = load_params(ROOT / "params.yaml")
    specs = {n: load_run(params, n) for n in declared_runs(params)}
    specs = {n: s for n, s in specs.items() if s.paper == "canu"}
    seeds = {n: train_seconds(ROOT / "runs" / n / "seeds") for n in specs}
    per_method: dict[str, list[float]] = defaultdict(list)
    for n, spec in specs.items():
        per_method[spec.method] += seeds[n]
    rows = []
    for profile in ("default", "larger"):
        names = [n for n, s in specs.items() if s.larger == (profile == "larger")]
        built = [n for n in names if len(seeds[n]) == params["seeds"]]
        estimated, unknown = 0.0, []
        for n in set(names) - set(built):
            known = per_method[specs[n].method]
            if known:
                estimated += params["seeds"] * sum(known) / len(known)
            else:
                unknown.append(n)
        rows.append({"case": "budget_built", "profile": profile, "runs": len(names), "built": len(built),
                     "built_minutes": round(sum(sum(seeds[n]) for n in built) / 60, 1),
                     "estimated_minutes": round(estimated / 60, 1), "no_estimate": sorted(unknown),
                     "target_minutes": 120 if profile == "default" else None})
    source = [s for d in ("market", "duke") for s in train_seconds(ROOT / "models" / f"source_{d}")]
    rows.append({"case": "budget_built", "profile": "source models (shared with GCL+)", "runs": 2,
                 "built": len(source) // 2, "built_minutes": round(sum(source) / 60, 1)})
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
