"""ICE: Chen et al., *ICE: Inter-instance Contrastive Encoding for Unsupervised Person Re-identification*,
ICCV 2021.

A momentum encoder (EMA of the online weights, Eq. 2) extracts the features that are clustered, builds the
proxies and is used for inference. The loss (Eq. 3) is the proxy loss (camera-agnostic, Eq. 4-5, plus 0.5 x the
cross-camera loss over camera-aware proxies, Eq. 6-8) + lambda_h x the hard instance contrastive loss (Eq. 9)
+ lambda_s x the soft instance consistency loss KL(P || Q) (Eq. 10-12). Augmentations follow ICE Table 1:
online predictions see the strong view (flip, crop, blur, erasing), hard-instance targets are momentum features
of the same strong view, and the soft targets Q come from the un-augmented images.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from reid_repro.clustering import camera_centroids, centroids
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Method

CONSISTENCY = ("kl", "mse", "strong_strong")


@dataclasses.dataclass(frozen=True)
class IceConfig(LoopConfig):
    alpha: float            # momentum of the EMA encoder (Eq. 2; 0.999)
    tau_a: float            # camera-agnostic proxy temperature (Eq. 5; 0.5)
    camera_aware: bool      # add the cross-camera proxy loss (Eq. 7-8)
    tau_c: float            # cross-camera temperature (0.07)
    n_neg: int              # nearest negative proxies in Eq. 7 (50)
    cross_weight: float     # weight of L_cross in Eq. 8 (0.5)
    hard_instance: bool     # L_h.ins on
    lambda_h: float         # 1
    tau_h: float            # 0.1
    negatives: str          # all | hardest (Table 2)
    soft_instance: bool     # L_s.ins on
    lambda_s: float         # 10
    tau_s: float            # 0.4
    consistency: str        # kl (ours) | mse | strong_strong (Table 3)

    def __post_init__(self):
        super().__post_init__()
        if not 0 <= self.alpha < 1:
            raise ReidReproError(f"params.yaml: alpha={self.alpha}; expected 0 <= alpha < 1")
        if self.negatives not in ("all", "hardest"):
            raise ReidReproError(f"params.yaml: negatives={self.negatives!r}; expected 'all' or 'hardest'")
        if self.consistency not in CONSISTENCY:
            raise ReidReproError(f"params.yaml: consistency={self.consistency!r}; expected one of {CONSISTENCY}")
        if min(self.tau_a, self.tau_c, self.tau_h, self.tau_s) <= 0 or self.n_neg < 1:
            raise ReidReproError("params.yaml: ice temperatures must be > 0 and n_neg >= 1")


def agnostic_proxy_loss(f: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 5: softmax over all cluster proxies, the own cluster's proxy positive (f, proxies L2-normalised)."""
    return F.cross_entropy(f @ proxies.t() / tau, labels)


def cross_camera_proxy_loss(f, labels, cams, proxies, proxy_cluster, proxy_cam, tau: float, n_neg: int):
    """Eq. 7: for f of cluster a seen by camera b, each proxy p_ai of cluster a in another camera i is a positive
    against the n_neg proxies of other clusters most similar to f; averaged over the positives (1/|P|), then
    over the samples that have at least one such positive."""
    sims = f @ proxies.t() / tau                                              # B x P
    own = labels[:, None] == proxy_cluster[None, :]
    positive = own & (cams[:, None] != proxy_cam[None, :])
    negatives = sims.masked_fill(own, float("-inf"))
    k = min(n_neg, int((~own).sum(1).min()))
    hard_neg = negatives.topk(k, dim=1).values if k > 0 else sims[:, :0]       # B x k
    losses = []
    for i in torch.nonzero(positive.any(1)).flatten().tolist():
        pos = sims[i, positive[i]]                                            # |P|
        logits = torch.cat([pos[:, None], hard_neg[i].expand(len(pos), -1)], 1)
        losses.append(-(F.log_softmax(logits, dim=1)[:, 0]).mean())
    return torch.stack(losses).mean() if losses else f.sum() * 0.0


def hard_instance_loss(f, m, labels, tau: float, negatives: str = "all") -> torch.Tensor:
    """Eq. 9: each online f against the momentum features m of the batch: the positive is the same-label m with
    the lowest similarity; the negatives are all other-label m (or only the most similar one, Table 2)."""
    sims = f @ m.t() / tau
    same = labels[:, None] == labels[None, :]
    pos = sims.masked_fill(~same, float("inf")).amin(1)
    neg = sims.masked_fill(same, float("-inf"))
    if negatives == "hardest":
        neg = neg.amax(1, keepdim=True)
    logits = torch.cat([pos[:, None], neg], 1)
    return F.cross_entropy(logits, torch.zeros(len(f), dtype=torch.long, device=f.device))


def soft_distributions(f, m, m_target, tau: float):
    """P (Eq. 10) of online f against momentum m, and the target Q (Eq. 11) of m_target against itself."""
    log_p = F.log_softmax(f @ m.t() / tau, dim=1)
    log_q = F.log_softmax(m_target @ m_target.t() / tau, dim=1)
    return log_p, log_q


def kl_p_q(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Eq. 12: D_KL(P || Q) = sum_j P_j (log P_j - log Q_j), averaged over anchors."""
    return (log_p.exp() * (log_p - log_q)).sum(1).mean()


class Ice(Method):
    config = IceConfig

    def __init__(self, cfg, model, device):
        super().__init__(cfg, model, device)
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        # strong view for predictions; targets of the soft loss: none (ours) or a second strong view
        self.views = ("blur", "blur") if cfg.consistency == "strong_strong" else ("blur", "plain")
        self._kl: list[float] = []

    def encoder(self):
        return self.ema

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        dev = self.device
        self.proxies = torch.as_tensor(centroids(features, labels), device=dev)                   # Eq. 4
        cam_proxies, cluster, cam = camera_centroids(features, labels, cams)                     # Eq. 6
        self.cam_proxies = torch.as_tensor(cam_proxies, device=dev)
        self.proxy_cluster = torch.as_tensor(cluster, device=dev)
        self.proxy_cam = torch.as_tensor(cam, device=dev)
        self._kl = []

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg, y, cams = self.cfg, batch["labels"], batch["cams"]
        strong, target_view = batch["views"]
        f = F.normalize(self.model(strong), dim=1)
        with torch.no_grad():
            m = F.normalize(self.ema(strong), dim=1)            # h.ins targets: momentum, strong (Table 1)
            m_t = F.normalize(self.ema(target_view), dim=1)     # s.ins targets: momentum, none (or strong)
        losses = {"agnostic": agnostic_proxy_loss(f, y, self.proxies, cfg.tau_a)}
        if cfg.camera_aware:
            losses["cross"] = cfg.cross_weight * cross_camera_proxy_loss(                       # Eq. 8
                f, y, cams, self.cam_proxies, self.proxy_cluster, self.proxy_cam, cfg.tau_c, cfg.n_neg)
        if cfg.hard_instance:
            losses["h_ins"] = cfg.lambda_h * hard_instance_loss(f, m, y, cfg.tau_h, cfg.negatives)
        log_p, log_q = soft_distributions(f, m, m_t, cfg.tau_s)
        kl = kl_p_q(log_p, log_q)
        self._kl.append(float(kl.detach()))
        if cfg.soft_instance:
            soft = ((log_p.exp() - log_q.exp()) ** 2).sum(1).mean() if cfg.consistency == "mse" else kl
            losses["s_ins"] = cfg.lambda_s * soft
        return losses

    @torch.no_grad()
    def after_step(self) -> None:
        """Eq. 2 on parameters; BN running statistics follow the online network's the same way."""
        online = self.model.state_dict()
        for name, value in self.ema.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(self.cfg.alpha).add_(online[name].detach(), alpha=1 - self.cfg.alpha)
            else:
                value.copy_(online[name])

    def epoch_metrics(self) -> dict[str, float]:
        return {"kl": float(np.mean(self._kl))} if self._kl else {}

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["ema"])
