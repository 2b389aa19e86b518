"""Issue 42: what the video stand-ins cost and what a baseline learns on them, outside the pipeline (scratch folder
.cache/bench_video; nothing of data/ or runs/ is touched).

Renders the video world at ``video.profile`` (params.yaml), prepares both stand-ins through the real readers,
optionally renders their structure meshes (GCL+'s input: 8 renders per training frame), and trains Table 10's
baseline runs (``cc_mars``, ``cc_dukev``: Cluster-Contrast on tracklets) for one seed from a start, recording
each step's seconds, the start's and the run's mAP / rank-1 on the tracklet protocol and the clustering on
tracklets. Writes bench/results/video.json.

    python bench/bench_video.py --models models            # the committed start
    python bench/bench_video.py --models .cache/exp_start/starts/instance --meshes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

SCRATCH = ROOT / ".cache" / "bench_video"


def main() -> None:
    import copy

    import pandas as pd

    from reid_repro.config import load_params, load_run, load_world
    from reid_repro.config.video import load_video
    from reid_repro.data.manifest import prepare
    from reid_repro.training.run import execute
    from reid_repro.world.body import make_body
    from reid_repro.world.render import Renderer
    from reid_repro.world.video import generate_video

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="models", help="folder holding the start (<models>/pretrain/model.pt)")
    parser.add_argument("--runs", nargs="*", default=["cc_mars", "cc_dukev"])
    parser.add_argument("--meshes", action="store_true", help="also time the structure renders of every frame")
    parser.add_argument("--name", default="video")
    args = parser.parse_args()
    os.chdir(ROOT)
    params = load_params("params.yaml")
    world, video = load_world("params.yaml"), load_video("params.yaml")
    body = make_body(world.body_model, os.environ.get("ANNY_CACHE_DIR", ROOT / ".cache" / "anny"))
    out = SCRATCH / video.profile
    row = {"profile": video.profile, "start": args.models, "domains": {}}
    t0 = time.perf_counter()
    if not (out / "video.json").is_file():
        generate_video(world, video, out, body, Renderer(world.height, world.width))
        row["render_seconds"] = round(time.perf_counter() - t0, 1)
    row["video"] = json.loads((out / "video.json").read_text())
    variant = copy.deepcopy(params)
    for name, dom in video.domains.items():
        t0 = time.perf_counter()
        info = prepare(dom.layout, out / name, out / "manifests" / name, name=name)
        variant["data"][name] = {**variant["data"][name], "root": str(out / name),
                                 "manifest": str(out / "manifests" / name)}
        row["domains"][name] = {"prepare_seconds": round(time.perf_counter() - t0, 1), "splits": info["splits"]}
        if args.meshes:
            from reid_repro.world.meshes import synthetic_renders

            t0 = time.perf_counter()
            made = synthetic_renders(out / name, out / "meshes" / name, body, Renderer(world.height, world.width))
            row["domains"][name]["meshes"] = {**made, "seconds": round(time.perf_counter() - t0, 1)}
    for run in args.runs:
        spec = load_run(variant, run)
        folder = out / "runs" / f"{run}_{Path(args.models).name}"
        t0 = time.perf_counter()
        m = execute(variant, f"bench_video_{run}", spec, folder, stage="bench", root=ROOT,
                    models_dir=args.models, track=False, keep_model=False, evaluate_start=True, features=False)
        hist = pd.read_parquet(folder / "history.parquet")
        row.setdefault("runs", {})[run] = {
            "seconds": round(time.perf_counter() - t0, 1), "train_seconds": round(m["train_seconds"], 1),
            "frames_per_tracklet": spec.frames, "start_mAP": round(100 * m["initial_mAP"], 2),
            "start_rank1": round(100 * m["initial_rank1"], 2), "mAP": round(100 * m["mAP"], 2),
            "rank1": round(100 * m["rank1"], 2), "nmi_tracklets": [round(float(x), 4) for x in hist["nmi"]],
            "clusters": hist["num_clusters"].tolist(), "outliers": hist["num_outliers"].tolist(),
            "tracklets": int(hist["tracklets"].iloc[-1]), "frames_trained": int(hist["frames_trained"].iloc[-1])}
        print(json.dumps({run: row["runs"][run]}), flush=True)
    path = ROOT / "bench" / "results" / f"{args.name}.json"
    cases = json.loads(path.read_text())["cases"] if path.is_file() else []
    case = f"{video.profile} from {args.models}"
    write_results(args.name, [c for c in cases if c.get("case") != case] + [{"case": case, **row}])


if __name__ == "__main__":
    main()
