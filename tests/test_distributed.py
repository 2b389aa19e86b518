"""One run on two processes (torch.distributed, gloo on the CPU) against one process on the same global batch."""

import socket
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from reid_repro.config import load_method_config, load_params
from reid_repro.methods import method_class
from reid_repro.models import ReidNet
from reid_repro.training import distributed
from reid_repro.training.data import PKSampler
from reid_repro.training.loop import epoch_labels, run_steps

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _join(rank: int, port: int) -> None:
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                         world_size=WORLD)
    torch.set_num_threads(1)


def _problem(name: str):
    """A method on ReidNet-18, its memories built from 16 training images in 4 clusters, and one global batch
    of 8 images (4 identities x 2), the same in every process."""
    torch.manual_seed(0)
    model = ReidNet("resnet18").train()
    cfg = load_method_config(PARAMS, name, method_class(name).config, {"batch_ids": 4, "instances": 2},
                             base=method_class(name).base_section)
    method = method_class(name)(cfg, model, torch.device("cpu"))
    g = torch.Generator().manual_seed(1)
    feats = F.normalize(torch.randn(16, model.dim, generator=g), dim=1).numpy()
    labels = np.repeat(np.arange(4), 4)
    method.on_epoch_start(0, feats, labels, np.arange(16) % 3)
    images = torch.randn(8, 3, 32, 16, generator=g)
    batch = {"labels": torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]), "cams": torch.tensor([0, 1, 0, 1, 2, 0, 1, 2]),
             "index": torch.tensor([0, 1, 4, 5, 8, 9, 12, 13])}
    return method, images, batch


def _one_step(method, images, batch, sync_average: bool):
    """One training step; returns the gradients the optimiser stepped with and the memory afterwards."""
    opts = {n: o for n, (o, _) in method.optimizers().items()}
    grads = {}

    def sync(names):
        if sync_average:
            distributed.optimizer_sync(opts)(names)
        for n, p in method.model.named_parameters():
            if p.grad is not None:
                grads[n] = p.grad.detach().clone()

    batch = {**batch, "images": images, "views": [images]}
    with distributed.global_batch():
        run_steps(method.training_step(batch), opts, defaultdict(float), None, sync)
    return grads, method.memory.features.detach().clone()


def _step_worker(rank: int, port: int, name: str, out: str) -> None:
    _join(rank, port)
    method, images, batch = _problem(name)
    share = len(images) // WORLD
    grads, memory = _one_step(method, images[rank * share:(rank + 1) * share], batch, sync_average=True)
    torch.save({"grads": grads, "memory": memory}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("name", ["cluster_contrast", "ise"])
def test_one_step_on_two_ranks_equals_one_process_on_the_global_batch(tmp_path, name):
    """Two ranks, each with half the batch and BN over its half, step with the same averaged gradients and end
    with the same memory as one process on the whole batch with ghost BN over 2 chunks (the same BN batches)."""
    mp.spawn(_step_worker, args=(_free_port(), name, str(tmp_path)), nprocs=WORLD, join=True)
    method, images, batch = _problem(name)
    method.model.bn_groups = WORLD
    grads, memory = _one_step(method, images, batch, sync_average=False)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    for r in ranks:
        assert set(r["grads"]) == set(grads)
        for n, g in grads.items():
            # float sums in another order: equal to 1e-4 of the tensor's largest gradient
            torch.testing.assert_close(r["grads"][n], g, rtol=0, atol=1e-4 * float(g.abs().max()), msg=n)
        torch.testing.assert_close(r["memory"], memory, rtol=1e-5, atol=1e-6)


def _labels_worker(rank: int, port: int, out: str) -> None:
    _join(rank, port)
    method, *_ = _problem("cluster_contrast")
    rng = np.random.default_rng(rank)              # every rank sees other features: only rank 0's count
    centres = rng.normal(size=(5, 8))
    feats = np.repeat(centres, 6, axis=0) + 0.01 * rng.normal(size=(30, 8))
    feats = (feats / np.linalg.norm(feats, axis=1, keepdims=True)).astype(np.float32)
    labels = epoch_labels(method, 0, feats, np.repeat(np.arange(5), 6))
    np.save(Path(out) / f"labels{rank}.npy", labels)
    np.save(Path(out) / f"feats{rank}.npy", feats)
    # the sampler: every rank draws the same global batch and yields its own identities
    sampler = PKSampler(np.repeat(np.arange(4), 4), np.arange(16) % 3, 4, 2, 3, [0, 0], rank=rank, world=WORLD)
    np.save(Path(out) / f"batches{rank}.npy", np.array(list(sampler)))
    torch.distributed.destroy_process_group()


def test_ranks_hold_rank_0s_pseudo_labels_and_split_the_batch(tmp_path):
    mp.spawn(_labels_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    labels = [np.load(tmp_path / f"labels{r}.npy") for r in range(WORLD)]
    method, *_ = _problem("cluster_contrast")
    expected = method.pseudo_labels(0, np.load(tmp_path / "feats0.npy"), np.repeat(np.arange(5), 6))
    for got in labels:
        np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected[expected >= 0])) == 5
    whole = list(PKSampler(np.repeat(np.arange(4), 4), np.arange(16) % 3, 4, 2, 3, [0, 0]))
    parts = [np.load(tmp_path / f"batches{r}.npy") for r in range(WORLD)]
    for i, batch in enumerate(whole):            # rank 0: the first two identities' images, rank 1 the rest
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), batch)


def test_without_torchrun_everything_is_one_process():
    t = torch.arange(4.0)
    assert not distributed.active() and distributed.is_main() and distributed.size() == 1
    assert distributed.gather(t) is t and distributed.gather_grad(t) is t
    assert distributed.broadcast({"a": 1}) == {"a": 1} and distributed.optimizer_sync({}) is None
    with distributed.global_batch():
        assert not distributed.gathering()
