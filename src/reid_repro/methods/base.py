"""What a method plugs into the shared loop (training/loop.py): its networks and optimisers, its memory, its
losses and its per-epoch hooks.

Every hook has a default that is the plain single-network case, so a method overrides only what it changes:

- ``optimizers()``: every optimiser the loop steps, by name, each with the schedule it declares (default: Adam
  over the model on the loop's schedule). A method with more networks (MMT's second net, a GAN's generator and
  discriminator, CANU's camera adversary) adds its own.
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
- ``context``: every method is built as ``Method(cfg, model, device, context)``; the :class:`RunContext` holds
  what a run knows beside the settings: the training set's table (its image count, identity count and cameras)
  and the folder of the weights it starts from (MMT's second network, a GCL+ warm-up's generator).
"""

from __future__ import annotations

import contextlib
import dataclasses
import typing
from pathlib import Path
from typing import Iterator, Union

import numpy as np
import torch
from torch import nn

from reid_repro.clustering import dbscan_labels, jaccard_distance, relabel
from reid_repro.errors import ReidReproError
from reid_repro.evaluation.video import mean_features

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


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a run hands a method beside its settings, network and device (training/run.py ``make_method``): the
    training set's table (path, pid, camid, dataset of each image, in the loop's index order) and ``init_dir``,
    the folder of the weights it starts from."""

    train_table: typing.Any = None          # a pandas DataFrame; None where a method needs none (tests)
    init_dir: typing.Optional[Path] = None
    # a video run (RunSpec.frames): each training image's tracklet; the clustering then labels tracklets
    # (Method.units, Method.per_image), as GCL+ §5.1 clusters tracklet features
    tracklets: typing.Any = None

    def table(self, who: str):
        if self.train_table is None:
            raise ReidReproError(f"{who}: needs the training set's table (RunContext.train_table); none was given")
        return self.train_table

    def num_train(self, who: str) -> int:
        """How many training images (MMT's and SSG's per-image classifiers)."""
        return len(self.table(who))

    def num_classes(self, who: str) -> int:
        """How many true identities (the supervised start's classifier)."""
        return int(self.table(who)["pid"].nunique())


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

    def __init__(self, cfg, model: torch.nn.Module, device: torch.device, context: RunContext | None = None):
        self.cfg, self.model, self.device = cfg, model, device
        self.context = context if context is not None else RunContext()

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

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]]:
        """{name: (optimizer, its per-epoch schedule)} stepped by the loop; every optimiser declares its schedule
        (:func:`step_schedule`, :func:`constant_schedule` or any torch scheduler). Default: Adam over the model's
        trainable parameters at the loop's lr and weight decay, on the loop's schedule."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)
        return {"model": (opt, step_schedule(opt, self.cfg))}

    def pseudo_labels(self, epoch: int, features: np.ndarray, pids: np.ndarray) -> np.ndarray:
        """This epoch's training labels 0..C-1 (-1 = outlier) from the encoder's ``features``: the k-reciprocal
        Jaccard distance and DBSCAN with the loop's settings (on tracklets for a video run: ``units``), or the true
        identities ``pids`` when ``labels: ground_truth`` (the supervised upper bounds)."""
        cfg = self.cfg
        if cfg.labels == "ground_truth":
            return relabel(pids)
        dist = jaccard_distance(self.units(features), k1=cfg.k1, k2=cfg.k2)
        return relabel(self.per_image(dbscan_labels(dist, cfg.eps, cfg.min_samples)))

    def _tracklet_index(self) -> tuple[np.ndarray, int]:
        """(each training image's tracklet number 0..T-1, T) of a video run."""
        if getattr(self, "_tracklet_members", None) is None:
            ids, member = np.unique(np.asarray(self.context.tracklets), return_inverse=True)
            self._tracklet_members = (member, len(ids))
        return self._tracklet_members

    def units(self, features: np.ndarray) -> np.ndarray:
        """What the clustering groups: the rows of ``features`` (one per training image), or on a video run one row
        per tracklet, the mean of its frames' L2-normalised features, normalised (BUC's tracklet feature,
        evaluation/video.mean_features). Every method's clustering goes through here and ``per_image``."""
        if self.context.tracklets is None:
            return features
        member, count = self._tracklet_index()
        return mean_features(features, member, count)

    def per_image(self, labels: np.ndarray) -> np.ndarray:
        """Labels of the clustering's units (``units``) as labels of the training images: on a video run each
        frame takes its tracklet's label."""
        if self.context.tracklets is None:
            return labels
        return np.asarray(labels)[self._tracklet_index()[0]]

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


def lr_factor(cfg, epoch: int) -> float:
    """The loop's schedule (LoopConfig): a linear warm-up from 0.1 over ``warmup_epochs``, then a step decay by
    ``lr_gamma`` every ``lr_step`` epochs."""
    warm = 0.1 + 0.9 * epoch / cfg.warmup_epochs if epoch < cfg.warmup_epochs else 1.0
    return warm * cfg.lr_gamma ** (epoch // cfg.lr_step)


def step_schedule(optimizer: torch.optim.Optimizer, cfg) -> torch.optim.lr_scheduler.LambdaLR:
    """``optimizer`` on the loop's schedule (:func:`lr_factor` of the run's loop settings), stepped per epoch."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: lr_factor(cfg, epoch))


def constant_schedule(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
    """``optimizer`` at its own lr for the whole run."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


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
