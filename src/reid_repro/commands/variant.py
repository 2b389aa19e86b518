"""``reid-repro variant -S KEY=VALUE``: a variant of the pipeline that trains only what the changed setting needs.

`dvc exp run -S ise.lambda0=2.0` re-runs the stages that read ``ise``, but on a checkout without the DVC cache
that built the committed results (a fresh clone, no remote) every stage lacks its outputs, and DVC rebuilds
them all first: about 16 hours on 2 cores before the runs that were asked for. This command runs, in order:

1. the upstream stages those runs need whose outputs are absent here, and nothing else upstream (on a fresh clone
   of the default pipeline: the manifests of their data and the pretrained start), with ``dvc repro -s``;
2. ``dvc exp run -S KEY=VALUE -s`` on the stages whose params read KEY (for ``ise.lambda0``: every run of the ISE
   method, at both profiles, and the ISE study and its tuned run) and on the stages downstream of them whose
   other inputs are all here (the report); a downstream stage that needs outputs absent here (the figures, which
   read other runs' weights) is named and left as committed.

Every other committed result stays as it is. ``--plan-only`` prints the stages and their estimated time
(commands/repro.py) without running anything.
"""

from __future__ import annotations

HELP = "dvc exp run -S KEY=VALUE training only the stages that read KEY, plus absent upstream stages and the report"


def add_arguments(p) -> None:
    p.add_argument("-S", "--set-param", action="append", required=True, metavar="KEY=VALUE",
                   help="a params.yaml value to change (as dvc exp run -S); may repeat")
    p.add_argument("--plan-only", action="store_true", help="print the plan and stop")


def reads(param_names, key: str) -> bool:
    """Whether a stage whose params list is ``param_names`` reads ``key`` (the key, a section above it or a key
    below it)."""
    return any(p == key or key.startswith(p + ".") or p.startswith(key + ".") for p in param_names)


def plan(repo, keys: list[str]) -> tuple[list[str], list[str], list[str]]:
    """(absent upstream stages in build order, stages that read a key, downstream stages skipped because inputs
    they need are absent here), by stage name; the second list ends with the downstream stages that can run."""
    import os

    import networkx as nx
    from dvc.dependency.param import ParamsDependency

    from reid_repro.errors import ReidReproError

    stages = list(repo.index.stages)
    producer = {os.path.normpath(o.fs_path): st for st in stages for o in st.outs}

    def made_by(path: str):
        path = os.path.normpath(path)
        for out, st in producer.items():
            if path == out or path.startswith(out + os.sep):
                return st
        return None

    def params_of(st):
        return [k for d in st.deps if isinstance(d, ParamsDependency) for k in d.params]

    def absent(st):
        return [d.fs_path for d in st.deps if not isinstance(d, ParamsDependency) and not os.path.exists(d.fs_path)]

    changed = [st for st in stages if any(reads(params_of(st), k) for k in keys)]
    if not changed:
        raise ReidReproError(f"-S {', '.join(keys)}: no stage reads it; expected a key of params.yaml that a stage "
                             "lists under params in dvc.yaml")
    upstream: list = []

    def need(st, chain=()):
        for path in absent(st):
            maker = made_by(path)
            if maker is None:
                raise ReidReproError(f"{path}: missing, and no stage of dvc.yaml writes it (needed by {st.addressing})")
            if maker in changed or maker in chain:
                continue
            need(maker, chain + (maker,))
            if maker not in upstream:
                upstream.append(maker)

    graph = repo.index.graph            # edges point from a stage to the stages it depends on
    # a stage that reads the key downstream of another that does (the figures, the report, a tuned run after its
    # study) is treated as downstream: it runs only if what it reads is here or made by the variant
    first = [st for st in changed if not (nx.descendants(graph, st) & set(changed))]
    for st in first:
        need(st)
    below = (set().union(*(nx.ancestors(graph, st) for st in first)) | set(changed)) - set(first)
    downstream, skipped = [], []
    made = {os.path.normpath(o.fs_path) for st in changed + upstream for o in st.outs}
    for st in sorted(below, key=lambda s: s.addressing):
        missing = [p for p in absent(st) if not any(os.path.normpath(p) == m or os.path.normpath(p).startswith(m + os.sep)
                                                    for m in made)]
        (skipped if missing else downstream).append(st)
    changed = first
    order = {st: i for i, st in enumerate(reversed(list(nx.topological_sort(graph))))}
    upstream.sort(key=order.get)
    downstream.sort(key=order.get)
    return ([st.addressing for st in upstream], [st.addressing for st in changed + downstream],
            [st.addressing for st in skipped])


def run(args) -> str:
    import subprocess

    from dvc.repo import Repo

    from reid_repro.commands.repro import clock, estimate
    from reid_repro.errors import ReidReproError

    keys = []
    for item in args.set_param:
        key, eq, _ = item.partition("=")
        if not eq or not key:
            raise ReidReproError(f"-S {item!r}: expected KEY=VALUE (as dvc exp run -S)")
        keys.append(key)
    with Repo(".") as repo:
        upstream, targets, skipped = plan(repo, keys)
    total = sum(estimate(s) for s in upstream + targets)
    print(f"[reid-repro] variant {' '.join(args.set_param)}: {len(upstream)} absent upstream stage(s), "
          f"{len(targets)} stage(s) that read it or follow it, about {clock(total)} from the recorded stage times")
    for kind, names in (("upstream, absent here", upstream), ("reads the key / downstream", targets),
                        ("left as committed (needs outputs absent here)", skipped)):
        for s in names:
            print(f"  {kind}: {s}" + ("" if kind.startswith("left") else f" ({clock(estimate(s))})"))
    if args.plan_only:
        return f"variant: plan only, {len(upstream) + len(targets)} stages, about {clock(total)}"
    if upstream:
        subprocess.run(["dvc", "repro", "-s", *upstream], check=True)
    cmd = ["dvc", "exp", "run", *[x for kv in args.set_param for x in ("-S", kv)], "-s", *targets]
    if subprocess.run(cmd).returncode != 0:
        raise ReidReproError(f"{' '.join(cmd[:8])} ... failed")
    return (f"variant: ran {len(upstream)} upstream and {len(targets)} stage(s)"
            + (f"; left as committed: {', '.join(skipped)}" if skipped else ""))
