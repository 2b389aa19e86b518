"""Every method that reads no structure renders trains at paper scale on a real-layout root with no GCL renders.

Issue 36: with real data roots, every stage used to refuse to start while ``meshes.<name>`` kept its default
(``synthetic``). Now only the stages that read renders check them. This script shows the rest on a tiny tree: the
first identities of the world's Market stand-in, copied outside ``data/world`` (so its root is "real") in the
Market-1501 layout, and a random ResNet-50 state dict standing in for torchvision's ImageNet checkpoint.
``params.yaml`` keeps its default ``meshes`` section. It checks what every stage checks at its start
(``validate_params``), that the meshes stage alone refuses, then trains each non-GCL method once at ``scale:
paper`` (ResNet-50 at 256x128 from the ImageNet start, ghost BN over 4, per-epoch test mAP) with ``device: cpu``
and a one-epoch, one-iteration loop; the UDA methods (MMT, CANU, SSG, CANU-SSG) start from a source model
trained the same way. Writes ``bench/results/real_root_methods.json``: per method, whether it trained, its
seconds and its (meaningless, one-iteration) mAP.

    python bench/real_root_methods.py             # about 15 minutes on 2 cores
    python bench/real_root_methods.py mmt ssg     # only these methods (the others' rows are kept)

MMT and SSG's paper-scale eps rule (a quantile of the pairwise distances, rho 1.6e-3) needs more pairs than a tiny
tree has (it gives eps 0 here), so the loop's fixed eps is used; that is a property of the tiny tree, not of roots.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"cluster_contrast": "pretrain", "ise": "pretrain", "mixup": "pretrain", "ice": "pretrain",
           "mmt": "source_market", "canu": "source_market", "ssg": "source_market", "canu_ssg": "source_market"}
TINY = {"epochs": 1, "iters": 1, "batch_ids": 2, "instances": 4, "k1": 4, "k2": 2, "eps": 0.6, "min_samples": 2,
        "workers": 0, "lr_step": 1, "warmup_epochs": 0}


def tiny_tree(world: Path, out: Path, train_ids: int = 8, test_ids: int = 4) -> Path:
    """The first identities of each split of a Market-1501-layout folder, copied (images only)."""
    for split, keep in (("bounding_box_train", train_ids), ("bounding_box_test", test_ids), ("query", test_ids)):
        (out / split).mkdir(parents=True)
        files = sorted((world / split).glob("*.jpg"))
        pids = sorted({f.name.split("_")[0] for f in files if not f.name.startswith("-1")})[:keep]
        for f in files:
            if f.name.split("_")[0] in pids:
                shutil.copy(f, out / split / f.name)
    return out


def main() -> int:
    import torch
    import torchvision

    from reid_repro import numerics
    from reid_repro.assemble import validate_params
    from reid_repro.config import check_mesh_source, load_params
    from reid_repro.data.manifest import prepare, prepare_imagenet
    from reid_repro.errors import ReidReproError
    from reid_repro.methods import base_section
    from reid_repro.training.run import execute, imagenet_start, train_source
    from reid_repro.config import RunSpec

    tmp = Path(tempfile.mkdtemp(prefix="real_root_"))
    real = tiny_tree(ROOT / "data" / "world" / "market", tmp / "datasets" / "Market-1501")
    folder = tmp / "checkpoints"
    folder.mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50().state_dict(), folder / "resnet50-0676ba61.pth")
    prepare("market1501", real, tmp / "manifests" / "market")
    prepare_imagenet(folder, tmp / "manifests" / "imagenet")
    params = load_params(ROOT / "params.yaml")
    default_meshes = copy.deepcopy(params["meshes"])
    params.update(scale="paper", device="cpu", seeds=1)
    params["data"]["market"] = {"root": str(real), "manifest": str(tmp / "manifests" / "market"),
                                "format": "market1501"}
    params["data"]["pretrain"] = {"root": str(folder), "manifest": str(tmp / "manifests" / "imagenet"),
                                  "format": "imagenet"}
    assert params["meshes"] == default_meshes           # no renders anywhere: the default section, untouched
    validate_params(params)                             # what every stage checks at its start
    try:
        check_mesh_source(params, "market")
        meshes_refuse = None
    except ReidReproError as exc:                        # the meshes stage, the only one that reads them
        meshes_refuse = str(exc)
    for section, value in params.items():
        if isinstance(value, dict) and "paper_loop" in value:
            value["paper_loop"].update(TINY)
            if "eps_rule" in value["paper_loop"]:   # the quantile rule needs more pairs than a tiny tree has
                value["paper_loop"]["eps_rule"] = "fixed"
    params["gcl_plus"]["paper_loop"].update(instances=1)
    models = tmp / "models"
    result = {"numerics": numerics.kernel_set(), "meshes": params["meshes"], "meshes_stage_refuses": meshes_refuse,
              "tree": {s: len(list((real / s).glob("*.jpg"))) for s in ("bounding_box_train", "bounding_box_test",
                                                                       "query")},
              "methods": {}}
    t0 = time.perf_counter()
    imagenet_start(params, "pretrain", models / "pretrain")
    train_source(params, "market", models / "source_market", root=tmp, models_dir=models, track=False)
    result["source_seconds"] = time.perf_counter() - t0
    chosen = [m for m in METHODS if m in sys.argv[1:]] or list(METHODS)
    out = ROOT / "bench" / "results" / "real_root_methods.json"
    if chosen != list(METHODS) and out.is_file():
        result["methods"] = json.loads(out.read_text())["methods"]
    for method in chosen:
        init = METHODS[method]
        base = base_section(method) or method
        spec = RunSpec(method=method, base=base, dataset="market", test="market", init=init, paper="bench",
                       table="-", row=method, overrides={}, paper_overrides={}, also=[])
        t = time.perf_counter()
        try:
            m = execute(params, f"real_{method}", spec, tmp / "runs" / method, f"train@real_{method}", root=tmp,
                        models_dir=models, track=False)
            info = json.loads((tmp / "runs" / method / "run.json").read_text())
            result["methods"][method] = {"trained": True, "seconds": time.perf_counter() - t, "mAP": m["mAP"],
                                         "arch": info["model"]["arch"], "height": info["model"]["height"],
                                         "bn_groups": info["model"]["bn_groups"], "scale": info["scale"]}
        except Exception as exc:  # noqa: BLE001 - the point is to record which method fails and why
            result["methods"][method] = {"trained": False, "error": f"{type(exc).__name__}: {exc}"[:500]}
        print(method, result["methods"][method], flush=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)
    ok = sum(m["trained"] for m in result["methods"].values())
    print(f"{ok} of {len(METHODS)} methods trained at paper scale on a real root with no renders -> {out}")
    return 0 if ok == len(METHODS) else 1


if __name__ == "__main__":
    from reid_repro import numerics

    numerics.apply()
    sys.exit(main())
