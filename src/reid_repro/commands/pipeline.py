"""``reid-repro pipeline``: check or write dvc.yaml's code dependencies from the import graph (reid_repro.wiring)."""

from __future__ import annotations

HELP = ("check that every stage of dvc.yaml and synthetic/dvc.yaml depends on exactly the code it imports; "
        "--write rewrites those lines from the import graph")


def add_arguments(p) -> None:
    p.add_argument("--write", action="store_true", help="rewrite the code dependencies instead of checking them")


def run(args) -> str:
    from reid_repro import wiring
    from reid_repro.errors import ReidReproError

    if args.write:
        changed = wiring.write()
        if not changed:
            return "pipeline: every stage's code dependencies were already the import graph's"
        return "pipeline: rewrote the code dependencies of " + "; ".join(
            f"{f}: {', '.join(stages)}" for f, stages in changed.items())
    drift = wiring.drift()
    if drift:
        raise ReidReproError("code dependencies differ from the import graph in " + "; ".join(
            f"{f}: {', '.join(stages)}" for f, stages in drift.items()) + " (run `reid-repro pipeline --write`)")
    return "pipeline: every stage's code dependencies are the import graph's"
