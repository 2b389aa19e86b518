"""Collect what a scratch pipeline measured (issue 38's measurements in the pipeline's own stages): the source
models, direct transfer and the runs' final metrics with their clusters per epoch, from a checkout whose stages
were run (e.g. a scratch git worktree with `seeds: 1`, `bench/exp_rebuild_estimate.py --measure`).

Only what the checkout holds is read; nothing is trained. Extra run folders (a run trained with another params
file into a scratch folder) are named with --extra NAME=FOLDER and a note of what they changed.

Run: python bench/collect_pipeline_metrics.py ROOT --runs mmt_market2duke ssg_market2duke \\
         --extra "mmt_e16=scratch/w_mmt_e16:mmt loop epochs 16" --name exp_pipeline_s32
     (writes bench/results/<name>.json)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

HISTORY = ("num_clusters", "num_outliers", "mi_pseudo_camera", "mi_true_camera", "nmi")


def _pct(value) -> float:
    return round(100 * float(value), 2)


def run_row(case: str, folder: Path, note: str = "") -> dict:
    metrics = json.loads((folder / "metrics.json").read_text())
    row = {"case": case, "folder": str(folder), "mAP": _pct(metrics["mAP"]), "rank1": _pct(metrics["rank1"])}
    if note:
        row["note"] = note
    histories = sorted(folder.glob("seeds/*/history.parquet")) or sorted(folder.glob("history.parquet"))
    if histories:
        hist = pd.read_parquet(histories[0])
        row["per_epoch"] = {k: [round(float(v), 4) for v in hist[k]] for k in HISTORY if k in hist}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path)
    ap.add_argument("--runs", nargs="*", default=[], help="runs/<run> folders to read")
    ap.add_argument("--extra", nargs="*", default=[], metavar="NAME=FOLDER[:NOTE]")
    ap.add_argument("--name", required=True)
    ap.add_argument("--note", default="", help="what the checkout's code and params were (a first row)")
    args = ap.parse_args()
    root = args.root.resolve()
    revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    rows = [{"case": "setup", "root": str(root), "revision": revision, "note": args.note}] if args.note else []
    for path in sorted(root.glob("models/source_*/metrics.json")):
        nets = json.loads(path.read_text())
        rows.append({"case": f"source {path.parent.name}", "revision": revision,
                     **{f"{net}_mAP": _pct(m["mAP"]) for net, m in nets.items() if isinstance(m, dict)},
                     "epochs": next(m["epochs"] for m in nets.values() if isinstance(m, dict))})
    for path in sorted(root.glob("models/transfer_*.json")):
        scores = json.loads(path.read_text())
        rows.append({"case": path.stem, "revision": revision,
                     **{f"{d}_mAP": _pct(m["mAP"]) for d, m in scores.items()}})
    for run in args.runs:
        rows.append({**run_row(run, root / "runs" / run), "revision": revision})
    for extra in args.extra:
        name, _, rest = extra.partition("=")
        folder, _, note = rest.partition(":")
        rows.append({**run_row(name, root / folder, note), "revision": revision})
    write_results(args.name, rows)


if __name__ == "__main__":
    main()
