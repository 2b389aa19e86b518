"""Figures drawn from trained runs: t-SNE of test identities (ICE Fig. 8), t-SNE with ISE's support samples
drawn hollow (ISE Fig. 3) and a top-5 retrieval grid with correct and wrong matches marked (ICE Fig. 9).

``reid-repro figures`` runs these after the training stages; they read the runs' stored features
(evaluation/stored.py) and the images, and run no re-ID model; GCL+'s grids run its generators (generation.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from reid_repro.config import load_model, load_run
from reid_repro.errors import ReidReproError
from reid_repro.evaluation.stored import read_features, seed_files
from reid_repro.io import atomic_path
from reid_repro.report.plots import _save
from reid_repro.training.data import ImageCache

MARKERS = "os^vD<>pP*"


def stored_features(runs_dir: Path, run: str, splits: tuple[str, ...]):
    """(table, features) of ``splits`` from the run's first seed (``runs/<run>/features/<seed>.parquet``, the seed
    whose model the run keeps), as the run scored them: no model is run again."""
    folder = Path(runs_dir) / run / "features"
    files = seed_files(folder)
    if not files:
        raise ReidReproError(f"{folder}: no <seed>.parquet; expected the stored features of run {run} "
                             f"(`dvc repro train@{run}` writes them)")
    return read_features(files[0], splits)


def _images(params: dict, dataset: str, table):
    """The images of ``table`` (stored features' rows) at the model's input size, for the grids."""
    cfg = load_model(params)
    return ImageCache(params["data"][dataset]["root"], table.rename(columns={"name": "path"}), cfg.height, cfg.width,
                      desc=f"{dataset} figure images", interpolation=cfg.interpolation)


def tsne_figure(params: dict, runs_dir: Path, runs: list[str], dataset: str, out: Path, identities: int = 10,
                seed: int = 0) -> Path:
    """ICE Fig. 8: t-SNE of ``identities`` random test identities, one panel per run (same images)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 4.5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        table, feats = stored_features(runs_dir, run, ("query", "gallery"))
        pids = table["pid"].to_numpy()
        rng = np.random.default_rng(seed)
        present = np.unique(pids[pids > 0])
        chosen = rng.choice(present, min(identities, len(present)), replace=False)
        keep = np.isin(pids, chosen)
        xy = TSNE(n_components=2, perplexity=min(15, keep.sum() - 1), random_state=seed,
                  init="pca").fit_transform(feats[keep])
        for i, pid in enumerate(chosen):
            sel = pids[keep] == pid
            ax.scatter(xy[sel, 0], xy[sel, 1], s=18, marker=MARKERS[i % len(MARKERS)], label=str(pid))
        ax.set(title=run, xticks=[], yticks=[])
    axes[0][-1].legend(fontsize=6, title="identity", loc="best")
    fig.tight_layout()
    return _save(fig, out)


def ise_support_figure(params: dict, runs_dir: Path, baseline: str, ise: str, dataset: str, out: Path,
                       identities: int = 10, seed: int = 0) -> Path:
    """ISE Fig. 3: t-SNE of training samples of 10 identities, shapes = true identity, colours = pseudo label
    (DBSCAN as in training), ISE's support samples (final degree) drawn hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    from reid_repro.clustering import centroids, dbscan_labels, jaccard_distance, relabel
    from reid_repro.config import load_method_config
    from reid_repro.methods import base_section, method_class
    from reid_repro.methods.ise import degree, support_samples

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    for ax, run in zip(axes, (baseline, ise)):
        spec = load_run(params, run)
        cfg = load_method_config(params, spec.method, method_class(spec.method).config,
                                 {k: v for k, v in spec.overrides.items() if not k.startswith("model.")},
                                 base=base_section(spec.method))
        table, feats = stored_features(runs_dir, run, ("train",))
        labels = relabel(dbscan_labels(jaccard_distance(feats, k1=cfg.k1, k2=cfg.k2), cfg.eps, cfg.min_samples))
        pids = table["pid"].to_numpy()
        rng = np.random.default_rng(seed)
        chosen = rng.choice(np.unique(pids), min(identities, len(np.unique(pids))), replace=False)
        keep = np.isin(pids, chosen) & (labels >= 0)
        points = feats[keep]
        support = np.zeros((0, feats.shape[1]), dtype=np.float32)
        if spec.method == "ise" and (labels >= 0).sum():
            cent = torch.as_tensor(centroids(feats, labels))
            lam = degree(cfg.schedule, cfg.lambda0, cfg.epochs * cfg.iters, cfg.epochs * cfg.iters)
            support = support_samples(torch.as_tensor(points), torch.as_tensor(labels[keep]), cent, lam, cfg.k,
                                      cfg.direction).reshape(-1, feats.shape[1]).numpy()
        xy = TSNE(n_components=2, perplexity=min(15, len(points) + len(support) - 1), random_state=seed,
                  init="pca").fit_transform(np.concatenate([points, support]))
        cmap = plt.get_cmap("tab20")
        colour = {c: cmap(i % 20) for i, c in enumerate(np.unique(labels[keep]))}
        for i, pid in enumerate(chosen):
            sel = pids[keep] == pid
            for j in np.flatnonzero(sel):
                ax.scatter(*xy[j], s=22, marker=MARKERS[i % len(MARKERS)], color=colour[labels[keep][j]])
                for s in range(len(support) // max(1, len(points))):
                    k = len(points) + j * (len(support) // len(points)) + s
                    ax.scatter(*xy[k], s=22, marker=MARKERS[i % len(MARKERS)], facecolors="none",
                               edgecolors=colour[labels[keep][j]])
        ax.set(title=run, xticks=[], yticks=[])
    fig.suptitle("shape = true identity, colour = pseudo label, hollow = ISE support samples", fontsize=10)
    fig.tight_layout()
    return _save(fig, out)


def retrieval_grid(params: dict, runs_dir: Path, run: str, dataset: str, out: Path, queries: int = 6,
                   top: int = 5, seed: int = 0) -> Path:
    """ICE Fig. 9: queries and their top-5 gallery matches (other cameras), green = correct, red = wrong."""
    table, feats = stored_features(runs_dir, run, ("query", "gallery"))
    cache = _images(params, dataset, table)
    q = np.flatnonzero((table["split"] == "query").to_numpy())
    g = np.flatnonzero((table["split"] == "gallery").to_numpy())
    pids, cams = table["pid"].to_numpy(), table["camid"].to_numpy()
    rng = np.random.default_rng(seed)
    picked = rng.choice(q, min(queries, len(q)), replace=False)
    h, w = cache.images.shape[2:]
    pad = 4
    sheet = Image.new("RGB", ((top + 1) * (w + pad) + pad, len(picked) * (h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, qi in enumerate(picked):
        valid = g[~((pids[g] == pids[qi]) & (cams[g] == cams[qi]))]        # the evaluation protocol's gallery
        order = valid[np.argsort(-(feats[valid] @ feats[qi]))[:top]]
        for c, idx in enumerate([qi, *order]):
            x, y = pad + c * (w + pad), pad + r * (h + pad)
            sheet.paste(Image.fromarray(cache.images[idx].permute(1, 2, 0).numpy()), (x, y))
            if c:
                ok = pids[idx] == pids[qi]
                draw.rectangle([x - 2, y - 2, x + w + 1, y + h + 1], outline=(0, 170, 0) if ok else (220, 0, 0),
                               width=2)
    with atomic_path(out) as tmp:
        sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST).save(tmp, format="PNG")
    return out


GCL_GENERATED = "gclp_fu_m_full"      # GCL+ Fig. 8's "Full" run: its novel views (issue 13) and FID per angle
GCL_ROTATION = "gclp_fu_m_rot"        # Fig. 8's "Rot" run: GCL's view-invariant contrast alone (GCL supp. Fig. 1)
GCL_VIDEO = ("gclp_mars_full", "gclp_dukev_full")     # Table 10's GCL+ runs: Fig. 11's rotated tracklets


def build_figures(params: dict, runs_dir: str | Path, out_dir: str | Path,
                  generated: str | Path = "data/generated", models_dir: str | Path = "models") -> list[str]:
    runs_dir, out_dir = Path(runs_dir), Path(out_dir)
    made = []
    declared = set(params.get("runs") or {})
    if GCL_GENERATED in declared:
        import json

        from reid_repro.io import write_json
        from reid_repro.report.generation import gcl_generation_grid, generate_dataset

        target = Path(generated) / GCL_GENERATED
        info = generate_dataset(params, GCL_GENERATED, target, runs_dir)
        write_json(out_dir / "gcl_fid.json", json.loads((target / "fid.json").read_text()) | {"run": info["run"]})
        made.append(gcl_generation_grid(params, GCL_GENERATED, target, out_dir / "gcl_plus_table3_generations.png"))
        from reid_repro.report.generation import (contrast_grid, failure_grid, interpolation_grid, mixup_grid,
                                                  structure_grid, views_grid)

        made.append(mixup_grid(params, GCL_GENERATED, runs_dir, out_dir / "gcl_plus_table2_mixup.png"))
        made.append(interpolation_grid(params, GCL_GENERATED, runs_dir, out_dir / "gcl_plus_fig3_interpolation.png"))
        made.append(contrast_grid(params, GCL_GENERATED, params["runs"][GCL_GENERATED]["init"], runs_dir,
                                  Path(models_dir), out_dir / "gcl_plus_fig9_contrast.png"))
        made.append(failure_grid(params, GCL_GENERATED, runs_dir, out_dir / "gcl_plus_fig12_failures.png"))
        made.append(views_grid(params, GCL_GENERATED, target, out_dir / "gcl_figs3_5_views.png"))
        made.append(structure_grid(params, GCL_GENERATED, runs_dir, out_dir / "gcl_plus_fig2_structures.png"))
        if GCL_ROTATION in declared:
            made.append(contrast_grid(params, GCL_ROTATION, params["runs"][GCL_ROTATION]["init"], runs_dir,
                                      Path(models_dir), out_dir / "gcl_fig1_view_invariant.png",
                                      item="GCL supp. Fig. 1", tags=("w/o L_vi", "GCL (with L_vi)"), skip=3))
    video = [r for r in GCL_VIDEO if r in declared]         # a row per video stand-in whose run is declared
    if video:
        from reid_repro.report.generation import tracklet_grid

        made.append(tracklet_grid(params, video, runs_dir, out_dir / "gcl_plus_fig11_tracklets.png"))
    if {"ice_aware_base_duke", "ice_aware_full_duke"} <= declared:
        made.append(tsne_figure(params, runs_dir, ["ice_aware_base_duke", "ice_aware_full_duke"], "duke",
                                out_dir / "ice_fig8_tsne.png"))
    if {"ice_aware_base_market", "ice_aware_full_market"} <= declared:
        made.append(retrieval_grid(params, runs_dir, "ice_aware_full_market", "market",
                                   out_dir / "ice_fig9_retrieval.png"))
    if {"cc_market", "ise_market"} <= declared:
        made.append(ise_support_figure(params, runs_dir, "cc_market", "ise_market", "market",
                                       out_dir / "ise_fig3_tsne.png"))
    return [str(p) for p in made]
