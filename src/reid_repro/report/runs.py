"""The runs a report reads: their results, whether they are current (code digest, settings, numerics) and their seeds
merged from twin runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from reid_repro.config import load_run
from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path
from reid_repro.report.page import PROSE


@dataclass
class Run:
    name: str
    spec: object
    metrics: dict          # metrics.json: the mean over seeds (and ``<metric>_std``)
    history: pd.DataFrame  # per epoch, the mean over seeds
    info: dict
    per_seed: dict | None = None   # {seed: that seed's metrics}
    stale: str | None = None       # why its results are not what this checkout would compute (stale_reason)

    def __post_init__(self):
        if self.per_seed is None:   # a run of one seed (tests build these by hand)
            self.per_seed = {int(self.info.get("method", {}).get("seed", 0)): self.metrics}

    @property
    def not_run(self) -> str | None:
        """Why this declared run was not trained here (a larger-profile row), or None."""
        return self.metrics.get("not_run")

    def values(self, metric: str) -> dict[int, float]:
        """{seed: metric in points}: the values a verdict pairs."""
        return {s: 100 * float(m[metric]) for s, m in self.per_seed.items()}


def stale_reason(params: dict, name: str, spec, info: dict, digests: dict | None = None) -> str | None:
    """Why run ``name``'s committed results are not what this checkout's code and settings would compute, or
    None: its ``run.json`` records the digest of the code the run imported and the hash of its resolved settings
    (training/run.py: run_inputs, execute), and both are recomputed here the same way (a digest proven
    equivalent to today's counts as today's: :func:`equivalent_code`); and it records the numerics it computed
    with, which must be the reference (reid_repro/numerics.py). A run.json with no settings hash (a hand-made
    run) cannot be checked and is taken as current. ``digests`` caches the code digest per method."""
    import dataclasses

    from reid_repro import codedeps
    from reid_repro.assemble import resolve_run
    from reid_repro.config import params_hash

    if "params_hash" not in info:
        return None
    code = (info.get("inputs") or {}).get("code")
    if code is None:
        return "written before runs recorded the code they were built with"
    kind = "pretrain" if spec.method == "supervised" else "train"
    digests = {} if digests is None else digests
    if (kind, spec.method) not in digests:
        digests[kind, spec.method] = codedeps.digest(codedeps.stage_files(kind, None if kind == "pretrain"
                                                                          else spec.method))
    if code != digests[kind, spec.method] and code not in equivalent_code().get(digests[kind, spec.method], ()):
        return "built with earlier code"
    from reid_repro.numerics import run_is_reference

    if run_is_reference(info) is False:
        device = (info.get("environment") or {}).get("device") or {}
        numerics = (info.get("environment") or {}).get("numerics") or {}
        return (f"computed off the reference numerics ({numerics.get('kernel_set') or device.get('cpu_capability')}, "
                f"{(info.get('inputs') or {}).get('precision')})")
    seed = (info.get("seeds") or [(info.get("method") or {}).get("seed", 0)])[0]
    first = dataclasses.replace(spec, overrides={**spec.overrides, "seed": seed})   # run.json is its first seed's
    model_cfg, cfg = resolve_run(params, first)
    settings = {"run": dataclasses.asdict(first), "model": dataclasses.asdict(model_cfg),
                "method": dataclasses.asdict(cfg), "scale": params.get("scale", "cpu")}
    if params_hash(settings) != info["params_hash"]:
        return "built with other settings"
    return None


EQUIVALENT_CODE = Path(__file__).with_name("equivalent_code.yaml")


def equivalent_code(path: str | Path = EQUIVALENT_CODE) -> dict[str, set[str]]:
    """{code digest: the earlier digests it is proven to compute exactly as}, transitively, from
    ``report/equivalent_code.yaml``: each entry of that file is one proven refactor (a sample of stages rebuilt
    under reference numerics with identical weights and metrics, named in ``proof``) with the digest pairs
    (``new: old``) of every stage kind and method it covers. A run built with an equivalent digest is current."""

    pairs: dict[str, set[str]] = {}
    for entry in (yaml.safe_load(Path(path).read_text()) or []) if Path(path).is_file() else []:
        for new, old in (entry.get("digests") or {}).items():
            pairs.setdefault(str(new), set()).add(str(old))
    closed = {}
    for new in pairs:
        seen, todo = set(), [new]
        while todo:
            for old in pairs.get(todo.pop(), ()):
                if old not in seen:
                    seen.add(old)
                    todo.append(old)
        closed[new] = seen
    return closed


STALE_MARK = "†"


STALE_NOTE = PROSE["stale_note"]


NOT_BUILT = "not built yet"     # a declared run with no results, in a report built with allow_missing


def collect_runs(params: dict, runs_dir: str | Path, allow_missing: bool = False) -> list[Run]:
    """Every declared run's ``metrics.json`` (mean and per-seed values), ``run.json`` and the per-epoch history
    of each seed (``seeds/<s>/history.parquet``, averaged over seeds per epoch). A run with no results is an error,
    or with ``allow_missing`` a run whose cells say it is not built yet (a half-built pipeline's report)."""
    from reid_repro.config import declared_runs, not_run_reason

    runs, digests = [], {}

    def not_built(name: str) -> Run:
        """A run with no results: a larger-profile row with the profile off says it is not run at the default
        scale, and how to run it; any other run is not built yet."""
        spec = load_run(params, name)
        why = not_run_reason(params, spec) or NOT_BUILT
        return Run(name, spec, {"not_run": why}, pd.DataFrame({"epoch": []}), {}, {})

    for name in declared_runs(params):
        folder = Path(runs_dir) / name
        files = [folder / f for f in ("metrics.json", "run.json")]
        missing = [f for f in files if not f.is_file()]
        marker = not_run_reason(params, load_run(params, name)) if missing and not files[0].is_file() else None
        if marker is not None:
            # a larger-profile run with the profile off has no stage (conf/runs.json larger_stages is empty): what
            # its marker would say (training/run.py: write_not_run) is a function of params.yaml
            runs.append(Run(name, load_run(params, name), {"not_run": marker}, pd.DataFrame({"epoch": []}),
                            {"name": name, "stage": f"train_larger@{name}", "not_run": marker}, {}))
            continue
        if missing and allow_missing and not files[0].is_file():
            runs.append(not_built(name))
            continue
        if missing:
            raise ReidReproError(f"{missing[0]}: missing; the report needs every declared run (run `dvc repro`, "
                                 "or `reid-repro report --allow-missing` to mark it not built yet)")
        metrics, info = (json.loads(f.read_text()) for f in files)
        if "not_run" in metrics:        # a larger-profile run with larger.enabled false: its cells say so
            runs.append(Run(name, load_run(params, name), metrics, pd.DataFrame({"epoch": []}), info, {}))
            continue
        if "seeds" not in metrics and allow_missing:     # results of code that trained one seed: unusable here
            runs.append(not_built(name))
            continue
        if "seeds" not in metrics:
            raise ReidReproError(f"{files[0]}: no per-seed values (written before runs trained several seeds); "
                                 f"re-run `dvc repro train@{name}`")
        per_seed = {int(s): m for s, m in metrics["seeds"].items()}
        histories = []
        for s in sorted(per_seed):
            h = folder / "seeds" / str(s) / "history.parquet"
            if not h.is_file():
                raise ReidReproError(f"{h}: missing; the report needs every seed's history (run `dvc repro`)")
            histories.append(pd.read_parquet(h))
        for s, h in zip(sorted(per_seed), histories):   # the clustering after the first epoch (GCL+ Fig. 8's start)
            if "nmi" in h and len(h) >= 2:
                per_seed[s] = {**per_seed[s], "early_nmi": float(h.sort_values("epoch")["nmi"].iloc[1])}
        history = pd.concat(histories).groupby("epoch", as_index=False).mean(numeric_only=True)
        spec = load_run(params, name)
        runs.append(Run(name, spec, metrics, history, info, per_seed,
                        stale=stale_reason(params, name, spec, info, digests)))
    return runs


PLOT_CURVES = {"nmi": ["nmi"], "clusters": ["num_clusters", "num_outliers"]}


def write_plot_data(runs: list[Run], out: Path) -> None:
    """The data behind ``dvc plots``: per run and epoch, the mean over seeds of NMI (``nmi/<run>.csv``) and of
    the cluster and outlier counts (``clusters/<run>.csv``), so `dvc plots diff <exp>` overlays an experiment's
    curves on main's (dvc.yaml: plots)."""
    for folder, columns in PLOT_CURVES.items():
        (out / folder).mkdir(parents=True, exist_ok=True)
        for r in runs:
            have = [c for c in columns if c in r.history]
            if "epoch" not in r.history or not have:
                continue
            with atomic_path(out / folder / f"{r.name}.csv") as tmp:
                r.history[["epoch", *have]].round(4).to_csv(tmp, index=False)
