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


def _meshes(args) -> str:
    import os
    import time
    from pathlib import Path

    from reid_repro.config import load_world
    from reid_repro.world import meshes

    start = time.perf_counter()
    if args.source == "renders":
        if not (args.renders and args.manifest):
            raise ReidReproError("--source renders needs --renders (a GCL render folder) and --manifest")
        info = meshes.link_renders(args.renders, args.manifest, args.out)
    else:
        from reid_repro.world.body import make_body
        from reid_repro.world.render import Renderer

        cfg = load_world(args.params)
        body = make_body(cfg.body_model, os.environ.get("ANNY_CACHE_DIR", ".cache/anny"), cfg.smpl_model_dir)
        renderer = Renderer(cfg.height, cfg.width)
        if args.source == "synthetic":
            info = meshes.synthetic_renders(args.images, args.out, body, renderer)
        else:
            if not (args.param_file and args.manifest):
                raise ReidReproError("--source params needs --param-file and --manifest")
            info = meshes.param_renders(args.param_file, args.manifest, args.out, body, renderer)
    if args.sheet:
        import pandas as pd

        if args.manifest:
            table = pd.read_parquet(args.manifest, columns=["path", "split"])
        else:
            table = pd.read_parquet(Path(args.images) / "ground_truth.parquet", columns=["path", "split"])
        first = table.loc[table["split"] == "train", "path"].iat[0]
        meshes.turntable_sheet(args.out, args.images, first, args.sheet)
    return (f"meshes ({info['source']}): {info['renders']} structure renders of {info['images']} training images "
            f"in {time.perf_counter() - start:.0f} s -> {args.out}")


def _train(args) -> str:
    from pathlib import Path

    from reid_repro.config import RunSpec, load_params, load_run
    from reid_repro.training.run import execute

    params = load_params(args.params)
    if args.command == "pretrain":
        name = Path(args.out).name
        spec = RunSpec(method="supervised", base="supervised", dataset=args.dataset, test=args.dataset,
                       init="scratch", paper="", table="", row="pretraining", overrides={}, paper_overrides={},
                       also=[])
        metrics = execute(params, name, spec, args.out, stage="pretrain", models_dir=args.models,
                          track=not args.no_mlflow, section="pretrain")
    else:
        spec = load_run(params, args.run)
        name = args.run
        metrics = execute(params, name, spec, args.out or f"runs/{name}", stage=f"train@{name}",
                          models_dir=args.models, track=not args.no_mlflow, stop_after=args.stop_after)
    if "stopped_after_epoch" in metrics:
        return f"{name}: stopped after epoch {metrics['stopped_after_epoch']} (checkpoint kept; run again to resume)"
    return (f"{name}: mAP {100 * metrics['mAP']:.1f}  rank-1 {100 * metrics['rank1']:.1f}  NMI {metrics['nmi']:.3f}  "
            f"{metrics['num_clusters']} clusters / {metrics['num_true_ids']} ids  in {metrics['wall_seconds']:.0f} s")


def _report(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.report.build import build_report

    summary = build_report(load_params(args.params), args.runs, args.out)
    return f"report: {len(summary['tables'])} tables, {len(summary['figures'])} figures -> {args.out}/index.html"


def _figures(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.report.embeddings import build_figures

    made = build_figures(load_params(args.params), args.runs, args.out)
    return f"figures: {len(made)} model figures (t-SNE, retrieval grid) -> {args.out}"


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

    p = sub.add_parser("meshes", help="grey structure renders at 8 angles for every training image (GCL layout)")
    p.add_argument("--source", choices=["synthetic", "params", "renders"], default="synthetic",
                   help="synthetic: the world's ground truth; params: a per-image SMPL parameter file; "
                        "renders: link a folder of existing GCL renders")
    p.add_argument("--images", required=True, help="the dataset (or world domain) folder")
    p.add_argument("--out", required=True, help="output folder (render/, render_45/, ... render_315/)")
    p.add_argument("--manifest", default=None, help="manifest.parquet of the dataset (params and renders sources)")
    p.add_argument("--param-file", default=None, help="parquet of per-image SMPL parameters (params source)")
    p.add_argument("--renders", default=None, help="existing GCL render folder (renders source)")
    p.add_argument("--sheet", default=None, help="write an 8-angle contact sheet of one person here")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_meshes)

    for name, helptext in (("train", "train and evaluate one declared run (params.yaml: runs.<name>)"),
                           ("pretrain", "supervised pretraining every method starts from (params.yaml: pretrain)")):
        p = sub.add_parser(name, help=helptext)
        if name == "train":
            p.add_argument("--run", required=True, help="a key of params.yaml: runs")
            p.add_argument("--out", default=None, help="output folder (default runs/<run>)")
            p.add_argument("--stop-after", type=int, default=None,
                           help="stop after this many epochs, keeping the checkpoint (resume by running again)")
        else:
            p.add_argument("--dataset", default="pretrain", help="a key of params.yaml: data")
            p.add_argument("--out", default="models/pretrain")
        p.add_argument("--models", default="models", help="folder of starting checkpoints (<init>/model.pt)")
        p.add_argument("--no-mlflow", action="store_true", help="do not record the run in MLflow")
        p.add_argument("--params", default="params.yaml")
        p.set_defaults(func=_train)

    p = sub.add_parser("figures", help="t-SNE and retrieval figures from trained runs -> reports/model_figures")
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="reports/model_figures")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_figures)

    p = sub.add_parser("report", help="tables beside the papers' numbers, curves and provenance -> reports/")
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="reports")
    p.add_argument("--params", default="params.yaml")
    p.set_defaults(func=_report)
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
