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
