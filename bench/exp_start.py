"""Issue 38, experiments E0, E2 and E3 of bench/world_plan.md: which start, and how much there is to learn from it.

Every candidate start is measured by properties that look at no claim:

- probes (E0): mAP and rank-1 on the three stand-ins' test splits, the camera probe (evaluation/probe.py), and
  the k-nearest-neighbour mix: of each test image's k nearest neighbours (cosine, itself excluded), the share that
  is the same person in another camera, the same person, and the same camera. A start that groups images by
  camera more than by person (same camera > same person) behaves as ImageNet features do on real data. Raw RGB
  colour histograms are probed beside the networks as the world's "solved by colour" floor;
- learning curves (E2): Cluster-Contrast with true labels (the supervised ceiling of the same loop) and with its
  pseudo labels, from the start, on the Market stand-in, with the test mAP after every epoch (so the 8-epoch
  default and a longer loop are read off one run), the clusters and outliers per epoch, and the gain over the start.

Candidate starts (E3): ``identity`` (today's models/pretrain: supervised on the pretrain domain's identities),
``random`` (a seeded untrained network), ``viewpoint`` (the same network and loop, trained to classify the
pretrain domain's images into 8 yaw bins: body layout, no identity), ``instance`` (exemplar training: every
pretrain image its own class, with the pretrain loop's strong augmentation), ``objects`` (an ImageNet stand-in:
40 classes of procedural objects rendered under the world's camera styles, the class being the shape;
bench/_objects.py).

Nothing under runs/, models/ or data/ is touched: starts, manifests and runs go to .cache/exp_start/.

    python bench/exp_start.py --starts identity random --curves      # E0 + E2 on today's and a random start
    python bench/exp_start.py --starts viewpoint instance --curves   # E3: pretext starts, then the same measures
    python bench/exp_start.py --starts viewpoint --pretrain-iters 300 --name exp_start_short
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import key_values, write_results  # noqa: E402

SCRATCH = ROOT / ".cache" / "exp_start"
DOMAINS = ("market", "duke", "msmt")
PRETEXTS = ("viewpoint", "instance", "objects")
YAW_BINS = 8


def neighbour_mix(features: np.ndarray, pids: np.ndarray, camids: np.ndarray, k: int = 10) -> dict:
    """Mean share of each image's k nearest neighbours (cosine, itself excluded) that are the same person in
    another camera, the same person, and the same camera; with the shares a random ranking would give."""
    x = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nn = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    same_pid = pids[nn] == pids[:, None]
    same_cam = camids[nn] == camids[:, None]
    n = len(pids)
    pid_pairs = (pids[:, None] == pids[None, :]).sum(1) - 1
    cam_pairs = (camids[:, None] == camids[None, :]).sum(1) - 1
    cross_pairs = ((pids[:, None] == pids[None, :]) & (camids[:, None] != camids[None, :])).sum(1)
    return {"knn_k": k,
            "knn_same_person_other_camera": float((same_pid & ~same_cam).mean()),
            "knn_same_person": float(same_pid.mean()), "knn_same_camera": float(same_cam.mean()),
            "random_same_person_other_camera": float((cross_pairs / (n - 1)).mean()),
            "random_same_person": float((pid_pairs / (n - 1)).mean()),
            "random_same_camera": float((cam_pairs / (n - 1)).mean())}


def colour_histograms(images, bins: int = 8) -> np.ndarray:
    """Joint RGB histograms (bins^3, L1-normalised, square-rooted: the Hellinger embedding) of uint8 images."""
    x = images.numpy().astype(np.int64) * bins // 256                       # N x 3 x H x W, values 0..bins-1
    codes = (x[:, 0] * bins + x[:, 1]) * bins + x[:, 2]
    hist = np.stack([np.bincount(c.ravel(), minlength=bins ** 3) for c in codes]).astype(np.float64)
    return np.sqrt(hist / hist.sum(1, keepdims=True))


def probe(features: np.ndarray, table) -> dict:
    from reid_repro.evaluation.features import features_to_metrics
    from reid_repro.evaluation.probe import camera_probe

    q = (table["split"] == "query").to_numpy()
    pids, cams = table["pid"].to_numpy(), table["camid"].to_numpy()
    m = features_to_metrics(features[q], features[~q], pids[q], pids[~q], cams[q], cams[~q])
    return {"mAP": round(100 * m["mAP"], 2), "rank1": round(100 * float(m["cmc"][0]), 2),
            **{k: round(v, 4) for k, v in camera_probe(features[~q], cams[~q], pids[~q]).items()},
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in neighbour_mix(features, pids, cams).items()}}


def probe_weights(params: dict, weights: Path, tests: dict) -> dict:
    """{dataset: probe} of the encoder checkpoint ``weights`` on each of ``tests`` ({dataset: test_set(...)})."""
    import torch

    from reid_repro.config import load_model
    from reid_repro.device import params_device
    from reid_repro.models import ReidNet
    from reid_repro.training.data import extract_features
    from reid_repro.training.run import load_weights

    model_cfg, device = load_model(params), params_device(params)
    model = ReidNet.from_config(model_cfg)
    load_weights(model, weights, model_cfg)
    model = model.to(device).eval()
    with torch.no_grad():
        return {d: probe(extract_features(model, cache.images, device), table) for d, (table, cache) in tests.items()}


def pretrain_data(world: str | None) -> tuple[Path, Path]:
    """(image root, manifest folder) of the pretrain domain: the committed one, or the variant ``world`` rendered
    by ``bench/exp_world_variant.py --name <world> --domain pretrain --render-only``."""
    if world is None:
        return ROOT / "data" / "world" / "pretrain", ROOT / "data" / "manifests" / "pretrain"
    base = ROOT / ".cache" / "exp_world" / world
    root, manifest = base / "pretrain", base / "manifests" / "pretrain"
    if not (manifest / "manifest.parquet").is_file():
        raise SystemExit(f"{manifest}: no pretrain variant {world!r}; render it first with "
                         f"bench/exp_world_variant.py --name {world} --domain pretrain --render-only ...")
    return root, manifest


def relabelled_manifest(task: str, world: str | None = None) -> Path:
    """The pretrain manifest with ``pid`` replaced by the pretext's label (train split only changes)."""
    import pandas as pd

    world_root, manifest = pretrain_data(world)
    src = pd.read_parquet(manifest / "manifest.parquet")
    out = SCRATCH / "manifests" / (task if world is None else f"{task}@{world}")
    out.mkdir(parents=True, exist_ok=True)
    train = src["split"] == "train"
    if task == "viewpoint":
        gt = pd.read_parquet(world_root / "ground_truth.parquet")[["path", "yaw"]]
        yaw = src.merge(gt, on="path", how="left")["yaw"]
        if yaw[train].isna().any():
            raise SystemExit("pretrain ground truth lacks the yaw of some training images")
        bins = (np.floor(yaw.to_numpy() / (360 / YAW_BINS)).astype(int) % YAW_BINS) + 1
        src.loc[train, "pid"] = bins[train.to_numpy()]
    elif task == "instance":
        src.loc[train, "pid"] = np.arange(1, int(train.sum()) + 1)
    else:
        raise SystemExit(f"unknown pretext {task!r}; expected one of {PRETEXTS}")
    src.to_parquet(out / "manifest.parquet", index=False)
    info = json.loads((manifest / "dataset.json").read_text())
    (out / "dataset.json").write_text(json.dumps({**info, "relabelled": task}, indent=2))   # read by run_inputs
    return out


def objects_world() -> dict:
    """{root, manifest} of the objects world, rendered and prepared once into the scratch folder."""
    from _objects import render_objects

    from reid_repro.data.manifest import prepare

    root, manifest = SCRATCH / "objects_world", SCRATCH / "manifests" / "objects"
    if not (manifest / "manifest.parquet").is_file():
        t0 = time.perf_counter()
        n = render_objects(root)
        print(f"objects world: {n} images in {time.perf_counter() - t0:.0f} s", flush=True)
        prepare("market1501", root, manifest, name="pretrain_objects")
    return {"root": str(root), "manifest": str(manifest)}


def make_start(params: dict, name: str, iters: int | None, world: str | None = None,
               suffix: str = "") -> tuple[Path, dict]:
    """``<scratch>/starts/<name>/pretrain/model.pt`` for the candidate ``name`` (``<name>@<world>`` when trained on
    the pretrain variant ``world``; ``suffix`` appended for another network, e.g. ``+arch=resnet10``):
    (models folder, record)."""
    import torch

    from reid_repro.config import load_model, pretrain_spec
    from reid_repro.models import ReidNet, save_state
    from reid_repro.training.run import execute

    models = SCRATCH / "starts" / ((name if world is None else f"{name}@{world}") + suffix)
    record = {"start": name, "pretrain_world": world or "committed"}
    if name == "identity":
        return ROOT / "models", {**record, "weights": "models/pretrain/model.pt"}
    target = models / "pretrain" / "model.pt"
    if name == "random":
        torch.manual_seed(0)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_state(ReidNet.from_config(load_model(params)).state_dict(), target)
        return models, {**record, "weights": "seeded init (torch.manual_seed(0))"}
    if target.is_file() and (target.parent / "metrics.json").is_file():        # trained before: the same seed
        done = json.loads((target.parent / "metrics.json").read_text())
        return models, {**record, "reused": str(target), "pretrain_seconds": done.get("train_seconds")}
    p = copy.deepcopy(params)
    if name == "objects":
        p["data"]["pretrain_objects"] = {**p["data"]["pretrain"], **objects_world()}
    else:
        root, _ = pretrain_data(world)
        p["data"][f"pretrain_{name}"] = {**p["data"]["pretrain"], "root": str(root),
                                         "manifest": str(relabelled_manifest(name, world))}
    loop = p["pretrain"]["loop"]
    if name == "viewpoint":                       # 8 classes: a batch of 8 bins x 8 images
        loop.update(batch_ids=8, instances=8)
    if iters is not None:
        loop["epochs"] = max(1, round(iters / loop["iters"]))
        loop["lr_step"] = max(1, round(loop["epochs"] * 2 / 3))
    t0 = time.perf_counter()
    m = execute(p, f"exp_start_{name}", pretrain_spec(f"pretrain_{name}"), models / "pretrain", stage="bench",
                root=ROOT, track=False, section="pretrain")
    return models, {**record, "pretrain_iterations": loop["epochs"] * loop["iters"],
                    "pretrain_seconds": round(time.perf_counter() - t0, 1), "pretrain_final_loss": m.get("loss")}


def curves(params: dict, name: str, models: Path, epochs: int, seed: int, domain: str = "market",
           loop: dict | None = None, kinds: tuple = ("ground_truth", "pseudo")) -> list[dict]:
    """Cluster-Contrast (the run cc_<domain>) with true and with its pseudo labels on ``domain``, from the start
    in ``models``; the true-label run is cc_<domain> with ``labels: ground_truth`` (as cc_market_gt is). ``loop``
    overrides loop settings of both (e.g. lr, lr_step)."""
    from reid_repro.config import load_run
    from reid_repro.training.run import execute

    rows, loaded = [], {}
    base = load_run(params, f"cc_{domain}")
    for kind in kinds:
        labels = {"labels": "ground_truth"} if kind == "ground_truth" else {}
        spec = dataclasses.replace(base, overrides={**base.overrides, **labels, "epochs": epochs, "seed": seed,
                                                    **(loop or {})})
        per_epoch: list[float] = []
        out = SCRATCH / "runs" / f"{name}_{kind}_s{seed}"
        t0 = time.perf_counter()
        m = execute(params, f"exp_start_{name}_{kind}", spec, out, stage="bench", root=ROOT, models_dir=models,
                    track=False, loaded=loaded, keep_model=False, evaluate_start=True,
                    epoch_report=lambda v, seen=per_epoch: seen.append(round(100 * v, 2)))
        import pandas as pd

        hist = pd.read_parquet(out / "history.parquet")
        row = {"start": name, "domain": domain, "labels": kind, "seed": seed, "epochs": epochs, "loop": loop or {},
               "start_mAP": round(100 * m["initial_mAP"], 2), "final_mAP": round(100 * m["mAP"], 2),
               "test_mAP_per_epoch": per_epoch,
               "num_clusters": hist["num_clusters"].tolist(), "num_outliers": hist["num_outliers"].tolist(),
               "nmi": [round(v, 4) for v in hist["nmi"]],
               "seconds": round(time.perf_counter() - t0, 1)}
        for col in ("mi_pseudo_camera", "mi_true_camera"):
            if col in hist:
                row[col] = [round(v, 4) for v in hist[col]]
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("nmi",)}), flush=True)
    return rows


def main() -> None:
    import os

    from reid_repro.config import load_model, load_params
    from reid_repro.training.run import test_set

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", nargs="+", default=["identity", "random"],
                        choices=["identity", "random", *PRETEXTS])
    parser.add_argument("--curves", action="store_true", help="also the E2 learning curves on the Market stand-in")
    parser.add_argument("--epochs", type=int, default=16, help="epochs of the learning curves")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrain-iters", type=int, default=None,
                        help="iterations of a pretext start (default: the pretrain loop's epochs x iters)")
    parser.add_argument("--histograms", action="store_true", help="probe raw colour histograms too")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="loop settings of the learning curves changed (e.g. lr=3.5e-4 lr_step=12)")
    parser.add_argument("--kinds", nargs="+", default=["ground_truth", "pseudo"], choices=["ground_truth", "pseudo"],
                        help="which learning curves: true labels, pseudo labels")
    parser.add_argument("--tag", default="", help="appended to each case name (another loop on the same start)")
    parser.add_argument("--name", default="exp_start")
    parser.add_argument("--world", default=None,
                        help="train the pretext start on this pretrain variant (bench/exp_world_variant.py --domain "
                             "pretrain --render-only); the start is stored as <start>@<world>")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="the CPU network changed for the start and its curves (e.g. arch=resnet10); the start "
                             "is stored as <start>[@<world>]+<key>=<value>")
    args = parser.parse_args()
    loop = key_values(args.set)
    os.chdir(ROOT)
    params = load_params("params.yaml")
    network = key_values(args.model)
    suffix = "".join(f"+{k}={v}" for k, v in network.items())
    params["model"]["cpu"] = {**params["model"]["cpu"], **network}
    model_cfg = load_model(params)
    tests = {d: test_set(params, d, model_cfg) for d in DOMAINS}
    path = ROOT / "bench" / "results" / f"{args.name}.json"
    rows = json.loads(path.read_text())["cases"] if path.is_file() else []
    if args.histograms:
        rows = [r for r in rows if r.get("case") != "colour_histogram"]
        rows.append({"case": "colour_histogram", **{d: probe(colour_histograms(t[1].images), t[0])
                                                     for d, t in tests.items()}})
        print(json.dumps(rows[-1]), flush=True)
    for name in args.starts:
        models, record = make_start(params, name, args.pretrain_iters, args.world, suffix)
        probes = probe_weights(params, models / "pretrain" / "model.pt", tests)
        case = (name if args.world is None else f"{name}@{args.world}") + suffix
        row = {"case": case + args.tag, **record, **probes}
        print(json.dumps(row), flush=True)
        if args.curves:
            row["curves"] = curves(params, case + args.tag, models, args.epochs, args.seed, loop=loop,
                                   kinds=tuple(args.kinds))
        rows = [r for r in rows if r.get("case") != row["case"]] + [row]
        write_results(args.name, rows)


if __name__ == "__main__":
    main()
