"""How noisy is a verdict? Evaluation noise and seed-to-seed noise of the Cluster-Contrast baseline, per stand-in.

- evaluation noise: the 95% bootstrap half-width of mAP over the test queries (queries resampled with
  replacement, B times), for the pretrained start (models/pretrain/model.pt);
- seed noise (``--seeds N``): the baseline trained with seeds 0..N-1 from the same pretrained start; the
  standard deviation of the final mAP, and the mean gain over the start with its 95% Student-t interval.

Writes bench/results/noise.json. Targets (issue 9): half-width <= 2.0 points, seed std <= 1.5 points, and the
gain's interval above zero on every stand-in.

    python bench/bench_noise.py                # evaluation noise only (needs `dvc repro start`)
    python bench/bench_noise.py --seeds 5      # + 5 seeds per stand-in (about 25 s each on 2 cores)
    python bench/bench_noise.py --seeds 5 --reuse   # seeds the pipeline's cc_<domain> runs trained are reused
    python bench/bench_noise.py --seeds 3 --domains duke --set lr=3.5e-4 --name noise_lr   # compare a schedule
    python bench/bench_noise.py --seeds 3 --baseline ice_agnostic_base --name noise_ice_agnostic   # another baseline
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import key_values, write_results  # noqa: E402

DOMAINS = ("market", "duke", "msmt")


def per_query_ap(qf, gf, q_pids, g_pids, q_cams, g_cams) -> np.ndarray:
    from reid_repro.evaluation.features import DistanceBlocks
    from reid_repro.evaluation.ranking import RankingAccumulator

    acc = RankingAccumulator()
    for start, dist in DistanceBlocks(qf, gf):
        stop = start + len(dist)
        acc.add(dist, q_pids[start:stop], g_pids, q_cams[start:stop], g_cams)
    ap, valid = np.concatenate(acc.ap), np.concatenate(acc.valid)
    return ap[valid]


def bootstrap_half_width(ap: np.ndarray, rounds: int = 2000, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    means = ap[rng.integers(0, len(ap), (rounds, len(ap)))].mean(1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float((high - low) / 2)


def evaluation_noise(params: dict, domain: str, weights: Path, baseline: str = "cc") -> dict:
    import torch

    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_run
    from reid_repro.device import torch_device
    from reid_repro.models import ReidNet
    from reid_repro.training.data import extract_features
    from reid_repro.training.run import test_set

    model_cfg, _ = resolve_run(params, load_run(params, f"{baseline}_{domain}"))
    table, cache = test_set(params, domain, model_cfg)
    model = ReidNet.from_config(model_cfg)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
    feats = extract_features(model, cache.images, torch_device())
    q = (table["split"] == "query").to_numpy()
    pid, cam = table["pid"].to_numpy(), table["camid"].to_numpy()
    ap = per_query_ap(feats[q], feats[~q], pid[q], pid[~q], cam[q], cam[~q])
    return {"queries": int(len(ap)), "mAP": round(100 * float(ap.mean()), 2),
            "bootstrap_half_width": round(100 * bootstrap_half_width(ap), 2)}


def seed_noise(params: dict, domain: str, seeds: int, start_mAP: float, overrides: dict | None = None,
               models: str | Path = "models", reuse: bool = False, baseline: str = "cc") -> dict:
    """The baseline trained with seeds 0..seeds-1 from the same pretrained start (one process, the images
    decoded once): the seed standard deviation of the final mAP and the mean gain over the start (95% t)."""
    from scipy import stats

    from reid_repro.config import load_run
    from reid_repro.training.run import execute

    spec = load_run(params, f"{baseline}_{domain}")
    spec = dataclasses.replace(spec, overrides={**spec.overrides, **(overrides or {})})
    finals, loaded = [], {}
    for s in range(seeds):
        run = dataclasses.replace(spec, overrides={**spec.overrides, "seed": s})
        m = execute(params, f"noise_{baseline}_{domain}_s{s}", run,
                    ROOT / ".cache" / "bench_noise" / f"{baseline}_{domain}_s{s}",
                    stage="bench", root=ROOT, models_dir=models, track=False, loaded=loaded, keep_model=False,
                    results=ROOT / ".cache" / "results" / f"{baseline}_{domain}" if reuse else None)
        finals.append(100 * m["mAP"])
        print(f"  {domain} seed {s}: mAP {finals[-1]:.2f} (start {start_mAP:.2f}) in {m['wall_seconds']:.0f} s",
              flush=True)
    gains = np.array(finals) - start_mAP
    half = stats.t.ppf(0.975, seeds - 1) * gains.std(ddof=1) / math.sqrt(seeds) if seeds > 1 else math.inf
    return {"seeds": seeds, "overrides": overrides or {}, "final_mAP": [round(v, 2) for v in finals],
            "start_mAP": round(start_mAP, 2),
            "seed_std": round(float(np.std(finals, ddof=1)), 2) if seeds > 1 else None,
            "gain_mean": round(float(gains.mean()), 2),
            "gain_ci": [round(float(gains.mean() - half), 2), round(float(gains.mean() + half), 2)]}


def main() -> None:
    import os

    from reid_repro.config import load_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=0)
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="loop/method overrides for the seed runs (e.g. lr=3.5e-4), to compare schedules")
    parser.add_argument("--name", default="noise", help="results file bench/results/<name>.json")
    parser.add_argument("--params", default="params.yaml", help="another params file (e.g. a world variant)")
    parser.add_argument("--models", default="models", help="folder of the starting checkpoint (<models>/pretrain)")
    parser.add_argument("--reuse", action="store_true",
                        help="take seeds the pipeline's <baseline>_<domain> run already trained (same inputs) from "
                             ".cache/results")
    parser.add_argument("--baseline", default="cc",
                        help="the runs <baseline>_<domain> of params.yaml (cc: Cluster-Contrast; ice_agnostic_base, "
                             "ice_aware_base: ICE's proxy baselines)")
    args = parser.parse_args()
    os.chdir(ROOT)
    params = load_params(args.params)
    overrides = key_values(args.set)
    rows = []
    for d in args.domains:
        row = {"case": d, "baseline": args.baseline,
               "start": evaluation_noise(params, d, Path(args.models) / "pretrain" / "model.pt", args.baseline),
               "target_half_width": 2.0, "target_seed_std": 1.5}
        if args.seeds:
            row["seed_noise"] = seed_noise(params, d, args.seeds, row["start"]["mAP"], overrides, args.models,
                                           args.reuse and not overrides, args.baseline)
        rows.append(row)
        print(row, flush=True)
    # a run of some domains updates their rows and keeps the others' (each row says what it measured)
    path = ROOT / "bench" / "results" / f"{args.name}.json"
    if path.is_file():
        done = {r["case"] for r in rows}
        rows = [r for r in json.loads(path.read_text())["cases"] if r["case"] not in done] + rows
        rows.sort(key=lambda r: DOMAINS.index(r["case"]) if r["case"] in DOMAINS else 99)
    write_results(args.name, rows)


if __name__ == "__main__":
    main()
