"""CANU-MMT: Delorme, Xu, Lathuilière, Horaud and Alameda-Pineda, *CANU-ReID: A Conditional Adversarial Network
for Unsupervised person Re-Identification*, ICPR 2021, on MMT (methods/mmt.py; its settings build on the
``mmt`` section).

Each of MMT's two students gets a camera discriminator D^k (Eq. 11: one per embedding). D^k sees the student's
L2-normalised BN-neck feature, the space that is clustered. It is trained to recognise the image's camera,
while the student is trained to make it fail. The setting ``adversary`` picks the discriminator:

- ``plain`` (+Adv., Eq. 4-5): D(phi(x)), with L_CAM = the camera cross-entropy.
- ``conditional`` (CANU, Eq. 8-9): D(phi(x), phi_p), which also receives the centroid phi_p of the sample's
  cluster. The centroids are this epoch's clustering centroids, the same ones the classifiers are reset to. The
  condition is detached, so no adversarial gradient reaches the centroid ("we do not back-propagate the
  adversarial loss through the ID-branch").
- ``none``: no discriminator and no extra optimiser. This is plain MMT, step for step.

The discriminator follows §V-A. It has a feature branch d -> d/2 and a condition branch d -> d/2 (each
Linear+BN+ReLU), summed, then d/2 -> d/2 (Linear+BN+ReLU) and d/2 -> K cameras. At d = 2048 these are the
paper's [2048, 1024], [2048, 1024], [1024, 1024], [1024, K]. A sum is our reading: the third layer's input of
1024 excludes a concatenation. The plain discriminator has no condition branch.

The min-max (Eq. 11: min over phi, C of L_MMT - mu sum_k L_C-CAM(phi^k, D^k); max over D^k) is taken in
alternating updates, as two ``Step``s per batch:

1. D step: each D^k descends L_C-CAM on the *detached* features, with its own Adam (``disc_1``, ``disc_2``).
   Maximising -mu L over D is minimising L. mu > 0 would only rescale D's gradient, and Adam ignores that
   scale, so D's loss is logged without it.
2. Encoder step: the students descend L_MMT - mu L_C-CAM through the *updated* D^k, with the D frozen. The
   encoder's adversarial gradient is exactly -mu times the gradient of the discriminator's own loss.

Why alternating rather than a gradient reversal layer: a GRL takes the same two gradients at the same point in
one backward (simultaneous descent-ascent). Alternating lets the encoder play against the discriminator's
latest move, the usual reading of a min-max (and the loop's ``Step`` contract). Whether the authors used a GRL
or alternating updates is not in the paper, and their code is not public.

Outliers (label -1) have no cluster, so they have no centroid. MMT drops them from the epoch's training set, and
the loop's sampler never draws them, so every sample in a batch has a centroid. A -1 in a batch stops the step
with an error (methods/mmt.py), for the plain adversary as well, so +Adv. and CANU always see the same samples.

What the paper leaves open, and what we chose:
- The feature D sees: the normalised student BN-neck feature, with the students, not the teachers, as
  the adversaries' players.
- D's optimiser: Adam at the loop's lr and weight decay. Its state is cleared each epoch with the
  students' (the loop clears every optimiser).
- K: the training set's cameras.
"""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Step
from reid_repro.methods.mmt import NETS, Mmt, MmtConfig

ADVERSARIES = ("none", "plain", "conditional")
DISCS = ("disc_1", "disc_2")    # the discriminators' optimisers


@dataclasses.dataclass(frozen=True)
class CanuConfig(MmtConfig):
    adversary: str          # none (MMT) | plain (+Adv., Eq. 4-5) | conditional (CANU, Eq. 8-9)
    mu: float               # weight of the adversarial terms (Eq. 9 and 11; MMT: 0.1, Table III)

    def __post_init__(self):
        super().__post_init__()
        if self.adversary not in ADVERSARIES:
            raise ReidReproError(f"params.yaml: adversary={self.adversary!r}; expected one of {ADVERSARIES}")
        if self.mu < 0 or (self.adversary != "none" and self.mu == 0):
            raise ReidReproError(f"params.yaml: mu={self.mu}; expected > 0 with an adversary (adversary: none "
                                 "for plain MMT)")


def _block(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, n_out), nn.BatchNorm1d(n_out), nn.ReLU())


class CameraDiscriminator(nn.Module):
    """Camera logits from a feature (Eq. 5), and for CANU also from its cluster centroid (Eq. 8)."""

    def __init__(self, dim: int, num_cameras: int, conditional: bool):
        super().__init__()
        hidden = dim // 2
        self.feature = _block(dim, hidden)
        self.condition = _block(dim, hidden) if conditional else None
        self.head = nn.Sequential(_block(hidden, hidden), nn.Linear(hidden, num_cameras))

    def forward(self, f: torch.Tensor, centroid: torch.Tensor | None = None) -> torch.Tensor:
        h = self.feature(f)                                                   # N x d/2
        if self.condition is not None:
            h = h + self.condition(centroid)
        return self.head(h)                                                   # N x K


def camera_loss(disc: CameraDiscriminator, f: torch.Tensor, cams: torch.Tensor,
                centroid: torch.Tensor | None = None) -> torch.Tensor:
    """L_CAM (Eq. 5) or, with the centroid, L_C-CAM (Eq. 8): -mean log <D(phi(x)[, phi_p]), c>."""
    return F.cross_entropy(disc(f, centroid), cams)


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """Build a graph in which the modules' parameters are constants (the encoder's step against a fixed D)."""
    flags = [(p, p.requires_grad) for m in modules for p in m.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Canu(Mmt):
    """MMT's networks and steps, plus a camera discriminator per network stepped before them. The networks'
    Adam is re-created every epoch as in MMT; the discriminators keep their state across epochs (our reading:
    CANU's code is not public), and the history's ``loss`` is the networks' (the discriminators' own losses are
    ``loss_disc_1`` and ``loss_disc_2``)."""

    config = CanuConfig
    base_section = "mmt"

    def __init__(self, cfg, model, device, num_train: int, train_table=None, init_dir: Path | None = None):
        super().__init__(cfg, model, device, num_train, init_dir)
        self.discs: list[CameraDiscriminator] = []
        if cfg.adversary != "none":
            if train_table is None:
                raise ReidReproError("canu: the camera discriminators need the training set's cameras (train_table)")
            cams = np.unique(train_table["camid"].to_numpy())
            if cams.min() < 0:
                raise ReidReproError(f"canu: camera ids {cams.tolist()}; expected 0-based ids")
            # camera id -> 0..K-1
            self.camera_index = torch.full((int(cams.max()) + 1,), -1, dtype=torch.long, device=device)
            self.camera_index[torch.as_tensor(cams, device=device)] = torch.arange(len(cams), device=device)
            self.discs = [CameraDiscriminator(model.dim, len(cams), cfg.adversary == "conditional").to(device)
                          for _ in NETS]
        self._disc_ce: list[list[float]] = [[] for _ in self.discs]
        self._disc_acc: list[list[float]] = [[] for _ in self.discs]

    def networks(self) -> list[nn.Module]:
        return [*super().networks(), *self.discs]

    def optimizers(self) -> dict:
        opts = super().optimizers()
        for name, disc in zip(DISCS, self.discs):
            opts[name] = (torch.optim.Adam(disc.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay),
                          None)
        return opts

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        super().on_epoch_start(epoch, features, labels, cams)
        self._disc_ce = [[] for _ in self.discs]
        self._disc_acc = [[] for _ in self.discs]

    def condition(self, labels: torch.Tensor) -> torch.Tensor | None:
        """phi_p of each sample: its cluster's centroid, a constant (Eq. 8); None for the plain adversary."""
        return self.centroids[labels].detach() if self.cfg.adversary == "conditional" else None

    def disc_losses(self, feats: list[torch.Tensor], cams: torch.Tensor, cond) -> dict[str, torch.Tensor]:
        """The discriminators' step: L_C-CAM (or L_CAM) on detached features, so only the D learn from it."""
        losses = {}
        for k, (disc, f) in enumerate(zip(self.discs, feats)):
            disc.train()
            logits = disc(f.detach(), cond)
            losses[DISCS[k]] = F.cross_entropy(logits, cams)
            self._disc_ce[k].append(float(losses[DISCS[k]].detach()))
            self._disc_acc[k].append(float((logits.argmax(1) == cams).float().mean()))
        return losses

    def encoder_adv_losses(self, feats: list[torch.Tensor], cams: torch.Tensor, cond) -> dict[str, torch.Tensor]:
        """The students' adversarial terms of Eq. 11: -mu L_C-CAM(phi^k, D^k), with every D^k fixed."""
        with frozen(*self.discs):
            return {f"adv_{k + 1}": -self.cfg.mu * camera_loss(disc, f, cams, cond)
                    for k, (disc, f) in enumerate(zip(self.discs, feats))}

    def training_step(self, batch: dict):
        if self.cfg.adversary == "none":
            return super().training_step(batch)
        return self._min_max(batch)

    def _min_max(self, batch: dict):
        students, teachers = self.forward_peers(batch)
        losses = self.mmt_losses(students, teachers, batch["labels"])
        feats = [F.normalize(s.neck, dim=1) for s in students]                 # phi^k(x): N x d, unit rows
        cams, cond = self.camera_index[batch["cams"]], self.condition(batch["labels"])
        yield Step(self.disc_losses(feats, cams, cond), DISCS)                 # max over D^1, D^2
        yield Step({**losses, **self.encoder_adv_losses(feats, cams, cond)}, NETS)   # min over phi^1, phi^2, C

    def epoch_metrics(self) -> dict[str, float]:
        out = super().epoch_metrics()
        for k in range(len(self.discs)):
            if self._disc_ce[k]:
                out[f"disc_ce_{k + 1}"] = float(np.mean(self._disc_ce[k]))
                out[f"disc_acc_{k + 1}"] = float(np.mean(self._disc_acc[k]))
        return out

    def state_dict(self) -> dict:
        return {**super().state_dict(), "discs": [d.state_dict() for d in self.discs]}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        for d, s in zip(self.discs, state["discs"]):
            d.load_state_dict(s)


METHOD = Canu
