"""``reid-repro generate``: a GCL+ run's novel views of every training image, as a dataset in GCL's layout."""

from __future__ import annotations

HELP = "a GCL+ run's novel views (45..315 degrees) of its training images in GCL's layout, with FID per angle"


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="a declared gcl_plus run (its generator)")
    p.add_argument("--out", required=True, help="e.g. data/generated/<run>: one folder per angle")
    p.add_argument("--runs", default="runs", help="where the run's model.pt and artifacts.pt are")
    p.add_argument("--start", default="models/pretrain/model.pt",
                   help="the feature space of the FID per angle (default: the pretrained start)")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    from reid_repro.config import load_params
    from reid_repro.report.generation import generate_dataset

    info = generate_dataset(load_params(args.params), args.run, args.out, args.runs, args.start)
    fid = ", ".join(f"{a}°: {v:.3f}" for a, v in info.get("fid", {}).items())
    return (f"generate {args.run}: {info['images']} images x {len(info['angles'])} angles -> {args.out}"
            + (f"; FID per angle ({fid})" if fid else ""))
