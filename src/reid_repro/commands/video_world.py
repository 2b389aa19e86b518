"""``reid-repro video-world``: render the video stand-ins (conf/world.yaml: video) in the MARS and DukeMTMC-VideoReID
layouts."""

from __future__ import annotations

HELP = "render the video stand-ins (conf/world.yaml: video) in the MARS and DukeMTMC-VideoReID layouts"


def add_arguments(p) -> None:
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--profile", default=None, help="override video.profile (smoke, default)")
    p.add_argument("--out", default="data/video")


def run(args) -> str:
    import os
    import time
    from dataclasses import replace
    from pathlib import Path

    from reid_repro.config import load_world
    from reid_repro.config.video import load_video
    from reid_repro.io import check_replaceable, publish_dir, staging_dir
    from reid_repro.world.body import make_body
    from reid_repro.world.video import generate_video

    world, video = load_world(args.params), load_video(args.params)
    if args.profile:       # replace() re-runs the validation, so an unknown profile is still an error
        video = replace(video, profile=args.profile)
    video.check_world(world)
    out = Path(args.out)
    check_replaceable(out)
    start = time.perf_counter()
    body = make_body(world.body_model, os.environ.get("ANNY_CACHE_DIR", ".cache/anny"), world.smpl_model_dir)
    staging = staging_dir(out)
    summary = generate_video(world, video, staging, body)
    publish_dir(staging, out)
    frames = sum(d[f"{s}_frames"] for d in summary["domains"].values() for s in ("train", "query", "gallery"))
    tracks = sum(d[f"{s}_tracklets"] for d in summary["domains"].values() for s in ("train", "query", "gallery"))
    return (f"video world ({video.profile}): {tracks} tracklets, {frames} frames in {len(summary['domains'])} "
            f"domains in {time.perf_counter() - start:.0f} s -> {out}")
