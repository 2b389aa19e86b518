"""What a method plugs into the shared loop (training/loop.py): its networks and optimisers, its memory, its
losses and its per-epoch hooks.

Every hook has a default that is the plain single-network case, so a method overrides only what it changes:

- ``optimizers()``: every optimiser the loop steps, by name (default: Adam over the model). A method with more
  networks (MMT's second net, a GAN's generator and discriminator, CANU's camera adversary) adds its own.
- ``training_step(batch)``: returns the named losses of one update of every optimiser, or yields ``Step``s: each
  is one backward and one step of the optimisers it names, run by the loop before the generator resumes, so a
  later step sees the parameters an earlier one changed (a discriminator step, then the generator's step).
- ``pseudo_labels``: this epoch's training labels (default: Jaccard + DBSCAN, or the true identities).
- ``encoder()`` clusters, ``eval_encoder()`` is evaluated and saved (MMT clusters on the mean of its teachers
  and evaluates one of them).
- ``reset_optimizers_each_epoch``: clear optimiser state at each epoch start: True for every optimiser, or the
  names of those to clear (MMT's code re-creates its networks' Adam; CANU's discriminators keep theirs).
- ``networks()``: every network it holds (torchrun broadcasts rank 0's copies each epoch); ``distributed =
  False`` (with ``distributed_why``) for a method that cannot run on several processes.
- ``encoder_optimizers``: the optimisers of the networks being trained (None: all). The history's ``loss`` is
  the sum of the losses of the steps that update them; an adversary's own losses are logged only as
  ``loss_<name>``, so ``loss`` stays comparable across methods.
- constructor extras: ``training/run.py`` passes ``num_classes``, ``num_train``, ``train_table`` and
  ``init_dir`` to a method whose ``__init__`` names them.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from reid_repro.clustering import dbscan_labels, jaccard_distance, relabel
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


@dataclasses.dataclass
class Step:
    """One update inside a training step: backward of the sum of ``losses``, then a step of the optimisers named
    in ``optimizers`` (``None``: every optimiser). Only those optimisers' gradients are zeroed first."""

    losses: dict[str, torch.Tensor]
    optimizers: tuple[str, ...] | None = None


StepResult = Union[dict, Iterator[Step]]


class Method:
    """Base plug-in (module docstring). The loop owns the device, the schedule, checkpoints and the order of
    updates; the method owns its networks, optimisers, memories and losses."""

    # the augmented views the loop makes of each image (training/data.py make_transform); batch["images"] is the
    # first, batch["views"] all of them
    views: tuple[str, ...] = ("base",)
    # the params section whose settings this method's own are added to (ISE and Mixup: cluster_contrast)
    base_section: str | None = None
    # which reference sampler ``cross_camera: true`` follows (training/data.py): gallery (SpCL's
    # RandomMultipleGallerySampler, as Cluster-Contrast, ISE and MMT) | more_camera (ICE's MoreCameraSampler)
    camera_sampler: str = "gallery"
    reset_optimizers_each_epoch: Union[bool, tuple[str, ...]] = False
    encoder_optimizers: Union[tuple[str, ...], None] = None
    # whether the method runs under torchrun (training/distributed.py); if not, why (named in the error)
    distributed: bool = True
    distributed_why: str = ""

    def __init__(self, cfg, model: torch.nn.Module, device: torch.device):
        self.cfg, self.model, self.device = cfg, model, device

    def encoder(self) -> torch.nn.Module:
        """The network used for clustering and memories (ICE: the momentum encoder)."""
        return self.model

    def eval_encoder(self) -> torch.nn.Module:
        """The network evaluated at the end and saved as the run's model (default: ``encoder()``)."""
        return self.encoder()

    def networks(self) -> list[torch.nn.Module]:
        """Every network the method holds (trained, EMA teachers, adversaries): under torchrun their parameters
        and BN statistics are broadcast from rank 0 each epoch. Default: the model and the encoders."""
        found: list[torch.nn.Module] = []
        for net in (self.model, self.encoder(), self.eval_encoder()):
            if not any(net is n for n in found):
                found.append(net)
        return found

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, object | None]]:
        """{name: (optimizer, scheduler or None)} stepped by the loop; None = the loop's warm-up and step
        schedule. Default: Adam over the model's trainable parameters at the loop's lr and weight decay."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        return {"model": (torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay), None)}

    def pseudo_labels(self, epoch: int, features: np.ndarray, pids: np.ndarray) -> np.ndarray:
        """This epoch's training labels 0..C-1 (-1 = outlier) from the encoder's ``features``: the k-reciprocal
        Jaccard distance and DBSCAN with the loop's settings, or the true identities ``pids`` when
        ``labels: ground_truth`` (the supervised upper bounds)."""
        cfg = self.cfg
        if cfg.labels == "ground_truth":
            return relabel(pids)
        return relabel(dbscan_labels(jaccard_distance(features, k1=cfg.k1, k2=cfg.k2), cfg.eps, cfg.min_samples))

    def on_epoch_start(self, epoch: int, features: np.ndarray, labels: np.ndarray, cams: np.ndarray) -> None:
        """Rebuild memories from this epoch's features and labels (0..C-1, -1 = outlier)."""

    def training_step(self, batch: dict) -> StepResult:
        """The named losses of one update of every optimiser, or a generator of ``Step``s (module docstring)."""
        raise NotImplementedError

    def after_step(self) -> None:
        """Called once per batch after every optimiser step (EMA updates)."""

    def epoch_metrics(self) -> dict[str, float]:
        """Extra per-epoch numbers to log (ICE: the KL term); reset at each epoch start by the method."""
        return {}

    def artifacts(self) -> dict:
        """What the run keeps beside its model.pt besides the evaluated encoder, saved as ``artifacts.pt`` (every
        run writes one, empty by default; GCL+ keeps its generator and discriminator there, which stage-3 runs and
        `reid-repro generate` read)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


# ---- camera adversaries --------------------------------------------------------------------------------------
#
# CANU-ReID's camera adversaries: Delorme, Xu, Lathuilière, Horaud and Alameda-Pineda, *CANU-ReID: A Conditional
# Adversarial Network for Unsupervised person Re-Identification*, ICPR 2021, shared by CANU on its two baselines
# (methods/canu.py on MMT, Eq. 11; methods/canu_ssg.py on SSG, Eq. 10). They live with the plug-in contract
# because a run stage depends on its own method's module and its base's only (dvc.yaml), so code two method
# modules share must be in a file every run stage depends on.
#
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
# EMA teachers; D's optimiser is Adam at the loop's lr and weight decay, whose state persists across epochs; K is
# the training set's cameras.

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
        return {name: (torch.optim.Adam(d.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay), None)
                for name, d in zip(self.names, self.discs)}

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
