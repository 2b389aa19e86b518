"""``reid-repro pipeline``: check or write what the pipeline is generated from: dvc.yaml's code dependencies
from the import graph (reid_repro.wiring) and conf/runs.json from the paper files conf/runs/<paper>.yaml
(reid_repro.declare)."""

from __future__ import annotations

HELP = ("check that every stage of dvc.yaml and synthetic/dvc.yaml depends on exactly the code it imports and that "
        "conf/runs.json is what conf/runs/*.yaml declare; --write writes both")


def add_arguments(p) -> None:
    p.add_argument("--write", action="store_true", help="write the code dependencies and conf/runs.json")


def run(args) -> str:
    from reid_repro import declare, wiring
    from reid_repro.errors import ReidReproError

    if args.write:
        runs_changed = declare.write(wiring.ROOT)
        changed = wiring.write()
        said = [f"pipeline: wrote {declare.GENERATED} and {declare.PAPERS}/<paper>.json"
                + (" (changed)" if runs_changed else " (unchanged)")]
        if not changed:
            return "; ".join(said + ["every stage's code dependencies were already the import graph's"])
        return "; ".join(said + ["rewrote the code dependencies of " + "; ".join(
            f"{f}: {', '.join(stages)}" for f, stages in changed.items())])
    why = declare.stale(wiring.ROOT)
    if why:
        raise ReidReproError(why)
    drift = wiring.drift()
    if drift:
        raise ReidReproError("code dependencies differ from the import graph in " + "; ".join(
            f"{f}: {', '.join(stages)}" for f, stages in drift.items()) + " (run `reid-repro pipeline --write`)")
    return f"pipeline: every stage's code dependencies are the import graph's; {declare.GENERATED} is current"
