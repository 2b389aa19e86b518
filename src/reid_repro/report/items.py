"""Every table and figure with results in the five papers (the list in the papers' README, copied here), in each
paper's own order, with the report section that reproduces it.

``section`` is the anchor of the report section that holds the item (``None``: no section yet) and ``why`` says
why an item has none: a reason it cannot be reproduced here, or the issue that will add it; an item whose section
is drawn with a fixed part missing carries (in part, what is missing and the command that makes it). The report gives
each item one of five states: reproduced (its section is in this report, every cell of ours filled), in part
(its section is here, but some of its cells are runs not trained in this build: how many, and the command that
trains them), not run (declared, but its runs were not part of this build; the command builds them), not
implemented yet (the harness could draw it, the code does not yet: which issue adds it), or not reproducible here
(with the reason: no such data, or a method outside the five papers).
"""

from __future__ import annotations

REPRODUCED, IN_PART, NOT_RUN = "reproduced", "in part", "not run"
NOT_YET, NOT_HERE = "not implemented yet", "not reproducible here"

PAPERS = {"gcl_plus": "GCL+ (TPAMI 2022)", "gcl": "GCL supplementary (CVPR 2021)", "ice": "ICE (ICCV 2021)",
          "canu": "CANU-ReID (ICPR 2021)", "ise": "ISE (CVPR 2022)"}

# paper -> [(item, what it shows, section anchor or None, (state, why) when there is no section)]
ITEMS = {
    "gcl_plus": [
        ("Table 3/11/12", "mesh-guided generations at 45°…315°", "gcl-plus-table3-generations", None),
        ("Table 2", "Mixup vs F-Mixup vs D-Mixup", "gcl-plus-table2-mixup", None),
        ("Table 4", "2D gray switch vs mesh switch vs mesh rotation", "gcl_plus-table-4", None),
        ("Table 5", "DBSCAN eps 0.40-0.60", "gcl_plus-table-5", None),
        ("Table 6", "augmentation ablation, fully unsupervised", "gcl_plus-table-6a", None),
        ("Table 6", "augmentation ablation, UDA", "gcl_plus-table-6b", None),
        ("Table 7", "view-invariant / prototype loss ablation", "gcl_plus-table-7", None),
        ("Table 8", "fully unsupervised comparison", "gcl_plus-table-8", None),
        ("Table 9", "UDA comparison", "gcl_plus-table-9", None),
        ("Table 10", "video re-ID (MARS, DukeMTMC-VideoReID)", "gcl_plus-table-10", None),
        ("Fig. 5", "mixup α", "gcl_plus-table-fig5", None),
        ("Fig. 6", "memory momentum β and temperature τ", "gcl_plus-table-fig6", None),
        ("Fig. 7", "λ_recon, λ_vi, λ_mix", "gcl_plus-table-fig7", None),
        ("Fig. 8", "NMI of pseudo labels over joint training", "gcl-plus-fig8-nmi", None),
        ("Fig. 9", "generations with and without L_contrast", "gcl-plus-fig9-contrast", None),
        ("Fig. 12", "failure cases", "gcl-plus-fig12-failures", None),
        ("Fig. 2", "generations under 2D gray switch, mesh switch and mesh rotation", "gcl-plus-fig2-structures",
         (IN_PART, "the three structure inputs and the Full run's generations on the mesh switch and rotation; the "
                   "gray-switch generator is Table 4's larger-profile row gclp_d2m_gray (`dvc exp run -S "
                   "larger.enabled=true` trains it), which the figures stage does not draw")),
        ("Fig. 3", "interpolation of identity features between two persons", "gcl-plus-fig3-interpolation", None),
        ("Fig. 10", "generations of GCL+ beside other GAN-based methods (ours: GCL+ only)", None,
         (NOT_HERE, "the other GAN-based re-ID methods (DG-Net, FD-GAN, ...) are not among the five papers; GCL+'s "
                    "own generations are Table 3/11/12's grid")),
        ("Fig. 11", "tracklet frames before and after rotation (video)", "gcl-plus-fig11-tracklets", None),
    ],
    "gcl": [
        ("Table 1", "FID per rotation angle", "gcl-table-1", None),
        ("Fig. 1", "generations with and without the view-invariant losses", "gcl-fig1-view-invariant", None),
        ("Fig. 2", "cluster count per epoch, traditional augmentation vs GCL", "gcl-fig2-clusters", None),
        ("Figs. 3-5", "generated novel views", "gcl-figs3-5-views", None),
    ],
    "ice": [
        ("Table 2", "hardest vs all negatives", "ice-table-2", None),
        ("Table 3", "MSE vs strong-strong vs KL consistency", "ice-table-3", None),
        ("Table 4", "loss ablation, camera-aware memory", "ice-table-4a", None),
        ("Table 4", "loss ablation, camera-agnostic memory", "ice-table-4b", None),
        ("Table 5", "comparison incl. ground-truth labels", "ice-table-5", None),
        ("Fig. 5", "λ_h.ins, τ_h.ins, λ_s.ins, τ_s.ins sensitivity", "ice-table-fig5", None),
        ("Fig. 6", "cluster count per epoch", "ice-fig6-cluster-count", None),
        ("Fig. 7", "KL divergence per epoch", "ice-fig7-kl", None),
        ("Fig. 8", "t-SNE of 10 test identities", "ice-fig8-tsne", None),
        ("Fig. 9", "top-5 retrievals", "ice-fig9-retrieval", None),
    ],
    "canu": [
        ("Table I", "Mkt▸Duke and Duke▸Mkt", "canu-table-i", None),
        ("Table II", "Mkt▸MSMT and Duke▸MSMT", "canu-table-ii", None),
        ("Table III", "adversarial weight μ", "canu-table-iii", None),
        ("Table IV", "conditional vs plain adversarial", "canu-table-iv", None),
        ("Fig. 3", "mutual information of pseudo labels and camera per epoch", "canu-fig3-mi", None),
        ("Fig. 4", "lost identities per epoch", "canu-fig4-lost-ids", None),
    ],
    "ise": [
        ("Table 1", "PLI / LP ablation", "ise-table-1", None),
        ("Table 2", "λ schedule", "ise-table-2", None),
        ("Table 3", "direction and base degree λ0", "ise-table-3", None),
        ("Table 4", "K nearest clusters", "ise-table-4", None),
        ("Table 5", "domain generalisation", "ise-table-5", None),
        ("Table 6", "comparison incl. GeM pooling and ground-truth labels", "ise-table-6", None),
        ("Fig. 3", "t-SNE with support samples", "ise-fig3-tsne", None),
        ("Fig. 4", "clustering quality (FMI, ARI, AMI, V-measure) per epoch", "ise-fig4-clustering-quality", None),
        ("Fig. 5", "ISE vs Mixup over α", "ise-table-fig5", None),
    ],
}


# items drawn from trained models by the figures stage, not by the report
MODEL_FIGURES = {"ice-fig8-tsne", "ice-fig9-retrieval", "ise-fig3-tsne", "gcl-plus-table3-generations",
                 "gcl-plus-fig3-interpolation",
                 "gcl-plus-table2-mixup", "gcl-plus-fig9-contrast", "gcl-plus-fig12-failures", "gcl-figs3-5-views",
                 "gcl-table-1", "gcl-plus-fig2-structures", "gcl-fig1-view-invariant", "gcl-plus-fig11-tracklets"}

# sections that belong to an item without being its main section, drawn right after it
FOLLOWERS = {"ice-table-fig5": ["ice-fig5-sensitivity"], "canu-fig4-lost-ids": ["canu-camera-probe"],
             "ise-table-fig5": ["ise-fig5-mixup"], "gcl_plus-table-fig5": ["gcl-plus-fig5-alpha"],
             "gcl_plus-table-fig6": ["gcl-plus-fig6-beta-tau"], "gcl_plus-table-fig7": ["gcl-plus-fig7-weights"]}

LARGER = "`make repro LARGER=1` (reid-repro repro --exp -S larger.enabled=true) trains them"

# one `dvc exp run` example per item: its main setting changed (the stages it re-runs are those reading the key)
EXAMPLES = {
    "ice-table-2": "ice.negatives=hardest",
    "ice-table-3": "ice.consistency=mse",
    "ice-table-4a": "ice.lambda_h=0.5",
    "ice-table-4b": "ice.tau_a=0.1",
    "ice-table-5": "ice.fidelity=paper",
    "ice-table-fig5": "ice.tau_s=0.3",
    "ice-fig5-sensitivity": "ice.tau_s=0.3",
    "ice-fig6-cluster-count": "ice.loop.eps=0.6",
    "ice-fig7-kl": "ice.tau_s=0.3",
    "ice-fig8-tsne": "ice.lambda_s=5.0",
    "ice-fig9-retrieval": "ice.lambda_h=0.5",
    "gcl_plus-table-4": "gcl_plus.lambda_recon=2.0",
    "gcl_plus-table-5": "gcl_plus.tau=0.07",
    "gcl_plus-table-6a": "gcl_plus.alpha=1.0",
    "gcl_plus-table-6b": "gcl_plus.alpha=1.0",
    "gcl_plus-table-7": "gcl_plus.lambda_vi=0.5",
    "gcl_plus-table-8": "gcl_plus.alpha=1.0",
    "gcl_plus-table-9": "gcl_plus.alpha=1.0",
    "gcl_plus-table-10": "gcl_plus.alpha=1.0",
    "gcl-plus-fig11-tracklets": "gcl_plus.lambda_recon=2.0",
    "gcl_plus-table-fig5": "larger.enabled=true",
    "gcl-plus-fig5-alpha": "larger.enabled=true",
    "gcl_plus-table-fig6": "larger.enabled=true",
    "gcl-plus-fig6-beta-tau": "larger.enabled=true",
    "gcl_plus-table-fig7": "larger.enabled=true",
    "gcl-plus-fig7-weights": "larger.enabled=true",
    "gcl-fig2-clusters": "gcl_plus.tau=0.07",
    "gcl-plus-fig8-nmi": "gcl_plus.memory_momentum=0.5",
    "gcl-plus-table3-generations": "gcl_plus.lambda_recon=2.0",
    "gcl-table-1": "gcl_plus.lambda_recon=2.0",
    "gcl-plus-table2-mixup": "gcl_plus.alpha=1.0",
    "gcl-plus-fig3-interpolation": "gcl_plus.alpha=1.0",
    "gcl-plus-fig9-contrast": "gcl_plus.lambda_vi=0.5",
    "gcl-plus-fig12-failures": "gcl_plus.lambda_recon=2.0",
    "gcl-figs3-5-views": "gcl_plus.lambda_recon=2.0",
    "gcl-fig1-view-invariant": "gcl_plus.lambda_vi=0.5",
    "gcl-plus-fig2-structures": "gcl_plus.lambda_recon=2.0",
    "canu-table-i": "canu.mu=0.2",
    "canu-table-ii": "canu.mu=0.2",
    "canu-table-iii": "mmt.soft_ce_weight=0.3",
    "canu-table-iv": "canu.mu=0.2",
    "canu-fig3-mi": "canu.mu=0.2",
    "canu-fig4-lost-ids": "canu.mu=0.2",
    "ise-table-1": "ise.lambda0=2.0",
    "ise-table-2": "ise.schedule=linear",
    "ise-table-3": "ise.direction=random",
    "ise-table-4": "ise.k=3",
    "ise-table-5": "ise.lambda0=2.0",
    "ise-table-6": "ise.lambda0=2.0",
    "ise-fig3-tsne": "ise.lambda0=2.0",
    "ise-fig4-clustering-quality": "cluster_contrast.loop.eps=0.6",
    "ise-table-fig5": "mixup.alpha=0.5",
}


def section_order() -> list[str]:
    """Every item's section anchors in the papers' order (each paper's own table and figure order)."""
    order = []
    for items in ITEMS.values():
        for _, _, section, _ in items:
            if section is not None:
                order += [section, *FOLLOWERS.get(section, [])]
    return order


def coverage(built: set[str], paper: str | None = None, partial: dict[str, int] | None = None,
             unbuilt: dict[str, tuple] | None = None, cells: dict[str, int] | None = None) -> list[dict]:
    """One row per item: paper, item, what it shows, state, the section anchor (when built) and why (otherwise).
    ``built`` holds the anchors of the sections this report contains; ``partial`` how many cells of a table
    section are larger-profile rows not run here. A built item with such cells is reproduced in part (and not
    run at all when it is a figure whose curve needs them). ``unbuilt``: per table section, (its cells of runs
    not built yet, its trained runs), in a report built with allow_missing: in part, or not run when none
    trained. ``cells``: per table section, how many of its cells our runs fill or would fill."""
    partial, unbuilt = partial or {}, unbuilt or {}
    rows = []
    for p, items in ITEMS.items():
        if paper is not None and p != paper:
            continue
        for item, what, section, missing in items:
            figure_missing = any(f not in built for f in FOLLOWERS.get(section, []))
            waiting, trained = unbuilt.get(section, (0, 1))
            if section is not None and section in built and waiting and not trained:
                state, why = NOT_RUN, f"its runs are not built yet: `make paper P={p}` (or `dvc repro`) builds them"
            elif section is not None and section in built and waiting:
                state, why = IN_PART, (f"{waiting} of its cells are runs not built yet (`make paper P={p}` builds "
                                       "them)")
            elif section is not None and section in built and partial.get(section) and (
                    figure_missing or not trained):    # only larger-profile rows, or only its default point, trained
                state, why = NOT_RUN, (f"its runs are larger-profile rows, not run at the default scale: {LARGER}"
                                       if not trained else
                                       f"only its default point is trained here (the main run's cells); its other "
                                       f"{partial[section]} cells are larger-profile rows, not run at the default "
                                       f"scale: {LARGER}")
            elif section is not None and section in built and partial.get(section):
                total = (cells or {}).get(section)
                state, why = IN_PART, (f"{partial[section]} of its {total} cells of ours" if total else
                                       f"{partial[section]} of its cells") + (
                    f" are larger-profile rows, not run at the default scale: {LARGER}")
            elif section is not None and section in built and missing is not None and missing[0] == IN_PART:
                state, why = missing          # drawn, but a fixed part of it cannot be in the default build
            elif section is not None and section in built:
                state, why = REPRODUCED, ""
            elif section in MODEL_FIGURES:
                state, why = NOT_RUN, ("`dvc repro figures` (it reads the runs' stored features and GCL+'s generators), "
                                       "then the report")
            elif section is not None:
                state, why = NOT_RUN, f"`make paper P={p}` (or `dvc repro`) builds it"
            else:
                state, why = missing
            rows.append({"paper": p, "paper_name": PAPERS[p], "item": item, "shows": what, "state": state,
                         "section": section if section in built else None, "why": why})
    return rows
