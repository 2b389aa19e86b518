"""What a method plugs into the shared loop (training/loop.py): its memory, its losses, its per-epoch hooks."""

from __future__ import annotations

import numpy as np
import torch

from reid_repro.errors import ReidReproError

FIDELITY = ("code", "paper")


class Fidelity:
    """For a method config with ``fidelity`` (code | paper) and one switch per disagreement between the paper's
    equations and its released code (``SWITCHES``; each code | paper | null = follow ``fidelity``)."""

    SWITCHES: tuple[str, ...] = ()

    def check_fidelity(self) -> None:
        if self.fidelity not in FIDELITY:
            raise ReidReproError(f"params.yaml: fidelity={self.fidelity!r}; expected one of {FIDELITY}")
        for name in self.SWITCHES:
            if getattr(self, name) not in (None,) + FIDELITY:
                raise ReidReproError(f"params.yaml: {name}={getattr(self, name)!r}; expected code, paper or null "
                                     "(follow fidelity)")

    def follows(self, switch: str) -> str:
        """``code`` or ``paper``: what the disagreement ``switch`` computes in this run."""
        return getattr(self, switch) or self.fidelity


class Method:
    """Base plug-in. The loop owns the model's optimiser and schedule; a method may add its own optimisers.

    Per epoch the loop calls ``on_epoch_start`` with the (method's) encoder features of the training set and
    the pseudo labels, then ``training_step`` once per batch and sums the returned losses.
    """

    # the augmented views the loop makes of each image (training/data.py make_transform); batch["images"] is the
    # first, batch["views"] all of them
    views: tuple[str, ...] = ("base",)
    # the params section whose settings this method's own are added to (ISE and Mixup: cluster_contrast)
    base_section: str | None = None

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
