"""Cluster-Contrast, the baseline of ISE: Zhang et al., *Implicit Sample Extension for Unsupervised Person
Re-Identification*, CVPR 2022, §3.1 and §4.2 (after Dai et al., *Cluster Contrast for Unsupervised Person
Re-Identification*, arXiv 2021).

The memory holds one normalised centroid per DBSCAN cluster, re-initialised at each epoch start; the loss is the
centroid InfoNCE (Eq. 1, tau = 0.05) and the memory follows the momentum update (Eq. 2) with the batch's hardest
sample (Market) or every sample (MSMT17). The memory lives here, with the method it belongs to; ISE and
Mixup subclass ClusterContrast and use it from here.

Paper or released code (``fidelity: code | paper``, switches ``null`` = follow it):

- ``mean_update``: with ``update: mean`` (MSMT17: "all batch samples", ISE §4.2) the released code
  (alibaba/cluster-contrast-reid and zhangxinyu-xyz/ISE-ReID ``clustercontrast/models/cm.py`` ``CM.backward``,
  selected by ``--sample-type ori`` in ``ISE_train_msmt17.sh``) updates the memory sample by sample in batch
  order, m <- mu m + (1 - mu) f, re-normalised after each sample (code); the paper's reading is one update with
  the mean of the cluster's batch samples (paper).
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.clustering import centroids
from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Fidelity, Method, RunContext


# The cluster-centroid memory (ISE §3.1, Eq. 1-2); ISE and Mixup use it through ClusterContrast.
UPDATES = ("hard", "mean")
MEMORY_MODES = ("hard", "mean", "sequential")   # sequential: "mean" as the released code computes it


class ClusterMemory(nn.Module):
    """C x d memory of L2-normalised cluster centroids.

    ``loss`` is the centroid InfoNCE of ISE Eq. 1 (cross-entropy over f·m / tau). ``update`` is the momentum
    update of ISE Eq. 2, m <- mu m + (1 - mu) f, then re-normalised, with f either the batch's hardest sample of
    the cluster (lowest similarity to m, Cluster-Contrast v1 and ISE on Market), the mean of the cluster's
    batch samples (ISE on MSMT17, the paper's reading) or every batch sample in turn (``sequential``: the
    released code's reading of the same words).
    """

    def __init__(self, centroids, temperature: float, momentum: float, update: str = "hard"):
        super().__init__()
        if update not in MEMORY_MODES:
            raise ReidReproError(f"memory update={update!r}; expected one of {MEMORY_MODES}")
        if not 0.0 <= momentum < 1.0:
            raise ReidReproError(f"memory momentum={momentum}; expected 0 <= momentum < 1")
        if temperature <= 0:
            raise ReidReproError(f"temperature={temperature}; expected > 0")
        c = torch.as_tensor(np.asarray(centroids), dtype=torch.float32)
        self.register_buffer("features", F.normalize(c, dim=1))
        self.temperature, self.momentum, self.mode = temperature, momentum, update

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        # a copy, so that the momentum update of this step cannot change what backward sees
        return F.normalize(features, dim=1) @ self.features.clone().t() / self.temperature

    def loss(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.logits(features), labels)

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        f = F.normalize(features.detach().float(), dim=1)
        if self.mode == "sequential":   # one momentum step per sample, in batch order (cm.py CM.backward)
            for x, c in zip(f, labels.tolist()):
                m = self.momentum * self.features[c] + (1.0 - self.momentum) * x
                self.features[c] = m / m.norm().clamp_min(1e-12)
            return
        for c in torch.unique(labels).tolist():
            fc = f[labels == c]
            if self.mode == "hard":
                target = fc[torch.argmin(fc @ self.features[c])]
            else:
                target = fc.mean(0)
            m = self.momentum * self.features[c] + (1.0 - self.momentum) * target
            self.features[c] = m / m.norm().clamp_min(1e-12)


@dataclasses.dataclass(frozen=True)
class ClusterContrastConfig(Fidelity, LoopConfig):
    SWITCHES = ("mean_update",)

    temperature: float      # tau of Eq. 1
    momentum: float         # mu of Eq. 2
    update: str             # hard | mean
    augment: str            # the training view (training/data.py make_transform): base is the paper's
    fidelity: str           # code | paper (module docstring)
    mean_update: typing.Optional[str]   # code | paper | null: how update "mean" is computed

    def memory_mode(self) -> str:
        """The memory update this run computes: hard, mean (paper) or sequential (code)."""
        if self.update == "mean" and self.follows("mean_update") == "code":
            return "sequential"
        return self.update

    def __post_init__(self):
        super().__post_init__()
        self.check_fidelity()
        if self.update not in UPDATES:
            raise ReidReproError(f"params.yaml: update={self.update!r}; expected one of {UPDATES}")
        if not 0 <= self.momentum < 1:
            raise ReidReproError(f"params.yaml: momentum={self.momentum}; expected 0 <= momentum < 1")
        if self.temperature <= 0:
            raise ReidReproError(f"params.yaml: temperature={self.temperature}; expected > 0")


class ClusterContrast(Method):
    config = ClusterContrastConfig

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        self.views = (cfg.augment,)

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        self.memory = ClusterMemory(centroids(features, labels), self.cfg.temperature, self.cfg.momentum,
                                    self.cfg.memory_mode()).to(self.device)

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        f = self.model(batch["images"])
        loss = self.memory.loss(f, batch["labels"])                # Eq. 1
        self.memory.update(f, batch["labels"])                    # Eq. 2, after the loss used the old memory
        return {"contrast": loss}


METHOD = ClusterContrast
