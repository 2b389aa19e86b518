"""ICE: Chen et al., *ICE: Inter-instance Contrastive Encoding for Unsupervised Person Re-identification*,
ICCV 2021.

A momentum encoder (EMA of the online weights, Eq. 2) extracts the features that are clustered, builds the
proxies and is used for inference. The loss (Eq. 3) is the proxy loss (camera-agnostic, Eq. 4-5, plus 0.5 x the
cross-camera loss over camera-aware proxies, Eq. 6-8) + lambda_h x the hard instance contrastive loss (Eq. 9)
+ lambda_s x the soft instance consistency loss KL(P || Q) (Eq. 10-12). Augmentations follow ICE Table 1:
online predictions see the strong view (flip, crop, blur, erasing), hard-instance targets are momentum features
of the same strong view, and the soft targets Q come from the un-augmented images.

Paper or released code. Where the official code (chenhao2345/ICE, ``ice/trainers.py`` ``ImageTrainer.train``
and ``examples/unsupervised_train.py``) computes something other than the equations, ``fidelity: code`` (the
default: the code produced the published numbers) follows the code and ``fidelity: paper`` the equations; each
disagreement is also a switch of its own (``null`` = follow ``fidelity``):

- ``agnostic``: code = the raw (un-normalised) BN-neck feature against un-normalised centroids of the momentum
  features, over tau_a, with label smoothing 0.1 (``CrossEntropyLabelSmooth``); paper = cosine / tau_a (Eq. 5).
- ``cross``: code = per camera in the batch, the mean over its samples of one softmax over *all* of the
  cluster's camera proxies (uniform 1/|P| targets) and the 50 nearest negatives, *summed* over the cameras;
  paper = Eq. 7, one term per other-camera positive, averaged.
- ``proxy_norm``: code = the camera proxies enter the cross-camera term as ``F.normalize(percam_tempV.t())``:
  ``F.normalize``'s default ``dim=1`` on the d x P transpose scales each *feature dimension* to unit length across
  the P proxies (each proxy is a unit mean of its camera's features before that); paper = unit-length proxies,
  so that f . p is the cosine of Eq. 7.
- ``cross_negatives``: code = the negatives are the last 50 of an ascending sort over all P proxies in which the
  sample's own cluster's proxies are pushed to the bottom (``temp_sims[k, ori_asso_ind] = -10000``;
  ``torch.sort(temp_sims[k])[1][-50:]``): with fewer than 50 other proxies, own proxies come back in as
  negatives with their true similarity (which ones: a stable sort's last, i.e. the highest cameras; the CUDA sort
  leaves ties unordered), and with fewer than 50 proxies in all every proxy is a negative; paper = each sample's
  min(50, number of other-cluster proxies) nearest proxies of other clusters (Eq. 7 names no rule for fewer).
- ``kl``: code = KL(Q || P) (``nn.KLDivLoss(log P, Q)``); paper = KL(P || Q) (Eq. 12).
- ``target``: code = the momentum features of the hard-instance loss and of P come from a second, independent
  strong augmentation; paper = the same strong view as the online input (Table 1 says only "strong").
- ``ema_bn``: code = the momentum encoder runs in train mode (batch-statistic BN, with ShuffleBN: under ghost
  batch-norm, ``model.bn_groups`` > 1, its BN chunks see a random permutation of the batch, as the code shuffles
  the batch across its 4 GPUs before the momentum encoder, ``trainers.py``) and the EMA covers parameters only;
  paper (not specified; our reading) = eval mode, BN buffers
  averaged with the parameters.
- the sampler (code: one image per camera first, ``MoreCameraSampler``) is the loop's ``cross_camera`` setting
  (``camera_sampler = "more_camera"``: the code's rule, training/data.py).
"""

from __future__ import annotations

import copy
import dataclasses
import typing

import numpy as np
import torch
import torch.nn.functional as F

from reid_repro.clustering import camera_centroids, centroids
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Fidelity, Method, RunContext
from reid_repro.models import ema_update
from reid_repro.training import distributed

CONSISTENCY = ("kl", "mse", "strong_strong")
SWITCHES = ("agnostic", "cross", "proxy_norm", "cross_negatives", "kl", "target", "ema_bn")


@dataclasses.dataclass(frozen=True)
class IceConfig(Fidelity, LoopConfig):
    SWITCHES = SWITCHES

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
    fidelity: str           # code (the official code's computation) | paper (the equations)
    agnostic: typing.Optional[str]   # each switch: code | paper | null (= fidelity); see the module docstring
    cross: typing.Optional[str]
    proxy_norm: typing.Optional[str]
    cross_negatives: typing.Optional[str]
    kl: typing.Optional[str]
    target: typing.Optional[str]
    ema_bn: typing.Optional[str]

    def __post_init__(self):
        super().__post_init__()
        self.check_fidelity()
        if not 0 <= self.alpha < 1:
            raise ReidReproError(f"params.yaml: alpha={self.alpha}; expected 0 <= alpha < 1")
        if self.negatives not in ("all", "hardest"):
            raise ReidReproError(f"params.yaml: negatives={self.negatives!r}; expected 'all' or 'hardest'")
        if self.consistency not in CONSISTENCY:
            raise ReidReproError(f"params.yaml: consistency={self.consistency!r}; expected one of {CONSISTENCY}")
        if min(self.tau_a, self.tau_c, self.tau_h, self.tau_s) <= 0 or self.n_neg < 1:
            raise ReidReproError("params.yaml: ice temperatures must be > 0 and n_neg >= 1")


def agnostic_proxy_loss(f: torch.Tensor, labels: torch.Tensor, proxies: torch.Tensor, tau: float,
                        label_smoothing: float = 0.0) -> torch.Tensor:
    """Eq. 5: softmax over all cluster proxies, the own cluster's proxy positive. Paper: f and proxies
    L2-normalised; code: the raw BN-neck feature, un-normalised centroids, label smoothing 0.1."""
    return F.cross_entropy(f @ proxies.t() / tau, labels, label_smoothing=label_smoothing)


def code_proxies(proxies: torch.Tensor) -> torch.Tensor:
    """The camera proxies as the official cross-camera term reads them (``proxy_norm: code``):
    ``F.normalize(percam_tempV.t())`` normalises the rows of the d x P transpose, i.e. each feature dimension
    across the P proxies; returned P x d, so that ``f @ result.t()`` is the code's ``target_inputs``."""
    return F.normalize(proxies.t(), dim=1).t()


def nearest_negatives(sims: torch.Tensor, own: torch.Tensor, n_neg: int, rule: str) -> list[torch.Tensor]:
    """Per sample, the logits of its negatives in the cross-camera term (B x P ``sims``, ``own`` its cluster's
    proxies). paper: the min(n_neg, #other-cluster proxies) most similar proxies of other clusters. code: the last
    n_neg of an ascending (stable) sort over all P proxies with the own cluster's pushed to the bottom, so that own
    proxies come back in (with their true similarity) when fewer than n_neg others exist (module docstring)."""
    if rule == "code":
        pushed = sims.detach().masked_fill(own, float("-inf"))
        last = torch.sort(pushed, dim=1, stable=True).indices[:, -n_neg:]
        return list(sims.gather(1, last))
    others = sims.masked_fill(own, float("-inf"))
    top = others.topk(min(n_neg, sims.shape[1]), dim=1).values
    return [row[torch.isfinite(row)] for row in top]


def cross_camera_proxy_loss(f, labels, cams, proxies, proxy_cluster, proxy_cam, tau: float, n_neg: int,
                            negatives: str = "paper"):
    """Eq. 7: for f of cluster a seen by camera b, each proxy p_ai of cluster a in another camera i is a positive
    against the n_neg proxies of other clusters most similar to f (``negatives``: :func:`nearest_negatives`);
    averaged over the positives (1/|P|), then over the samples that have at least one such positive."""
    sims = f @ proxies.t() / tau                                              # B x P
    own = labels[:, None] == proxy_cluster[None, :]
    positive = own & (cams[:, None] != proxy_cam[None, :])
    hard_neg = nearest_negatives(sims, own, n_neg, negatives)
    losses = []
    for i in torch.nonzero(positive.any(1)).flatten().tolist():
        pos = sims[i, positive[i]]                                            # |P|
        logits = torch.cat([pos[:, None], hard_neg[i].expand(len(pos), -1)], 1)
        losses.append(-(F.log_softmax(logits, dim=1)[:, 0]).mean())
    return torch.stack(losses).mean() if losses else f.sum() * 0.0


def cross_camera_proxy_loss_code(f, labels, cams, proxies, proxy_cluster, tau: float, n_neg: int,
                                 negatives: str = "code"):
    """The official cross-camera loss: for each camera in the batch, the mean over its samples of
    -sum_j (1/|P|) log softmax over [every proxy of the sample's cluster (its own camera's included), its
    negatives (:func:`nearest_negatives`)], *summed* over the cameras (the caller applies the 0.5)."""
    sims = f @ proxies.t() / tau                                              # B x P
    own = labels[:, None] == proxy_cluster[None, :]
    hard_neg = nearest_negatives(sims, own, n_neg, negatives)
    total = f.sum() * 0.0
    for cam in torch.unique(cams).tolist():
        terms = []
        for i in torch.nonzero(cams == cam).flatten().tolist():
            logits = torch.cat([sims[i, own[i]], hard_neg[i]])
            n_pos = int(own[i].sum())
            terms.append(-(F.log_softmax(logits, dim=0)[:n_pos]).sum() / n_pos)
        total = total + torch.stack(terms).mean()
    return total


def shuffle_bn(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The momentum encoder's forward with ShuffleBN (MoCo; ICE's code shuffles the batch across GPUs before it):
    with ghost batch-norm (``bn_groups`` > 1, train mode) its BN chunks see a random permutation of the batch, not
    the online network's chunks; the output comes back in batch order. Otherwise a plain forward."""
    if not net.training or getattr(net, "bn_groups", 1) == 1 or distributed.gathering():
        return net(x)     # torchrun: each rank's BN sees its own images, shuffled or not (a declared deviation)
    perm = torch.randperm(len(x), device=x.device)
    return net(x[perm])[perm.argsort()]


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


def kl_q_p(log_p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """The official code's KLDivLoss(log P, Q) = D_KL(Q || P) = sum_j Q_j (log Q_j - log P_j), per anchor."""
    return (log_q.exp() * (log_q - log_p)).sum(1).mean()


class Ice(Method):
    config = IceConfig
    camera_sampler = "more_camera"         # the code's MoreCameraSampler (cross_camera: true)

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        # views: [0] strong (online input), [1] the soft targets' view: none (plain) or strong (Table 3's
        # strong-strong), [2] with target: code, a second strong view for the momentum targets m
        self.views = ("blur", "blur") if cfg.consistency == "strong_strong" else ("blur", "plain")
        if cfg.follows("target") == "code":
            self.views = self.views + ("blur",)
        self._kl: list[float] = []

    def encoder(self):
        return self.ema

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        dev = self.device
        raw = self.cfg.follows("agnostic") == "code"   # the code's centres: means of the features, not renormed
        self.proxies = torch.as_tensor(centroids(features, labels, normalize=not raw), device=dev)  # Eq. 4
        cam_proxies, cluster, cam = camera_centroids(features, labels, cams)                     # Eq. 6
        self.cam_proxies = torch.as_tensor(cam_proxies, device=dev)
        if self.cfg.follows("proxy_norm") == "code":     # each feature dimension across the proxies (docstring)
            self.cam_proxies = code_proxies(self.cam_proxies)
        self.proxy_cluster = torch.as_tensor(cluster, device=dev)
        self.proxy_cam = torch.as_tensor(cam, device=dev)
        self._kl = []

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        cfg, y, cams = self.cfg, batch["labels"], batch["cams"]
        strong, target_view = batch["views"][:2]
        m_view = batch["views"][2] if len(batch["views"]) > 2 else strong
        raw = self.model(strong)
        f = F.normalize(raw, dim=1)
        self.ema.train(cfg.follows("ema_bn") == "code")        # code: batch-statistic BN in the teacher
        with torch.no_grad():
            m = F.normalize(shuffle_bn(self.ema, m_view), dim=1)          # h.ins targets: momentum, strong
            m_t = F.normalize(shuffle_bn(self.ema, target_view), dim=1)   # s.ins: momentum, none (or strong)
        if cfg.follows("agnostic") == "code":
            losses = {"agnostic": agnostic_proxy_loss(raw, y, self.proxies, cfg.tau_a, label_smoothing=0.1)}
        else:
            losses = {"agnostic": agnostic_proxy_loss(f, y, self.proxies, cfg.tau_a)}
        if cfg.camera_aware:
            if cfg.follows("cross") == "code":
                cross = cross_camera_proxy_loss_code(f, y, cams, self.cam_proxies, self.proxy_cluster, cfg.tau_c,
                                                     cfg.n_neg, cfg.follows("cross_negatives"))
            else:
                cross = cross_camera_proxy_loss(f, y, cams, self.cam_proxies, self.proxy_cluster, self.proxy_cam,
                                                cfg.tau_c, cfg.n_neg, cfg.follows("cross_negatives"))
            losses["cross"] = cfg.cross_weight * cross                                            # Eq. 8
        if cfg.hard_instance:
            losses["h_ins"] = cfg.lambda_h * hard_instance_loss(f, m, y, cfg.tau_h, cfg.negatives)
        log_p, log_q = soft_distributions(f, m, m_t, cfg.tau_s)
        kl = kl_q_p(log_p, log_q) if cfg.follows("kl") == "code" else kl_p_q(log_p, log_q)
        self._kl.append(float(kl.detach()))
        if cfg.soft_instance:
            soft = ((log_p.exp() - log_q.exp()) ** 2).sum(1).mean() if cfg.consistency == "mse" else kl
            losses["s_ins"] = cfg.lambda_s * soft
        return losses

    @torch.no_grad()
    def after_step(self) -> None:
        """Eq. 2 on parameters. ema_bn: paper (our reading): BN running statistics follow the online network's
        the same way; code: parameters only (the teacher's statistics come from its own train-mode passes)."""
        if self.cfg.follows("ema_bn") == "code":
            ema_update(self.ema.parameters(), self.model.parameters(), self.cfg.alpha)
            return
        online = self.model.state_dict()
        floating = [(value, online[name]) for name, value in self.ema.state_dict().items()
                    if value.dtype.is_floating_point]
        ema_update([t for t, _ in floating], [s for _, s in floating], self.cfg.alpha)
        for name, value in self.ema.state_dict().items():
            if not value.dtype.is_floating_point:
                value.copy_(online[name])

    def epoch_metrics(self) -> dict[str, float]:
        return {"kl": float(np.mean(self._kl))} if self._kl else {}

    def state_dict(self) -> dict:
        return {"ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.ema.load_state_dict(state["ema"])


METHOD = Ice
