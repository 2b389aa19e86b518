"""The ``reid-repro`` command: one subcommand per pipeline stage, each a thin wrapper over pure functions.

Every subcommand is a module of :mod:`reid_repro.commands` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> str`` (the one-line summary). Only the chosen subcommand's module is imported, so a stage's code
is this dispatcher plus its own command module and what that imports (``reid_repro.codedeps``): adding a
subcommand changes no existing stage.

Before anything computes, the command holds the CPU libraries to the reference numerics the committed results
were computed with (:mod:`reid_repro.numerics`; ``REID_CPU=native`` opts out).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from reid_repro import numerics
from reid_repro.errors import ReidReproError


def commands() -> list[str]:
    import reid_repro.commands as package

    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(package.__path__) if not m.ispkg)


def _module(name: str):
    return importlib.import_module(f"reid_repro.commands.{name.replace('-', '_')}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reid-repro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(commands()) + "}")
    for name in [only] if only else commands():
        module = _module(name)
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None:                 # the command itself (not a call from Python): reference numerics first
        try:
            numerics.ensure(sys.argv[1:])
        except numerics.NumericsError as exc:
            print(f"reid-repro: error: {exc}", file=sys.stderr)
            return 2
    argv = sys.argv[1:] if argv is None else list(argv)
    only = argv[0] if argv and argv[0] in commands() else None
    args = build_parser(only).parse_args(argv)
    try:
        if getattr(args, "params", None):   # every stage checks all of params.yaml before it starts
            from reid_repro.assemble import validate_params
            from reid_repro.config import load_params

            validate_params(load_params(args.params))
        summary = args.func(args)
    except ReidReproError as exc:
        print(f"reid-repro {args.command}: error: {exc}", file=sys.stderr)
        return 2
    if summary:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
