"""Wall time of the default Optuna studies (params.yaml: studies), run as `dvc repro tune@<name>` runs them
(reid_repro.tuning.tune: the trials in sequence, trial 0 the paper's setting, the study's pruner), against issue
41's budget: the six default studies of 40 trials together within 5 hours on 2 cores, pruning included (issue 14's
three 6-trial studies had 45 minutes: the committed result is theirs until the full rebuild, issue 43).

Each study runs in a fresh journal under a temporary root (nothing of the repository's optuna.journal, MLflow or
.cache is touched) from the pretrained start in ``--models`` (``<models>/pretrain/model.pt``; default ``models``,
as `dvc repro pretrain` leaves it).

    python bench/bench_studies.py [--models models] [--only ise]     -> bench/results/studies.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MINUTES = 300


def main() -> None:
    import pandas as pd

    from reid_repro import tuning
    from reid_repro.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=str(ROOT / "models"), help="folder holding pretrain/model.pt")
    ap.add_argument("--only", nargs="*", default=None, help="studies to run (default: every declared one)")
    args = ap.parse_args()
    params = load_params(ROOT / "params.yaml")
    names = args.only or list(params["studies"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            start = time.perf_counter()
            best = tuning.tune(params, name, Path(tmp) / "studies" / name, root=Path(tmp), track=False,
                               models_dir=args.models)
            wall = time.perf_counter() - start
            trials = pd.read_csv(Path(tmp) / "studies" / name / "trials.csv")
            rows.append({"case": name, "seconds": round(wall, 1), "n_trials": int(len(trials)),
                         "states": trials["state"].value_counts().to_dict(),
                         "trial_seconds": [None if pd.isna(s) else round(float(s), 1) for s in trials["seconds"]],
                         "best_value": best["best_value"], "paper_value": best.get("paper_value")})
            print(f"{name}: {wall / 60:.1f} min for {len(trials)} trials", flush=True)
    total = sum(r["seconds"] for r in rows)
    rows.append({"case": "total", "minutes": round(total / 60, 1), "budget_minutes": BUDGET_MINUTES,
                 "within_budget": total / 60 <= BUDGET_MINUTES, "studies": names})
    write_results("studies", rows)


if __name__ == "__main__":
    main()
