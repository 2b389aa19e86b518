"""Image Mixup (Zhang et al., ICLR 2018) on the Cluster-Contrast baseline: the comparison of ISE §4.5 and
Fig. 5 (Zhang et al., *Implicit Sample Extension for Unsupervised Person Re-Identification*, CVPR 2022).

Each batch is mixed with a shuffled copy of itself, x = lam x_i + (1 - lam) x_j with lam ~ Beta(alpha, alpha),
and the centroid InfoNCE (ISE Eq. 1) is mixed the same way: lam L(y_i) + (1 - lam) L(y_j). A mixed image
belongs to no cluster; the memory (ISE Eq. 2) is updated under the label of its larger part.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from reid_repro.errors import ReidReproError
from reid_repro.methods.cluster_contrast import ClusterContrast, ClusterContrastConfig


@dataclasses.dataclass(frozen=True)
class MixupConfig(ClusterContrastConfig):
    alpha: float            # Beta(alpha, alpha) of the mixing ratio (ISE Fig. 5's x-axis)

    def __post_init__(self):
        super().__post_init__()
        if self.alpha <= 0:
            raise ReidReproError(f"params.yaml: alpha={self.alpha}; expected > 0")


def mix(images: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    return lam * images + (1.0 - lam) * images[perm]


class Mixup(ClusterContrast):
    config = MixupConfig
    base_section = "cluster_contrast"
    distributed = False
    distributed_why = ("it mixes the batch's images with each other before the forward, and under torchrun a "
                       "rank holds only its share of them")

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        super().on_epoch_start(epoch, features, labels, cams)
        self.rng = np.random.default_rng([self.cfg.seed, epoch, 7])

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        y = batch["labels"]
        lam = float(self.rng.beta(self.cfg.alpha, self.cfg.alpha))
        perm = torch.as_tensor(self.rng.permutation(len(y)), device=y.device)
        f = self.model(mix(batch["images"], lam, perm))
        logits = self.memory.logits(f)
        loss = lam * F.cross_entropy(logits, y) + (1.0 - lam) * F.cross_entropy(logits, y[perm])
        self.memory.update(f, y if lam >= 0.5 else y[perm])
        return {"contrast": loss}


METHOD = Mixup
