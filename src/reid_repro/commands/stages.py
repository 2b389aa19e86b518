"""``reid-repro stages --paper P``: the DVC stages that build one paper's runs (for ``make paper P=...``)."""

from __future__ import annotations

HELP = "print the train@<run> stages of one paper's runs, for `dvc repro $(reid-repro stages --paper ise)`"


def add_arguments(p) -> None:
    p.add_argument("--paper", required=True, help="a paper of params.yaml: runs (ise, ice, canu)")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.errors import ReidReproError

    runs = load_params(args.params)["runs"]
    papers = sorted({r["paper"] for r in runs.values()})
    if args.paper not in papers:
        raise ReidReproError(f"--paper {args.paper!r}: no run of that paper; expected one of {papers}")
    return " ".join(f"train@{name}" for name, r in runs.items() if r["paper"] == args.paper)
