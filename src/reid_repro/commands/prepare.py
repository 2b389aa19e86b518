"""``reid-repro prepare``: a dataset folder -> manifest.parquet + dataset.json."""

from __future__ import annotations

HELP = "dataset folder -> manifest.parquet + dataset.json"


def add_arguments(p) -> None:
    p.add_argument("--dataset", required=True, help="market1501, dukemtmc, msmt17, or imagenet (a folder of torchvision checkpoints)")
    p.add_argument("--root", required=True, help="dataset folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--name", default=None, help="value of the manifest's dataset column (default: --dataset)")
    p.add_argument("--train-only", action="store_true", help="MSMT17: train list only (default train+val)")
    p.add_argument("--params", default="params.yaml", help="validated at start, like every stage's")


def run(args) -> str:
    from reid_repro.data.manifest import prepare, prepare_imagenet

    if args.dataset == "imagenet":
        info = prepare_imagenet(args.root, args.out, name=args.name)
        return (f"prepare {info['dataset']}: ImageNet checkpoints {', '.join(info['checkpoints'])}; checksum "
                f"{info['checksum'][:12]} -> {args.out}")
    info = prepare(args.dataset, args.root, args.out, train_only=args.train_only, name=args.name)
    counts = ", ".join(f"{s} {v['images']} images / {v['identities']} ids" for s, v in info["splits"].items())
    return f"prepare {info['dataset']}: {counts}; checksum {info['checksum'][:12]} -> {args.out}"
