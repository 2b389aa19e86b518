"""ISE: Zhang et al., *Implicit Sample Extension for Unsupervised Person Re-Identification*, CVPR 2022.

On the Cluster-Contrast baseline (methods/cluster_contrast.py), each batch feature f gets support samples
f~ = f + lambda * (c* - c) / 2 towards its K nearest other cluster centroids c* (Eq. 3-4), with the degree
lambda growing over training (Eq. 5). Originals and support samples both enter the centroid InfoNCE and both
update the memory (L_SE, Eq. 6); the label-preserving loss pulls each f towards its hardest positive support
sample and away from the hardest negative support sample of every other cluster in the batch (L_LP, Eq. 7).
The total is L_SE + beta * L_LP (Eq. 8).

Paper or released code: besides the memory update it shares with the baseline (``mean_update``), the switch
``lp_weight`` picks beta: paper = ``beta`` (§4.2: 0.1 everywhere); code = ``beta_code`` where a dataset's
released script sets another value (``ISE_train_msmt17.sh``: 0.01; the MSMT runs set ``beta_code``), else ``beta``.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import torch
import torch.nn.functional as F

from reid_repro.errors import ReidReproError
from reid_repro.methods.base import RunContext
from reid_repro.methods.cluster_contrast import ClusterContrast, ClusterContrastConfig

SCHEDULES = ("constant", "linear", "square", "logarithm")
DIRECTIONS = ("nearest", "random", "farthest")


@dataclasses.dataclass(frozen=True)
class IseConfig(ClusterContrastConfig):
    SWITCHES = ClusterContrastConfig.SWITCHES + ("lp_weight",)

    lambda0: float          # base degree (§4.2: 1.0)
    k: int                  # support samples per feature, one per selected cluster (§4.4: 1)
    direction: str          # nearest | random | farthest clusters (Table 3)
    schedule: str           # constant | linear | square | logarithm (Table 2)
    beta: float             # weight of L_LP (Eq. 8; 0.1)
    tau1: float             # temperature of L_SE (Eq. 6; 0.05)
    tau2: float             # temperature of L_LP (Eq. 7; 0.6)
    support: bool           # PLI on (Table 1: off in No.1 and No.3)
    label_preserving: bool  # LP on (Table 1: on in No.3-No.5)
    beta_code: typing.Optional[float]   # beta of the dataset's released script where it differs (MSMT17: 0.01)
    lp_weight: typing.Optional[str]     # code | paper | null: beta_code or beta

    def lp_beta(self) -> float:
        """beta of Eq. 8 in this run (module docstring)."""
        if self.follows("lp_weight") == "code" and self.beta_code is not None:
            return self.beta_code
        return self.beta

    def __post_init__(self):
        super().__post_init__()
        if self.schedule not in SCHEDULES:
            raise ReidReproError(f"params.yaml: schedule={self.schedule!r}; expected one of {SCHEDULES}")
        if self.direction not in DIRECTIONS:
            raise ReidReproError(f"params.yaml: direction={self.direction!r}; expected one of {DIRECTIONS}")
        if self.lambda0 < 0 or self.k < 1 or self.beta < 0 or self.tau1 <= 0 or self.tau2 <= 0 or (
                self.beta_code is not None and self.beta_code < 0):
            raise ReidReproError("params.yaml: ise needs lambda0 >= 0, k >= 1, beta >= 0, tau1 > 0 and tau2 > 0")


def degree(schedule: str, lambda0: float, t: int, total: int) -> float:
    """lambda at iteration t of T (§4.4): constant lambda0/2, linear, square, or logarithm (Eq. 5)."""
    r = t / total
    return {"constant": lambda0 / 2, "linear": lambda0 * r / 2, "square": lambda0 * r * r / 2,
            "logarithm": lambda0 / 2 * math.log((math.e - 1) * r + 1)}[schedule]


def support_samples(f: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor, lam: float, k: int,
                    direction: str = "nearest", generator: torch.Generator | None = None) -> torch.Tensor:
    """B x k x d support samples f~ = f + lam * (c* - c) / 2 (Eq. 3-4).

    c is the centroid of f's own cluster; the k clusters c* are the nearest (cosine similarity of f to the
    memory), a random choice, or the farthest among the other clusters.
    """
    sims = F.normalize(f.detach(), dim=1) @ centroids.t()
    own = F.one_hot(labels, centroids.shape[0]).bool()
    k = min(k, centroids.shape[0] - 1)
    if direction == "nearest":
        picked = sims.masked_fill(own, float("-inf")).topk(k, dim=1).indices
    elif direction == "farthest":
        picked = sims.masked_fill(own, float("inf")).topk(k, dim=1, largest=False).indices
    else:
        noise = torch.rand(sims.shape, generator=generator, device=sims.device)
        picked = noise.masked_fill(own, -1.0).topk(k, dim=1).indices
    delta = 0.5 * (centroids[picked] - centroids[labels][:, None, :])                   # Eq. 4
    return f[:, None, :] + lam * delta                                                   # Eq. 3


def label_preserving_loss(f: torch.Tensor, labels: torch.Tensor, support: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 7: for each f, its hardest positive support sample (lowest similarity, same label) against the
    hardest negative support sample (highest similarity) of each other cluster in the batch.

    ``support`` is B x k x d (with k = 1 and support = f itself this is LP on actual samples, Table 1 No.3).
    """
    B, k, _ = support.shape
    fn = F.normalize(f, dim=1)
    sn = F.normalize(support.reshape(B * k, -1), dim=1)
    s_labels = labels.repeat_interleave(k)
    sim = fn @ sn.t() / tau                                                               # B x Bk
    classes, inverse = torch.unique(labels, return_inverse=True)
    s_class = inverse.repeat_interleave(k)
    same = labels[:, None] == s_labels[None, :]
    # per (anchor, cluster): hardest positive for the own cluster, hardest negative for the others
    pos = sim.masked_fill(~same, float("inf"))
    neg = sim.masked_fill(same, float("-inf"))
    idx = s_class[None, :].expand(B, -1)
    hardest_pos = torch.full((B, len(classes)), float("inf"), device=f.device).scatter_reduce(
        1, idx, pos, "amin")
    hardest_neg = torch.full((B, len(classes)), float("-inf"), device=f.device).scatter_reduce(
        1, idx, neg, "amax")
    logits = torch.where(F.one_hot(inverse, len(classes)).bool(), hardest_pos, hardest_neg)
    return F.cross_entropy(logits, inverse)


class Ise(ClusterContrast):
    config = IseConfig
    base_section = "cluster_contrast"

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        self.step, self.total = 0, cfg.epochs * cfg.iters

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        super().on_epoch_start(epoch, features, labels, cams)
        self.memory.temperature = self.cfg.tau1
        self.step = epoch * self.cfg.iters
        self.generator = torch.Generator(device=self.device).manual_seed(self.cfg.seed * 100003 + epoch)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg, y = self.cfg, batch["labels"]
        f = F.normalize(self.model(batch["images"]), dim=1)
        self.lam = degree(cfg.schedule, cfg.lambda0, self.step, self.total)
        self.step += 1
        losses = {}
        if cfg.support:
            sup = support_samples(f, y, self.memory.features, self.lam, cfg.k, cfg.direction, self.generator)
            f_hat = torch.cat([f, sup.reshape(-1, f.shape[1])])                             # {f; f~}
            y_hat = torch.cat([y, y.repeat_interleave(sup.shape[1])])
        else:
            sup, f_hat, y_hat = f[:, None, :], f, y
        losses["se"] = self.memory.loss(f_hat, y_hat)                                      # Eq. 6
        if cfg.label_preserving:
            losses["lp"] = cfg.lp_beta() * label_preserving_loss(f, y, sup, cfg.tau2)        # Eq. 7-8
        self.memory.update(f_hat, y_hat)                                                    # Eq. 2 with f^
        return losses


METHOD = Ise
