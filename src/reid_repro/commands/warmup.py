"""``reid-repro warmup``: GCL+ stage 2 (params.yaml: gcl_warmups), the generator trained with the identity encoder
frozen, written with that encoder to models/<name>/ for the stage-3 runs that start from it."""

from __future__ import annotations

HELP = "GCL+ stage 2: train the generator and discriminator with the stage-1 identity encoder frozen"


def add_arguments(p) -> None:
    from reid_repro.commands.train import common_arguments

    p.add_argument("--name", required=True, help="a key of params.yaml: gcl_warmups (or larger.warmups)")
    p.add_argument("--out", required=True, help="e.g. models/<name> (runs with init: <name> start from it)")
    common_arguments(p)
    p.set_defaults(models="runs")        # stage 1 is a run: its model is runs/<init>/model.pt


def run(args) -> str:
    from reid_repro.commands.train import summary
    from reid_repro.config import load_params, load_warmup, not_run_reason
    from reid_repro.training.run import execute, write_not_run

    params = load_params(args.params)
    spec = load_warmup(params, args.name)
    stage = f"warmup_larger@{args.name}" if spec.larger else f"warmup@{args.name}"
    reason = not_run_reason(params, spec)
    if reason is not None:
        return summary(args.name, write_not_run(args.out, args.name, stage, reason))
    metrics = execute(params, args.name, spec, args.out, stage=stage, models_dir=args.models,
                      track=not args.no_mlflow, features=False)
    return summary(args.name, metrics) + f"; generator -> {args.out}/artifacts.pt"
