"""What a method plugs into the shared loop (training/loop.py): its memory, its losses, its per-epoch hooks."""

from __future__ import annotations

import numpy as np
import torch


class Method:
    """Base plug-in. The loop owns the model's optimiser and schedule; a method may add its own optimisers.

    Per epoch the loop calls ``on_epoch_start`` with the (method's) encoder features of the training set and
    the pseudo labels, then ``training_step`` once per batch and sums the returned losses.
    """

    # the augmented views the loop makes of each image (training/data.py make_transform); batch["images"] is the
    # first, batch["views"] all of them
    views: tuple[str, ...] = ("base",)

    def __init__(self, cfg, model: torch.nn.Module, device: torch.device):
        self.cfg, self.model, self.device = cfg, model, device

    def encoder(self) -> torch.nn.Module:
        """The network used for clustering, memories and inference (ICE: the momentum encoder)."""
        return self.model

    def extra_optimizers(self) -> list:
        """[(optimizer, scheduler or None)] owned by the method, stepped by the loop after each backward."""
        return []

    def on_epoch_start(self, epoch: int, features: np.ndarray, labels: np.ndarray, cams: np.ndarray) -> None:
        """Rebuild memories from this epoch's features and labels (0..C-1, -1 = outlier)."""

    def training_step(self, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def after_step(self) -> None:
        """Called after the optimisers stepped (EMA updates)."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra per-epoch numbers to log (ICE: the KL term); reset at each epoch start by the method."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
