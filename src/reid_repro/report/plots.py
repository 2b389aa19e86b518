"""The report's figures (matplotlib): per-table curves, the papers' figures drawn from run histories, and the
reproduction plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid_repro.errors import ReidReproError
from reid_repro.io import atomic_path
from reid_repro.report.page import LAYOUT
from reid_repro.report.runs import Run
from reid_repro.report.tables import short_name


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, dpi: int = 100) -> Path:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    fig.clf()
    _pyplot().close(fig)
    return out


def curves_figure(runs: list[Run], out: Path, title: str) -> Path:
    """NMI and cluster count per epoch for each run; each dataset's true identity count as a dashed line."""
    plt = _pyplot()
    fig, (ax_nmi, ax_k) = plt.subplots(1, 2, figsize=(10, 3.6))
    seen = set()
    for r in runs:
        h = r.history
        line, = ax_nmi.plot(h["epoch"], h["nmi"], marker="o", ms=3, label=r.name)
        ax_k.plot(h["epoch"], h["num_clusters"], marker="o", ms=3, color=line.get_color(), label=r.name)
        if r.spec.dataset not in seen:
            seen.add(r.spec.dataset)
            ax_k.axhline(h["num_true_ids"].iat[-1], ls="--", lw=1, color=line.get_color(),
                         label=f"true ids ({r.spec.dataset})")
    ax_nmi.set(xlabel="epoch", ylabel="NMI of pseudo labels", title="NMI per epoch")
    ax_k.set(xlabel="epoch", ylabel="clusters", title="cluster count per epoch")
    for ax in (ax_nmi, ax_k):
        ax.grid(alpha=0.3)
    ax_k.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, out, dpi=110)


def clustering_quality_figure(runs: list[Run], out: Path) -> Path:
    """ISE Fig. 4: clustering quality (FMI, ARI, AMI, V-measure) per epoch, baseline vs ISE

    ``runs`` are pairs (baseline, ISE) per dataset, in order."""
    plt = _pyplot()
    pairs = [runs[i:i + 2] for i in range(0, len(runs), 2)]
    fig, axes = plt.subplots(len(pairs), 4, figsize=(13, 3 * len(pairs)), squeeze=False)
    for row, pair in zip(axes, pairs):
        for ax, score in zip(row, ("fmi", "ari", "ami", "v_measure")):
            for r, style in zip(pair, ("--", "-")):
                ax.plot(r.history["epoch"], r.history[score], style, marker="o", ms=3, label=r.name)
            ax.set(title=f"{score} ({pair[0].spec.dataset})", xlabel="epoch")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def _per_epoch(runs: list[Run], out: Path, column: str, ylabel: str, labels: list[str], truth: bool) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for r, label in zip(runs, labels):
        ax.plot(r.history["epoch"], r.history[column], marker="o", ms=3, label=f"{label} ({r.name})")
    if truth:
        ax.axhline(runs[0].history["num_true_ids"].iat[-1], ls="--", color="k", lw=1, label="true identities")
    ax.set(xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


ICE_FIG6_LABELS = LAYOUT["labels"]["ice_fig6"]


def ice_cluster_count_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 6: cluster count per epoch on the Duke stand-in (camera-aware memory)"""
    return _per_epoch(runs, out, "num_clusters", "clusters (DBSCAN)", ICE_FIG6_LABELS, truth=True)


def ice_kl_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 7: KL(P||Q) of Eq. 12 per epoch on the Duke stand-in"""
    return _per_epoch(runs, out, "kl", "KL divergence", ICE_FIG6_LABELS, truth=False)


def ise_mixup_figure(runs: list[Run], out: Path) -> Path:
    """ISE Fig. 5: ISE vs image Mixup over α (Market stand-in; mAP, ours)

    ``runs`` are the baseline, ISE, then the Mixup runs in order of α."""
    plt = _pyplot()
    base, ise, mixups = runs[0], runs[1], runs[2:]
    alphas = [float(r.spec.overrides["alpha"]) for r in mixups]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.errorbar(alphas, [100 * r.metrics["mAP"] for r in mixups], yerr=[_sd(r) for r in mixups], marker="o",
                capsize=3, label="Mixup (baseline + image mixup), mean ± sd over seeds")
    for r, style, label in ((ise, dict(color="C1"), f"ISE ({ise.name})"),
                            (base, dict(color="k", ls="--", lw=1), f"baseline ({base.name})")):
        ax.axhline(100 * r.metrics["mAP"], label=label, **style)
        ax.axhspan(100 * r.metrics["mAP"] - _sd(r), 100 * r.metrics["mAP"] + _sd(r), color=style["color"], alpha=0.1)
    ax.set(xscale="log", xlabel="α of Beta(α, α)", ylabel="mAP (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def _sd(r: Run, metric: str = "mAP") -> float:
    """The standard deviation over seeds of a run's metric, in points (0 for one seed)."""
    return 100 * float(r.metrics.get(f"{metric}_std", 0.0) or 0.0)


ICE_FIG5 = {k: (v["default"], v["runs"]) for k, v in LAYOUT["ice_fig5"].items()}


def ice_sensitivity_figure(runs: list[Run], out: Path) -> Path:
    """ICE Fig. 5: mAP against λ_h.ins, τ_h.ins, λ_s.ins, τ_s.ins (Market stand-in, ours)

    ``runs`` are the default ICE run, then two runs per parameter in the order of ICE_FIG5."""
    plt = _pyplot()
    default, rest = runs[0], runs[1:]
    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for ax, (name, (value, _)), pair in zip(axes, ICE_FIG5.items(), [rest[i:i + 2] for i in range(0, 8, 2)]):
        points = sorted([(value, default.metrics["mAP"], _sd(default))]
                        + [(float(r.spec.overrides[name]), r.metrics["mAP"], _sd(r)) for r in pair])
        ax.errorbar([p[0] for p in points], [100 * p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    capsize=3)
        ax.axvline(value, color="k", ls=":", lw=1)
        ax.set(xlabel=name, ylabel="mAP (%)", xscale="log")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


# figures beyond the per-table curves: name -> (function, the runs it draws, in order)
CANU_LABELS = LAYOUT["labels"]["canu"]



def canu_mi_figure(runs: list[Run], out: Path) -> Path:
    """CANU Fig. 3: mutual information of pseudo labels and camera per epoch (Duke→Market, Market→Duke stand-ins)

    ``runs``: MMT, MMT+Adv. and CANU-MMT on Duke→Market, then the same on Market→Duke. The dashed line is the
    ground-truth level (true identity vs camera). The paper gives a plot only, no numbers."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, group, title in zip(axes, (runs[:3], runs[3:]), ("Duke→Market", "Market→Duke")):
        for r, label in zip(group, CANU_LABELS):
            ax.plot(r.history["epoch"], r.history["mi_pseudo_camera"], marker="o", ms=3, label=f"{label} ({r.name})")
        ax.axhline(group[0].history["mi_true_camera"].iat[-1], ls="--", color="k", lw=1,
                   label="true identities vs camera")
        ax.set(title=f"{title} stand-ins", xlabel="epoch", ylabel="MI(pseudo label; camera)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def canu_lost_ids_figure(runs: list[Run], out: Path) -> Path:
    """CANU Fig. 4: lost identities per epoch (true identities with no clustered sample), Duke→Market stand-ins

    The paper gives a plot only, no numbers."""
    return _per_epoch(runs, out, "lost_ids", "lost identities", CANU_LABELS, truth=False)


GCL_FIG8_LABELS = LAYOUT["labels"]["gcl_fig8"]


def gcl_nmi_figure(runs: list[Run], out: Path) -> Path:
    """GCL+ Fig. 8: NMI of the pseudo labels per joint-training epoch on the Market stand-in, Trad vs Rot vs Full

    Right: the cluster count per epoch with the true identity count (dashed), as GCL supp. Fig. 2 draws it. The
    paper gives a plot only (20 epochs; Trad higher early, lower late, Full above Rot); the CPU default trains 8."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for r, label in zip(runs, GCL_FIG8_LABELS):
        axes[0].plot(r.history["epoch"], r.history["nmi"], marker="o", ms=3, label=f"{label} ({r.name})")
        axes[1].plot(r.history["epoch"], r.history["num_clusters"], marker="o", ms=3, label=label)
    axes[1].axhline(runs[0].history["num_true_ids"].iat[-1], ls="--", color="k", lw=1, label="true identities")
    axes[0].set(xlabel="joint epoch", ylabel="NMI (pseudo labels vs identities)")
    axes[1].set(xlabel="joint epoch", ylabel="clusters (DBSCAN on the memory)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out, dpi=100)


def gcl_cluster_count_figure(runs: list[Run], out: Path) -> Path:
    """GCL supp. Fig. 2: cluster count per epoch on the Market stand-in, traditional augmentation vs GCL

    GCL is GCL+'s Rotation setting (no D-Mixup, prototype or mixup loss); traditional augmentation is Table 6's
    Multi (augmented positive views, no generator); the dashed line is the true identity count."""
    return _per_epoch(runs, out, "num_clusters", "clusters (DBSCAN)", ["traditional augmentation", "GCL"],
                      truth=True)


def _sweep(code: str, title: str, panels: dict[str, dict[str, list[tuple[str, float]]]]):
    """A GCL+ hyperparameter figure: per panel (a parameter), mAP (mean ± sd over seeds) against its value, one
    line per setting (UDA direction); the runs' order is the panels' order."""
    def figure(runs: list[Run], out: Path) -> Path:
        plt = _pyplot()
        by_name = {r.name: r for r in runs}
        fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
        for ax, (param, lines) in zip(axes[0], panels.items()):
            for label, points in lines.items():
                xs = [x for _, x in points]
                means = [by_name[n].metrics["mAP"] * 100 for n, _ in points]
                sds = [_sd(by_name[n]) for n, _ in points]
                ax.errorbar(xs, means, yerr=sds, marker="o", ms=4, capsize=3, label=label)
            ax.set(xlabel=param, ylabel="mAP (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        return _save(fig, out, dpi=100)
    figure.__doc__ = title
    figure.__name__ = f"gcl_{code}_figure"
    runs = list(dict.fromkeys(n for lines in panels.values() for pts in lines.values() for n, _ in pts))
    return figure, runs


GCL_SWEEPS = {name: _sweep(name, spec["title"], {param: {line: [tuple(p) for p in points]
                                                        for line, points in lines.items()}
                                                for param, lines in spec["panels"].items()})
              for name, spec in LAYOUT["sweeps"].items()}


# figures beyond the per-table curves (figures.yaml): name -> (function, the runs it draws, in order)
DRAW = {fn.__name__: fn for fn in (clustering_quality_figure, ice_cluster_count_figure, canu_mi_figure, gcl_nmi_figure,
                                   canu_lost_ids_figure, ice_kl_figure, ice_sensitivity_figure, ise_mixup_figure,
                                   gcl_cluster_count_figure)}


def _draw(name: str, spec: dict):
    if spec["draw"] not in DRAW:
        raise ReidReproError(f"report/figures.yaml: figures.{name}.draw={spec['draw']!r}; expected one of "
                             f"{sorted(DRAW)}")
    return DRAW[spec["draw"]], list(spec["runs"])


EXTRA_FIGURES = {**{name: _draw(name, spec) for name, spec in LAYOUT["figures"].items()}, **GCL_SWEEPS}
# the figures stage's model figures: caption, and the runs each reads (dvc.yaml: figures)
MODEL_FIGURES = {name: spec["caption"] for name, spec in LAYOUT["model_figures"].items()}
MODEL_FIGURE_RUNS = {name: list(spec["runs"]) for name, spec in LAYOUT["model_figures"].items()}


VERDICT_COLORS = {"holds": "#1a9850", "does not hold": "#d73027", "inconclusive": "#878787",
                  "not testable here": "#74add1"}


def reproduction_figure(found: list[dict], out: Path) -> Path:
    """Every claim's paper gain (x) against our gain (y) with its 95% interval, coloured by verdict, one
    panel per paper; zero lines and the diagonal (our gain = the paper's) drawn. A claim with one seed has no
    interval and is drawn hollow."""
    plt = _pyplot()
    papers = sorted({v["paper"] for v in found}) or ["none"]
    fig, axes = plt.subplots(1, len(papers), figsize=(5.2 * len(papers), 4.6), squeeze=False)
    for ax, paper in zip(axes[0], papers):
        mine = [v for v in found if v["paper"] == paper and not v.get("sign_only")]   # a plot's claim: no gain
        for kind, color in VERDICT_COLORS.items():
            pts = [v for v in mine if v["verdict"] == kind]
            if not pts:
                continue
            x = np.array([v["paper_gain"] for v in pts])
            y = np.array([v["our_gain"] for v in pts])
            has_ci = np.array([v["ci"][0] is not None for v in pts])
            if has_ci.any():
                lo = np.array([v["ci"][0] for v, h in zip(pts, has_ci) if h])
                hi = np.array([v["ci"][1] for v, h in zip(pts, has_ci) if h])
                ax.errorbar(x[has_ci], y[has_ci], yerr=[y[has_ci] - lo, hi - y[has_ci]], fmt="o", color=color,
                            ms=5, lw=1, capsize=2, label=f"{kind} ({len(pts)})")
            if (~has_ci).any():
                ax.scatter(x[~has_ci], y[~has_ci], facecolors="none", edgecolors=color, s=30,
                           label=f"{kind}, one seed ({int((~has_ci).sum())})" if not has_ci.any() else None)
        lim = max([abs(v) for v in ax.get_xlim() + ax.get_ylim()] + [1.0])
        ax.axhline(0, color="k", lw=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.plot([-lim, lim], [-lim, lim], ls="--", color="#555", lw=0.8, label="ours = paper")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel="paper's gain (points)", ylabel="our gain (points)",
               title=f"{short_name(paper)}: {len(mine)} claims")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("Reproduction: each claim's gain in the paper vs on our world (95% interval over seeds)",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, out, dpi=100)
