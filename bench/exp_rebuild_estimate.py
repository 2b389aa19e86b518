"""Issue 38, target 6: how long the full default rebuild takes on the landed world. An experiment, not a stage.

Two steps.

1. ``--measure ROOT``: in ROOT, a scratch git worktree of the revision measured (``seeds: 1`` in its params.yaml)
   and its own DVC cache setting (nothing of the main checkout is touched), run the given stages one at a time with
   ``dvc repro --single-item`` on a quiet CPU and print one line per stage, ``=== <stage> rc=<rc> <seconds> s``
   (keep the output: it is the measurement).
2. ``--estimate LOG --measured ROOT``: every stage of the default pipeline (``dvc stage list``) gets a time on the
   new world. A run: its measured seconds per seed where LOG has its stage (the stage's wall time less one
   start-up, over the seeds ROOT's runs folder records), else the committed seconds per seed of its family and
   stand-in (their median: single committed records were built under load) times its family's measured
   new/committed ratio (the method; GCL+ with or without its generator). A study: its trials, each a seed of its
   run (no credit for pruning). Any other stage: measured, else committed (times the warm-ups' or sources' ratio).
   Runs are priced at seed plans: ``--plans V,O`` gives the seeds of a run that feeds a claim (report/claims.yaml,
   matched to runs through the table rows they fill; a tuned run pairs with its paper setting) and of one that
   feeds none; a run declaring more seeds (the baselines') keeps its own. Writes bench/results/<name>.json.

Run: python bench/exp_rebuild_estimate.py --measure /work/t6 --stages world pretrain train@cc_market > times.log
     python bench/exp_rebuild_estimate.py --estimate times.log --measured /work/t6 --plans 3,3 5,2 5,1
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table_fills, write_results  # noqa: E402

from reid_repro.commands.repro import STAGE_OVERHEAD, estimate  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^=== (\S+) rc=(\d+) (\d+) s$")
# the measured run that stands for each family (its new/committed per-seed ratio prices the family's other runs)
FAMILY_RUN = {"cluster_contrast": "cc_market", "mixup": "cc_market", "ise": "ise_market",
              "ice": "ice_aware_base_market", "mmt": "mmt_market2duke", "canu": "canu_mmt_market2duke",
              "ssg": "ssg_market2duke", "canu_ssg": "ssg_market2duke",
              "gcl_plus/generator": "gclp_fu_m_full", "gcl_plus/augmented": "gclp_fu_m_multi"}
VIDEO = ("mars", "dukev")
STUDY_CAP_H = 5.0     # issue 41: every study together, reached by pruning and cheaper trials


def measure(root: Path, stages: list[str]) -> None:
    for stage in stages:
        t0 = time.monotonic()
        proc = subprocess.run(["dvc", "repro", "--single-item", stage], cwd=root, capture_output=True, text=True)
        print(f"=== {stage} rc={proc.returncode} {round(time.monotonic() - t0)} s", flush=True)


def read_log(path: Path) -> dict[str, float]:
    out = {}
    for line in path.read_text().splitlines():
        m = LINE.match(line.strip())
        if m and m.group(2) == "0":
            out[m.group(1).rpartition(":")[2]] = float(m.group(3))
    return out


def stages(root: Path) -> list[str]:
    proc = subprocess.run(["dvc", "stage", "list", "--all", "--name-only"], cwd=root, capture_output=True, text=True,
                          check=True)
    return [s.rpartition(":")[2] for s in proc.stdout.split()]


def family(spec: dict, params: dict) -> str:
    if spec["method"] != "gcl_plus":
        return spec["method"]
    cfg = {**params["gcl_plus"], **(spec.get("overrides") or {})}
    generator = cfg.get("positive_view") != "augmented" or cfg.get("mixup") == "disentangled"
    return "gcl_plus/" + ("generator" if generator else "augmented")


def verdict_runs(params: dict) -> Counter:
    """How many claims (kind claim, not context; default profile) each run feeds as the row or the baseline, per
    dataset the claim is stated on (report/claims.yaml; an omitted ``datasets`` is every column of its table)."""
    from reid_repro.report.claims import claims
    from reid_repro.report.tables import paper_numbers

    fills = table_fills(params)
    numbers, fed = paper_numbers(), Counter()
    for paper, items in claims().items():
        for c in items:
            if c.get("kind", "claim") != "claim" or c.get("larger_only"):
                continue
            if c.get("table") is None:
                fed.update({c["runs"]["row"], c["runs"]["versus"]} & set(params["runs"]))
                continue
            table = str(c["table"])
            for dataset in c.get("datasets") or numbers[paper][table]["datasets"]:
                names = fills.get((paper, table, c["row"], dataset), []) + fills.get((paper, table, c["versus"],
                                                                                       dataset), [])
                fed.update(set(names))
    return fed


def committed_per_seed(run: str, seeds: int) -> float:
    """A run's committed seconds per seed (``seeds``: the params' seeds, for a run never built, whose estimate is
    the default of its kind)."""
    path = ROOT / "runs" / run / "metrics.json"
    if path.is_file():
        seeds = json.loads(path.read_text()).get("num_seeds", 1)
    return (estimate(f"train@{run}", ROOT) - STAGE_OVERHEAD) / seeds


def price(log: dict[str, float], measured: Path, plans: list[tuple[int, int]]) -> dict:
    """Every default stage's seconds on the new world, and the totals per seed plan."""
    import statistics

    from reid_repro.config import load_params

    params = load_params(ROOT / "params.yaml")
    runs = params["runs"]
    fed = verdict_runs(params)
    # committed seconds per seed, as the median of each (family, dataset) group: the committed runs were built
    # while tests and benches shared the CPU, so one run's own record is noisy (same work: 42-273 s)
    group = {name: (family(spec, params), spec["dataset"]) for name, spec in runs.items()}
    committed = {name: committed_per_seed(name, params["seeds"]) for name in runs}
    median = {g: statistics.median(committed[n] for n in runs if group[n] == g) for g in set(group.values())}
    # the new world's seconds per seed of each family's measured run (its stage ran the run's own seeds)
    ratio, per_seed = {}, {}
    for fam, run in FAMILY_RUN.items():
        if f"train@{run}" in log:
            seeds = json.loads((measured / "runs" / run / "metrics.json").read_text())["num_seeds"]
            per_seed[run] = (log[f"train@{run}"] - STAGE_OVERHEAD) / seeds
            ratio[fam] = per_seed[run] / median[group[run]]

    def run_seconds(name: str) -> tuple[float, str]:
        fam, dataset = group[name]
        if name in per_seed:
            return per_seed[name], "measured"
        if dataset in VIDEO:      # the video world is not redrawn by issue 38: its committed time
            return median[group[name]], "committed (video world unchanged)"
        if fam in ratio:
            return median[group[name]] * ratio[fam], f"committed median x {ratio[fam]:.2f} ({fam})"
        return median[group[name]], "committed median (family not measured)"

    fixed_ratio = {k: log[s] / estimate(s, ROOT) for k, s in (("warmup", "warmup@gclw_fu_m"),
                                                              ("source", "source@market")) if s in log}
    rows, totals = [], {f"{v},{o}": {"runs": 0.0, "studies": 0.0, "other stages": 0.0} for v, o in plans}
    for stage in stages(ROOT):
        kind, _, item = stage.partition("@")
        row = {"stage": stage, "kind": kind, "committed_s": round(estimate(stage, ROOT), 1)}
        if kind in ("train", "tuned"):
            name = item if kind == "train" else params["studies"][item]["run"]
            seed_s, how = run_seconds(name)
            declared = runs[name].get("seeds") or 0 if kind == "train" else 0
            row.update(family=group[name][0], verdicts=fed.get(item, 0) if kind == "train" else 0,
                       seed_s=round(seed_s, 1), how=how, declared_seeds=declared)
            claim = row["verdicts"] or kind == "tuned"      # a tuned run pairs with the paper setting's seeds
            for v, o in plans:        # a run declaring more seeds (the baselines') keeps its own
                seeds = max(declared, v if claim else o)
                totals[f"{v},{o}"]["runs"] += STAGE_OVERHEAD + seeds * seed_s
            rows.append(row)
            continue
        if stage in log:
            seconds, how = log[stage], "measured"
        elif kind == "tune":        # every trial a seed of the study's run (no credit for pruned trials)
            study = params["studies"][item]
            seed_s, how = run_seconds(study["run"])
            seconds, how = STAGE_OVERHEAD + study["n_trials"] * seed_s, f"{study['n_trials']} trials x ({how})"
        elif kind in fixed_ratio:
            seconds, how = row["committed_s"] * fixed_ratio[kind], f"committed x {fixed_ratio[kind]:.2f}"
        else:
            seconds, how = row["committed_s"], "committed"
        row.update(seconds=round(seconds, 1), how=how)
        for key in totals:
            totals[key]["studies" if kind == "tune" else "other stages"] += seconds
        rows.append(row)
    by_kind: dict = {}
    for r in rows:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0.0) + (r.get("seconds") or 0.0)
    summary = {"case": "summary", "measured_per_seed_s": {k: round(v, 1) for k, v in per_seed.items()},
               "ratio_new_over_committed_median": {k: round(v, 2) for k, v in ratio.items()},
               "fixed_ratio": {k: round(v, 2) for k, v in fixed_ratio.items()},
               "runs_feeding_claims": sum(1 for r in runs if fed.get(r)), "runs": len(runs),
               "hours_by_plan (claim runs' seeds, other runs' seeds)": {
                   k: {**{part: round(x / 3600, 2) for part, x in v.items()}, "total": round(sum(v.values()) / 3600, 2),
                       f"total, studies at {STUDY_CAP_H} h": round((v["runs"] + v["other stages"]) / 3600
                                                                   + STUDY_CAP_H, 2)}
                   for k, v in totals.items()},
               "minutes_outside_runs_by_kind": {k: round(v / 60, 1) for k, v in by_kind.items() if v},
               "stage_overhead_s": STAGE_OVERHEAD, "measured_root": str(measured)}
    return {"summary": summary, "stages": rows}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", type=Path, help="scratch worktree to run --stages in")
    p.add_argument("--stages", nargs="*", default=[])
    p.add_argument("--estimate", type=Path, help="the log that --measure printed")
    p.add_argument("--measured", type=Path, default=None, help="the scratch worktree the log was measured in")
    p.add_argument("--plans", nargs="+", default=["3,3", "5,2"],
                   help="seed plans: <seeds of a run feeding a verdict>,<seeds of any other run>")
    p.add_argument("--name", default="exp_rebuild_estimate")
    args = p.parse_args()
    if args.measure:
        measure(args.measure, args.stages)
    if args.estimate:
        if not args.measured:
            p.error("--estimate needs --measured: the worktree the log was measured in (its runs' seed counts)")
        plans = [tuple(int(x) for x in plan.split(",")) for plan in args.plans]
        out = price(read_log(args.estimate), args.measured, plans)
        write_results(args.name, [out["summary"]] + out["stages"])


if __name__ == "__main__":
    main()
