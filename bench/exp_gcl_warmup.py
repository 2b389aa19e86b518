"""Why does GCL+'s Full run train below its stage-1 start on the Market stand-in? An experiment, not a stage.

The committed Full run (`gclp_fu_m_full`, 20.5 mAP) starts from the warm-up `gclw_fu_m` (400 iterations at
generator widths 8/16), whose generator draws coloured blobs (reports/model_figures/gcl_plus_table3_generations.png),
while Multi (the same loop, augmented positives) keeps the start. This script retrains the warm-up with more
iterations or the code's widths and then the Full run from it, one seed each, in a scratch folder, and records what
the warm-up ended at (its image-reconstruction loss) and the Full run's mAP beside the committed seed 0 of Full and
Multi. Nothing under runs/ or models/ is touched; tracking is off.

Since issue 40 G and D keep a constant lr (the released code); each case also measures the report's generator gate
(report/gates.yaml gcl_generator) on the Full run trained here.

Run: python bench/exp_gcl_warmup.py [--cases default medium long wide] [--smoke] [--name exp_gcl_warmup]
     (writes bench/results/<name>.json; --smoke: 2 iterations each, to check the wiring only). Session 33 ran
     default, medium and long on the landed world: bench/results/exp_gcl_warmup_s33.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from reid_repro.declare import write_project

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARMUP, RUN = "gclw_fu_m", "gclp_fu_m_full"
# each case: the warm-up's schedule and the generator widths (the Full run uses the same widths)
CASES = {
    "default": {"epochs": 10, "iters": 40, "gen_dim": 8, "dis_dim": 16},      # as committed (a control)
    "medium": {"epochs": 20, "iters": 40, "gen_dim": 8, "dis_dim": 16},       # 2x the iterations
    "long": {"epochs": 40, "iters": 40, "gen_dim": 8, "dis_dim": 16},         # 4x the iterations
    "wide": {"epochs": 10, "iters": 40, "gen_dim": 16, "dis_dim": 32},        # the released code's widths
}


def _reid(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "reid_repro.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"reid-repro {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


def _params(case: dict, smoke: bool) -> dict:
    from reid_repro.config import load_params

    params = load_params(ROOT / "params.yaml")
    params["seeds"] = 1
    warm = copy.deepcopy(params["gcl_warmups"][WARMUP])
    widths = {"gen_dim": case["gen_dim"], "dis_dim": case["dis_dim"]}
    warm["overrides"].update(epochs=1 if smoke else case["epochs"], iters=2 if smoke else case["iters"], **widths)
    run = copy.deepcopy(params["runs"][RUN])
    run["init"] = "gclw_exp"
    run.pop("also", None)                       # the report is not built: no other table cells
    run["overrides"] = {**run["overrides"], **widths, **({"epochs": 1, "iters": 2} if smoke else {})}
    params["gcl_warmups"]["gclw_exp"] = warm
    params["runs"]["gclp_exp"] = run
    return params


def _gate(params: dict, tmp: Path) -> dict:
    """The report's generator gate (gates.yaml gcl_generator) on the Full run trained here: per angle, the start's
    cosine of the world's true turned render with the generated view and with the input itself; ``closer``
    counts the angles where the generated view is nearer (the gate passes at 5 of 7)."""
    import os

    from reid_repro.report.generation import generate_dataset

    here = os.getcwd()
    os.chdir(ROOT)                      # the params' relative paths (data/, models/) are the repository's
    try:
        info = generate_dataset(params, "gclp_exp", tmp / "generated", runs_dir=tmp / "runs",
                                start=ROOT / "models" / "pretrain" / "model.pt")
    finally:
        os.chdir(here)
    truth = info.get("true_view") or {}
    angles = [a for a in truth if a != "people"]
    return {"true_view": truth, "closer": sum(truth[a]["generated"] > truth[a]["input"] for a in angles),
            "fid": info.get("fid")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["long", "wide"], choices=sorted(CASES))
    ap.add_argument("--name", default="exp_gcl_warmup", help="the results file (bench/results/<name>.json)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    committed = {name: json.loads((ROOT / "runs" / name / "metrics.json").read_text())["seeds"]["0"]["mAP"]
                 for name in (RUN, "gclp_fu_m_multi")}
    committed_hist = ROOT / "models" / WARMUP / "history.parquet"      # in the DVC cache: absent on a new machine
    warm_hist = pd.read_parquet(committed_hist) if committed_hist.is_file() else None
    rows = []
    for name in args.cases:
        case = CASES[name]
        with tempfile.TemporaryDirectory(dir=ROOT / ".cache") as tmp:
            tmp = Path(tmp)
            write_project(tmp, _params(case, args.smoke))           # params.yaml and conf/runs.json
            t0 = time.perf_counter()
            _reid(["warmup", "--name", "gclw_exp", "--out", str(tmp / "models" / "gclw_exp"),
                   "--params", str(tmp / "params.yaml"), "--no-mlflow"])
            t1 = time.perf_counter()
            _reid(["train", "--run", "gclp_exp", "--out", str(tmp / "runs" / "gclp_exp"), "--models",
                   str(tmp / "models"), "--params", str(tmp / "params.yaml"), "--no-mlflow"])
            t2 = time.perf_counter()
            hist = pd.read_parquet(tmp / "models" / "gclw_exp" / "history.parquet")
            metrics = json.loads((tmp / "runs" / "gclp_exp" / "metrics.json").read_text())
            gate = _gate(_params(case, args.smoke), tmp)
            t3 = time.perf_counter()
        rows.append({"case": name, **case, "smoke": args.smoke,
                     "warmup_iterations": case["epochs"] * case["iters"],
                     "warmup_final_loss_img": round(float(hist["loss_img"].iloc[-1]), 4),
                     "committed_warmup_final_loss_img": (round(float(warm_hist["loss_img"].iloc[-1]), 4)
                                                         if warm_hist is not None else None),
                     "full_mAP_seed0": round(100 * metrics["mAP"], 2),
                     "committed_full_mAP_seed0": round(100 * committed[RUN], 2),
                     "committed_multi_mAP_seed0": round(100 * committed["gclp_fu_m_multi"], 2),
                     "warmup_loss_img_per_epoch": [round(float(v), 4) for v in hist["loss_img"]],
                     "schedule": "G and D at a constant lr (the released code; issue 40's declared schedules)",
                     **gate, "warmup_seconds": round(t1 - t0, 1), "full_seconds": round(t2 - t1, 1),
                     "gate_seconds": round(t3 - t2, 1)})
        print(json.dumps(rows[-1]), flush=True)
    write_results(f"{args.name}_smoke" if args.smoke else args.name, rows)


if __name__ == "__main__":
    main()
