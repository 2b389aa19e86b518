"""MMT: Ge, Chen and Li, *Mutual Mean-Teaching: Pseudo Label Refinery for Unsupervised Domain Adaptation on
Person Re-identification*, ICLR 2020, with DBSCAN pseudo labels: "MMT (DBSCAN)", the baseline that CANU
(Delorme et al., ICPR 2021, Eq. 11) is added to. methods/canu.py adds the camera adversaries.

What the released code (yxgeee/MMT @057e1ea, ``examples/mmt_train_dbscan.py``, ``mmt/trainers.py``
``MMTTrainer``, ``mmt/loss``) computes, which this module follows:

- Two networks. Net 1 is the loop's model. Net 2 comes from ``init_dir/artifacts.pt`` (key ``model_2``), the
  second source training (another seed; MMT's ``--init-2``). ``init_2`` says what happens without it:
  - ``model_2``: it is required; its absence is an error.
  - ``auto``: load it when present, else copy net 1.
  - ``copy``: always copy net 1 (an ablation: one source training).

  A copy is a weaker MMT. The two peers then start identical and differ only through the independent
  augmentations each sees (``views``) and the updates that follow, whereas MMT relies on two differently
  pretrained peers. Every epoch's history records ``net2_copied`` (1 = a copy), so such a run cannot pass
  for the real thing.
- Each net has a classifier ``Linear(d, N_train, bias=False)`` on its BN-neck feature. At each epoch start,
  rows 0..C-1 of all four classifiers (two students, two teachers) are set to the L2-normalised centroids of the
  clustering features, and the logits are sliced to those C columns, as the code does. The effective classifier
  therefore has one row per cluster, while the parameter keeps its shape, so the optimisers are built only once.
- Each net has a mean teacher. The EMA of its parameters (backbone and classifier) is E <- a_t E + (1 - a_t) theta,
  with a_t = min(1 - 1/(t+1), alpha) and t the global step. The teachers run in train mode and keep their own BN
  statistics, which are not averaged.
- Losses for net k, with k' its peer (CANU Eq. 11, L_MMT for both nets; the hard losses are CANU Eq. 1-3 with
  pseudo labels):
    L = (1 - l_id)(CE_1 + CE_2) + (1 - l_tri)(TRI_1 + TRI_2)
        + l_id (SCE(p_1, p~_2) + SCE(p_2, p~_1)) + l_tri (STRI(f_1, f~_2) + STRI(f_2, f~_1)),
  with l_id = 0.5 and l_tri = 0.8 (CANU's release command; MMT's DBSCAN script defaults):
  - CE: cross-entropy with label smoothing 0.1 on the classifier logits p.
  - TRI: the code's softmax-triplet with margin 0 on the pooled pre-BN feature f, over the batch-hard pairs:
    -log softmax(d_ap, d_an)[an] = softplus(d_ap - d_an). CANU Eq. 2 writes the hinge with m = 0.5, for source
    pretraining.
  - SCE: cross-entropy from the peer teacher's softmax over the logits, p~.
  - STRI: cross-entropy from the peer teacher's softmax over (d_ap, d_an) to the student's. The teacher's
    distances are taken at the *student's* hardest positive and negative.
  The MMT paper's own equation numbers are not cited here: its text is not in this project's paper store.
- Clustering: ``encoder()`` is the mean of the two teachers' L2-normalised eval features, renormalised (the
  code's ``cf``). ``eval_encoder()`` is teacher 1. The code evaluates both teachers every epoch and keeps the
  best by test mAP; we report teacher 1 at the last epoch.
- eps: ``eps_rule: fixed`` uses the loop's eps. ``quantile`` is the code's rule: at the first epoch, the mean of
  the smallest ``rho`` fraction of the Jaccard distances, then fixed. It is kept in the method's state, so a
  resumed run keeps it.
- Views: two independent augmentations of each image. Net 1 and teacher 1 see the first, net 2 and teacher 2
  the second.
- Ghost BN: the model's ``bn_groups`` (models.py; paper scale 4). The reference trains on 4 GPUs, so each BN
  sees 16 images, and CANU's README splits the batch in 4 "to cope with BN". The losses still see the whole
  batch.
- Optimisers: Adam at the loop's lr and weight decay.
  - ``model`` steps net 1 and classifier 1; ``net_2`` steps net 2 and classifier 2.
  - Adam is per parameter, so two Adams equal the code's one.
  - Their state is cleared at every epoch start (``reset_optimizers_each_epoch``), because the code re-creates
    Adam each epoch.
- Outliers (label -1): they have no cluster, and MMT drops them from the epoch's training set. The loop's sampler
  likewise draws only clustered images, so a batch holding -1 is an error rather than something to mask.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.clustering import EPS_RULES, centroids, dbscan_labels, eps_by_rule, jaccard_distance, relabel
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Method, RunContext, step_schedule
from reid_repro.models import ema_update, load_state

INIT_2 = ("model_2", "auto", "copy")
NETS = ("model", "net_2")       # the optimisers of the two students


@dataclasses.dataclass(frozen=True)
class MmtConfig(LoopConfig):
    alpha: float            # ceiling of the teachers' EMA momentum a_t (code: 0.999)
    soft_ce_weight: float   # l_id: SCE weight; the hard CE gets 1 - l_id (0.5)
    soft_tri_weight: float  # l_tri: STRI weight; the hard triplet gets 1 - l_tri (0.8)
    label_smoothing: float  # of the hard CE (0.1)
    eps_rule: str           # fixed (the loop's eps) | quantile (code: from rho at the first epoch)
    rho: float              # fraction of the smallest Jaccard distances averaged into eps (code: 1.6e-3)
    init_2: str             # model_2 | auto | copy: where net 2 comes from (module docstring)

    def __post_init__(self):
        super().__post_init__()
        checks = {"alpha": 0 <= self.alpha < 1, "soft_ce_weight": 0 <= self.soft_ce_weight <= 1,
                  "soft_tri_weight": 0 <= self.soft_tri_weight <= 1,
                  "label_smoothing": 0 <= self.label_smoothing < 1,
                  "eps_rule": self.eps_rule in EPS_RULES, "rho": 0 < self.rho < 1, "init_2": self.init_2 in INIT_2}
        expected = {"eps_rule": f"one of {EPS_RULES}", "init_2": f"one of {INIT_2}"}
        for key, ok in checks.items():
            if not ok:
                raise ReidReproError(f"params.yaml: {key}={getattr(self, key)!r}; expected "
                                     f"{expected.get(key, 'a value in range')}")


# ---- the losses (pure functions of tensors) --------------------------------------------------------------------

def euclidean(f: torch.Tensor) -> torch.Tensor:
    """N x N Euclidean distances, clamped before the root as in the code (a finite gradient on the diagonal)."""
    sq = (f * f).sum(1)
    return (sq[:, None] + sq[None, :] - 2 * f @ f.t()).clamp_min(1e-12).sqrt()


def batch_hard(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of each anchor's farthest same-label sample and nearest other-label sample."""
    same = labels[:, None] == labels[None, :]
    return dist.masked_fill(~same, float("-inf")).argmax(1), dist.masked_fill(same, float("inf")).argmin(1)


def pair_distances(dist: torch.Tensor, ap: torch.Tensor, an: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(len(dist), device=dist.device)
    return torch.stack([dist[rows, ap], dist[rows, an]], 1)                     # N x 2: (d_ap, d_an)


def hard_triplet(f: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The code's ``SoftTripletLoss(margin=0)``: mean of -log softmax(d_ap, d_an)[an] = softplus(d_ap - d_an)."""
    dist = euclidean(f)
    return -F.log_softmax(pair_distances(dist, *batch_hard(dist, labels)), 1)[:, 1].mean()


def soft_triplet(f: torch.Tensor, f_teacher: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """STRI: cross-entropy from the peer teacher's softmax over (d_ap, d_an), at the student's hardest pairs,
    to the student's; the teacher's side is a constant."""
    dist = euclidean(f)
    ap, an = batch_hard(dist, labels)
    target = F.softmax(pair_distances(euclidean(f_teacher), ap, an), 1).detach()
    return -(target * F.log_softmax(pair_distances(dist, ap, an), 1)).sum(1).mean()


def soft_ce(logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """SCE: cross-entropy from the peer teacher's class distribution (a constant) to the student's."""
    return -(F.softmax(teacher_logits, 1).detach() * F.log_softmax(logits, 1)).sum(1).mean()


# ---- the networks -----------------------------------------------------------------------------------------------

class Output(NamedTuple):
    pooled: torch.Tensor    # N x d, pre-BN: the triplet losses' feature
    neck: torch.Tensor      # N x d, BN neck: the classifier's input (and the camera adversary's, methods/canu.py)
    logits: torch.Tensor    # N x C, over this epoch's clusters


class Peer(nn.Module):
    """One of MMT's networks: a ReidNet and its classifier over the training images (rows 0..C-1 in use)."""

    def __init__(self, net: nn.Module, num_train: int):
        super().__init__()
        self.net = net
        self.classifier = nn.Linear(net.dim, num_train, bias=False)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, x: torch.Tensor, num_clusters: int) -> Output:
        pooled, neck = self.net.features(x)          # ghost BN over the net's bn_groups chunks (models.py)
        return Output(pooled, neck, self.classifier(neck)[:, :num_clusters])


class MeanTeacher(nn.Module):
    """The clustering feature: the sum of both teachers' L2-normalised eval features (extract_features
    renormalises it, which gives the code's mean)."""

    def __init__(self, teacher_1: nn.Module, teacher_2: nn.Module):
        super().__init__()
        self.teacher_1, self.teacher_2 = teacher_1, teacher_2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.teacher_1(x), dim=1) + F.normalize(self.teacher_2(x), dim=1)


def ema_momentum(step: int, alpha: float) -> float:
    """a_t of the code's ramp: 0 at the first step (the teacher takes the student), then up to ``alpha``."""
    return min(1.0 - 1.0 / (step + 1), alpha)


def second_source(path: Path | None) -> dict | None:
    """Net 2's weights from a start folder's artifacts.pt (key ``model_2``, written by source@<dataset>), or None
    when the file is absent or holds none (a pretrain or warm-up start)."""
    if path is None or not path.is_file():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ReidReproError(f"{path}: cannot read ({exc}); expected the artifacts.pt of a start folder") from exc
    return saved.get("model_2") if isinstance(saved, dict) else None


class Mmt(Method):
    config = MmtConfig
    views = ("base", "base")
    reset_optimizers_each_epoch = NETS     # the code re-creates the networks' Adam every epoch
    encoder_optimizers = NETS

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        num_train, init_dir = self.context.num_train(type(self).__name__), self.context.init_dir
        net_2 = copy.deepcopy(model)
        path = Path(init_dir) / "artifacts.pt" if init_dir is not None else None
        state_2 = second_source(path)
        found = state_2 is not None
        if cfg.init_2 == "model_2" and not found:
            raise ReidReproError(f"{path}: holds no model_2; MMT's net 2 starts from the second source training "
                                 "(source@<dataset> writes it; set mmt.init_2: auto or copy to start it from a copy "
                                 "of net 1)")
        self.net2_copied = cfg.init_2 == "copy" or not found
        if not self.net2_copied:
            load_state(net_2, state_2, f"{path} (model_2)", "MMT's net 2")
        elif cfg.init_2 == "auto":
            print(f"mmt: {path or 'init_dir'} holds no model_2; net 2 starts as a copy of net 1 (init_2: auto; "
                  "history column net2_copied)")
        self.students = [Peer(model, num_train).to(device), Peer(net_2, num_train).to(device)]
        self.teachers = [copy.deepcopy(s) for s in self.students]
        for t in self.teachers:
            t.requires_grad_(False)
        self.mean_teacher = MeanTeacher(self.teachers[0].net, self.teachers[1].net)
        self.num_clusters, self.step, self.eps = 0, 0, None

    def encoder(self) -> nn.Module:
        return self.mean_teacher

    def eval_encoder(self) -> nn.Module:
        return self.teachers[0].net

    def networks(self) -> list[nn.Module]:
        return [*self.students, *self.teachers]

    def optimizers(self) -> dict:
        def adam(peer):
            params = [p for p in peer.parameters() if p.requires_grad]
            opt = torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
            return opt, step_schedule(opt, self.cfg)
        return {name: adam(peer) for name, peer in zip(NETS, self.students)}

    def pseudo_labels(self, epoch, features, pids) -> np.ndarray:
        cfg = self.cfg
        if cfg.labels == "ground_truth" or cfg.eps_rule == "fixed":
            return super().pseudo_labels(epoch, features, pids)
        dist = jaccard_distance(self.units(features), k1=cfg.k1, k2=cfg.k2)
        if self.eps is None:          # the code: eps from the first epoch's distances, then fixed
            self.eps = eps_by_rule(dist, cfg.eps_rule, cfg.eps, cfg.rho)
        return relabel(self.per_image(dbscan_labels(dist, self.eps, cfg.min_samples)))

    @torch.no_grad()
    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        self.centroids = torch.as_tensor(centroids(features, labels), device=self.device)     # C x d, unit rows
        self.num_clusters = len(self.centroids)
        for peer in self.students + self.teachers:
            peer.classifier.weight[:self.num_clusters] = self.centroids

    def forward_peers(self, batch: dict) -> tuple[list[Output], list[Output]]:
        """Students (with gradients) and teachers (without), net k and teacher k on view k."""
        C = self.num_clusters
        for peer in self.students + self.teachers:
            peer.train()                                    # the code's teachers run in train mode too
        students = [s(x, C) for s, x in zip(self.students, batch["views"][:2])]
        with torch.no_grad():
            teachers = [t(x, C) for t, x in zip(self.teachers, batch["views"][:2])]
        return students, teachers

    def mmt_losses(self, students: list[Output], teachers: list[Output], labels: torch.Tensor) -> dict:
        """L_MMT of both nets (CANU Eq. 11 without the adversaries), each term weighted as in the code."""
        if bool((labels < 0).any()):
            raise ReidReproError("MMT batch holds an outlier (label -1); the sampler draws clustered images only")
        cfg, (s1, s2), (t1, t2) = self.cfg, students, teachers
        l_id, l_tri = cfg.soft_ce_weight, cfg.soft_tri_weight
        ce = sum(F.cross_entropy(s.logits, labels, label_smoothing=cfg.label_smoothing) for s in students)
        tri = sum(hard_triplet(s.pooled, labels) for s in students)
        sce = soft_ce(s1.logits, t2.logits) + soft_ce(s2.logits, t1.logits)              # peer teachers
        stri = soft_triplet(s1.pooled, t2.pooled, labels) + soft_triplet(s2.pooled, t1.pooled, labels)
        return {"ce": (1 - l_id) * ce, "triplet": (1 - l_tri) * tri, "soft_ce": l_id * sce,
                "soft_triplet": l_tri * stri}

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        students, teachers = self.forward_peers(batch)
        return self.mmt_losses(students, teachers, batch["labels"])

    @torch.no_grad()
    def after_step(self) -> None:
        """Each teacher's parameters (backbone and classifier) follow its student; BN statistics stay its own."""
        a = ema_momentum(self.step, self.cfg.alpha)
        for student, teacher in zip(self.students, self.teachers):
            ema_update(teacher.parameters(), student.parameters(), a)
        self.step += 1

    def epoch_metrics(self) -> dict[str, float]:
        return {"net2_copied": float(self.net2_copied), **({"eps": self.eps} if self.eps is not None else {})}

    def state_dict(self) -> dict:
        return {"net_2": self.students[1].net.state_dict(),
                "classifiers": [s.classifier.state_dict() for s in self.students],
                "teachers": [t.state_dict() for t in self.teachers], "step": self.step, "eps": self.eps}

    def load_state_dict(self, state: dict) -> None:
        self.students[1].net.load_state_dict(state["net_2"])
        for s, c in zip(self.students, state["classifiers"]):
            s.classifier.load_state_dict(c)
        for t, c in zip(self.teachers, state["teachers"]):
            t.load_state_dict(c)
        self.step, self.eps = state["step"], state["eps"]


METHOD = Mmt
