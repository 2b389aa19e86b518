"""CANU-ReID's camera adversaries: Delorme, Xu, Lathuilière, Horaud and Alameda-Pineda, *CANU-ReID: A Conditional
Adversarial Network for Unsupervised person Re-Identification*, ICPR 2021; shared by CANU on its two baselines
(methods/canu.py on MMT, Eq. 11; methods/canu_ssg.py on SSG, Eq. 10).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.errors import ReidReproError
from reid_repro.methods.base import Step, frozen, step_schedule

# One camera discriminator D^k per embedding phi^k. D^k sees the L2-normalised embedding and is trained to
# recognise the image's camera, while the encoder is trained to make it fail. The setting ``adversary`` picks it:
#
# - ``plain`` (+Adv., Eq. 4-5): D(phi(x)), with L_CAM = the camera cross-entropy.
# - ``conditional`` (CANU, Eq. 8-9): D(phi(x), phi_p), which also receives the centroid phi_p of the sample's
#   cluster, a constant: no adversarial gradient reaches the centroid ("we do not back-propagate the adversarial
#   loss through the ID-branch").
# - ``none``: no discriminator and no extra optimiser: the baseline, step for step.
#
# The discriminator follows §V-A: a feature branch d -> d/2 and a condition branch d -> d/2 (each Linear+BN+ReLU),
# summed, then d/2 -> d/2 (Linear+BN+ReLU) and d/2 -> K cameras. At d = 2048 these are the paper's [2048, 1024],
# [2048, 1024], [1024, 1024], [1024, K]. A sum is our reading: the third layer's input of 1024 excludes a
# concatenation. The plain discriminator has no condition branch.
#
# The min-max (min over the encoder of L_baseline - mu sum_k L_C-CAM(phi^k, D^k); max over the D^k) is taken in
# alternating updates, two ``Step``s per batch (:meth:`CameraAdversaries.steps`):
#
# 1. D step: each D^k descends L_C-CAM on the *detached* embeddings, with its own Adam (``disc_1``, ...).
#    Maximising -mu L over D is minimising L; mu would only rescale D's gradient, which Adam ignores, so D's
#    loss is logged without it.
# 2. Encoder step: the encoder descends L_baseline - mu L_C-CAM through the *updated* D^k, with the D frozen. The
#    encoder's adversarial gradient is exactly -mu times the gradient of the discriminator's own loss.
#
# Why alternating rather than a gradient reversal layer: a GRL takes the same two gradients at the same point in
# one backward (simultaneous descent-ascent). Alternating lets the encoder play against the discriminator's
# latest move, the usual reading of a min-max (and the loop's ``Step`` contract). The paper does not say which
# the authors used, and their code is not public.
#
# Outliers (label -1) have no cluster, so they have no centroid: both baselines drop them from the epoch's
# training set and the loop's sampler never draws them, so every sample in a batch has a centroid. A -1 in a batch
# stops the step with an error (in the baselines), for the plain adversary as well, so +Adv. and CANU always see
# the same samples.
#
# What the paper leaves open, and what we chose: the D sees the students (MMT) or the trained network (SSG), not
# EMA teachers; D's optimiser is Adam at the loop's lr, weight decay and schedule, whose state persists across
# epochs; K is the training set's cameras.

ADVERSARIES = ("none", "plain", "conditional")


def check_adversary(cfg) -> None:
    """The keys CANU adds to its baseline's section (params.yaml: canu, canu_ssg): ``adversary`` (none: the
    baseline | plain: +Adv., Eq. 4-5 | conditional: CANU, Eq. 8-9) and its weight ``mu`` (Eq. 9-11)."""
    if cfg.adversary not in ADVERSARIES:
        raise ReidReproError(f"params.yaml: adversary={cfg.adversary!r}; expected one of {ADVERSARIES}")
    if cfg.mu < 0 or (cfg.adversary != "none" and cfg.mu == 0):
        raise ReidReproError(f"params.yaml: mu={cfg.mu}; expected > 0 with an adversary (adversary: none for the "
                             "baseline)")


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


class CameraAdversaries:
    """``count`` camera discriminators over embeddings of size ``dim``, their optimisers (``disc_1`` ...), their
    two steps and their per-epoch numbers; a CANU method holds one of these (none when adversary is none)."""

    def __init__(self, cfg, dim: int, count: int, train_table, device):
        self.cfg, self.device = cfg, device
        self.discs: list[CameraDiscriminator] = []
        self.names = tuple(f"disc_{k + 1}" for k in range(count))
        if cfg.adversary != "none":
            if train_table is None:
                raise ReidReproError("canu: the camera discriminators need the training set's cameras (train_table)")
            cams = np.unique(train_table["camid"].to_numpy())
            if cams.min() < 0:
                raise ReidReproError(f"canu: camera ids {cams.tolist()}; expected 0-based ids")
            # camera id -> 0..K-1
            self.camera_index = torch.full((int(cams.max()) + 1,), -1, dtype=torch.long, device=device)
            self.camera_index[torch.as_tensor(cams, device=device)] = torch.arange(len(cams), device=device)
            self.discs = [CameraDiscriminator(dim, len(cams), cfg.adversary == "conditional").to(device)
                          for _ in range(count)]
        self.reset_metrics()

    @property
    def active(self) -> bool:
        return bool(self.discs)

    def optimizers(self) -> dict:
        # our choice (the paper states no schedule and its code is not public): the encoder's, the loop's
        opts = {name: torch.optim.Adam(d.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
                for name, d in zip(self.names, self.discs)}
        return {name: (opt, step_schedule(opt, self.cfg)) for name, opt in opts.items()}

    def reset_metrics(self) -> None:
        self._ce: list[list[float]] = [[] for _ in self.discs]
        self._acc: list[list[float]] = [[] for _ in self.discs]

    def condition(self, centroids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """phi_p of each sample: its cluster's centroid, a constant (Eq. 8); None for the plain adversary."""
        return centroids[labels].detach() if self.cfg.adversary == "conditional" else None

    def disc_losses(self, feats: list[torch.Tensor], cams: torch.Tensor, cond) -> dict[str, torch.Tensor]:
        """The discriminators' step: L_C-CAM (or L_CAM) on detached features, so only the D learn from it."""
        losses = {}
        for k, (disc, f) in enumerate(zip(self.discs, feats)):
            disc.train()
            logits = disc(f.detach(), cond)
            losses[self.names[k]] = F.cross_entropy(logits, cams)
            self._ce[k].append(float(losses[self.names[k]].detach()))
            self._acc[k].append(float((logits.argmax(1) == cams).float().mean()))
        return losses

    def encoder_losses(self, feats: list[torch.Tensor], cams: torch.Tensor, cond) -> dict[str, torch.Tensor]:
        """The encoder's adversarial terms: -mu L_C-CAM(phi^k, D^k), with every D^k fixed."""
        with frozen(*self.discs):
            return {f"adv_{k + 1}": -self.cfg.mu * camera_loss(disc, f, cams, cond)
                    for k, (disc, f) in enumerate(zip(self.discs, feats))}

    def steps(self, feats: list[torch.Tensor], batch_cams: torch.Tensor, cond, losses: dict,
              encoder_optimizers: tuple[str, ...]):
        """The min-max of one batch: D's step on the detached ``feats`` (unit rows), then the encoder's step on
        its baseline ``losses`` plus the adversarial terms through the updated, frozen D."""
        cams = self.camera_index[batch_cams]
        yield Step(self.disc_losses(feats, cams, cond), self.names)                  # max over the D^k
        yield Step({**losses, **self.encoder_losses(feats, cams, cond)}, encoder_optimizers)   # min over phi

    def metrics(self) -> dict[str, float]:
        out = {}
        for k in range(len(self.discs)):
            if self._ce[k]:
                out[f"disc_ce_{k + 1}"] = float(np.mean(self._ce[k]))
                out[f"disc_acc_{k + 1}"] = float(np.mean(self._acc[k]))
        return out

    def state_dict(self) -> list:
        return [d.state_dict() for d in self.discs]

    def load_state_dict(self, state: list) -> None:
        for d, s in zip(self.discs, state):
            d.load_state_dict(s)


class WithCameraAdversaries:
    """Mixin (before the baseline class) for a CANU method holding ``self.adversaries``: adds their
    discriminators, optimisers, per-epoch numbers and state to the baseline's (CANU-MMT and CANU-SSG)."""

    adversaries: CameraAdversaries

    def networks(self) -> list[nn.Module]:
        return [*super().networks(), *self.adversaries.discs]

    def optimizers(self) -> dict:
        return {**super().optimizers(), **self.adversaries.optimizers()}

    def on_epoch_start(self, epoch, features, labels, cams) -> None:
        super().on_epoch_start(epoch, features, labels, cams)
        self.adversaries.reset_metrics()

    def epoch_metrics(self) -> dict[str, float]:
        return {**super().epoch_metrics(), **self.adversaries.metrics()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "discs": self.adversaries.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.adversaries.load_state_dict(state["discs"])
