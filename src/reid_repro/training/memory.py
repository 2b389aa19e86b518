"""Memories shared by the methods: a cluster-centroid memory with momentum updates (Cluster-Contrast, ISE §3.1)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.errors import ReidReproError

UPDATES = ("hard", "mean")


class ClusterMemory(nn.Module):
    """C x d memory of L2-normalised cluster centroids.

    ``loss`` is the centroid InfoNCE of ISE Eq. 1 (cross-entropy over f·m / tau). ``update`` is the momentum
    update of ISE Eq. 2, m <- mu m + (1 - mu) f, then re-normalised, with f either the batch's hardest sample of
    the cluster (lowest similarity to m, Cluster-Contrast v1 and ISE on Market) or the mean of the cluster's
    batch samples (ISE on MSMT17).
    """

    def __init__(self, centroids, temperature: float, momentum: float, update: str = "hard"):
        super().__init__()
        if update not in UPDATES:
            raise ReidReproError(f"memory update={update!r}; expected one of {UPDATES}")
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
        for c in torch.unique(labels).tolist():
            fc = f[labels == c]
            if self.mode == "hard":
                target = fc[torch.argmin(fc @ self.features[c])]
            else:
                target = fc.mean(0)
            m = self.momentum * self.features[c] + (1.0 - self.momentum) * target
            self.features[c] = m / m.norm().clamp_min(1e-12)
