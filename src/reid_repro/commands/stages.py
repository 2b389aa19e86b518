"""``reid-repro stages --paper P``: the DVC stages that build one paper's runs (for ``make paper P=...``)."""

from __future__ import annotations

HELP = "print the train@<run> stages of one paper's runs, for `dvc repro $(reid-repro stages --paper ise)`"


def add_arguments(p) -> None:
    p.add_argument("--paper", required=True, help="a paper of params.yaml: runs (ise, ice, canu)")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.errors import ReidReproError

    from reid_repro.config import load_run

    params = load_params(args.params)
    fills = {name: {p for p, _, _ in load_run(params, name).targets()} for name in params["runs"]}
    papers = sorted(set().union(*fills.values()))
    if args.paper not in papers:
        raise ReidReproError(f"--paper {args.paper!r}: no run of that paper; expected one of {papers}")
    warmups = [f"warmup@{w}" for w in (params.get("gcl_warmups") or {})] if args.paper == "gcl_plus" else []
    return " ".join(warmups + [f"train@{name}" for name, p in fills.items() if args.paper in p])
