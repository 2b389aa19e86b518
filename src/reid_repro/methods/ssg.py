"""SSG: Fu, Wei, Wang, Zhou, Shi and Huang, *Self-similarity Grouping: A Simple Unsupervised Cross Domain
Adaptation Approach for Person Re-identification*, ICCV 2019, the second baseline of CANU-ReID (Delorme et al.,
ICPR 2021, §III-B and Eq. 10; methods/canu_ssg.py adds the camera adversaries).

What CANU's §III-B describes and the released SSG code (OasisYang/SSG @82114a6: ``selftraining.py``,
``reid/trainers.py`` ``FinedTrainer2``, ``reid/loss/triplet.py``, ``reid/models/resnet.py``) computes, which this
module follows:

- Three embeddings of each image from the backbone's last feature map: the whole map (phi^F), its upper half
  (phi^U) and its lower half (phi^L), each globally pooled, unnormalised (``ReidNet.stripe_features``).
- Grouping, every epoch: each embedding of every target training image (flip-summed, L2-normalised, as the
  code's ``extract_features``) is clustered on its own: k-reciprocal Jaccard distance, eps, DBSCAN. eps is the
  code's rule (``eps_rule: quantile``: at the first epoch the mean of the smallest ``rho`` fraction of each
  embedding's distances, then fixed; kept in the method's state so a resumed run keeps it) or the loop's
  (``fixed``).
- A sample is kept only if none of the three groupings calls it an outlier (the code's ``generate_dataloader``);
  the loop's sampler draws kept samples only, by their global (phi^F) label, and the clustering scores are of
  the global labels with the dropped samples as outliers. Each kept sample also carries its upper- and
  lower-body labels, looked up by its index in the batch.
- Loss (CANU Eq. 6 with the code's fourth term): L = Tri(x2, g) + Tri(phi^F, g) + Tri(phi^U, u) + Tri(phi^L, l),
  where g, u, l are the sample's global, upper and lower labels and x2 = ReLU(BN(W phi^F)) is the code's
  embedding head (``Linear(d, d, bias=False)``, BN, ReLU; owned by this method, trained with the network).
  Tri is the code's ``TripletLoss(margin=0.5, use_semi=True)`` (:func:`semi_hard_triplet`).
- Test feature (``test_feature``, a paper-vs-code switch): ``paper`` (the default, as issue 12 asks) is the
  concatenation of the three L2-normalised (original + flipped) embeddings, as CANU §III-B says; ``code`` is the
  code's ``extract_features(for_eval=True)``: the flip-summed embeddings concatenated unnormalised, the whole then
  L2-normalised (``extract_features`` does that), so a part with a larger norm weighs more. The clustering uses
  the same three parts (``encoder()``), each L2-normalised by :func:`split_parts` under either setting, so the
  switch changes the evaluation only.
- Optimiser: the code's SGD (momentum 0.9, weight decay 5e-4) at a constant lr of 6e-5 (``adjust_lr`` is never
  called) at paper scale: ``optimizer: sgd``. At CPU scale ``optimizer: adam`` at the loop's lr, as every other
  CPU method (module section of params.yaml says why).

Declared deviations:
- The code's distance adds a source term (``lambda_value`` 0.1: each target image's distance to the source
  set); SHI-Labs/Self-Similarity-Grouping#17 asks why and is unanswered, and CANU's text does not mention it.
  We cluster the target alone (lambda 0), as MMT's DBSCAN script does.
- The code's semi-hard positives come from the global P x K layout for the part terms too; we follow it (the
  sampler's K-blocks are the global clusters).
- The code evaluates the test set every epoch and keeps the best top-1; we report the last epoch.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.clustering import EPS_RULES, centroids, dbscan_labels, eps_by_rule, jaccard_distance, relabel
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Fidelity, Method, RunContext, step_schedule
from reid_repro.training import distributed

OPTIMIZERS = ("sgd", "adam")
PARTS = ("global", "upper", "lower")     # phi^F, phi^U, phi^L


@dataclasses.dataclass(frozen=True)
class SsgConfig(Fidelity, LoopConfig):
    SWITCHES = ("test_feature",)

    margin: float           # the triplet hinge's margin (code: 0.5)
    eps_rule: str           # fixed (the loop's eps) | quantile (code: from rho at the first epoch, per part)
    rho: float              # fraction of the smallest Jaccard distances averaged into eps (code: 1.6e-3)
    optimizer: str          # sgd (code: momentum 0.9, constant lr) | adam
    momentum: float         # SGD momentum (code: 0.9)
    fidelity: str           # code (the released SSG code's computation) | paper (CANU §III-B)
    test_feature: typing.Optional[str]   # code | paper | null (= fidelity); module docstring

    def __post_init__(self):
        super().__post_init__()
        self.check_fidelity()
        checks = {"margin": self.margin >= 0, "eps_rule": self.eps_rule in EPS_RULES, "rho": 0 < self.rho < 1,
                  "optimizer": self.optimizer in OPTIMIZERS, "momentum": 0 <= self.momentum < 1}
        for key, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r} is out of range")


# ---- the loss (a pure function of tensors) ----------------------------------------------------------------------

def semi_hard_triplet(f: torch.Tensor, labels: torch.Tensor, instances: int, margin: float) -> torch.Tensor:
    """The code's ``TripletLoss(use_semi=True)`` on a batch of P blocks of K = ``instances`` consecutive samples
    (the sampler's layout): every pair (j, j') with j before j' in the same block is a positive pair, d_ap =
    d(j, j'); its negative distance is the anchor j's smallest distance to a sample of another ``labels`` value.
    Loss: the mean over those pairs of max(0, d_ap - d_an + margin). Euclidean distances on ``f`` as given."""
    n = len(f)
    if n % instances:
        raise ReidReproError(f"ssg: a batch of {n} is not whole blocks of {instances} instances")
    sq = (f * f).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2 * f @ f.t()).clamp_min(1e-12).sqrt()
    block = torch.arange(n, device=f.device) // instances
    order = torch.arange(n, device=f.device)
    pos = (block[:, None] == block[None, :]) & (order[:, None] < order[None, :])      # j before j', same block
    other = labels[:, None] != labels[None, :]
    if not bool(other.any(1).all()):
        raise ReidReproError("ssg: a batch where an anchor has no sample of another label (one cluster only)")
    d_an = dist.masked_fill(~other, float("inf")).min(1).values                       # per anchor j
    anchor, positive = torch.nonzero(pos, as_tuple=True)
    return F.relu(dist[anchor, positive] - d_an[anchor] + margin).mean()


# ---- the networks -----------------------------------------------------------------------------------------------

class Head(nn.Module):
    """The code's embedding on the global feature: x2 = ReLU(BN(W phi^F)), W a d x d linear map without bias."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc = nn.Linear(dim, dim, bias=False)
        nn.init.kaiming_normal_(self.fc.weight, mode="fan_out")
        self.bn = nn.BatchNorm1d(dim)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.fc(f)))


class PartEncoder(nn.Module):
    """The test and clustering feature: [phi^F, phi^U, phi^L], each the sum over the image and its horizontal flip
    (3d). ``normalise_parts`` (test_feature: paper) L2-normalises each part, so after ``extract_features``
    renormalises the whole every part weighs 1/sqrt 3; without it (code) the whole is normalised as it is."""

    def __init__(self, net: nn.Module, normalise_parts: bool = True):
        super().__init__()
        self.net = net
        self.normalise_parts = normalise_parts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = self.net.stripe_features(x) + self.net.stripe_features(torch.flip(x, dims=[3]))   # N x 3 x d
        return (F.normalize(parts, dim=2) if self.normalise_parts else parts).flatten(1)


def split_parts(features: np.ndarray) -> list[np.ndarray]:
    """The three L2-normalised embeddings of the clustering feature (PartEncoder's layout)."""
    parts = np.split(np.asarray(features, dtype=np.float32), len(PARTS), axis=1)
    return [p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12) for p in parts]


def keep_in_all(part_labels: list[np.ndarray]) -> list[np.ndarray]:
    """SSG's outlier rule: a sample an outlier (-1) in any grouping is dropped from all three; each grouping's
    labels are renumbered 0..C-1 over the kept samples."""
    kept = np.logical_and.reduce([lab >= 0 for lab in part_labels])
    return [relabel(np.where(kept, lab, -1)) for lab in part_labels]


class Ssg(Method):
    config = SsgConfig

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        if not hasattr(model, "stripe_features"):
            raise ReidReproError("ssg: the model has no stripe_features (expected a reid_repro ReidNet)")
        self.head = Head(model.dim).to(device)
        self.part_encoder = PartEncoder(model, normalise_parts=cfg.follows("test_feature") == "paper")
        self.eps: list[float] | None = None
        self._part_labels: np.ndarray | None = None
        self._clusters = {p: 0 for p in PARTS}

    def encoder(self) -> nn.Module:
        return self.part_encoder

    def networks(self) -> list[nn.Module]:
        return [self.model, self.head]

    def optimizers(self) -> dict:
        cfg = self.cfg
        params = [p for p in (*self.model.parameters(), *self.head.parameters()) if p.requires_grad]
        if cfg.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        return {"model": (opt, step_schedule(opt, self.cfg))}

    def pseudo_labels(self, epoch, features, pids) -> np.ndarray:
        """Three groupings (phi^F, phi^U, phi^L), intersected by :func:`keep_in_all`; returns the global labels
        and keeps the part labels for the batches (``batch["index"]``)."""
        cfg = self.cfg
        if cfg.labels == "ground_truth":
            labels = [relabel(pids)] * len(PARTS)
        else:
            dists = [jaccard_distance(self.units(p), k1=cfg.k1, k2=cfg.k2) for p in split_parts(features)]
            if self.eps is None:      # the code: each grouping's eps from the first epoch's distances, then fixed
                self.eps = [eps_by_rule(d, cfg.eps_rule, cfg.eps, cfg.rho) for d in dists]
            labels = keep_in_all([relabel(self.per_image(dbscan_labels(d, e, cfg.min_samples)))
                                  for d, e in zip(dists, self.eps)])
        self._part_labels = np.stack(labels, 1)                                    # N x 3: g, u, l
        return labels[0]

    @torch.no_grad()
    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        """The part labels (computed with the global ones, on rank 0 under torchrun) for every rank, and the
        global clusters' centroids of phi^F (CANU-SSG's condition, Eq. 10)."""
        part = distributed.broadcast(self._part_labels if distributed.is_main() else None)
        self._clusters = {p: int(part[:, i].max()) + 1 for i, p in enumerate(PARTS)}
        self.part_labels = torch.as_tensor(part, device=self.device)
        self.centroids = torch.as_tensor(centroids(split_parts(features)[0], labels), device=self.device)

    def ssg_losses(self, batch: dict) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The four triplet terms of one batch, and its embeddings (N x 3 x d: phi^F, phi^U, phi^L)."""
        labels = self.part_labels[batch["index"]]                                  # N x 3: g, u, l
        if bool((labels < 0).any()):
            raise ReidReproError("ssg: a batch holds a dropped sample; the sampler draws kept samples only")
        self.head.train()
        parts = self.model.stripe_features(batch["images"])                        # N x 3 x d, unnormalised
        k, m = self.cfg.instances, self.cfg.margin
        g, u, l = labels.unbind(1)
        return {"triplet_x2": semi_hard_triplet(self.head(parts[:, 0]), g, k, m),
                "triplet_global": semi_hard_triplet(parts[:, 0], g, k, m),
                "triplet_upper": semi_hard_triplet(parts[:, 1], u, k, m),
                "triplet_lower": semi_hard_triplet(parts[:, 2], l, k, m)}, parts

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.ssg_losses(batch)[0]

    def epoch_metrics(self) -> dict[str, float]:
        out = {f"clusters_{p}": float(c) for p, c in self._clusters.items()}
        if self.eps is not None:
            out.update({f"eps_{p}": float(e) for p, e in zip(PARTS, self.eps)})
        return out

    def state_dict(self) -> dict:
        return {"head": self.head.state_dict(), "eps": self.eps}

    def load_state_dict(self, state: dict) -> None:
        self.head.load_state_dict(state["head"])
        self.eps = state["eps"]


METHOD = Ssg
