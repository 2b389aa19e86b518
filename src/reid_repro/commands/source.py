"""``reid-repro source``: the labelled source model of the UDA settings (params.yaml: source), trained twice."""

from __future__ import annotations

HELP = "the labelled source model of a UDA setting, trained twice: model.pt and artifacts.pt (key model_2; params.yaml: source)"


def add_arguments(p) -> None:
    from reid_repro.commands.train import common_arguments

    p.add_argument("--dataset", required=True, help="the labelled source: a key of params.yaml: data")
    p.add_argument("--out", required=True, help="e.g. models/source_market (runs with init: source_market)")
    common_arguments(p)


def run(args) -> str:
    from reid_repro.commands.train import summary
    from reid_repro.config import load_params
    from reid_repro.training.run import train_source

    metrics = train_source(load_params(args.params), args.dataset, args.out, models_dir=args.models,
                           track=not args.no_mlflow)
    return summary(f"source_{args.dataset}", metrics[0]) + f"; net 2: mAP {100 * metrics[1]['mAP']:.1f}"
