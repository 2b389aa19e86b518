"""``reid-repro world``: render the synthetic person world (conf/world.yaml: world)."""

from __future__ import annotations

HELP = "render the synthetic person world (conf/world.yaml: world)"


def add_arguments(p) -> None:
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--profile", default=None, help="override world.profile (smoke, default, large)")
    p.add_argument("--out", default="data/world")
    p.add_argument("--reports", default="reports")


def run(args) -> str:
    import os
    import time
    from dataclasses import replace
    from pathlib import Path

    import pandas as pd

    from reid_repro.config import load_world
    from reid_repro.io import check_replaceable, publish_dir, staging_dir
    from reid_repro.world.body import make_body
    from reid_repro.world.generate import generate_world
    from reid_repro.world.sheet import identity_sheet

    cfg = load_world(args.params)
    if args.profile:   # replace() re-runs the dataclass validation, so an unknown profile is still an error
        cfg = replace(cfg, profile=args.profile)
    out = Path(args.out)
    check_replaceable(out)        # before an hour of rendering, not after
    start = time.perf_counter()
    body = make_body(cfg.body_model, os.environ.get("ANNY_CACHE_DIR", ".cache/anny"), cfg.smpl_model_dir)
    staging = staging_dir(out)
    summary = generate_world(cfg, staging, body)
    publish_dir(staging, out)     # the old world stays whole until the new one is complete
    for name in summary["domains"]:
        truth = pd.read_parquet(out / name / "ground_truth.parquet")
        identity_sheet(out / name, truth, Path(args.reports) / f"world_{name}.png", seed=cfg.seed)
    n = sum(d["train"] + d["query"] + d["gallery"] + d["junk"] for d in summary["domains"].values())
    return (f"world ({cfg.profile}, seed {cfg.seed}): {n} images in {len(summary['domains'])} domains "
            f"in {time.perf_counter() - start:.0f} s -> {out}")
