"""Supervised pretraining with true identities: cross-entropy over a linear classifier plus the batch-hard
triplet loss (Hermans et al., 2017), margin 0.3. It stands in for ImageNet pretraining (every method starts
from its checkpoint) and trains the labelled source model of the UDA settings.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from reid_repro.config import LoopConfig
from reid_repro.methods.base import Method, RunContext, step_schedule


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(LoopConfig):
    margin: float            # triplet margin on L2-normalised features
    label_smoothing: float
    strong_augment: bool     # train on the strong view (colour jitter, blur): features that ignore camera casts


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Mean over anchors of max(0, d(a, hardest positive) - d(a, hardest negative) + margin), Euclidean."""
    dist = torch.cdist(features, features)
    same = labels[:, None] == labels[None, :]
    hardest_pos = dist.masked_fill(~same, float("-inf")).amax(1)
    hardest_neg = dist.masked_fill(same, float("inf")).amin(1)
    return F.relu(hardest_pos - hardest_neg + margin).mean()


class Supervised(Method):
    config = SupervisedConfig

    def __init__(self, cfg, model, device, context: RunContext | None = None):
        super().__init__(cfg, model, device, context)
        num_classes = self.context.num_classes("supervised")
        self.views = ("jitter",) if cfg.strong_augment else ("base",)
        self.classifier = torch.nn.Linear(model.dim, num_classes, bias=False).to(device)
        torch.nn.init.normal_(self.classifier.weight, std=0.001)

    def optimizers(self) -> dict:
        opt = torch.optim.Adam(self.classifier.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return {**super().optimizers(), "classifier": (opt, step_schedule(opt, self.cfg))}

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        f = self.model(batch["images"])
        ce = F.cross_entropy(self.classifier(f), batch["labels"], label_smoothing=self.cfg.label_smoothing)
        tri = batch_hard_triplet(F.normalize(f, dim=1), batch["labels"], self.cfg.margin)
        return {"ce": ce, "triplet": tri}

    def state_dict(self) -> dict:
        return {"classifier": self.classifier.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.classifier.load_state_dict(state["classifier"])


METHOD = Supervised
