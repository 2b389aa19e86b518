"""Cluster-Contrast, the baseline of ISE: Zhang et al., *Implicit Sample Extension for Unsupervised Person
Re-Identification*, CVPR 2022, §3.1 and §4.2 (after Dai et al., *Cluster Contrast for Unsupervised Person
Re-Identification*, arXiv 2021).

The memory holds one normalised centroid per DBSCAN cluster, re-initialised at each epoch start; the loss is the
centroid InfoNCE (Eq. 1, tau = 0.05) and the memory follows the momentum update (Eq. 2) with the batch's hardest
sample (Market) or every sample (MSMT17).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from reid_repro.clustering import centroids
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Method
from reid_repro.training.memory import UPDATES, ClusterMemory


@dataclasses.dataclass(frozen=True)
class ClusterContrastConfig(LoopConfig):
    temperature: float      # tau of Eq. 1
    momentum: float         # mu of Eq. 2
    update: str             # hard | mean
    augment: str            # the training view (training/data.py make_transform): base is the paper's

    def __post_init__(self):
        super().__post_init__()
        if self.update not in UPDATES:
            raise ReidReproError(f"params.yaml: update={self.update!r}; expected one of {UPDATES}")
        if not 0 <= self.momentum < 1:
            raise ReidReproError(f"params.yaml: momentum={self.momentum}; expected 0 <= momentum < 1")
        if self.temperature <= 0:
            raise ReidReproError(f"params.yaml: temperature={self.temperature}; expected > 0")


class ClusterContrast(Method):
    config = ClusterContrastConfig

    def __init__(self, cfg, model, device):
        super().__init__(cfg, model, device)
        self.views = (cfg.augment,)

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        self.memory = ClusterMemory(centroids(features, labels), self.cfg.temperature, self.cfg.momentum,
                                    self.cfg.update).to(self.device)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        f = self.model(batch["images"])
        loss = self.memory.loss(f, batch["labels"])                # Eq. 1
        self.memory.update(f, batch["labels"])                    # Eq. 2, after the loss used the old memory
        return {"contrast": loss}
