"""``reid-repro meshes``: grey structure renders at 8 angles for every training image (GCL layout)."""

from __future__ import annotations

from reid_repro.errors import ReidReproError

HELP = "grey structure renders at 8 angles for every training image (GCL layout)"


def add_arguments(p) -> None:
    p.add_argument("--source", choices=["synthetic", "params", "renders"], default="synthetic",
                   help="synthetic: the world's ground truth; params: a per-image SMPL parameter file; "
                        "renders: link a folder of existing GCL renders")
    p.add_argument("--dataset", default=None,
                   help="a key of params.yaml: data; its root and manifest stand for --images and --manifest")
    p.add_argument("--from", dest="origin", default=None,
                   help="where the renders come from, by --source: synthetic the world's domain folder, params the "
                        "SMPL parameter parquet, renders the GCL render folder (params.yaml: meshes.<name>.from)")
    p.add_argument("--images", default=None, help="the dataset (or world domain) folder")
    p.add_argument("--out", required=True, help="output folder (render/, render_45/, ... render_315/)")
    p.add_argument("--manifest", default=None, help="manifest.parquet of the dataset (params and renders sources)")
    p.add_argument("--param-file", default=None, help="parquet of per-image SMPL parameters (params source)")
    p.add_argument("--renders", default=None, help="existing GCL render folder (renders source)")
    p.add_argument("--sheet", default=None, help="write an 8-angle contact sheet of one person here")
    p.add_argument("--params", default="params.yaml")


def run(args) -> str:
    import os
    import time
    from pathlib import Path

    from reid_repro.config import load_world
    from reid_repro.world import meshes

    start = time.perf_counter()
    if args.dataset:
        from reid_repro.config import check_mesh_source, load_params

        params = load_params(args.params)
        info = params["data"].get(args.dataset)
        if info is None:
            raise ReidReproError(f"--dataset {args.dataset}: not a key of params.yaml: data")
        if args.dataset in params.get("meshes", {}):
            check_mesh_source(params, args.dataset)
        args.images = args.images or info["root"]
        args.manifest = args.manifest or str(Path(info["manifest"]) / "manifest.parquet")
    if args.origin:
        if args.source == "synthetic":
            args.images = args.origin
        else:
            setattr(args, "renders" if args.source == "renders" else "param_file", args.origin)
    if not args.images:
        raise ReidReproError("meshes: no images; give --dataset (a key of params.yaml: data) or --images")
    if args.source == "renders":
        if not (args.renders and args.manifest):
            raise ReidReproError("--source renders needs --renders (a GCL render folder) and --manifest")
        info = meshes.link_renders(args.renders, args.manifest, args.out)
    else:
        from reid_repro.world.body import make_body
        from reid_repro.world.render import Renderer

        cfg = load_world(args.params)
        body = make_body(cfg.body_model, os.environ.get("ANNY_CACHE_DIR", ".cache/anny"), cfg.smpl_model_dir)
        renderer = Renderer(cfg.height, cfg.width)
        if args.source == "synthetic":
            info = meshes.synthetic_renders(args.images, args.out, body, renderer, world=cfg)
        else:
            if not (args.param_file and args.manifest):
                raise ReidReproError("--source params needs --param-file and --manifest")
            info = meshes.param_renders(args.param_file, args.manifest, args.out, body, renderer)
    if args.sheet:
        import pandas as pd

        if args.manifest:
            table = pd.read_parquet(args.manifest, columns=["path", "split"])
        else:
            table = pd.read_parquet(Path(args.images) / "ground_truth.parquet", columns=["path", "split"])
        first = table.loc[table["split"] == "train", "path"].iat[0]
        meshes.turntable_sheet(args.out, args.images, first, args.sheet)
    return (f"meshes ({info['source']}): {info['renders']} structure renders of {info['images']} training images "
            f"in {time.perf_counter() - start:.0f} s -> {args.out}")
