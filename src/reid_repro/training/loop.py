"""The one training loop every method runs on.

Each epoch: extract features with the method's encoder, take the method's pseudo labels (by default the k-reciprocal
Jaccard distance and DBSCAN, or the true identities when ``labels: ground_truth``; on a video dataset the clustering
groups tracklets and the epoch trains some frames of each, ``tracklet_frames``), score the clustering against ground
truth (logged, never trained on), let the method rebuild its memory, then iterate over P x K batches. Each batch
runs the method's updates (methods/base.py: one update of every optimiser, or a sequence of ``Step``s, each stepping
the optimisers it names). After each epoch the loop writes a checkpoint; a run that finds a checkpoint with the same
settings resumes from it. Every epoch reseeds all generators from (seed, epoch), so a resumed run follows the
uninterrupted one exactly. A NaN or an infinity in the features, a loss, a gradient, a memory row or a centroid
stops the run at that step (training/finite.py). Under torchrun one run trains on several processes
(training/distributed.py: the sampler's share per rank, the global batch in every loss, gradients averaged,
clustering on rank 0, rank 0 writes).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm import tqdm

from reid_repro.clustering import clustering_scores
from reid_repro.config import LoopConfig, params_hash
from reid_repro.errors import ReidReproError
from reid_repro.io import remove_orphans
from reid_repro.methods.base import Method, Step
from reid_repro.models import save_state
from reid_repro.training import distributed, finite
from reid_repro.training.data import BatchFinish, ImageCache, PKSampler, TrainSet, extract_features, make_transform


@dataclass
class TrainData:
    cache: ImageCache          # training images at the model's input size
    pids: np.ndarray           # true identities: for ground-truth labels and for logging only
    cams: np.ndarray
    tracklets: np.ndarray | None = None     # video: each frame's tracklet (tracklet_frames)
    frames: int = 0                         # video: frames drawn per tracklet each epoch


def tracklet_frames(labels: np.ndarray, data: TrainData, seed: int, epoch: int) -> tuple[np.ndarray, dict]:
    """Video (GCL+ §5.1): the method labelled the frames by clustering tracklets (methods/base.py ``units``: each
    tracklet the mean of its frames' features, every frame its tracklet's label); the epoch trains on
    ``data.frames`` frames drawn per tracklet without replacement (all of a shorter one; GCL+: 2 on MARS, 8 on
    DukeMTMC-VideoReID), and the other frames get label -1, so no batch or memory sees them this epoch. Returns
    those labels and the clustering scores, measured on tracklets."""
    ids, first, member = np.unique(data.tracklets, return_index=True, return_inverse=True)
    scores = clustering_scores(labels[first], data.pids[first], data.cams[first])
    rng = np.random.default_rng([seed, epoch, len(ids)])
    order = np.argsort(member, kind="stable")                # frames grouped by tracklet, in table order
    keep = np.zeros(len(member), bool)
    for frames in np.split(order, np.cumsum(np.bincount(member, minlength=len(ids)))[:-1]):
        keep[rng.choice(frames, min(data.frames, len(frames)), replace=False)] = True
    return np.where(keep, labels, -1), {**scores, "tracklets": len(ids), "frames_trained": int(keep.sum())}


def seed_everything(seed: int, epoch: int, *more: int) -> int:
    """Seed python, numpy and torch from (seed, epoch, *more); returns the derived seed. Under torchrun a step
    is seeded from (seed, epoch, step) on every rank (the method's own draws agree) and the next batch's
    augmentations from (seed, epoch, step, 1 + rank)."""
    s = int(np.random.SeedSequence([seed, epoch, *more]).generate_state(1)[0])
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)
    return s


def run_steps(result, optimizers: dict, sums: dict, encoder: tuple[str, ...] | None = None, sync=None,
              where: tuple[int, int] | None = None, param_names: dict[int, str] | None = None) -> float:
    """Carry out one batch's updates: ``result`` is a dict of losses (one update of every optimiser) or an
    iterable of ``Step``s, each taken in turn (the next is computed after the previous one stepped). Adds each
    loss to ``sums``; returns the total of the steps that update an ``encoder`` optimiser (None: every step).
    ``sync(names)`` runs between each backward and its step (under torchrun: average the gradients). With
    ``where`` = (epoch, step) every loss is checked before its backward and every gradient before its step
    (training/finite.py; ``param_names`` names the parameters in the error)."""
    total = 0.0
    for step in [Step(result)] if isinstance(result, dict) else result:
        names = list(optimizers) if step.optimizers is None else step.optimizers
        unknown = [n for n in names if n not in optimizers]
        if unknown:
            raise KeyError(f"training step names optimiser {unknown[0]!r}; the method has {list(optimizers)}")
        for n in names:
            optimizers[n].zero_grad(set_to_none=True)
        if where is not None:
            finite.check_losses(step.losses, *where)
        loss = sum(step.losses.values())
        loss.backward()
        if sync is not None:
            sync(names)
        if where is not None:
            finite.check_gradients(optimizers, names, *where, param_names or {})
        for n in names:
            optimizers[n].step()
        for name, value in step.losses.items():
            sums[name] += float(value.detach())
        if encoder is None or set(names) & set(encoder):
            total += float(loss.detach())
    return total


def reset_optimizers(which, optimizers: dict) -> list[str]:
    """Clear the state (Adam's moments) of the optimisers ``which`` names: True = all, False/() = none, or a
    tuple of names (Method.reset_optimizers_each_epoch). Returns the names cleared."""
    names = list(optimizers) if which is True else list(which or ())
    unknown = [n for n in names if n not in optimizers]
    if unknown:
        raise KeyError(f"reset_optimizers_each_epoch names optimiser {unknown[0]!r}; the method has "
                       f"{list(optimizers)}")
    for name in names:
        optimizers[name].state.clear()
    return names


def epoch_features(method: Method, images: torch.Tensor, device) -> np.ndarray:
    """The encoder's features of every training image; under torchrun each rank extracts its share and the
    shares are gathered, in order."""
    if not distributed.active():
        return extract_features(method.encoder(), images, device)
    bounds = np.linspace(0, len(images), distributed.size() + 1).astype(int)
    lo, hi = bounds[distributed.rank()], bounds[distributed.rank() + 1]
    return distributed.gather_array(extract_features(method.encoder(), images[lo:hi], device))


def epoch_labels(method: Method, epoch: int, features: np.ndarray, pids: np.ndarray) -> np.ndarray:
    """This epoch's pseudo labels: computed on rank 0 and broadcast under torchrun (checked to agree)."""
    labels = method.pseudo_labels(epoch, features, pids) if distributed.is_main() else None
    labels = distributed.broadcast(labels)
    if not distributed.labels_agree(labels):
        raise RuntimeError("the ranks hold different pseudo labels after the broadcast")
    return labels


def load_checkpoint(checkpoint: Path, key: str, device) -> dict | None:
    """The state saved at ``checkpoint`` if it was written for inputs ``key``; else None, saying why in one line.

    A missing file is a fresh start; a corrupt, truncated or old-format file, or one written for other inputs
    (settings, data, starting weights or code), is reported and ignored. Temporary files left by a write that
    was killed are removed.
    """
    for orphan in remove_orphans(checkpoint) if distributed.is_main() else ():
        print(f"removed {orphan.name}, left by an interrupted checkpoint write")
    if not checkpoint.is_file():
        return None
    try:
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        required = {"epoch", "input_key", "model", "method", "optimizers", "schedulers", "history"}
        if not isinstance(state, dict) or not required <= set(state):
            print(f"{checkpoint}: not a checkpoint of this version (no {sorted(required - set(state or {}))[:1]}); "
                  "starting fresh")
            return None
    except Exception as exc:  # noqa: BLE001 - any unreadable file means: start again
        print(f"{checkpoint}: unreadable ({type(exc).__name__}: {str(exc)[:80]}); starting fresh")
        return None
    if state["input_key"] != key:
        print(f"{checkpoint}: written for other inputs (key {state['input_key']} != {key}: settings, data, "
              "starting weights or code changed); starting fresh")
        return None
    return state


def fit(method: Method, cfg: LoopConfig, data: TrainData, checkpoint: str | Path,
        log_epoch: Callable[[dict], None] | None = None, stop_after: int | None = None,
        key: str | None = None, epoch_eval: Callable[[], dict] | None = None) -> list[dict]:
    """Train ``method`` for ``cfg.epochs``; returns one dict of numbers per epoch.

    ``checkpoint`` is written after every epoch and read back at the start if it was written for the same
    inputs: ``key`` (default: the hash of ``cfg``) identifies everything the run reads.
    ``stop_after`` ends the call after that many epochs of this call (used to test resuming).
    ``epoch_eval`` (paper scale: the reference codes' per-epoch test evaluation) adds its numbers to each row.
    """
    model, device = method.model, method.device
    checkpoint = Path(checkpoint)
    opts = method.optimizers()
    optimizers = {name: o for name, (o, _) in opts.items()}
    schedulers = {name: s for name, (_, s) in opts.items()}
    undeclared = [name for name, s in schedulers.items() if s is None]
    if undeclared:
        raise ReidReproError(f"{type(method).__name__}.optimizers(): {undeclared} declare no schedule; expected a "
                             "scheduler each (methods/base.py: step_schedule, constant_schedule)")
    key = key or params_hash(dataclasses.asdict(cfg))
    if distributed.active():
        distributed.check_batch(cfg.batch_ids)
        if not method.distributed:
            raise ReidReproError(f"{type(method).__name__} does not run under torchrun: {method.distributed_why}")
    sync = distributed.optimizer_sync(optimizers)
    param_names = finite.parameter_names(method)
    start, history = 0, []
    state = load_checkpoint(checkpoint, key, device)
    if state is not None:
        model.load_state_dict(state["model"])
        method.load_state_dict(state["method"])
        for name, o in optimizers.items():
            o.load_state_dict(state["optimizers"][name])
        for name, sch in schedulers.items():
            sch.load_state_dict(state["schedulers"][name])
        start, history = state["epoch"], state["history"]
        print(f"resuming from {checkpoint} after epoch {start}")
    transforms = [make_transform(view, *data.cache.images.shape[2:]) for view in method.views]
    finish = [BatchFinish(view) for view in method.views]     # normalise and erase on the device
    # the run's progress in epochs, with the time left estimated from the epochs done so far
    quiet = None if distributed.is_main() else True      # tqdm: None = on a terminal; other ranks: never
    progress = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc="train", unit="epoch",
                    mininterval=5.0, disable=quiet)
    for epoch in progress:
        if stop_after is not None and epoch - start >= stop_after:
            break
        t0 = time.perf_counter()
        seed = seed_everything(cfg.seed, epoch)
        distributed.broadcast_modules(method.networks())        # torchrun: every rank holds rank 0's state
        features = epoch_features(method, data.cache.images, device)
        finite.check_array("features of the training images", features, epoch + 1)
        labels = epoch_labels(method, epoch, features, data.pids)
        if data.tracklets is None:
            scores = clustering_scores(labels, data.pids, data.cams)
        else:
            labels, scores = tracklet_frames(labels, data, cfg.seed, epoch)
        method.on_epoch_start(epoch, features, labels, data.cams)
        finite.check_state(method, epoch + 1)                          # the memory and centroids just built
        t_cluster = time.perf_counter() - t0
        sampler = PKSampler(labels, data.cams, cfg.batch_ids, cfg.instances, cfg.iters, [cfg.seed, epoch],
                            cfg.cross_camera, rank=distributed.rank(), world=distributed.size(),
                            camera_sampler=method.camera_sampler)
        loader = torch.utils.data.DataLoader(
            TrainSet(data.cache, transforms), batch_sampler=sampler, num_workers=cfg.workers,
            generator=torch.Generator().manual_seed(seed), persistent_workers=False,
            pin_memory=device.type == "cuda")
        sums: dict[str, float] = defaultdict(float)
        total = 0.0                  # the losses of the steps that train the encoder (Method.encoder_optimizers)
        reset_optimizers(method.reset_optimizers_each_epoch, optimizers)
        model.train()
        labels_t = torch.as_tensor(labels, device=device)
        cams_t = torch.as_tensor(np.array(data.cams), device=device)
        many = distributed.active()
        for step, items in enumerate(tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="it",
                                          mininterval=5.0, disable=quiet, leave=False)):
            if many:                 # the method's random draws: the same on every rank
                seed_everything(cfg.seed, epoch, step)
            index = distributed.gather(items[-1].to(device))    # torchrun: the global batch's images, in rank order
            views = [f(x.to(device, non_blocking=True)) for f, x in zip(finish, items[:-1])]
            batch = {"images": views[0], "views": views, "index": index, "labels": labels_t[index],
                     "cams": cams_t[index]}
            with distributed.global_batch():
                total += run_steps(method.training_step(batch), optimizers, sums, method.encoder_optimizers, sync,
                                   where=(epoch + 1, step), param_names=param_names)
                method.after_step()
            finite.check_state(method, epoch + 1, step)                # the memory rows the step updated
            if many:                 # the next batch's augmentations: this rank's own
                seed_everything(cfg.seed, epoch, step, 1 + distributed.rank())
        lr = next(iter(optimizers.values())).param_groups[0]["lr"]
        for sch in schedulers.values():
            sch.step()
        row = {"epoch": epoch + 1, "loss": total / cfg.iters,
               **{f"loss_{k}": v / cfg.iters for k, v in sums.items()}, **scores, "lr": lr,
               "cluster_seconds": t_cluster, "seconds": time.perf_counter() - t0, **method.epoch_metrics()}
        if epoch_eval is not None:
            row.update(epoch_eval())
        history.append(row)
        progress.set_postfix(loss=f"{row['loss']:.3f}", clusters=row.get("num_clusters"), refresh=False)
        if log_epoch:
            log_epoch(row)
        if distributed.is_main():
            save_state({"epoch": epoch + 1, "input_key": key, "model": model.state_dict(),
                        "method": method.state_dict(),
                        "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
                        "schedulers": {n: s.state_dict() for n, s in schedulers.items()}, "history": history},
                       checkpoint)
    progress.close()
    return history
