"""Supervised training: cross-entropy over a linear classifier plus the batch-hard triplet loss (Hermans et al.,
2017), margin 0.3. It trains the labelled source model of the UDA settings (true identities) and the start every
method trains from, which stands in for ImageNet pretraining.

``pretext`` says what a class is. ``identity``: the training set's true identities. ``instance``: every training
image is a class of its own (exemplar training, Dosovitskiy et al., 2014): a batch holds ``instances`` strongly
augmented views of each image, and the network learns features that tell images apart, not the people in them.
A start that knows no identity groups the test images by camera more than by person, as ImageNet features do on
real re-ID data (issue 38, target 1; docs/findings/world-design.md, E3).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from reid_repro.config import LoopConfig
from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Method, RunContext, step_schedule


@dataclasses.dataclass(frozen=True)
class SupervisedConfig(LoopConfig):
    margin: float            # triplet margin on L2-normalised features
    label_smoothing: float
    strong_augment: bool     # train on the strong view (colour jitter, blur): features that ignore camera casts
    pretext: str             # what a class is: identity (the true identities) | instance (each training image)

    def __post_init__(self):
        super().__post_init__()
        if self.pretext not in PRETEXTS:
            raise ReidReproError(f"params.yaml: pretext={self.pretext!r} is not one of {PRETEXTS}")
        if self.pretext == "instance" and self.labels != "ground_truth":
            raise ReidReproError(f"params.yaml: pretext 'instance' trains on the images' own labels; expected labels "
                                 f"ground_truth, got {self.labels!r}")


PRETEXTS = ("identity", "instance")


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
        if cfg.pretext == "instance":           # a class per training image
            num_classes = self.context.num_train("supervised")
        else:
            num_classes = self.context.num_classes("supervised")
        self.views = ("jitter",) if cfg.strong_augment else ("base",)
        self.classifier = torch.nn.Linear(model.dim, num_classes, bias=False).to(device)
        torch.nn.init.normal_(self.classifier.weight, std=0.001)

    def optimizers(self) -> dict:
        opt = torch.optim.Adam(self.classifier.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return {**super().optimizers(), "classifier": (opt, step_schedule(opt, self.cfg))}

    def pseudo_labels(self, epoch: int, features: np.ndarray, pids: np.ndarray) -> np.ndarray:
        """The true identities 0..C-1, or with ``pretext: instance`` each image's own index 0..N-1."""
        if self.cfg.pretext == "instance":
            return np.arange(len(pids))
        return super().pseudo_labels(epoch, features, pids)

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
