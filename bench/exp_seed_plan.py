"""Issue 43: how many seeds each run trains, chosen from the measured noise. An experiment, not a stage.

The verdict rule (report/verdicts.py) compares two rows' means with a Student-t interval whose half-width is
``t(df) * sigma * sqrt(1/n_row + 1/n_versus)`` when both rows are one pooled noise group (sigma the group's seed
standard deviation, df its pooled degrees of freedom), and Welch's otherwise. This script

1. lists every verdict of the default profile as (claim, dataset, row run, versus run): report/claims.yaml matched
   to the runs through the table rows they fill (kind ``claim``; ``context`` rows are shown, never counted);
2. gives every run the seed sd of its noise group (verdicts.group_key): measured where the group has a current run
   of two or more seeds in ``runs/`` (the baselines train first for this), else ``--prior`` (stated as such);
3. prices a seed of every run from the rebuild's own runs where they are trained (the median seed's training
   seconds and its evaluation), else the landed world's per-seed estimate (bench/results/exp_rebuild_estimate.json);
4. starts every run that feeds a verdict at ``--min`` seeds (the declared seeds of a run where more) and every
   other run at one, then adds seeds one at a time where they shrink the sum of the verdicts' half-widths most per
   second of training, until ``--hours`` of run training is spent; a noise group's df follows its runs' seeds.

It prints the median half-width (and the share of verdicts at or under 1.5 and 1.0 mAP) before and after, and
with ``--write`` writes each declared entry's seeds into conf/runs/<paper>.yaml (an entry declaring several runs,
``for: [...]``, takes the largest of theirs; a run that feeds no verdict keeps what it declares, else trains
``params.yaml: seeds``). Then ``reid-repro pipeline --write`` regenerates conf/runs.json.

Run: python bench/exp_seed_plan.py --hours 9 --prior 1.9 [--write]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, table_fills  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (1.5, 1.0)
MAX_SEEDS = 20


def claim_pairs(params: dict) -> list[dict]:
    """Every verdict the default profile's runs would give: claim id, kind, dataset, metric, row run, versus run."""
    from reid_repro.report.claims import claims
    from reid_repro.report.tables import paper_numbers

    fills = {cell: runs[0] for cell, runs in table_fills(params).items()}     # the first run declared for the cell
    numbers, out = paper_numbers(), []
    for paper, items in claims().items():
        for c in items:
            metric, kind = c.get("metric", "mAP"), c.get("kind", "claim")
            if c.get("table") is None:
                a, b = c["runs"]["row"], c["runs"]["versus"]
                if a in params["runs"] and b in params["runs"]:
                    out.append({"claim": c["id"], "kind": kind, "dataset": None, "metric": metric, "row": a,
                                "versus": b})
                continue
            table = numbers[paper].get(str(c["table"]))
            if table is None or c.get("columns") or metric not in table["metrics"]:
                continue
            rows = {r["row"]: r for r in table["rows"]}
            at = table["metrics"].index(metric)
            for d in c.get("datasets") or table["datasets"]:
                a = fills.get((paper, str(c["table"]), c["row"], d))
                b = fills.get((paper, str(c["table"]), c["versus"], d))
                printed = [(rows.get(r) or {}).get(d) for r in (c["row"], c["versus"])]
                if a and b and all(p is not None and p[at] is not None for p in printed):
                    out.append({"claim": c["id"], "kind": kind, "dataset": d, "metric": metric, "row": a,
                                "versus": b})
    return out


def measured_noise(params: dict, runs_dir: Path) -> dict[str, dict]:
    """Per noise group, the pooled seed sd (mAP points) of its current runs with two or more seeds."""
    from reid_repro.config.runs import load_run
    from reid_repro.report.runs import collect_runs
    from reid_repro.report.verdicts import group_key, pooled_noise

    groups: dict = defaultdict(dict)
    for r in collect_runs(params, runs_dir, allow_missing=True):
        if r.not_run or r.stale or len(r.per_seed) < 2:
            continue
        groups[group_key(load_run(params, r.name))][r.name] = [100 * m["mAP"] for _, m in sorted(r.per_seed.items())]
    noise, tests = pooled_noise(groups)
    out = {}
    for g, runs in groups.items():
        n = [noise[r] for r in runs]
        var = statistics.mean(x.var for x in n) if tests.get(g, {}).get("pooled") is not True else n[0].var
        out[g] = {"sd": math.sqrt(var), "runs": sorted(runs), "seeds": sum(len(v) for v in runs.values()),
                  "pooled": bool(tests.get(g, {}).get("pooled"))}
    return out


def seconds_per_seed(params: dict, runs_dir: Path) -> dict[str, float]:
    """A seed of each run: the median of its seeds' training seconds where the rebuild has trained it (the median,
    as a seed trained beside other work takes longer), plus the evaluation of a seed; else the landed world's
    estimate (exp_rebuild_estimate.json, measured in the pipeline's stages or scaled from them)."""
    from reid_repro.commands.repro import SEED_OVERHEAD

    est = json.loads((ROOT / "bench/results/exp_rebuild_estimate.json").read_text())["cases"][1:]
    out = {r["stage"].partition("@")[2]: r["seed_s"] for r in est if r["kind"] == "train"}
    for name in params["runs"]:
        path = runs_dir / name / "metrics.json"
        seeds = json.loads(path.read_text()).get("seeds", {}) if path.is_file() else {}
        times = [m["train_seconds"] for m in seeds.values() if "train_seconds" in m]
        if times and not stale(params, name, runs_dir):
            out[name] = statistics.median(times) + SEED_OVERHEAD
    return out


def stale(params: dict, name: str, runs_dir: Path) -> bool:
    from reid_repro.config.runs import load_run
    from reid_repro.report.runs import stale_reason

    info = json.loads((runs_dir / name / "run.json").read_text())
    return stale_reason(params, name, load_run(params, name), info) is not None


def half_width(sd: float, df: int, n_a: int, n_b: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, max(df, 1)) * sd * math.sqrt(1 / n_a + 1 / n_b))


def plan(pairs: list[dict], sd: dict[str, float], group: dict[str, str], cost: dict[str, float],
         start: dict[str, int], hours: float, cap: int = MAX_SEEDS) -> tuple[dict[str, int], list[float]]:
    """Greedy: one seed at a time to the run that shrinks the sum of the verdicts' half-widths most per second."""
    n = dict(start)
    members: dict = defaultdict(list)
    for run, g in group.items():
        members[g].append(run)

    def df(g: str) -> int:
        return sum(n[r] - 1 for r in members[g])

    def widths(runs_changed=None) -> dict[int, float]:
        return {i: half_width(math.sqrt((sd[group[p["row"]]] ** 2 + sd[group[p["versus"]]] ** 2) / 2),
                              df(group[p["row"]]) if group[p["row"]] == group[p["versus"]]
                              else min(df(group[p["row"]]), df(group[p["versus"]])), n[p["row"]], n[p["versus"]])
                for i, p in enumerate(pairs) if runs_changed is None or {p["row"], p["versus"]} & runs_changed}

    by_run: dict = defaultdict(set)
    for p in pairs:
        by_run[p["row"]].add(p["versus"])
        by_run[p["versus"]].add(p["row"])
    current = widths()
    spent = sum(n[r] * cost[r] for r in n)
    budget = hours * 3600
    while True:
        best, gain_best = None, 0.0
        for run in by_run:
            if n[run] >= cap or spent + cost[run] > budget:
                continue
            touched = set(members[group[run]]) | {run}       # its group's df moves every verdict of the group
            before = {i: w for i, w in current.items() if {pairs[i]["row"], pairs[i]["versus"]} & touched}
            n[run] += 1
            after = widths(touched)
            n[run] -= 1
            gain = (sum(before.values()) - sum(after.values())) / cost[run]
            if gain > gain_best:
                best, gain_best = run, gain
        if best is None:
            break
        n[best] += 1
        spent += cost[best]
        current.update(widths(set(members[group[best]]) | {best}))
    return n, [current[i] for i in range(len(pairs))]


def summary(widths: list[float]) -> dict:
    return {"median_half_width": round(statistics.median(widths), 3),
            **{f"share_at_or_under_{t}": round(sum(w <= t for w in widths) / len(widths), 3) for t in TARGETS}}


def write_plan(seeds_by_run: dict[str, int], fed: set[str]) -> list[str]:
    """Each declared entry of conf/runs/<paper>.yaml that feeds a verdict gets ``seeds: N`` (the largest of its
    runs'); an entry that feeds none keeps what it declares. Edits the entry's line in place (comments kept)."""
    changed = []
    for path in sorted((ROOT / "conf/runs").glob("*.yaml")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        for i, line in enumerate(lines):
            m = re.match(r'^  ("?)([A-Za-z0-9_{}]+)\1: \{(.*)\}\s*$', line)
            if not m:
                continue
            key, body = m.group(2), m.group(3)
            datasets = re.search(r"\bfor: \[([^\]]*)\]", body)
            names = ([key.replace("{d}", d.strip()) for d in datasets.group(1).split(",")] if datasets else [key])
            names = [x for x in names if x in seeds_by_run]
            if not names:
                continue
            if not any(x in fed for x in names):
                continue                    # a run that feeds no verdict keeps what it declares (the baselines)
            want = max(seeds_by_run[x] for x in names)
            body2 = re.sub(r"\bseeds: \d+, ", "", body)
            if want is not None:
                head = re.match(r"(for: \[[^\]]*\], )?", body2).group(0)
                body2 = f"{head}seeds: {want}, {body2[len(head):]}"
            if body2 != body:
                lines[i] = line.replace("{" + body + "}", "{" + body2 + "}")
                changed.append(f"{path.name}: {key} -> {want}")
        path.write_text("".join(lines), encoding="utf-8")
    return changed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hours", type=float, required=True, help="hours of run training the plan may spend")
    p.add_argument("--prior", type=float, required=True,
                   help="seed sd (mAP points) of a noise group with no current run of two or more seeds")
    p.add_argument("--min", type=int, default=3, help="seeds of a run that feeds a verdict, at least")
    p.add_argument("--runs-dir", type=Path, default=ROOT / "runs")
    p.add_argument("--write", action="store_true", help="write the seeds into conf/runs/<paper>.yaml")
    p.add_argument("--name", default="seed_plan")
    args = p.parse_args()

    from reid_repro.config import load_params
    from reid_repro.config.runs import load_run, run_seeds
    from reid_repro.report.verdicts import group_key

    params = load_params(ROOT / "params.yaml")
    runs = params["runs"]
    pairs = [x for x in claim_pairs(params) if x["kind"] == "claim"]
    specs = {r: load_run(params, r) for r in runs}
    group = {r: group_key(s) for r, s in specs.items()}
    measured = measured_noise(params, args.runs_dir)
    sd = {g: measured[g]["sd"] if g in measured else args.prior for g in set(group.values())}
    cost = seconds_per_seed(params, args.runs_dir)
    fed = {x["row"] for x in pairs} | {x["versus"] for x in pairs}
    declared = {r: specs[r].seeds or 0 for r in runs}
    start = {r: max(declared[r], args.min) if r in fed else 1 for r in runs}
    uniform = {r: max(declared[r], args.min) if r in fed else 1 for r in runs}
    _, w0 = plan(pairs, sd, group, cost, uniform, hours=0)
    seeds, w1 = plan(pairs, sd, group, cost, start, args.hours)
    hours = {k: round(sum(v[r] * cost[r] for r in runs) / 3600, 2) for k, v in (("minimum", uniform), ("plan", seeds))}
    result = {"case": args.name, "hours_budget": args.hours, "prior_sd": args.prior, "min_seeds": args.min,
              "verdicts": len(pairs), "runs_feeding_verdicts": len(fed), "runs": len(runs),
              "run_training_hours": hours, "at_minimum": summary(w0), "planned": summary(w1),
              "measured_noise": measured, "seeds": {r: seeds[r] for r in runs},
              "params_seeds": run_seeds(params),
              "widths": [{**x, "half_width": round(w, 3)} for x, w in zip(pairs, w1)]}
    print(json.dumps({k: v for k, v in result.items() if k not in ("seeds", "widths")}, indent=1))
    print("seeds:", dict(sorted(((r, n) for r, n in seeds.items() if n != start[r]), key=lambda kv: -kv[1])))
    if args.write:
        for line in write_plan(seeds, fed):
            print(line)
    path = RESULTS / f"{args.name}.json"
    path.write_text(json.dumps({"machine": machine(), "cases": [result]}, indent=1) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
