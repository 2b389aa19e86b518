"""Issue 38, experiment E5 of bench/world_plan.md: one look lever at a time on a target stand-in, measured by the
domain gap it opens and by what it does inside the domain.

For each arm the target (default: the Duke stand-in) is rendered with the committed seed streams and one lever
of its look moved (bench/exp_world_variant.py, ``test_ids`` cut for screening), then:

- in-domain supervised: the source loop (params.yaml ``source``) trained on the variant from the start, scored on
  the variant's test split (the denominator of the transfer ratio);
- direct transfer: the same loop trained on the source stand-in (committed, once per start) scored on the
  variant: ratio = transfer mAP / in-domain mAP (real data: 0.31 Duke->Market, 0.32 Market->Duke, 0.10
  Market->MSMT17; ../shared/designs/world-anchors.md §0); and the reverse, the variant's model on the source;
- the start on the variant: mAP, camera probe, k-nearest-neighbour mix (bench/exp_start.py);
- with ``--cc``: one seed of Cluster-Contrast on the variant, to see whether its pseudo labels collapse (final
  mAP, NMI, clusters, outliers, mutual information of pseudo labels and camera).
- with ``--uda mmt_market2duke ssg_market2duke``: seed 0 of the CANU baselines on the variant from this bench's
  source model (target 3: they should end >= 10 mAP above direct transfer), with their clusters per epoch.

Only baseline, supervised and transfer runs: no method is compared with its baseline here.

    python bench/exp_domain_gap.py --arms control palette lighting --models .cache/exp_start/starts/objects
    python bench/exp_domain_gap.py --arms control palette+scene+lighting --set style_strength=0.15 \\
        --look fit=1.1 --profile train_ids=120 --models .cache/exp_start/starts/instance@pre_fit11   # E6

``--look`` and ``--profile`` change the source and the target alike (a candidate world); an arm's levers are laid
over them, and ``a+b`` lays several arms' levers together.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import key_values, write_results  # noqa: E402
from exp_start import probe_weights  # noqa: E402
from exp_world_variant import render  # noqa: E402

SCRATCH = ROOT / ".cache" / "exp_gap"

# one lever each, away from the neutral look (bench/world_plan.md §2b; the anchors of each in
# ../shared/designs/world-anchors.md §1b)
ARMS = {
    "control": {},
    "palette": {"clothing_hue": [0.45, 0.8], "upper_saturation": [0.05, 0.5], "upper_value": [0.1, 0.5],
                "lower_saturation": [0.05, 0.4], "lower_value": [0.1, 0.45], "long_sleeves": 0.95,
                "long_trousers": 0.98},
    # E9: DukeMTMC-reID's winter clothes without the narrow band: every hue, darker and greyer than the neutral look
    "dark": {"upper_saturation": [0.1, 0.7], "upper_value": [0.1, 0.6], "lower_saturation": [0.05, 0.5],
             "lower_value": [0.1, 0.5], "long_sleeves": 0.9, "long_trousers": 0.95},
    "textures": {"textures": {"none": 0.4, "checks": 0.3, "colorblock": 0.3}},
    "lighting": {"light": [1.2, 2.4], "ambient": [0.5, 0.75], "light_azimuth": 75.0, "warmth": [-0.3, 0.0]},
    # MSMT17's 15 cameras, indoor and outdoor, filmed morning to afternoon over four days of different weather
    "daylight": {"light": [0.8, 3.0], "ambient": [0.3, 0.8], "light_azimuth": 90.0, "warmth": [-0.3, 0.3]},
    "scene": {"panels": 14, "clutter": 0.6},
    "resolution": {"resolution": [0.25, 0.5]},
    "yaw": {"yaw_arc": 90.0},
    "occlusion": {"occlusion": 0.3},
    # a domain's own people (session 33): every body factor over its whole range (the neutral look: 0.15-0.85) and
    # more bags (MSMT17: a campus of students with backpacks; the first worlds: none / back / front 0.4 / 0.4 / 0.2)
    "people": {"body": {k: [0.0, 1.0] for k in ("gender", "age", "muscle", "weight", "height", "proportions")},
               "bags": {"none": 0.25, "back": 0.55, "front": 0.2}},
}


def _arm(text: str) -> str:
    unknown = [a for a in text.split("+") if a not in ARMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown arm(s) {unknown} in {text!r}; expected {sorted(ARMS)} joined by '+'")
    return text


def arm_look(arm: str, base: dict) -> dict:
    """The look levers of ``arm`` (``a+b``: a's and b's together) over the candidate's ``base`` look."""
    look = dict(base)
    for part in arm.split("+"):
        look.update(ARMS[part])
    return look


def supervised(params: dict, dataset: str, models: Path, out: Path) -> dict:
    """The source loop on ``dataset`` from the start in ``models`` (kept in ``out``): its metrics."""
    from reid_repro.config import source_spec
    from reid_repro.training.run import execute

    if (out / "metrics.json").is_file() and (out / "model.pt").is_file():
        return json.loads((out / "metrics.json").read_text())
    t0 = time.perf_counter()
    m = execute(params, f"exp_gap_{out.name}", source_spec(dataset), out, stage="bench", root=ROOT,
                models_dir=models, track=False, section="source")
    print(f"  supervised on {dataset}: mAP {100 * m['mAP']:.1f} in {time.perf_counter() - t0:.0f} s", flush=True)
    return m


def score(params: dict, weights: Path, dataset: str, full: bool = False) -> dict:
    """mAP (and with ``full`` the start probes) of ``weights`` on ``dataset``'s test split."""
    from reid_repro.config import load_model
    from reid_repro.training.run import test_set

    found = probe_weights(params, weights, {dataset: test_set(params, dataset, load_model(params))})[dataset]
    return found if full else {"mAP": found["mAP"], "rank1": found["rank1"]}


def cc_seed(params: dict, dataset: str, models: Path, out: Path) -> dict:
    import pandas as pd

    from reid_repro.config import load_run
    from reid_repro.training.run import execute

    m = execute(params, f"exp_gap_cc_{out.name}", load_run(params, f"cc_{dataset}"), out, stage="bench", root=ROOT,
                models_dir=models, track=False, keep_model=False, evaluate_start=True)
    hist = pd.read_parquet(out / "history.parquet")
    return {"start_mAP": round(100 * m["initial_mAP"], 2), "final_mAP": round(100 * m["mAP"], 2),
            "nmi": round(float(hist["nmi"].iloc[-1]), 4), "clusters": hist["num_clusters"].tolist(),
            "outliers": hist["num_outliers"].tolist(),
            "mi_pseudo_camera": round(float(hist["mi_pseudo_camera"].iloc[-1]), 4),
            "mi_true_camera": round(float(hist["mi_true_camera"].iloc[-1]), 4)}


def uda_seed(params: dict, run: str, source: Path, out: Path) -> dict:
    """Seed 0 of the declared UDA run ``run`` (MMT or SSG, the CANU baselines) on the target variant in
    ``params``, started from the bench's own source model (``source``/model.pt as ``source_<dataset>``; MMT's net 2
    is then a copy of net 1, history column net2_copied): target 3 wants them >= 10 mAP above direct transfer.
    Epoch 1's clusters are those of the source model's features on the target, before any step."""
    import pandas as pd

    from reid_repro.config import load_run
    from reid_repro.training.run import execute

    spec = load_run(params, run)
    models = out / "models"
    link = models / spec.init
    if not link.exists():
        models.mkdir(parents=True, exist_ok=True)
        link.symlink_to(source.resolve(), target_is_directory=True)
    m = execute(params, f"exp_gap_{run}_{out.name}", spec, out, stage="bench", root=ROOT, models_dir=models,
                track=False, keep_model=False)
    hist = pd.read_parquet(out / "history.parquet")
    first = hist.iloc[0]
    return {"final_mAP": round(100 * m["mAP"], 2), "nmi": round(float(hist["nmi"].iloc[-1]), 4),
            "clusters": hist["num_clusters"].tolist(), "outliers": hist["num_outliers"].tolist(),
            "mi_pseudo_camera": [round(float(v), 4) for v in hist["mi_pseudo_camera"]],
            "mi_true_camera": round(float(first["mi_true_camera"]), 4)}


def main() -> None:
    import os

    from reid_repro.config import load_params

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", nargs="+", default=list(ARMS), type=_arm,
                        help=f"arms, each one of {sorted(ARMS)} or several joined by '+'")
    parser.add_argument("--source", default="market")
    parser.add_argument("--target", default="duke")
    parser.add_argument("--test-ids", type=int, default=150, help="test identities of the rendered variant")
    parser.add_argument("--models", default="models", help="folder holding the start (<models>/pretrain/model.pt)")
    parser.add_argument("--cc", action="store_true", help="also one seed of Cluster-Contrast on each variant")
    parser.add_argument("--uda", nargs="*", default=[], metavar="RUN",
                        help="also seed 0 of these declared UDA runs (e.g. mmt_market2duke) on each variant, from "
                             "this bench's source model")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="world.domains settings changed in the source and the target alike (e.g. "
                             "style_strength=0.15, a candidate world): the source is rendered with them too")
    parser.add_argument("--look", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the look changed in the source and the target alike (config.Look fields, e.g. fit=1.1)")
    parser.add_argument("--profile", nargs="*", default=[], metavar="KEY=VALUE",
                        help="world profile sizes changed in both (e.g. train_ids=120); test_ids is --test-ids")
    parser.add_argument("--loop", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the supervised (source) loop's settings changed, e.g. epochs=16 lr_step=12")
    parser.add_argument("--name", default="exp_domain_gap")
    args = parser.parse_args()
    os.chdir(ROOT)
    params = load_params("params.yaml")
    models = Path(args.models)
    tag = models.resolve().parent.name if models.name == "pretrain" else models.name
    domain_over, base_look, profile = key_values(args.set), key_values(args.look), key_values(args.profile)
    world = "_".join(f"{k}{v}" for k, v in {**domain_over, **base_look, **profile}.items())
    loop = key_values(args.loop)
    if loop:                    # a longer supervised loop (its results kept apart from the default loop's)
        params = copy.deepcopy(params)
        params["source"]["loop"] = {**params["source"]["loop"], **loop}
        tag = f"{tag}_" + "_".join(f"{k}{v}" for k, v in loop.items())
    if world:                   # the candidate world's source, rendered with the same settings as the target
        tag = f"{tag}_{world}"
        root, manifest, _ = render(params, f"{args.source}_{world}_t{args.test_ids}", args.source,
                                   {**profile, "test_ids": args.test_ids}, domain_over, base_look or None)
        params = copy.deepcopy(params)
        params["data"][args.source] = {**params["data"][args.source], "root": str(root), "manifest": str(manifest)}
    base = SCRATCH / tag
    source = supervised(params, args.source, models, base / f"supervised_{args.source}")
    path = ROOT / "bench" / "results" / f"{args.name}.json"
    rows = json.loads(path.read_text())["cases"] if path.is_file() else []
    for arm in args.arms:
        t0 = time.perf_counter()
        variant_name = f"{args.target}_{arm}{'_' + world if world else ''}_t{args.test_ids}"
        look = arm_look(arm, base_look)
        root, manifest, counts = render(params, variant_name, args.target, {**profile, "test_ids": args.test_ids},
                                        domain_over, look or None)
        variant = copy.deepcopy(params)
        variant["data"][args.target] = {**variant["data"][args.target], "root": str(root), "manifest": str(manifest)}
        inside = supervised(variant, args.target, models, base / f"supervised_{variant_name}")
        transfer = score(variant, base / f"supervised_{args.source}" / "model.pt", args.target)
        back = score(params, base / f"supervised_{variant_name}" / "model.pt", args.source)
        row = {"case": f"{tag}: {args.source}->{args.target} {arm}", "start": str(models), "arm": arm,
               "look": look, "set": domain_over, "profile": profile, "loop": loop,
               "render_seconds": counts["render_seconds"],
               "in_domain_mAP": round(100 * inside["mAP"], 2), "transfer_mAP": transfer["mAP"],
               "transfer_ratio": round(transfer["mAP"] / (100 * inside["mAP"]), 3),
               "source_in_domain_mAP": round(100 * source["mAP"], 2), "reverse_transfer_mAP": back["mAP"],
               "reverse_ratio": round(back["mAP"] / (100 * source["mAP"]), 3),
               "start_on_target": score(variant, models / "pretrain" / "model.pt", args.target, full=True)}
        if args.cc:
            row["cc"] = cc_seed(variant, args.target, models, base / f"cc_{variant_name}")
        for run in args.uda:
            row[run] = uda_seed(variant, run, base / f"supervised_{args.source}", base / f"{run}_{variant_name}")
        row["seconds"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if r["case"] != row["case"]] + [row]
        write_results(args.name, rows)


if __name__ == "__main__":
    main()
