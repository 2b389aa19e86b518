"""The ``reid-repro`` command: one subcommand per pipeline stage, each a thin wrapper over a pure function."""

from __future__ import annotations

import argparse
import sys

from reid_repro.errors import ReidReproError


def _prepare(args) -> str:
    from reid_repro.data.manifest import prepare

    info = prepare(args.dataset, args.root, args.out, train_only=args.train_only, name=args.name)
    counts = ", ".join(f"{s} {v['images']} images / {v['identities']} ids" for s, v in info["splits"].items())
    return f"prepare {info['dataset']}: {counts}; checksum {info['checksum'][:12]} -> {args.out}"


def _world(args) -> str:
    import os
    import shutil
    import time
    from dataclasses import replace
    from pathlib import Path

    import pandas as pd

    from reid_repro.config import load_world
    from reid_repro.world.body import make_body
    from reid_repro.world.generate import generate_world
    from reid_repro.world.sheet import identity_sheet

    cfg = load_world(args.params)
    if args.profile:   # replace() re-runs the dataclass validation, so an unknown profile is still an error
        cfg = replace(cfg, profile=args.profile)
    start = time.perf_counter()
    body = make_body(cfg.body_model, os.environ.get("ANNY_CACHE_DIR", ".cache/anny"), cfg.smpl_model_dir)
    out = Path(args.out)
    staging = out.with_name(out.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    summary = generate_world(cfg, staging, body)
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)           # the old world stays whole until the new one is complete
    for name in summary["domains"]:
        truth = pd.read_parquet(out / name / "ground_truth.parquet")
        identity_sheet(out / name, truth, Path(args.reports) / f"world_{name}.png", seed=cfg.seed)
    n = sum(d["train"] + d["query"] + d["gallery"] + d["junk"] for d in summary["domains"].values())
    return (f"world ({cfg.profile}, seed {cfg.seed}): {n} images in {len(summary['domains'])} domains "
            f"in {time.perf_counter() - start:.0f} s -> {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reid-repro", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="dataset folder -> manifest.parquet + dataset.json")
    p.add_argument("--dataset", required=True, help="market1501, dukemtmc or msmt17")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="value of the manifest's dataset column (default: --dataset)")
    p.add_argument("--train-only", action="store_true", help="MSMT17: train list only (default train+val)")
    p.set_defaults(func=_prepare)

    p = sub.add_parser("world", help="render the synthetic person world (params.yaml: world)")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--profile", default=None, help="override world.profile (smoke, default, large)")
    p.add_argument("--out", default="data/world")
    p.add_argument("--reports", default="reports")
    p.set_defaults(func=_world)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = args.func(args)
    except ReidReproError as exc:
        print(f"reid-repro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if summary:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
