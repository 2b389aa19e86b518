"""One run on several processes with torch.distributed (``torchrun --nproc_per_node N reid-repro train ...``).

The contract, chosen so that no method needs code of its own for it:

- **Sampling.** Every rank draws the same global P x K batch from the same seeded sampler and keeps its share of
  the identities (P / N each, whole identities, so each rank's BN sees K images of each of its identities).
- **The global batch.** Inside a training step (:func:`global_batch`) every ``ReidNet`` forward returns the
  features of all ranks, all-gathered in rank order with gradients (``torch.distributed.nn.all_gather``), and the
  batch's labels, cameras and indices are the global ones. So every loss and every memory update is computed on
  the whole batch, identically on every rank, exactly as in one process: memories stay identical without
  another exchange. Each rank's BatchNorm sees only its own images (no SyncBN), as the papers' DataParallel did.
- **Gradients.** After each backward the gradients of the optimisers being stepped are averaged over ranks (one
  all-reduce per step, as DistributedDataParallel does, without its overlap with the backward). Gradients reach
  the backbone through the all-gather from every rank's copy of the loss, N times the single-process gradient of
  the local images; the average over ranks divides that N back out, so the step equals the single-process step
  on the global batch (tests/test_distributed.py checks it with ghost BN over N chunks in the single process).
- **Randomness.** Augmentations draw from a generator seeded per (seed, epoch, step, rank); the method's own
  random draws inside a step from one seeded per (seed, epoch, step), the same on every rank.
- **Clustering** runs on rank 0 and its labels are broadcast; feature extraction is sharded over ranks.
- **Writes.** Only rank 0 writes checkpoints, outputs and MLflow; every rank reads the checkpoint to resume.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is the identity or a no-op.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

import numpy as np
import torch

from reid_repro.errors import ReidReproError

_GLOBAL_BATCH = False


def _initialized() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def active() -> bool:
    return _initialized() and size() > 1


def rank() -> int:
    return torch.distributed.get_rank() if _initialized() else 0


def size() -> int:
    return torch.distributed.get_world_size() if _initialized() else 1


def is_main() -> bool:
    return rank() == 0


def init_from_env(device: torch.device) -> bool:
    """Join the process group torchrun describes (``WORLD_SIZE`` > 1): NCCL on CUDA, gloo on the CPU. Returns
    whether this process is one of several."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return False
    if not torch.distributed.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


def check_batch(batch_ids: int) -> None:
    """P identities per global batch must split evenly over the ranks."""
    if active() and batch_ids % size():
        raise ReidReproError(f"params.yaml: batch_ids={batch_ids} does not split over {size()} processes; expected "
                             "a multiple of torchrun's --nproc_per_node")


@contextlib.contextmanager
def global_batch():
    """Inside: ReidNet forwards return the all-gathered features of every rank (module docstring)."""
    global _GLOBAL_BATCH
    previous, _GLOBAL_BATCH = _GLOBAL_BATCH, active()
    try:
        yield
    finally:
        _GLOBAL_BATCH = previous


def gathering() -> bool:
    """Whether a forward now should return the global batch (inside :func:`global_batch` under torchrun)."""
    return _GLOBAL_BATCH


def gather_grad(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` concatenated in rank order; gradients flow back to each rank's own part."""
    if not active():
        return t
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():   # deprecated in favour of a private API; the public one still works
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(t.contiguous()))


@torch.no_grad()
def gather(t: torch.Tensor) -> torch.Tensor:
    """Every rank's ``t`` (same shape on every rank) concatenated in rank order, without gradients."""
    if not active():
        return t
    parts = [torch.empty_like(t) for _ in range(size())]
    torch.distributed.all_gather(parts, t.contiguous())
    return torch.cat(parts)


def gather_array(a: np.ndarray) -> np.ndarray:
    """Every rank's array (any length) concatenated in rank order."""
    if not active():
        return a
    parts = [None] * size()
    torch.distributed.all_gather_object(parts, a)
    return np.concatenate(parts)


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    if not active():
        return obj
    box = [obj if is_main() else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def average_gradients(params) -> None:
    """Replace each gradient by its mean over ranks (one flattened all-reduce)."""
    if not active():
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    torch.distributed.all_reduce(flat)
    flat /= size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def optimizer_sync(optimizers: dict):
    """The hook ``run_steps`` calls between backward and step: average the named optimisers' gradients."""
    if not active():
        return None

    def sync(names):
        average_gradients([p for n in names for g in optimizers[n].param_groups for p in g["params"]])
    return sync


@torch.no_grad()
def broadcast_modules(modules) -> None:
    """Rank 0's parameters and buffers (BatchNorm statistics) into every rank's copy of ``modules``."""
    if not active():
        return
    for module in modules:
        for tensor in list(module.state_dict(keep_vars=True).values()):
            data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
            torch.distributed.broadcast(data, src=0)


def barrier() -> None:
    if active():
        torch.distributed.barrier()


def labels_agree(labels: np.ndarray) -> bool:
    """Whether every rank holds the same ``labels`` (checked after the broadcast: a cheap digest per rank)."""
    if not active():
        return True
    digest = hashlib.sha256(np.ascontiguousarray(labels).tobytes()).hexdigest()
    parts = [None] * size()
    torch.distributed.all_gather_object(parts, digest)
    return len(set(parts)) == 1
