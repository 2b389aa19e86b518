"""CANU-MMT: Delorme, Xu, Lathuilière, Horaud and Alameda-Pineda, *CANU-ReID: A Conditional Adversarial Network
for Unsupervised person Re-Identification*, ICPR 2021, on MMT (methods/mmt.py; its settings build on the
``mmt`` section).

Each of MMT's two students gets a camera discriminator D^k (Eq. 11: one per embedding). D^k sees the student's
L2-normalised BN-neck feature, the space that is clustered, and, for CANU (``adversary: conditional``, Eq. 8-9),
the centroid of the sample's cluster: this epoch's clustering centroids, the same ones the classifiers are reset
to, detached. The discriminators, the min-max as two alternating ``Step``s per batch and the outlier rule are
CANU's on both baselines (methods/adversary.py); ``adversary: none`` is plain MMT, step for
step, and ``plain`` is +Adv. (Eq. 4-5).

The min-max of Eq. 11: min over phi^1, phi^2, C of L_MMT - mu sum_k L_C-CAM(phi^k, D^k), max over D^1, D^2. The
students, not the teachers, are the adversaries' players. The networks' Adam is re-created every epoch as in
MMT; the discriminators keep their state across epochs (our reading: CANU's code is not public), and the
history's ``loss`` is the networks' (the discriminators' own losses are ``loss_disc_1`` and ``loss_disc_2``).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.methods.adversary import CameraAdversaries, WithCameraAdversaries, check_adversary
from reid_repro.methods.base import RunContext
from reid_repro.methods.mmt import NETS, Mmt, MmtConfig

DISCS = ("disc_1", "disc_2")    # the discriminators' optimisers, one per student


@dataclasses.dataclass(frozen=True)
class CanuConfig(MmtConfig):
    adversary: str          # none (MMT) | plain (+Adv., Eq. 4-5) | conditional (CANU, Eq. 8-9)
    mu: float               # weight of the adversarial terms (Eq. 9 and 11; MMT: 0.1, Table III)

    def __post_init__(self):
        super().__post_init__()
        check_adversary(self)


class Canu(WithCameraAdversaries, Mmt):
    """MMT's networks and steps, plus a camera discriminator per student stepped before them."""

    config = CanuConfig
    base_section = "mmt"

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        self.adversaries = CameraAdversaries(cfg, model.dim, len(NETS), self.context.train_table, device)

    @property
    def discs(self) -> list[nn.Module]:
        return self.adversaries.discs

    @property
    def camera_index(self) -> torch.Tensor:
        return self.adversaries.camera_index

    def condition(self, labels: torch.Tensor) -> torch.Tensor | None:
        """phi_p of each sample: its cluster's centroid, a constant (Eq. 8); None for the plain adversary."""
        return self.adversaries.condition(self.centroids, labels)

    def disc_losses(self, feats, cams, cond) -> dict[str, torch.Tensor]:
        return self.adversaries.disc_losses(feats, cams, cond)

    def encoder_adv_losses(self, feats, cams, cond) -> dict[str, torch.Tensor]:
        """The students' adversarial terms of Eq. 11: -mu L_C-CAM(phi^k, D^k), with every D^k fixed."""
        return self.adversaries.encoder_losses(feats, cams, cond)

    def training_step(self, batch: dict):
        if not self.adversaries.active:
            return super().training_step(batch)
        students, teachers = self.forward_peers(batch)
        losses = self.mmt_losses(students, teachers, batch["labels"])
        feats = [F.normalize(s.neck, dim=1) for s in students]                 # phi^k(x): N x d, unit rows
        return self.adversaries.steps(feats, batch["cams"], self.condition(batch["labels"]), losses, NETS)


METHOD = Canu
