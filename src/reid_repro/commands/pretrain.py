"""``reid-repro pretrain``: supervised pretraining every method starts from (params.yaml: pretrain)."""

from __future__ import annotations

HELP = ("supervised pretraining every method starts from (params.yaml: pretrain), or the ImageNet start when "
        "data.pretrain is a folder of ImageNet checkpoints")


def add_arguments(p) -> None:
    from reid_repro.commands.train import common_arguments

    p.add_argument("--dataset", default="pretrain", help="a key of params.yaml: data")
    p.add_argument("--out", default="models/pretrain")
    common_arguments(p)


def run(args) -> str:
    from pathlib import Path

    from reid_repro.commands.train import summary
    from reid_repro.config import load_params, pretrain_spec
    from reid_repro.training.run import execute

    params = load_params(args.params)
    if params["data"][args.dataset]["format"] == "imagenet":    # the papers' start: ImageNet weights, no training
        from reid_repro.training.run import imagenet_start

        info = imagenet_start(params, args.dataset, args.out)
        return (f"pretrain: the ImageNet start ({info['checkpoint']}, {info['arch']}) -> {args.out}/model.pt; "
                "no training")
    name = Path(args.out).name
    metrics = execute(params, name, pretrain_spec(args.dataset), args.out, stage="pretrain", models_dir=args.models,
                      track=not args.no_mlflow, section="pretrain", evaluate_start=False,
                      features=False)
    return summary(name, metrics)
