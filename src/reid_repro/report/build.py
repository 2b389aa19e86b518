"""The report: every reproduced table with the paper's numbers beside ours, per-epoch curves, provenance.

It reads only DVC-tracked inputs (params.yaml, ``runs/<name>/{metrics.json,run.json,seeds/<s>/history.parquet}``,
the pretrained start ``models/start.json``) and the
paper numbers typed into ``paper_numbers.yaml``, and writes ``index.html`` (from the Jinja2 template
``templates/index.html.j2``), ``results.md``, one CSV per table under ``tables/`` and PNG figures under
``figures/``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from markupsafe import Markup

from reid_repro.config import load_run
from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path, publish_dir, staging_dir, write_json

# the report's paragraphs are data (prose.yaml), read once
PROSE: dict[str, str] = yaml.safe_load(Path(__file__).with_name("prose.yaml").read_text(encoding="utf-8"))
DATASET_NAMES = {"market": "Market stand-in", "duke": "Duke stand-in", "msmt": "MSMT stand-in",
                 "market2duke": "Market→Duke stand-ins", "duke2market": "Duke→Market stand-ins",
                 "market2msmt": "Market→MSMT stand-ins", "duke2msmt": "Duke→MSMT stand-ins"}


REAL_NAMES = {"market": "Market-1501", "duke": "DukeMTMC-reID", "msmt": "MSMT17"}
WORLD_ROOT = "data/world"     # where the world stage writes the stand-ins (synthetic/dvc.yaml)


def dataset_labels(data: dict) -> dict[str, str]:
    """What our numbers come from, per column key: the synthetic stand-in (DATASET_NAMES) where
    ``params.yaml: data.<key>.root`` is the world's folder, else the real dataset named with its root; a UDA
    setting (``market2duke``) from its two sides."""
    labels = dict(DATASET_NAMES)
    real = {}
    for key, entry in (data or {}).items():
        root = str((entry or {}).get("root", "") or "")
        if root and not Path(root).as_posix().startswith(WORLD_ROOT) and key in REAL_NAMES:
            labels[key] = f"{REAL_NAMES[key]} (real data, {root})"
            real[key] = REAL_NAMES[key]
    for column in DATASET_NAMES:
        source, _, target = column.partition("2")
        if target and (source in real or target in real):
            name = {k: real.get(k, DATASET_NAMES[k]) for k in (source, target)}
            labels[column] = f"{name[source]}→{name[target]}"
    return labels


def table_findings(paper_table: dict, found: list[dict]) -> list[str]:
    """The explanations paper_numbers.yaml gives under a table (`findings`), each shown only while a verdict of
    its row reads as it says (a rebuild that changes the verdict drops the explanation with it)."""
    shown = []
    for f in paper_table.get("findings", []):
        if any(v["row"] == f["row"] and v["verdict"] == f["verdict"] for v in found):
            shown.append(f"Why {f['row']} {f['verdict']} here: {f['text']}")
    return shown


def verdict_metric(paper_table: dict) -> str:
    """The metric a table's verdicts compare: mAP where the table has it (CANU prints R1 first), else its first."""
    return "mAP" if "mAP" in paper_table["metrics"] else paper_table["metrics"][0]
METRIC_NAMES = {"mAP": "mAP", "rank1": "top-1", "rank5": "top-5", "rank10": "top-10", "fid": "FID"}

WHY_DIFFERENT = PROSE["why_different"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, dpi: int = 100) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    fig.clf()
    _pyplot().close(fig)
    return out


def paper_numbers() -> dict:
    return yaml.safe_load(resources.files("reid_repro.report").joinpath("paper_numbers.yaml").read_text())


def check_rows(params: dict, numbers: dict | None = None) -> int:
    """Every run's table and row (and each of its ``also`` rows) must be a row of ``paper_numbers.yaml``, unless
    the run is declared ``ours_only`` (a row no paper prints). Returns the number of rows checked."""
    from reid_repro.config import declared_runs

    numbers = numbers or paper_numbers()
    n = 0
    for name in declared_runs(params):
        spec = load_run(params, name)
        for i, (paper, table, row) in enumerate(spec.targets()):
            n += 1
            if paper not in numbers or table not in numbers[paper]:
                raise ReidReproError(f"params.yaml: runs.{name}: paper {paper!r} table {table!r} is not in "
                                     f"paper_numbers.yaml; expected one of {sorted(numbers.get(paper, {}))}")
            printed = [r["row"] for r in numbers[paper][table]["rows"]]
            if row not in printed and not (i == 0 and spec.ours_only):
                raise ReidReproError(f"params.yaml: runs.{name}: row {row!r} is not a row of {paper} table "
                                     f"{table} in paper_numbers.yaml (rows: {printed}); fix the row or declare the "
                                     "run `ours_only: true`")
    return n


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
    from reid_repro.config import params_hash, resolve_run

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
    import yaml

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
    seed_histories: dict[str, list] = {}   # per run, each seed's history

    def not_built(name: str) -> Run:
        """A run with no results: a larger-profile row whose marker stage has not run yet still says what its
        marker would (not run at the default scale, and how to run it); any other run is not built yet."""
        spec = load_run(params, name)
        why = not_run_reason(params, spec) or NOT_BUILT
        return Run(name, spec, {"not_run": why}, pd.DataFrame({"epoch": []}), {}, {})

    for name in declared_runs(params):
        folder = Path(runs_dir) / name
        files = [folder / f for f in ("metrics.json", "run.json")]
        missing = [f for f in files if not f.is_file()]
        marker = not_run_reason(params, load_run(params, name)) if missing and not files[0].is_file() else None
        if marker is not None:
            # a larger-profile run's not-run marker (training/run.py: write_not_run) is a function of params.yaml; a
            # checkout without it (a fresh clone: its folder lives in the DVC cache) reads the same from there
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
        history = pd.concat(histories).groupby("epoch", as_index=False).mean(numeric_only=True)
        spec = load_run(params, name)
        runs.append(Run(name, spec, metrics, history, info, per_seed,
                        stale=stale_reason(params, name, spec, info, digests)))
        seed_histories[name] = histories
    return merge_more_seeds(params, runs, seed_histories)


# A run ``<name>_more_seeds`` is run ``<name>`` again with other seeds (its overrides add only ``seed``, the loop's
# first seed): the baselines train more seeds than the global ``seeds`` because their gain over the pretrained
# start is small (1-2 mAP on the Duke and MSMT stand-ins) and every comparison stands on it. The report merges its
# seeds into ``<name>``'s: one row, one cell, the mean over all seeds; verdicts still pair seed s with seed s, so
# a row trained with the global seeds pairs with the baseline's first ones.
MORE_SEEDS = "_more_seeds"


def more_seeds_base(params: dict, name: str) -> str | None:
    """The run ``name`` adds seeds to, or None when it is not a ``*_more_seeds`` run. A ``*_more_seeds`` run whose
    base is not declared, or whose settings differ from its base's in more than the loop seed, is an error."""
    import dataclasses

    from reid_repro.config import declared_runs

    if not name.endswith(MORE_SEEDS):
        return None
    base = name[: -len(MORE_SEEDS)]
    if base not in declared_runs(params):
        raise ReidReproError(f"params.yaml: runs.{name}: adds seeds to run {base!r}, which is not declared")
    extra, spec = load_run(params, name), load_run(params, base)
    if "seed" not in extra.overrides:
        raise ReidReproError(f"params.yaml: runs.{name}: expected overrides.seed (its first seed, past {base}'s)")
    same = dataclasses.replace(extra, overrides={k: v for k, v in extra.overrides.items() if k != "seed"})
    if same != spec:
        diff = [f.name for f in dataclasses.fields(spec) if getattr(same, f.name) != getattr(spec, f.name)]
        raise ReidReproError(f"params.yaml: runs.{name}: must be runs.{base} with only overrides.seed added; "
                             f"differs in {diff}")
    return base


def merge_seeds(per_seed: dict[int, dict], keys) -> dict:
    """metrics.json's summary of ``per_seed`` for the metrics ``keys``: mean and sample standard deviation (as
    training/run.py: aggregate writes them)."""
    seeds = sorted(per_seed)
    out = {"seed_list": seeds, "num_seeds": len(seeds)}
    for k in keys:
        values = np.array([float(per_seed[s][k]) for s in seeds])
        out[k] = float(values.mean())
        out[f"{k}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def merge_more_seeds(params: dict, runs: list[Run], seed_histories: dict[str, list]) -> list[Run]:
    """``runs`` with each ``<name>_more_seeds`` run folded into ``<name>``: its seeds join the base's (the base's
    values win for a seed both trained: the same computation), the mean and std are recomputed over all of
    them, and the run reads as stale when either part is. A part not built leaves the other as it is."""
    by_name = {r.name: r for r in runs}
    out = []
    for r in runs:
        base = more_seeds_base(params, r.name)
        if base is not None:
            continue
        extra = by_name.get(r.name + MORE_SEEDS)
        if extra is None or not extra.per_seed or r.not_run or not r.per_seed:
            out.append(r)
            continue
        per_seed = {**extra.per_seed, **r.per_seed}
        first = per_seed[min(per_seed)]
        keys = [k for k in first if f"{k}_std" in r.metrics and all(k in m for m in per_seed.values())]
        metrics = {**r.metrics, **merge_seeds(per_seed, keys),
                   "seeds": {str(s): per_seed[s] for s in sorted(per_seed)},
                   "train_seconds": sum(float(m.get("train_seconds", 0.0)) for m in per_seed.values())}
        histories = seed_histories.get(r.name, []) + [h for s, h in zip(sorted(extra.per_seed),
                                                                         seed_histories.get(extra.name, []))
                                                      if s not in r.per_seed]
        history = (pd.concat(histories).groupby("epoch", as_index=False).mean(numeric_only=True) if histories
                   else r.history)
        stale = r.stale or (f"{extra.name}: {extra.stale}" if extra.stale else None)
        out.append(Run(r.name, r.spec, metrics, history, r.info, per_seed, stale=stale))
    return out


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


def _fmt(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1f}"


def table_frame(paper_table: dict, entries: list[tuple[Run, str]]) -> pd.DataFrame:
    """One row per paper row (then one per run with no paper row); per dataset and metric, paper and ours (%).

    ``entries`` are (run, the paper row it fills)."""
    metrics = paper_table["metrics"]
    datasets = list(paper_table["datasets"]) + sorted({r.spec.table_column for r, _ in entries} -
                                                      set(paper_table["datasets"]))
    ours, best, not_run, not_built, stale = {}, {}, set(), set(), set()
    for r, row in entries:
        ours.setdefault(row, {})[r.spec.table_column] = (r.name, [r.values(m) for m in metrics])
        if r.not_run == NOT_BUILT:
            not_built.add((row, r.spec.table_column))
        elif r.not_run:
            not_run.add((row, r.spec.table_column))
        if r.stale:
            stale.add((row, r.spec.table_column))
        if "best_epoch_mAP" in r.metrics:     # paper scale: the reference codes' best test epoch
            best[(row, r.spec.table_column)] = 100 * float(r.metrics["best_epoch_mAP"])
    rows = []
    printed = [p["row"] for p in paper_table["rows"]]
    for p in paper_table["rows"] + [{"row": row, "group": "ours only"} for row in ours if row not in printed]:
        entry = {"row": p["row"], "group": p.get("group", ""), "runs": ", ".join(n for n, _ in ours.get(p["row"], {}).values())}
        for d in datasets:
            entry[f"{d}.not_run"] = (p["row"], d) in not_run
            entry[f"{d}.not_built"] = (p["row"], d) in not_built
            entry[f"{d}.stale"] = (p["row"], d) in stale
            paper_vals = p.get(d) or [None] * len(metrics)
            our_vals = ours.get(p["row"], {}).get(d, (None, [None] * len(metrics)))[1]
            for m, pv, ov in zip(metrics, paper_vals, our_vals):
                seeds = sorted(ov) if ov else []
                vals = np.array([ov[k] for k in seeds]) if ov else np.array([])
                entry[f"{d}.{m}.paper"] = pv
                entry[f"{d}.{m}.ours"] = float(vals.mean()) if len(vals) else None
                entry[f"{d}.{m}.ours_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
                entry[f"{d}.{m}.ours_seeds"] = (";".join(f"{k}:{ov[k]:.2f}" for k in seeds) if ov else None)
                if m == "mAP" and (p["row"], d) in best:
                    entry[f"{d}.{m}.ours_best_epoch"] = best[(p["row"], d)]
        rows.append(entry)
    return pd.DataFrame(rows)


def seed_values(entries: list[tuple[Run, str]], metric: str) -> dict:
    """{(row, test dataset): {seed: value in points}} from the runs that fill each row."""
    out: dict = {}
    for r, row in entries:
        out.setdefault((row, r.spec.table_column), {}).update(r.values(metric))
    return out


def verdicts(paper: str, table: str, paper_table: dict, frame: pd.DataFrame, values: dict) -> list[dict]:
    """Does the paper's ordering hold on our world? Each row with our runs against the row it is measured against
    (the table's ``baseline``, or the row's own in the table's ``versus``, where a table holds two baselines:
    CANU's SSG and MMT rows; ``versus: {row: null}`` compares a row with nothing), on the first metric (mAP) of
    each dataset: the paper's gain and the paired comparison over seeds (report/verdicts.py). ``values`` is
    :func:`seed_values` of the table's runs."""
    from reid_repro.report import verdicts as rule

    metric = verdict_metric(paper_table)
    rows = frame.set_index("row")
    versus = paper_table.get("versus") or {}
    out = []
    for _, r in frame.iterrows():
        base_name = versus.get(r["row"], paper_table.get("baseline"))
        if base_name is None or base_name == r["row"] or base_name not in rows.index:
            continue
        base = rows.loc[base_name]
        for d in [c.split(".")[0] for c in frame.columns if c.endswith(f".{metric}.ours")]:
            paper_v, paper_base = r[f"{d}.{metric}.paper"], base[f"{d}.{metric}.paper"]
            ours, ours_base = values.get((r["row"], d)), values.get((base_name, d))
            if not ours or not ours_base or any(v is None or pd.isna(v) for v in (paper_v, paper_base)):
                continue
            seeds, row_v, base_v = rule.paired(sorted(set(ours) | set(ours_base)), ours, ours_base)
            if not seeds:
                continue
            v = rule.verdict(paper_v - paper_base, seeds, row_v, base_v)
            v["stale"] = bool(r.get(f"{d}.stale") is True or base.get(f"{d}.stale") is True)
            name = paper_table["datasets"].get(d, DATASET_NAMES.get(d, d))
            interval = (f"95% CI [{v['ci'][0]:+.1f}, {v['ci'][1]:+.1f}] over {len(seeds)} seeds"
                        if v["ci"][0] is not None else "one seed: no interval")
            out.append({"paper": paper, "table": table, "row": r["row"], "versus": base_name, "dataset": d,
                        "metric": metric, **v,
                        "sentence": f"{r['row']} vs {base_name}, {name} {METRIC_NAMES[metric]}: paper "
                                    f"{v['paper_gain']:+.1f}, ours {v['our_gain']:+.1f} ({interval}), "
                                    f"{v['verdict']}." + (f" {STALE_MARK} From results of earlier code or "
                                                          "settings: rebuild before reading it." if v["stale"]
                                                          else "")})
    return out


FIDELITY_TWIN = ", all paper (fidelity)"   # a row run with every disagreement read as the paper writes it


def paper_reading_verdicts(paper: str, table: str, paper_table: dict, frame: pd.DataFrame, values: dict) -> list[dict]:
    """The table's orderings again with the paper's reading of every disagreement (issue 11): a row ``<row>, all
    paper (fidelity)`` stands in for ``<row>``, so an ordering is judged when both its row and the row it is measured
    against have such a twin; the paper's gain is the original rows'. Each verdict has ``reading: paper``."""
    twins = {row[:-len(FIDELITY_TWIN)]: row for row in frame["row"] if row.endswith(FIDELITY_TWIN)}
    if not twins:
        return []
    by_row = frame.set_index("row")
    read = frame[frame["row"].isin(twins)].copy()
    for c in [c for c in frame.columns if ".ours" in c or c.endswith(".stale")]:   # ours from the twin
        read[c] = [by_row.loc[twins[r], c] for r in read["row"]]
    original = {twin: row for row, twin in twins.items()}
    twin_values = {(original[name], d): v for (name, d), v in values.items() if name in original}
    found = verdicts(paper, table, paper_table, read, twin_values)
    for v in found:
        v["reading"] = "paper"
        v["sentence"] = "With the paper's reading: " + v["sentence"]
    return found


INCONCLUSIVE_MEANS = PROSE["inconclusive_means"]


def _table_cells(frame: pd.DataFrame, paper_table: dict, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    """The displayed table: one string per cell, ours in **bold** as mean ± sd over seeds."""
    metrics = paper_table["metrics"]
    datasets = sorted({c.split(".")[0] for c in frame.columns if c.endswith(".ours")},
                      key=lambda d: list(paper_table["datasets"]).index(d) if d in paper_table["datasets"] else 99)
    head = ["Method"] + [f"{METRIC_NAMES[m]}: {paper_table['datasets'][d]} (paper) / {labels.get(d, d)} (ours)"
                         if d in paper_table["datasets"] else f"{METRIC_NAMES[m]}: {labels.get(d, d)} (ours)"
                         for d in datasets for m in metrics]
    rows = []
    for _, r in frame.iterrows():
        cells = [r["row"] + (f" (ours: {r['runs']})" if r["runs"] else "")]
        for d in datasets:
            for m in metrics:
                p, o, sd = r[f"{d}.{m}.paper"], r[f"{d}.{m}.ours"], r[f"{d}.{m}.ours_std"]
                spread = "" if sd is None or pd.isna(sd) else f" ± {sd:.1f}"
                cell = _fmt(p) if o is None or pd.isna(o) else f"{_fmt(p)} / **{_fmt(o)}{spread}**"
                if r.get(f"{d}.stale") is True and not (o is None or pd.isna(o)):
                    cell += f" {STALE_MARK}"
                if r.get(f"{d}.not_run") is True:
                    cell = f"{_fmt(p)} / not run at the default scale"
                if r.get(f"{d}.not_built") is True:
                    cell = f"{_fmt(p)} / {NOT_BUILT}"
                b = r.get(f"{d}.{m}.ours_best_epoch")
                if b is not None and not pd.isna(b):   # what the reference code would have reported
                    cell += f" (best test epoch, the reference codes' pick: {b:.1f})"
                cells.append(cell)
        rows.append(cells)
    return pd.DataFrame(rows, columns=head)


def _markdown(cells: pd.DataFrame) -> str:
    """A displayed table as GitHub markdown (results.md)."""
    def row(values):
        return "| " + " | ".join(str(v).replace("|", "/") for v in values) + " |"

    return "\n".join([row(cells.columns), "|" + "---|" * len(cells.columns), *(row(r) for r in cells.to_numpy())])


def _html(cells: pd.DataFrame) -> Markup:
    """A displayed table as HTML (index.html): pandas writes the table and escapes every cell; **bold** is kept.
    Markup: the page template inserts it as it is."""
    import re

    table = cells.to_html(index=False, border=0, classes="results")
    return Markup(re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", table))


@dataclass
class Section:
    """One section of the report: templates/index.html.j2 and templates/results.md.j2 draw each field that is set,
    in this order, so the page and results.md say the same things in the same order."""
    id: str                       # the anchor the table of contents links to
    title: str
    csv: str = ""                 # a paper table's CSV of per-seed values, named in its legend
    text: str = ""                # a paragraph
    cells: pd.DataFrame | None = None   # the displayed table, one string per cell (**bold** = ours)
    sentences: list[str] = field(default_factory=list)
    note: str = ""                # under the table: which of its runs hold results of earlier code (STALE_NOTE)
    rebuild: str = ""             # the section's `dvc repro` targets
    example: str = ""             # one `dvc exp run -S` setting for the item's main setting
    runs: list = field(default_factory=list)   # (run name, link to its folder) of the runs it reads
    figure: str = ""              # a PNG, relative to the page
    alt: str = ""
    width: int = 900
    pre: str = ""                 # preformatted text
    level: int = 2                # heading level (3: a subsection of the section before it)


PAGES = {"index.html": "index.html.j2", "results.md": "results.md.j2"}


def render_page(sections: list[Section], template: str = "index.html.j2", **values) -> str:
    """One page of the report from its template: index.html (every value escaped, autoescape) or results.md (text
    as it is); tables through :func:`_html` or :func:`_markdown`. A value the template names but is not given is
    an error."""
    import re

    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(loader=PackageLoader("reid_repro.report", "templates"),
                      autoescape=lambda name: bool(name and name.endswith(".html.j2")),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(html_table=_html, md_table=_markdown)
    text = env.get_template(template).render(sections=sections, **values)
    return re.sub(r"\n{3,}", "\n\n", text) if template.endswith(".md.j2") else text


def curves_figure(runs: list[Run], out: Path, title: str) -> Path:
    """NMI and cluster count per epoch for each run; each dataset's true identity count as a dashed line."""
    plt = _pyplot()
    fig, (ax_nmi, ax_k) = plt.subplots(1, 2, figsize=(10, 3.6))
    seen = set()
    for r in runs:
        h = r.history
        line, = ax_nmi.plot(h["epoch"], h["nmi"], marker="o", ms=3, label=r.name)
        ax_k.plot(h["epoch"], h["num_clusters"], marker="o", ms=3, color=line.get_color(), label=r.name)
        if r.spec.dataset not in seen:
            seen.add(r.spec.dataset)
            ax_k.axhline(h["num_true_ids"].iat[-1], ls="--", lw=1, color=line.get_color(),
                         label=f"true ids ({r.spec.dataset})")
    ax_nmi.set(xlabel="epoch", ylabel="NMI of pseudo labels", title="NMI per epoch")
    ax_k.set(xlabel="epoch", ylabel="clusters", title="cluster count per epoch")
    for ax in (ax_nmi, ax_k):
        ax.grid(alpha=0.3)
    ax_k.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out, dpi=110)


def clustering_quality_figure(runs: list[Run], out: Path) -> Path:
    """ISE Fig. 4: clustering quality (FMI, ARI, AMI, V-measure) per epoch, baseline vs ISE

    ``runs`` are pairs (baseline, ISE) per dataset, in order."""
    plt = _pyplot()
    pairs = [runs[i:i + 2] for i in range(0, len(runs), 2)]
    fig, axes = plt.subplots(len(pairs), 4, figsize=(13, 3 * len(pairs)), squeeze=False)
    for row, pair in zip(axes, pairs):
        for ax, score in zip(row, ("fmi", "ari", "ami", "v_measure")):
            for r, style in zip(pair, ("--", "-")):
                ax.plot(r.history["epoch"], r.history[score], style, marker="o", ms=3, label=r.name)
            ax.set(title=f"{score} ({pair[0].spec.dataset})", xlabel="epoch")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def _per_epoch(runs: list[Run], out: Path, column: str, ylabel: str, labels: list[str], truth: bool) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for r, label in zip(runs, labels):
        ax.plot(r.history["epoch"], r.history[column], marker="o", ms=3, label=f"{label} ({r.name})")
    if truth:
        ax.axhline(runs[0].history["num_true_ids"].iat[-1], ls="--", color="k", lw=1, label="true identities")
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


ICE_FIG6_LABELS = ["baseline", "w/o hard", "w/o soft", "ICE full"]


def ice_cluster_count_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 6: cluster count per epoch on the Duke stand-in (camera-aware memory)"""
    return _per_epoch(runs, out, "num_clusters", "clusters (DBSCAN)", ICE_FIG6_LABELS, truth=True)


def ice_kl_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 7: KL(P||Q) of Eq. 12 per epoch on the Duke stand-in"""
    return _per_epoch(runs, out, "kl", "KL divergence", ICE_FIG6_LABELS, truth=False)


def ise_mixup_figure(runs: list[Run], out: Path) -> Path:
    """ISE Fig. 5: ISE vs image Mixup over α (Market stand-in; mAP, ours)

    ``runs`` are the baseline, ISE, then the Mixup runs in order of α."""
    plt = _pyplot()
    base, ise, mixups = runs[0], runs[1], runs[2:]
    alphas = [float(r.spec.overrides["alpha"]) for r in mixups]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.errorbar(alphas, [100 * r.metrics["mAP"] for r in mixups], yerr=[_sd(r) for r in mixups], marker="o",
                capsize=3, label="Mixup (baseline + image mixup), mean ± sd over seeds")
    for r, style, label in ((ise, dict(color="C1"), f"ISE ({ise.name})"),
                            (base, dict(color="k", ls="--", lw=1), f"baseline ({base.name})")):
        ax.axhline(100 * r.metrics["mAP"], label=label, **style)
        ax.axhspan(100 * r.metrics["mAP"] - _sd(r), 100 * r.metrics["mAP"] + _sd(r), color=style["color"], alpha=0.1)
    ax.set(xscale="log", xlabel="α of Beta(α, α)", ylabel="mAP (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def _sd(r: Run, metric: str = "mAP") -> float:
    """The standard deviation over seeds of a run's metric, in points (0 for one seed)."""
    return 100 * float(r.metrics.get(f"{metric}_std", 0.0) or 0.0)


ICE_FIG5 = {"lambda_h": (1.0, ["ice_lambda_h_0p5_market", "ice_lambda_h_2p0_market"]),
            "tau_h": (0.1, ["ice_tau_h_0p05_market", "ice_tau_h_0p2_market"]),
            "lambda_s": (10.0, ["ice_lambda_s_5p0_market", "ice_lambda_s_20p0_market"]),
            "tau_s": (0.4, ["ice_tau_s_0p2_market", "ice_tau_s_0p6_market"])}


def ice_sensitivity_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 5: mAP against λ_h.ins, τ_h.ins, λ_s.ins, τ_s.ins (Market stand-in, ours)

    ``runs`` are the default ICE run, then two runs per parameter in the order of ICE_FIG5."""
    plt = _pyplot()
    default, rest = runs[0], runs[1:]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, (name, (value, _)), pair in zip(axes, ICE_FIG5.items(), [rest[i:i + 2] for i in range(0, 8, 2)]):
        points = sorted([(value, default.metrics["mAP"], _sd(default))]
                        + [(float(r.spec.overrides[name]), r.metrics["mAP"], _sd(r)) for r in pair])
        ax.errorbar([p[0] for p in points], [100 * p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    capsize=3)
        ax.axvline(value, color="k", ls=":", lw=1)
        ax.set(xlabel=name, ylabel="mAP (%)", xscale="log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


# figures beyond the per-table curves: name -> (function, the runs it draws, in order)
CANU_LABELS = ["MMT (DBSCAN)", "MMT+Adv.", "CANU-MMT"]
CANU_FIG3 = [f"{m}_{setting}" for setting in ("duke2market", "market2duke")
             for m in ("mmt", "adv_mmt", "canu_mmt")]


def canu_mi_figure(runs: list[Run], out: Path) -> Path:
    """CANU Fig. 3: mutual information of pseudo labels and camera per epoch (Duke→Market, Market→Duke stand-ins)

    ``runs``: MMT, MMT+Adv. and CANU-MMT on Duke→Market, then the same on Market→Duke. The dashed line is the
    ground-truth level (true identity vs camera). The paper gives a plot only, no numbers."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, group, title in zip(axes, (runs[:3], runs[3:]), ("Duke→Market", "Market→Duke")):
        for r, label in zip(group, CANU_LABELS):
            ax.plot(r.history["epoch"], r.history["mi_pseudo_camera"], marker="o", ms=3, label=f"{label} ({r.name})")
        ax.axhline(group[0].history["mi_true_camera"].iat[-1], ls="--", color="k", lw=1,
                   label="true identities vs camera")
        ax.set(title=f"{title} stand-ins", xlabel="epoch", ylabel="MI(pseudo label; camera)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def canu_lost_ids_figure(runs: list[Run], out: Path) -> Path:
    """CANU Fig. 4: lost identities per epoch (true identities with no clustered sample), Duke→Market stand-ins

    The paper gives a plot only, no numbers."""
    return _per_epoch(runs, out, "lost_ids", "lost identities", CANU_LABELS, truth=False)


GCL_FIG8 = ["gclp_fu_m_multi_mixup", "gclp_fu_m_rot", "gclp_fu_m_full"]
GCL_FIG8_LABELS = ["Trad (Multi+Mixup)", "Rot", "Full (Rot+D-Mixup)"]


def gcl_fig8_verdicts(runs: list[Run]) -> list[dict]:
    """GCL+ Fig. 8's claim, Full ends above Rot in NMI, as a paired comparison of the final NMI over seeds. The
    paper draws it (no numbers): its gain is recorded as the sign only (``sign_only``) and kept out of the
    paper-vs-ours gain plot."""
    from reid_repro.report import verdicts as rule

    trad, rot, full = runs
    seeds, row_v, base_v = rule.paired(sorted(full.values("nmi")), full.values("nmi"), rot.values("nmi"))
    if not seeds:
        return []
    v = rule.verdict(1.0, seeds, row_v, base_v)
    interval = (f"95% CI [{v['ci'][0]:+.3f}, {v['ci'][1]:+.3f}] over {len(seeds)} seeds"
                if v["ci"][0] is not None else "one seed: no interval")
    return [{"paper": "gcl_plus", "table": "Fig. 8", "row": "Full", "versus": "Rot", "dataset": "market",
             "metric": "nmi", **v, "sign_only": True,
             "sentence": f"Full vs Rot, final NMI on the Market stand-in: paper Full above Rot (a plot, no numbers), "
                         f"ours {v['our_gain']:+.3f} ({interval}), {v['verdict']}."}]


def gcl_nmi_figure(runs: list[Run], out: Path) -> Path:
    """GCL+ Fig. 8: NMI of the pseudo labels per joint-training epoch on the Market stand-in, Trad vs Rot vs Full

    Right: the cluster count per epoch with the true identity count (dashed), as GCL supp. Fig. 2 draws it. The
    paper gives a plot only (20 epochs; Trad higher early, lower late, Full above Rot); the CPU default trains 8."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for r, label in zip(runs, GCL_FIG8_LABELS):
        axes[0].plot(r.history["epoch"], r.history["nmi"], marker="o", ms=3, label=f"{label} ({r.name})")
        axes[1].plot(r.history["epoch"], r.history["num_clusters"], marker="o", ms=3, label=label)
    axes[1].axhline(runs[0].history["num_true_ids"].iat[-1], ls="--", color="k", lw=1, label="true identities")
    axes[0].set(xlabel="joint epoch", ylabel="NMI (pseudo labels vs identities)")
    axes[1].set(xlabel="joint epoch", ylabel="clusters (DBSCAN on the memory)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


ICE_DUKE = ["ice_aware_base_duke", "ice_aware_soft_duke", "ice_aware_hard_duke", "ice_aware_full_duke"]
def gcl_cluster_count_figure(runs: list[Run], out: Path) -> Path:
    """GCL supp. Fig. 2: cluster count per epoch on the Market stand-in, traditional augmentation vs GCL

    GCL is GCL+'s Rotation setting (no D-Mixup, prototype or mixup loss); traditional augmentation is Table 6's
    Multi (augmented positive views, no generator); the dashed line is the true identity count."""
    return _per_epoch(runs, out, "num_clusters", "clusters (DBSCAN)", ["traditional augmentation", "GCL"],
                      truth=True)


def _sweep(code: str, title: str, panels: dict[str, dict[str, list[tuple[str, float]]]]):
    """A GCL+ hyperparameter figure: per panel (a parameter), mAP (mean ± sd over seeds) against its value, one
    line per setting (UDA direction); the runs' order is the panels' order."""
    def figure(runs: list[Run], out: Path) -> Path:
        plt = _pyplot()
        by_name = {r.name: r for r in runs}
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
        for ax, (param, lines) in zip(axes[0], panels.items()):
            for label, points in lines.items():
                xs = [x for _, x in points]
                means = [by_name[n].metrics["mAP"] * 100 for n, _ in points]
                sds = [_sd(by_name[n]) for n, _ in points]
                ax.errorbar(xs, means, yerr=sds, marker="o", ms=4, capsize=3, label=label)
            ax.set(xlabel=param, ylabel="mAP (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return _save(fig, out, dpi=100)
    figure.__doc__ = title
    figure.__name__ = f"gcl_{code}_figure"
    runs = list(dict.fromkeys(n for lines in panels.values() for pts in lines.values() for n, _ in pts))
    return figure, runs


def _alpha_line(tag: str) -> list[tuple[str, float]]:
    return [(f"gclp_{tag}_alpha0p2", 0.2), (f"gclp_{tag}_full", 0.6), (f"gclp_{tag}_alpha1p0", 1.0),
            (f"gclp_{tag}_alpha2p0", 2.0)]


GCL_SWEEPS = {
    "gcl_plus_fig5_alpha": _sweep("fig5", "GCL+ Fig. 5: mAP against the mixup α (Beta(α, α)); the paper's best is "
                                  "near 0.6", {"α": {"Duke→Market": _alpha_line("d2m"),
                                                     "Market→Duke": _alpha_line("m2d")}}),
    "gcl_plus_fig6_beta_tau": _sweep("fig6", "GCL+ Fig. 6: mAP against the memory momentum β and the temperature τ "
                                     "(Duke→Market); the paper finds τ the more sensitive",
                                     {"β": {"Duke→Market": [("gclp_d2m_full", 0.2), ("gclp_d2m_beta0p5", 0.5),
                                                            ("gclp_d2m_beta0p8", 0.8)]},
                                      "τ": {"Duke→Market": [("gclp_d2m_tau0p02", 0.02), ("gclp_d2m_full", 0.04),
                                                            ("gclp_d2m_tau0p07", 0.07)]}}),
    "gcl_plus_fig7_weights": _sweep("fig7", "GCL+ Fig. 7: mAP against the loss weights λ_recon, λ_vi and λ_mix "
                                    "(Duke→Market); the paper finds them of slight influence",
                                    {"λ_recon": {"Duke→Market": [("gclp_d2m_lrecon1", 1.0), ("gclp_d2m_full", 5.0),
                                                                 ("gclp_d2m_lrecon10", 10.0)]},
                                     "λ_vi": {"Duke→Market": [("gclp_d2m_lvi0p5", 0.5), ("gclp_d2m_full", 1.0),
                                                              ("gclp_d2m_lvi2", 2.0)]},
                                     "λ_mix": {"Duke→Market": [("gclp_d2m_lmix0p5", 0.5), ("gclp_d2m_full", 1.0),
                                                               ("gclp_d2m_lmix2", 2.0)]}}),
}


EXTRA_FIGURES = {"ise_fig4_clustering_quality": (clustering_quality_figure,
                                                 ["cc_market", "ise_market", "cc_msmt", "ise_msmt"]),
                 "ice_fig6_cluster_count": (ice_cluster_count_figure, ICE_DUKE),
                 "canu_fig3_mi": (canu_mi_figure, CANU_FIG3),
                 "gcl_plus_fig8_nmi": (gcl_nmi_figure, GCL_FIG8),
                 "canu_fig4_lost_ids": (canu_lost_ids_figure, CANU_FIG3[:3]),
                 "ice_fig7_kl": (ice_kl_figure, ICE_DUKE),
                 "ice_fig5_sensitivity": (ice_sensitivity_figure,
                                          ["ice_aware_full_market"] + [r for _, rs in ICE_FIG5.values() for r in rs]),
                 "ise_fig5_mixup": (ise_mixup_figure, ["cc_market", "ise_market", "mixup_a0p2_market",
                                                       "mixup_a0p5_market", "mixup_a1p0_market", "mixup_a2p0_market"]),
                 "gcl_fig2_clusters": (gcl_cluster_count_figure, ["gclp_fu_m_multi", "gclp_fu_m_rot"]),
                 **GCL_SWEEPS}


MODEL_FIGURES = {
    "ice_fig8_tsne": "ICE Fig. 8: t-SNE of 10 random test identities (Duke stand-in), camera-aware baseline vs ICE",
    "ice_fig9_retrieval": "ICE Fig. 9: top-5 retrievals of ICE (Market stand-in); green correct, red wrong",
    "ise_fig3_tsne": "ISE Fig. 3: t-SNE of 10 training identities, baseline vs ISE; support samples hollow",
    "gcl_plus_table2_mixup": "GCL+ Table 2: two training identities P1, P2 and their 0.5/0.5 interpolation by image "
                             "Mixup (the pixel blend) and by D-Mixup (the Full run's generator on the mixed identity "
                             "features, P1's structure); F-Mixup needs a VAE-GAN decoder the harness does not have",
    "gcl_plus_table3_generations": "GCL+ Table 3: mesh-guided novel views of the Full run (Market stand-in): per "
                                   "identity, the image, then per angle 45°…315° the structure render (top), the "
                                   "generated view (middle) and the world's own render of the person at that view "
                                   "(bottom: what a perfect generator would draw, a row the paper could not have)",
    "gcl_plus_fig9_contrast": "GCL+ Fig. 9: rotated views without L_contrast (the stage-2 warm-up's generator: "
                              "generative losses only) and with it (the Full run), beside two other images of the "
                              "same identity",
    "gcl_plus_fig12_failures": "GCL+ Fig. 12: failure cases of rotation-based generation, chosen by a measure: the "
                               "images whose 180° view keeps the least identity (cosine of the run's features)",
    "gcl_figs3_5_views": "GCL supp. Figs. 3-5: generated novel views of more identities at 45°…315° (Full run, Market "
                         "stand-in; the other stand-ins need their GCL+ runs, in the larger profile)",
}


# the runs each model figure reads (dvc.yaml: figures)
MODEL_FIGURE_RUNS = {"ice_fig8_tsne": ["ice_aware_base_duke", "ice_aware_full_duke"],
                     "ice_fig9_retrieval": ["ice_aware_full_market"], "ise_fig3_tsne": ["cc_market", "ise_market"],
                     "gcl_plus_table3_generations": ["gclp_fu_m_full"], "gcl_plus_table2_mixup": ["gclp_fu_m_full"],
                     "gcl_plus_fig9_contrast": ["gclp_fu_m_full"], "gcl_plus_fig12_failures": ["gclp_fu_m_full"],
                     "gcl_figs3_5_views": ["gclp_fu_m_full"]}


VERDICT_COLORS = {"holds": "#1a9850", "does not hold": "#d73027", "inconclusive": "#878787"}
# each paper's headline claim: (table, row, dataset) of its verdict
HEADLINES = {"ise": ("6", "Our ISE", "market"), "ice": ("4a", "+ L_h.ins + L_s.ins", "market"),
             "canu": ("I", "CANU-MMT (ours)", "market2duke"),
             "gcl_plus": ("6a", "Rotation+D-Mixup", "market"),          # GCL+ (Full) over its stage-1 baseline
             "gcl": ("1", "90° and 270°", "market")}                     # the supplement's one claim: FID per angle


def reproduction_figure(found: list[dict], out: Path) -> Path:
    """Every claim's paper gain (x) against our paired gain (y) with its 95% interval, coloured by verdict, one
    panel per paper; zero lines and the diagonal (our gain = the paper's) drawn. A claim with one seed has no
    interval and is drawn hollow."""
    plt = _pyplot()
    papers = sorted({v["paper"] for v in found}) or ["none"]
    fig, axes = plt.subplots(1, len(papers), figsize=(5.2 * len(papers), 4.6), squeeze=False)
    for ax, paper in zip(axes[0], papers):
        mine = [v for v in found if v["paper"] == paper and not v.get("sign_only")]   # a plot's claim: no gain
        for kind, color in VERDICT_COLORS.items():
            pts = [v for v in mine if v["verdict"] == kind]
            if not pts:
                continue
            x = np.array([v["paper_gain"] for v in pts])
            y = np.array([v["our_gain"] for v in pts])
            has_ci = np.array([v["ci"][0] is not None for v in pts])
            if has_ci.any():
                lo = np.array([v["ci"][0] for v, h in zip(pts, has_ci) if h])
                hi = np.array([v["ci"][1] for v, h in zip(pts, has_ci) if h])
                ax.errorbar(x[has_ci], y[has_ci], yerr=[y[has_ci] - lo, hi - y[has_ci]], fmt="o", color=color,
                            ms=5, lw=1, capsize=2, label=f"{kind} ({len(pts)})")
            if (~has_ci).any():
                ax.scatter(x[~has_ci], y[~has_ci], facecolors="none", edgecolors=color, s=30,
                           label=f"{kind}, one seed ({int((~has_ci).sum())})" if not has_ci.any() else None)
        lim = max([abs(v) for v in ax.get_xlim() + ax.get_ylim()] + [1.0])
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.plot([-lim, lim], [-lim, lim], ls="--", color="#555", lw=0.8, label="ours = paper")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="paper's gain (points)", ylabel="our paired gain (points)",
               title=f"{short_name(paper)}: {len(mine)} claims")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Reproduction: each claim's gain in the paper vs on our world (95% interval over seeds)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def short_name(paper: str) -> str:
    """A paper's key as the report writes it (gcl_plus -> GCL+, canu -> CANU)."""
    return {"gcl_plus": "GCL+"}.get(paper, paper.upper())


def headline(found: list[dict], paper: str) -> dict | None:
    table, row, dataset = HEADLINES.get(paper, (None, None, None))
    return next((v for v in found if v["paper"] == paper and v["table"] == table and v["row"] == row
                 and v["dataset"] == dataset), None)


def _anchor(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _provenance(runs: list[Run], params_hash_value: str) -> dict:
    first = runs[0].info if runs else {}
    return {"git_revisions": sorted({r.info.get("git_revision", "unknown") for r in runs}),
            "params_hash": params_hash_value, "environment": first.get("environment", {}),
            "report_machine": {"python": platform.python_version(), "platform": platform.platform()}}


GCL_FID_INTRO = PROSE["gcl_fid_intro"]
GCL_EASY, GCL_HARD = ("45", "180", "315"), ("90", "270")


def gcl_fid_table(ours: dict, paper_table: dict) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """GCL supp. Table 1 beside our FID per angle, and the verdict on its ordering claim (one generator: the rule
    calls one seed inconclusive; the observed difference is given)."""
    from reid_repro.report import verdicts as rule

    angles = list(paper_table["datasets"])
    rows = [{"row": f"{r['row']} (paper, Inception-v3)", **{a: r[a][0] for a in angles}}
            for r in paper_table["rows"]]
    rows.append({"row": f"Market stand-in (ours: {ours['run']}, start's features)",
                 **{a: ours["fid"].get(a) for a in angles}})
    truth = ours.get("true_view") or {}
    if truth:      # ours only: the world's own render of the turned person, which no real dataset has
        for key, label in (("generated", "generated view"), ("input", "the input image (a copy)")):
            rows.append({"row": f"cosine to the world's true view: {label} ({truth['people']} people, ours only)",
                         **{a: truth.get(a, {}).get(key) for a in angles}})
    frame = pd.DataFrame(rows)
    cells = frame.copy()
    cells.columns = ["View"] + [paper_table["datasets"][a] for a in angles]
    cells = cells.map(lambda v: f"{v:.2f}" if isinstance(v, float) else v)
    market = next(r for r in paper_table["rows"] if r["row"] == "Market")
    paper_gain = (np.mean([market[a][0] for a in GCL_HARD]) - np.mean([market[a][0] for a in GCL_EASY]))
    hard, easy = np.mean([ours["fid"][a] for a in GCL_HARD]), np.mean([ours["fid"][a] for a in GCL_EASY])
    v = rule.verdict(paper_gain, [0], [hard], [easy])
    sentence = (f"FID at 90° and 270° vs 45°, 180° and 315°, Market: paper {paper_gain:+.1f} (harder views higher), "
                f"ours {hard - easy:+.3f} in the start's feature space (one generator: no interval), "
                f"{v['verdict']}.")
    if truth:
        closer = [a for a in angles if a in truth and truth[a]["generated"] > truth[a]["input"]]
        sentence += (f" Against the world's own render of the turned person (ours only), the generated view is "
                     f"closer than a copy of the input at {len(closer)} of {len(angles)} angles"
                     + (f" ({', '.join(paper_table['datasets'][a] for a in closer)})." if closer else "."))
    return frame, cells, [{"paper": "gcl", "table": "1", "row": "90° and 270°", "versus": "45°, 180° and 315°",
                           "dataset": "market", "metric": "fid", **v, "sentence": sentence}]


# the unsupervised baselines every comparison is measured against: each must end above the pretrained start
BASELINES = ("cc_market", "cc_duke", "cc_msmt", "ice_agnostic_base_market", "ice_agnostic_base_duke",
             "ice_agnostic_base_msmt", "ice_aware_base_market", "ice_aware_base_duke", "ice_aware_base_msmt")

START_INTRO = PROSE["start_intro"]


def baseline_gains(by_name: dict, start: dict) -> pd.DataFrame:
    """Per baseline run: the start's mAP on its test set, the per-seed final mAP, the mean gain and its 95%
    interval (Student t over seeds), and whether the interval lies above zero."""
    from reid_repro.report import verdicts as rule

    rows = []
    for name in BASELINES:
        r = by_name.get(name)
        if r is None or r.spec.test not in start:
            continue
        begin = 100 * float(start[r.spec.test]["mAP"])
        finals = r.values("mAP")
        seeds = sorted(finals)
        iv = rule.paired_interval([finals[s] for s in seeds], [begin] * len(seeds))
        ci = None if iv["n"] < 2 else [round(x, 2) for x in iv["ci"]]
        rows.append({"run": name, "row": r.spec.row, "dataset": r.spec.test, "start_mAP": round(begin, 2),
                     "seeds": seeds, "final_mAP": [round(finals[s], 2) for s in seeds],
                     "gain": round(iv["our_gain"], 2), "ci": ci, "learns": bool(ci is not None and ci[0] > 0)})
    return pd.DataFrame(rows)


def _gains_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    rows = []
    for _, r in frame.iterrows():
        ci = "one seed: no interval" if r["ci"] is None else f"[{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]"
        rows.append([r["run"], labels.get(r["dataset"], r["dataset"]), f"{r['start_mAP']:.1f}",
                     ", ".join(f"{v:.1f}" for v in r["final_mAP"]), f"{r['gain']:+.1f} {ci}",
                     "yes" if r["learns"] else "**no**"])
    return pd.DataFrame(rows, columns=["Baseline run", "Stand-in", "Start mAP", "Final mAP per seed",
                                       "Gain (95% CI)", "Learns"])


PROBE_INTRO = PROSE["probe_intro"]


def camera_probe_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run whose metrics have the camera probe (evaluation/probe.py): per-seed accuracy in points."""
    rows = []
    for r in runs:
        if not r.per_seed or not all("camera_probe" in m for m in r.per_seed.values()):
            continue
        values = r.values("camera_probe")
        if any(np.isnan(v) for v in values.values()):
            continue
        rows.append({"run": r.name, "row": r.spec.row, "dataset": r.spec.table_column,
                     "probe_seeds": [values[s] for s in sorted(values)],
                     "chance": 100 * float(r.metrics.get("camera_chance", float("nan"))),
                     "mAP": 100 * float(r.metrics["mAP"])})
    return pd.DataFrame(rows)


def _probe_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    def cell(v: list[float]) -> str:
        return f"{np.mean(v):.1f} ± {np.std(v, ddof=1) if len(v) > 1 else 0.0:.1f}"

    rows = [[r["run"], r["row"], labels.get(r["dataset"], r["dataset"]), cell(r["probe_seeds"]),
             f"{r['chance']:.1f}", f"{r['mAP']:.1f}"] for _, r in frame.iterrows()]
    return pd.DataFrame(rows, columns=["Run", "Row", "Stand-in", "Camera probe accuracy (%)", "Chance (%)",
                                       "mAP (%)"])


STUDIES_INTRO = PROSE["studies_intro"]


def _seed_maps(folder: Path) -> dict[int, float]:
    """mAP (%) per seed of a trained run folder (``metrics.json: seeds``); empty when it has not run."""
    f = folder / "metrics.json"
    if not f.is_file():
        return {}
    seeds = json.loads(f.read_text()).get("seeds")
    return {int(s): 100 * float(m["mAP"]) for s, m in seeds.items()} if isinstance(seeds, dict) else {}


def studies_frame(params: dict, studies_dir: str | Path, paper: str | None = None,
                  runs_dir: str | Path | None = None) -> pd.DataFrame:
    """One row per exported study (studies/<name>/best.yaml): the paper's setting and its validation mAP beside
    the best trial's; with ``runs_dir``, the test mAP of the run at the paper's setting (runs/<run>) and at the
    best setting (runs/tuned_<name>, the tuned@ stage) and their paired difference over seeds."""
    from reid_repro.config import load_run
    from reid_repro.report import verdicts as rule

    rows = []
    for name, spec in (params.get("studies") or {}).items():
        best_file = Path(studies_dir) / name / "best.yaml"
        if not best_file.is_file() or spec["run"] not in (params.get("runs") or {}):
            continue
        if paper is not None and paper not in {p for p, _, _ in load_run(params, spec["run"]).targets()}:
            continue
        best = yaml.safe_load(best_file.read_text())
        fmt = ", ".join
        paper_v = best.get("paper_value")
        row = {"study": name, "run": spec["run"], "trials": f"{best['n_complete']} complete, "
               f"{best['n_pruned']} pruned",
               "paper_setting": fmt(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in (best.get("paper_params") or {}).items()),
               "paper_val_mAP": None if paper_v is None else round(100 * paper_v, 2),
               "best_setting": fmt(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in best["best_params"].items()),
               "best_val_mAP": round(100 * best["best_value"], 2),
               "gap": None if paper_v is None else round(100 * (best["best_value"] - paper_v), 2),
               "paper_test_mAP": None, "paper_test_sd": None, "tuned_test_mAP": None, "tuned_test_sd": None,
               "test_gain": None, "test_ci_low": None, "test_ci_high": None, "test_seeds": 0}
        if runs_dir is not None:
            at_paper, tuned = _seed_maps(Path(runs_dir) / spec["run"]), _seed_maps(Path(runs_dir) / f"tuned_{name}")
            for key, values in (("paper", at_paper), ("tuned", tuned)):
                if values:
                    v = list(values.values())
                    row[f"{key}_test_mAP"] = round(float(np.mean(v)), 2)
                    row[f"{key}_test_sd"] = round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else 0.0
            seeds, t, p = rule.paired(sorted(tuned), tuned, at_paper)
            if seeds:
                iv = rule.paired_interval(t, p)
                row.update(test_gain=round(iv["our_gain"], 2), test_ci_low=round(iv["ci"][0], 2),
                           test_ci_high=round(iv["ci"][1], 2), test_seeds=len(seeds))
        rows.append(row)
    return pd.DataFrame(rows)


def _studies_cells(frame: pd.DataFrame) -> pd.DataFrame:
    def test(mean, sd) -> str:
        return "–" if mean is None or pd.isna(mean) else f"{mean:.1f} ± {sd:.1f}"

    def gain(r) -> str:
        if r["test_seeds"] == 0:
            return "–"
        if r["test_seeds"] == 1:
            return f"{r['test_gain']:+.1f} (1 seed)"
        return f"{r['test_gain']:+.1f} [{r['test_ci_low']:+.1f}, {r['test_ci_high']:+.1f}]"

    rows = [[r["study"], r["run"], r["trials"], r["paper_setting"], _fmt(r["paper_val_mAP"]), r["best_setting"],
             _fmt(r["best_val_mAP"]), _fmt(r["gap"]), test(r["paper_test_mAP"], r["paper_test_sd"]),
             test(r["tuned_test_mAP"], r["tuned_test_sd"]), gain(r)] for _, r in frame.iterrows()]
    return pd.DataFrame(rows, columns=["Study", "Run", "Trials", "Paper's setting", "its val. mAP", "Best setting",
                                       "its val. mAP ", "Val. gap", "Test mAP, paper's setting",
                                       "Test mAP, best setting", "Test gain [95% CI]"])


def study_sentences(frame: pd.DataFrame) -> list[str]:
    out = []
    for _, r in frame.iterrows():
        if r["gap"] is None or pd.isna(r["gap"]):
            first = f"{r['study']}: the paper's setting did not finish (pruned or failed)."
        elif r["gap"] <= 0.5:
            first = (f"{r['study']}: the paper's setting is within {r['gap']:.1f} mAP of the best of its trials on "
                     "the validation identities: near-optimal on our world.")
        else:
            first = (f"{r['study']}: the best setting ({r['best_setting']}) beats the paper's by {r['gap']:.1f} "
                     "mAP on the validation identities (one seed per trial).")
        if r["test_seeds"] >= 2:
            ci = f"{r['test_gain']:+.1f} mAP, 95% CI [{r['test_ci_low']:+.1f}, {r['test_ci_high']:+.1f}] over " \
                 f"{r['test_seeds']} seeds"
            if r["test_ci_low"] > 0:
                first += f" On the test identities the best setting confirms it: {ci}."
            elif r["test_ci_high"] < 0:
                first += f" On the test identities the best setting is worse than the paper's: {ci}."
            else:
                first += f" On the test identities no difference is detectable: {ci}."
        elif r["test_seeds"] == 1:
            first += (f" On the test identities (one seed) the best setting scores {r['test_gain']:+.1f} mAP against "
                      "the paper's: too few seeds for an interval.")
        else:
            first += " The test score of a run at that setting (tuned@ stage) is not built yet."
        out.append(first)
    return out


def build_report(params: dict, runs_dir: str | Path, out_dir: str | Path, paper: str | None = None,
                 start: str | Path | None = None, model_figures: str | Path | None = None,
                 studies: str | Path | None = None, allow_missing: bool = False) -> dict:
    """Write the report of every declared run to ``out_dir``; with ``paper``, of that paper's runs only. With
    ``allow_missing`` a declared run with no results is listed as not built yet instead of stopping the build.
    ``start`` is the pretrained start's evaluation (``models/start.json``) for the baselines' gains."""
    from reid_repro.config import larger_section, params_hash

    out_dir = Path(out_dir)
    numbers = paper_numbers()
    check_rows(params, numbers)
    if paper is not None:
        if paper not in numbers:
            raise ReidReproError(f"--paper {paper!r}: expected one of {sorted(numbers)}")
        def mine(runs: dict) -> dict:     # its runs and shared baselines
            return {k: v for k, v in runs.items() if any(p == paper for p, _, _ in load_run(params, k).targets())}
        larger = larger_section(params)
        params = {**params, "runs": mine(params["runs"]), "larger": {**larger, "runs": mine(larger["runs"])}}
    found_runs = collect_runs(params, runs_dir, allow_missing)
    runs = [r for r in found_runs if not r.not_run]     # trained; the others only fill their table cells
    labels = dataset_labels(params.get("data"))     # our columns: the stand-in, or the real dataset used
    # tables and figures are built in staging folders and published together at the end, so a build that
    # fails halfway leaves the previous report whole (never old and new tables mixed)
    tables_dir, figures_dir = staging_dir(out_dir / "tables"), staging_dir(out_dir / "figures")
    plots_dir = staging_dir(out_dir / "plots")
    write_plot_data(runs, plots_dir)
    # the page's sections in order; the template draws them and the table of contents at the end
    sections = [Section("how-ours-differ", "How our numbers differ from the papers'", text=WHY_DIFFERENT)]
    summary = {"tables": [], "figures": []}
    all_verdicts: list[dict] = []
    groups: dict[tuple, list[tuple[Run, str]]] = {}
    for r in found_runs:
        for paper_, table, row in r.spec.targets():
            if paper is None or paper_ == paper:     # a shared baseline's rows in other papers stay out
                groups.setdefault((paper_, table), []).append((r, row))
    from reid_repro.report.items import EXAMPLES, section_order

    def links(names) -> list[tuple[str, str]]:
        """(run, relative link to its folder) for the runs a section reads, from wherever the page is written."""
        rel = Path(os.path.relpath(Path(runs_dir).resolve(), out_dir.resolve()))
        return [(n, (rel / n / "metrics.json").as_posix()) for n in names]

    partial: dict[str, int] = {}     # table anchor -> how many of its cells are larger-profile rows not run
    unbuilt: dict[str, tuple] = {}   # table anchor -> (its cells of runs not built yet, its trained runs)
    both_readings: list[tuple] = []  # (paper, table, verdicts with the code's reading, with the paper's)
    # (name_p, not paper: `paper` is the argument that selects one paper's report)
    for (name_p, table), entries in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1])
                                                                           if kv[0][1].isdigit() else 99)):
        if name_p not in numbers or table not in numbers[name_p]:
            raise ReidReproError(f"runs {[r.name for r, _ in entries]}: paper {name_p!r} table {table!r} is not "
                                 "in paper_numbers.yaml")
        pt = numbers[name_p][table]
        members = list({r.name: r for r, _ in entries}.values())
        frame = table_frame(pt, entries)
        slug = f"{name_p}_table{table}"
        with atomic_path(tables_dir / f"{slug}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        trained = [m for m in members if not m.not_run]
        fig = curves_figure(trained, figures_dir / f"{slug}_curves.png", pt["title"]) if trained else None
        cells = _table_cells(frame, pt, labels)
        values = seed_values(entries, verdict_metric(pt))
        found = verdicts(name_p, table, pt, frame, values)
        all_verdicts += found
        read = paper_reading_verdicts(name_p, table, pt, frame, values)
        if read:       # the same orderings under both readings, for the paper-vs-code section
            judged = {(v["row"], v["versus"], v["dataset"]) for v in read}
            both_readings.append((name_p, table, [v for v in found if (v["row"], v["versus"], v["dataset"])
                                                  in judged], read))
        sentences = [v["sentence"] for v in found]
        stale_here = [m.name for m in trained if m.stale]
        note = " ".join(x for x in (f"{STALE_NOTE} Here: {', '.join(stale_here)}." if stale_here else "",
                                    *table_findings(pt, found)) if x)
        if fig is not None:
            summary["figures"].append(f"figures/{fig.name}")
        sections.append(Section(f"{name_p}-table-{_anchor(table)}", pt["title"], csv=f"tables/{slug}.csv",
                                cells=cells, sentences=sentences, note=note,
                                rebuild=" ".join(("train_larger@" if m.spec.larger else "train@") + m.name
                                                 for m in members),
                                example=EXAMPLES.get(f"{name_p}-table-{_anchor(table)}", ""),
                                runs=links(m.name for m in members),
                                figure=f"figures/{fig.name}" if fig is not None else "",
                                alt="NMI and cluster count per epoch"))
        summary["tables"].append(slug)
        partial[f"{name_p}-table-{_anchor(table)}"] = int(frame[[c for c in frame.columns
                                                                 if c.endswith(".not_run")]].to_numpy().sum())
        unbuilt[f"{name_p}-table-{_anchor(table)}"] = (
            int(frame[[c for c in frame.columns if c.endswith(".not_built")]].to_numpy().sum()), len(trained))
    by_name = {r.name: r for r in runs}

    def add_table(slug: str, anchor: str, title: str, intro: str, frame: pd.DataFrame, cells: pd.DataFrame):
        """A section of one table: its data as tables/<slug>.csv, its cells in results.md and on the page."""
        with atomic_path(tables_dir / f"{slug}.csv") as tmp:
            frame.to_csv(tmp, index=False)
        sections.append(Section(anchor, title, text=intro, cells=cells))
        summary["tables"].append(slug)

    if start is not None:
        start_file = Path(start)
        if not start_file.is_file():
            raise ReidReproError(f"{start_file}: missing; run `dvc repro start` (the pretrained start's mAP)")
        gains = baseline_gains(by_name, json.loads(start_file.read_text()))
        if len(gains):
            add_table("baseline_gains", "baseline-gains", "Does the baseline learn?", START_INTRO, gains,
                      _gains_cells(gains, labels))
            summary["baselines_learn"] = {r["run"]: r["learns"] for _, r in gains.iterrows()}
    fid = fidelity_frame(by_name, paper)
    if len(fid):
        add_table("fidelity", "paper-vs-code", "Paper vs released code", FIDELITY_INTRO, fid,
                  _fidelity_cells(fid, labels))
        counts, lines = reading_counts(both_readings)
        summary["orderings_by_reading"] = counts
        sections[-1].sentences = lines
        with atomic_path(tables_dir / "fidelity_orderings.csv") as tmp:
            pd.DataFrame([{k: v[k] for k in ("paper", "table", "row", "versus", "dataset", "paper_gain",
                                              "our_gain", "ci", "verdict")} | {"reading": v.get("reading", "code")}
                          for _, _, code_v, paper_v in both_readings for v in code_v + paper_v]).to_csv(tmp,
                                                                                                        index=False)
    if studies is not None:
        tuned = studies_frame(params, studies, paper, runs_dir)
        if len(tuned):
            add_table("studies", "studies", "Studies: is the paper's setting optimal on our world?", STUDIES_INTRO,
                      tuned, _studies_cells(tuned))
            found = study_sentences(tuned)
            sections[-1].sentences = found
            sections[-1].rebuild = " ".join(f"tune@{n} tuned@{n}" for n in tuned["study"])
            for name in tuned["study"]:      # each study's parameter importances (its other plots: studies/<name>)
                plot = Path(studies) / name / "importances.png"
                if plot.is_file():
                    shutil.copyfile(plot, figures_dir / f"study_{name}_importances.png")
                    title = f"Study {name}: parameter importances (fANOVA over its finished trials)"
                    sections.append(Section(f"studies-{name}-importances", title, alt=f"study {name}",
                                            figure=f"figures/study_{name}_importances.png", width=600,
                                            rebuild=f"tune@{name}", level=3))
                    summary["figures"].append(f"figures/study_{name}_importances.png")
    probe = camera_probe_frame([r for r in runs if r.spec.paper == "canu"])
    if len(probe):
        add_table("camera_probe", "canu-camera-probe", "CANU: camera left in the features (linear probe)",
                  PROBE_INTRO, probe, _probe_cells(probe, labels))
    for title, (fn, names) in EXTRA_FIGURES.items():
        if all(n in by_name for n in names):
            fig = fn([by_name[n] for n in names], figures_dir / f"{title}.png")
            anchor = _anchor(title.replace("_", " "))
            sections.append(Section(anchor, fn.__doc__.splitlines()[0], figure=f"figures/{fig.name}", alt=title,
                                    rebuild=" ".join(("train_larger@" if by_name[n].spec.larger else "train@") + n
                                                     for n in names), example=EXAMPLES.get(anchor, ""),
                                    runs=links(names)))
            summary["figures"].append(f"figures/{fig.name}")
            if title == "gcl_plus_fig8_nmi":
                found = gcl_fig8_verdicts([by_name[n] for n in names])
                sections[-1].sentences = [v["sentence"] for v in found]
                all_verdicts += found
    for name, caption in MODEL_FIGURES.items():     # from the figures stage, when it ran
        if paper is not None and not name.startswith(f"{paper}_"):
            continue
        png = Path(model_figures if model_figures is not None else out_dir / "model_figures") / f"{name}.png"
        if png.is_file():
            src = Path(os.path.relpath(png.resolve(), out_dir.resolve())).as_posix()
            anchor = _anchor(name.replace("_", " "))
            sections.append(Section(anchor, caption, figure=src, alt=name,
                                    rebuild="figures", example=EXAMPLES.get(anchor, ""),
                                    runs=links(MODEL_FIGURE_RUNS[name])))
            summary["figures"].append(src)
    fid_file = Path(model_figures if model_figures is not None else out_dir / "model_figures") / "gcl_fid.json"
    if fid_file.is_file() and (paper is None or paper in ("gcl", "gcl_plus")):
        frame, cells, found = gcl_fid_table(json.loads(fid_file.read_text()), numbers["gcl"]["1"])
        add_table("gcl_table1", "gcl-table-1", numbers["gcl"]["1"]["title"], GCL_FID_INTRO, frame, cells)
        sections[-1].sentences = [v["sentence"] for v in found]
        all_verdicts += found
    # each paper's items in the paper's own table and figure order; the sections no item owns (how ours
    # differ first; the baselines' gains and paper vs code) keep their place around them
    rank = {anchor: i for i, anchor in enumerate(section_order())}
    sections.sort(key=lambda sec: (0, 0) if sec.id == "how-ours-differ" else
                  (1, rank[sec.id]) if sec.id in rank else (2, 0))
    summary["verdicts"] = {k: sum(v["verdict"] == k for v in all_verdicts)
                           for k in ("holds", "does not hold", "inconclusive")}
    per_paper = {}
    for v in all_verdicts:
        per_paper.setdefault(v["paper"], {"holds": 0, "does not hold": 0, "inconclusive": 0})[v["verdict"]] += 1
    counts = "; ".join(f"{short_name(p)}: {c['holds']} hold, {c['does not hold']} do not, {c['inconclusive']} "
                       "inconclusive" for p, c in sorted(per_paper.items()))
    line = (f"Of {len(all_verdicts)} paper orderings checked ({counts}); each is listed under its table and in "
            "`verdicts.json`.")
    summary["stale_runs"] = {r.name: r.stale for r in runs if r.stale}
    summary["not_built"] = [r.name for r in found_runs if r.not_run == NOT_BUILT]
    stale_verdicts = sum(bool(v.get("stale")) for v in all_verdicts)
    stale_line = (f"{len(summary['stale_runs'])} of {len(runs)} trained runs hold results of earlier code or "
                  f"settings than this checkout's (marked {STALE_MARK}; {stale_verdicts} of the "
                  f"{len(all_verdicts)} orderings read one of them): "
                  + ", ".join(f"{n} ({why})" for n, why in summary["stale_runs"].items()) + "."
                  if summary["stale_runs"] else
                  f"All {len(runs)} trained runs were built with this checkout's code and settings.")
    if summary["not_built"]:
        stale_line += (f" {len(summary['not_built'])} declared runs are not built yet (their cells say so; "
                       "`dvc status` names their stages).")
    repro_fig = reproduction_figure(all_verdicts, figures_dir / "reproduction.png")
    summary["figures"].insert(0, f"figures/{repro_fig.name}")
    heads = []
    for p_name in sorted(per_paper):
        h = headline(all_verdicts, p_name)
        if h:
            ci = (f"95% CI [{h['ci'][0]:+.1f}, {h['ci'][1]:+.1f}] over {len(h['seeds'])} seeds"
                  if h["ci"][0] is not None else "one seed: no interval")
            where = labels.get(h["dataset"], h["dataset"])
            heads.append(f"{short_name(p_name)} headline — {h['row']} vs {h['versus']} ({where} "
                         f"{METRIC_NAMES[h['metric']]}): paper {h['paper_gain']:+.1f}, ours {h['our_gain']:+.1f} ({ci}): {h['verdict']}.")
    from reid_repro.report.items import PAPERS, REPRODUCED, coverage

    cov_list = coverage({s.id for s in sections}, paper, partial, unbuilt)
    cov = pd.DataFrame(cov_list)
    with atomic_path(tables_dir / "coverage.csv") as tmp:
        cov.to_csv(tmp, index=False)
    summary["tables"].append("coverage")
    summary["coverage"] = {p_name: {"items": int(len(g)), "reproduced": int((g["state"] == REPRODUCED).sum())}
                           for p_name, g in cov.groupby("paper", sort=False)}
    cards = [{"name": PAPERS[k], **v, "claims": per_paper.get(k)} for k, v in summary["coverage"].items()]
    # the scale caveat (how ours differ) stands first, before the first verdict; then the summary and coverage
    sections[1:1] = [Section("summary", "Summary", figure=f"figures/{repro_fig.name}", alt="reproduction plot",
                             width=1000),
                     Section("coverage", "Coverage: every table and figure of the five papers")]
    summary["verdicts_by_paper"] = per_paper
    prov = _provenance(runs, params_hash({k: params[k] for k in sorted(params)}))
    sections.append(Section("provenance", "Provenance", pre=json.dumps(prov, indent=2)))
    values = dict(cards=cards, line=line, stale=stale_line, heads=heads, inconclusive=INCONCLUSIVE_MEANS,
                  coverage=cov_list)
    pages = {name: render_page(sections, template, **values) for name, template in PAGES.items()}
    rows = [{"claim": f"{v['paper']} {v['table']}: {v['row']} ({v['dataset']})", "paper_gain": v["paper_gain"],
             "our_gain": v["our_gain"], "verdict": v["verdict"]} for v in all_verdicts if not v.get("sign_only")]
    with atomic_path(plots_dir / "reproduction.csv") as tmp:
        pd.DataFrame(rows, columns=["claim", "paper_gain", "our_gain", "verdict"]).to_csv(tmp, index=False)
    publish_dir(plots_dir, out_dir / "plots")
    publish_dir(tables_dir, out_dir / "tables")
    publish_dir(figures_dir, out_dir / "figures")
    write_json(out_dir / "verdicts.json", all_verdicts)
    for name, text in pages.items():
        with atomic_path(out_dir / name) as tmp:
            tmp.write_text(text)
    write_json(out_dir / "report.json", summary)
    return summary


FIDELITY_INTRO = PROSE["fidelity_intro"]


def reading_counts(both_readings: list[tuple]) -> tuple[dict, list[str]]:
    """Per paper, how many of the orderings run under both readings hold / do not hold / are inconclusive with the
    code's reading (the default runs) and with the paper's (the ``all paper (fidelity)`` twins); and the sentences:
    one count line per paper, then each ordering under the paper's reading."""
    counts: dict = {}
    lines, detail = [], []
    for p, _, code_v, paper_v in both_readings:
        for reading, found in (("code", code_v), ("paper", paper_v)):
            c = counts.setdefault(p, {}).setdefault(reading, {"holds": 0, "does not hold": 0, "inconclusive": 0})
            for v in found:
                c[v["verdict"]] += 1
        detail += [v["sentence"] for v in paper_v]
    for p, c in sorted(counts.items()):
        n = sum(c["code"].values())
        lines.append(f"{short_name(p)}: of the {n} paper ordering{'' if n == 1 else 's'} run with both readings, "
                     + "; ".join(f"with the {reading}'s reading {k['holds']} hold, {k['does not hold']} do not, "
                                 f"{k['inconclusive']} inconclusive" for reading, k in c.items()) + ".")
    return counts, lines + detail


def fidelity_frame(by_name: dict, paper: str | None = None) -> pd.DataFrame:
    """One row per disagreement and measured pair: what the paper says, what the code does, the citation, the
    default and, where both runs exist, mAP of each variant and the paired difference (code - paper)."""
    from reid_repro.report import verdicts as rule
    from reid_repro.report.fidelity import DISAGREEMENTS

    rows = []
    for d in DISAGREEMENTS:
        if paper is not None and d["paper"] != paper:
            continue
        pairs = d["runs"] if isinstance(d["runs"], list) else [d["runs"]]
        for pair in pairs:
            row = {"paper": d["paper"], "disagreement": d["id"], "setting": d["setting"] or "(not a switch)",
                   "paper_says": d["paper_says"], "code_does": d["code_does"], "official_code": d["cite"],
                   "default": d["default"], "code_run": pair[0] if pair else None,
                   "paper_run": pair[1] if pair else None, "dataset": None, "code_mAP": None, "paper_mAP": None,
                   "code_minus_paper": None, "ci": None, "seeds": None, "stale": False, "not_run": None}
            if pair and all(n in by_name for n in pair):
                code, variant = (by_name[n] for n in pair)
                row["stale"] = bool(code.stale or variant.stale)
                seeds_c, seeds_v = code.values("mAP"), variant.values("mAP")
                seeds, cv, vv = rule.paired(sorted(seeds_c), seeds_c, seeds_v)
                if seeds:
                    iv = rule.paired_interval(cv, vv)
                    row.update(dataset=code.spec.test, code_mAP=round(float(np.mean(cv)), 1),
                               paper_mAP=round(float(np.mean(vv)), 1), code_minus_paper=round(iv["our_gain"], 1),
                               ci=None if iv["n"] < 2 else [round(x, 1) for x in iv["ci"]], seeds=seeds)
                else:   # a larger-profile marker says so; a run with no results at all is "not built yet"
                    reasons = [r.not_run for r in (code, variant) if r.not_run and r.not_run != NOT_BUILT]
                    row.update(dataset="not run", not_run=reasons[0] if reasons else None)
            elif pair:
                row["dataset"] = "not run"
            rows.append(row)
    return pd.DataFrame(rows)


def _fidelity_cells(frame: pd.DataFrame, labels: dict = DATASET_NAMES) -> pd.DataFrame:
    rows = []
    for _, r in frame.iterrows():
        if r["code_mAP"] is not None and not pd.isna(r["code_mAP"]):
            ci = "one seed: no interval" if r["ci"] is None else f"95% CI [{r['ci'][0]:+.1f}, {r['ci'][1]:+.1f}]"
            effect = (f"{labels.get(r['dataset'], r['dataset'])}, `{r['code_run']}` vs `{r['paper_run']}`: code "
                      f"{r['code_mAP']:.1f} / paper {r['paper_mAP']:.1f} mAP, code − paper "
                      f"{r['code_minus_paper']:+.1f} ({ci})" + (f" {STALE_MARK}" if r["stale"] else ""))
        elif r["dataset"] == "not run":     # name the runs, so the reader knows what to rebuild
            why = r.get("not_run")
            why = why if isinstance(why, str) and why else "not run yet"
            effect = f"{why} (`{r['code_run']}` vs `{r['paper_run']}`)"
        else:
            effect = "not measured"
        rows.append([short_name(r["paper"]), f"{r['disagreement']} ({r['setting']})", r["paper_says"],
                     f"{r['code_does']} — {r['official_code']}", r["default"], effect])
    return pd.DataFrame(rows, columns=["Paper", "Disagreement (setting)", "The paper says", "Released code (cited)",
                                       "Default", "Effect on our world"])
