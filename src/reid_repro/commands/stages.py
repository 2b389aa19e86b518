"""``reid-repro stages --paper P``: the DVC stages that build one paper's runs (for ``make paper P=...``)."""

from __future__ import annotations

HELP = "print the train@<run> (and larger-profile) stages of one paper's runs, for `dvc repro $(reid-repro stages --paper ise)`"


def add_arguments(p) -> None:
    p.add_argument("--paper", required=True, help="a paper of the declared runs (conf/runs/<paper>.yaml: ise, ice, canu, gcl_plus)")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import declared_runs, larger_section, load_params, load_run
    from reid_repro.errors import ReidReproError

    params = load_params(args.params)
    fills = {name: {p for p, _, _ in load_run(params, name).targets()} for name in declared_runs(params)}
    papers = sorted(set().union(*fills.values()))
    if args.paper not in papers:
        raise ReidReproError(f"--paper {args.paper!r}: no run of that paper; expected one of {papers}")
    larger = larger_section(params)
    # the larger profile's stages exist only while larger.enabled is true (conf/runs.json: larger_stages)
    on = larger["enabled"]
    warmups = ([f"warmup@{w}" for w in (params.get("gcl_warmups") or {})]
               + [f"warmup_larger@{w}" for w in larger["warmups"] if on]) if args.paper == "gcl_plus" else []
    return " ".join(warmups + [f"{'train_larger' if name in larger['runs'] else 'train'}@{name}"
                               for name, p in fills.items() if args.paper in p and (on or name not in larger["runs"])])
