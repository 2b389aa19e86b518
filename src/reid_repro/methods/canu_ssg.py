"""CANU-SSG: Delorme, Xu, Lathuilière, Horaud and Alameda-Pineda, *CANU-ReID: A Conditional Adversarial Network
for Unsupervised person Re-Identification*, ICPR 2021, Eq. 10, on SSG (methods/ssg.py; its settings build on the
``ssg`` section).

SSG's three embeddings each get a camera discriminator: D^F, D^U and D^L see the L2-normalised phi^F, phi^U and
phi^L of the trained network and, for CANU (``adversary: conditional``), the centroid of the sample's *global*
(phi^F) cluster, detached (Eq. 10: "conditioned on the global cluster"). The discriminators and the min-max as two
alternating ``Step``s per batch are CANU's on both baselines (methods/adversary.py):

    min over phi of L_SSG - mu (L_C-CAM(phi^F, D^F) + L_C-CAM(phi^U, D^U) + L_C-CAM(phi^L, D^L)), max over D.

``adversary: none`` is SSG, step for step; ``plain`` is SSG+Adv. (Table IV). mu: 0.05 for SSG (§V-A; Table III
sweeps it). Outliers: SSG drops every sample that is an outlier in any of its three groupings, so every sample
in a batch has a global cluster and a centroid.

CANU's SSG variant was never released (its code repository holds a README only); everything above is from the
paper's text.
"""

from __future__ import annotations

import dataclasses

import torch.nn.functional as F

from reid_repro.methods.adversary import CameraAdversaries, WithCameraAdversaries, check_adversary
from reid_repro.methods.base import RunContext
from reid_repro.methods.ssg import PARTS, Ssg, SsgConfig


@dataclasses.dataclass(frozen=True)
class CanuSsgConfig(SsgConfig):
    adversary: str          # none (SSG) | plain (SSG+Adv., Eq. 4-5) | conditional (CANU-SSG, Eq. 10)
    mu: float               # weight of the adversarial terms (§V-A: 0.05 for SSG; Table III)

    def __post_init__(self):
        super().__post_init__()
        check_adversary(self)


class CanuSsg(WithCameraAdversaries, Ssg):
    """SSG's network and step, plus a camera discriminator per embedding (F, U, L) stepped before it."""

    config = CanuSsgConfig
    base_section = "ssg"
    encoder_optimizers = ("model",)        # the history's loss: SSG's terms and the adversarial ones, not D's

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        self.adversaries = CameraAdversaries(cfg, model.dim, len(PARTS), self.context.train_table, device)

    def training_step(self, batch: dict):
        if not self.adversaries.active:
            return super().training_step(batch)
        losses, parts = self.ssg_losses(batch)
        feats = list(F.normalize(parts, dim=2).unbind(1))                        # phi^F, phi^U, phi^L: unit rows
        cond = self.adversaries.condition(self.centroids, self.part_labels[batch["index"], 0])   # global cluster
        return self.adversaries.steps(feats, batch["cams"], cond, losses, ("model",))


METHOD = CanuSsg
