"""Paper scale on GPUs, checked on the CPU: ghost batch-norm, no silent CPU, the device recorded, the input path."""

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from reid_repro.assemble import validate_params
from reid_repro.config import load_model, load_params
from reid_repro.device import device_info, torch_device
from reid_repro.errors import ReidReproError
from reid_repro.models import ReidNet
from reid_repro.training.data import MEAN, STD, BatchFinish, ImageCache, normalize_batch

PARAMS = load_params(Path(__file__).resolve().parents[1] / "params.yaml")


def test_ghost_bn_over_4_chunks_equals_4_separate_bn_forwards():
    """Outputs and running statistics of bn_groups=4 are those of four BN forwards, one per quarter, in order."""
    torch.manual_seed(0)
    ghost = ReidNet("resnet18", bn_groups=4).train()
    plain = copy.deepcopy(ghost)
    plain.bn_groups = 1
    x = torch.randn(16, 3, 32, 16)
    pooled, neck = ghost.features(x)
    parts = [plain.features(q) for q in x.split(4)]
    torch.testing.assert_close(pooled, torch.cat([p[0] for p in parts]))
    torch.testing.assert_close(neck, torch.cat([p[1] for p in parts]))
    for (name, a), b in zip(ghost.state_dict().items(), plain.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)           # running mean/var and batches tracked included
    whole = copy.deepcopy(plain)
    assert not torch.allclose(whole.features(x)[1], neck)   # whole-batch BN differs
    with pytest.raises(ReidReproError, match="bn_groups=4: a training batch of 6 images"):
        ghost.features(x[:6])
    ghost.eval()                                              # eval: running statistics, no chunks
    torch.testing.assert_close(ghost(x), torch.cat([ghost(q) for q in x.split(4)]))


def test_resnet10_is_resnet18_with_one_block_per_stage():
    """arch resnet10: the same stem, stages and widths as resnet18 with one BasicBlock each, so its parameters are
    resnet18's less the second block of every stage; last stride 1 keeps layer4 at 1/16 of the input. It has no
    ImageNet weights: asking for them names the archs that have."""
    import torchvision

    def count(module):
        return sum(p.numel() for p in module.parameters())

    r18, r10 = ReidNet("resnet18"), ReidNet("resnet10")
    second_blocks = sum(count(getattr(torchvision.models.resnet18(), f"layer{i}")[1]) for i in range(1, 5))
    assert count(r10) == count(r18) - second_blocks
    assert [len(r10.body[i]) for i in range(4, 8)] == [1, 1, 1, 1] and r10.dim == 512
    with torch.no_grad():
        maps = r10.body(torch.zeros(2, 3, 64, 32))
    assert maps.shape == (2, 512, 4, 2)
    with pytest.raises(ReidReproError, match=r"model.arch='resnet10' has no ImageNet weights.*'resnet18'"):
        ReidNet("resnet10", imagenet=True)


def test_bn_groups_is_a_checked_model_setting_that_reaches_the_network():
    """model.<scale>.bn_groups set to 2 builds a network whose training forward is two half-batch BN forwards."""
    two = copy.deepcopy(PARAMS)
    two["model"]["cpu"]["bn_groups"] = 2
    torch.manual_seed(0)
    net = ReidNet.from_config(load_model(two)).train()
    plain = copy.deepcopy(net)
    plain.bn_groups = 1
    x = torch.randn(8, 3, 32, 16)
    torch.testing.assert_close(net.features(x)[1], torch.cat([plain.features(q)[1] for q in x.split(4)]))
    with pytest.raises(ReidReproError, match="bn_groups=2: a training batch of 2 images"):
        net.features(x[:2])
    bad = copy.deepcopy(PARAMS)
    bad["model"]["paper"]["bn_groups"] = 0
    with pytest.raises(ReidReproError, match="model.bn_groups=0"):
        load_model({**bad, "scale": "paper"})
    bad["model"]["paper"]["bn_groups"] = 4
    bad["model"]["paper"]["interpolation"] = "lanczos"
    with pytest.raises(ReidReproError, match="model.interpolation='lanczos'"):
        validate_params(bad)
    bad = copy.deepcopy(PARAMS)
    bad["device"] = "gpu"
    with pytest.raises(ReidReproError, match="device='gpu'"):
        validate_params(bad)


def test_paper_scale_without_cuda_stops_unless_device_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ReidReproError, match=r"scale=paper needs a GPU.*set device: cpu"):
        torch_device("auto", scale="paper")
    with pytest.raises(ReidReproError, match=r"device='cuda'.*sees no GPU"):
        torch_device("cuda", scale="cpu")
    assert torch_device("cpu", scale="paper").type == "cpu"          # asked for on purpose
    assert torch_device("auto", scale="cpu").type == "cpu"           # the CPU default is the CPU


def test_device_info_names_what_a_run_computed_on():
    info = device_info(torch.device("cpu"))
    assert info["device"] == "cpu" and info["torch"] == torch.__version__ and info["gpu"] is None
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert {"cuda", "cudnn", "driver", "capability"} <= set(info)


def test_batch_finish_normalises_and_erases_on_the_device():
    torch.manual_seed(0)
    u8 = torch.randint(0, 256, (64, 3, 32, 16), dtype=torch.uint8)
    expected = (u8.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(normalize_batch(u8), expected)
    torch.testing.assert_close(BatchFinish("plain")(u8), expected)                # plain: no erasing
    out = BatchFinish("base")(u8)
    erased = (out != expected).any(dim=(1, 2, 3))
    assert 16 < int(erased.sum()) < 48                                             # p = 0.5 per image
    for i in torch.nonzero(erased).flatten().tolist():
        changed = (out[i] != expected[i]).any(0)
        rows, cols = torch.nonzero(changed, as_tuple=True)
        box = out[i][:, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert torch.all(box == 0)                                                 # one rectangle, value 0
        area = box.shape[1] * box.shape[2] / (32 * 16)
        assert 0.0 < area <= 0.34


def test_image_cache_decodes_in_threads_with_the_chosen_interpolation(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
        paths.append(f"{i}.png")
    table = pd.DataFrame({"path": paths})
    for name, mode in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
        cache = ImageCache(tmp_path, table, 32, 16, interpolation=name)
        for i, p in enumerate(paths):
            with Image.open(tmp_path / p) as img:
                ref = np.asarray(img.convert("RGB").resize((16, 32), mode))
            np.testing.assert_array_equal(cache.images[i].permute(1, 2, 0).numpy(), ref)
    with pytest.raises(ReidReproError, match="interpolation='nearest'"):
        ImageCache(tmp_path, table, 32, 16, interpolation="nearest")


def test_scale_paper_runs_on_a_tiny_market_tree_on_the_cpu(world, tmp_path):
    """`scale: paper` end to end on a Market-1501-layout tree: the ImageNet start (a random state dict stands in
    for torchvision's checkpoint, in a folder of format imagenet), then ResNet-50 at 256x128 from it, ghost BN over
    4, bicubic resize, per-epoch test mAP, with tiny loop overrides and `device: cpu` set on purpose."""
    import json

    import torchvision

    from reid_repro.config import RunSpec
    from reid_repro.data.manifest import prepare, prepare_imagenet
    from reid_repro.models import imagenet_weights_path
    from reid_repro.training.run import execute, imagenet_start

    out, _ = world
    torch.manual_seed(0)
    weights = torchvision.models.resnet50().state_dict()
    folder = tmp_path / "imagenet"
    folder.mkdir()
    torch.save(weights, folder / "resnet50-0676ba61.pth")
    assert imagenet_weights_path("resnet50", folder) == folder / "resnet50-0676ba61.pth"
    prepare("market1501", out / "market", tmp_path / "manifests" / "market")
    prepare_imagenet(folder, tmp_path / "manifests" / "imagenet")
    params = copy.deepcopy(PARAMS)
    params.update(scale="paper", device="cpu", seeds=1)
    params["data"] = {"market": {"root": str(out / "market"), "manifest": str(tmp_path / "manifests" / "market"),
                                 "format": "market1501"},
                      "pretrain": {"root": str(folder), "manifest": str(tmp_path / "manifests" / "imagenet"),
                                   "format": "imagenet"}}
    params["sources"] = ["market"]              # the one stand-in these runs have
    params["meshes"] = {}
    start = imagenet_start(params, "pretrain", tmp_path / "models" / "pretrain")
    assert start["checkpoint"] == "resnet50-0676ba61.pth" and start["arch"] == "resnet50"
    saved = torch.load(tmp_path / "models" / "pretrain" / "model.pt", weights_only=True)
    # the ImageNet weights, as given (body = conv1, bn1, relu, maxpool, layer1..4)
    for ours, theirs in (("body.0.weight", "conv1.weight"), ("body.1.running_mean", "bn1.running_mean"),
                         ("body.7.2.conv3.weight", "layer4.2.conv3.weight")):
        torch.testing.assert_close(saved[ours], weights[theirs])
    tiny = {"epochs": 2, "iters": 1, "batch_ids": 2, "instances": 4, "k1": 4, "k2": 2, "eps": 0.6,
            "min_samples": 2, "workers": 0, "lr_step": 1}
    spec = RunSpec(method="cluster_contrast", base="cluster_contrast", dataset="market", test="market",
                   init="pretrain", paper="ise", table="6", row="Cluster-Contrast (Our Baseline)", overrides=tiny,
                   paper_overrides={}, also=[])
    m = execute(params, "paper_tiny", spec, tmp_path / "run", "train@paper_tiny", root=tmp_path, track=False,
                models_dir=tmp_path / "models")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["model"]["arch"] == "resnet50" and info["model"]["bn_groups"] == 4
    assert info["model"]["interpolation"] == "bicubic" and info["scale"] == "paper"
    assert info["environment"]["device"]["device"] == "cpu"
    history = pd.read_parquet(tmp_path / "run" / "history.parquet")
    assert len(history) == 2 and history["test_mAP"].notna().all()
    assert m["best_epoch_mAP"] == pytest.approx(history["test_mAP"].max())
    assert m["mAP"] == pytest.approx(history["test_mAP"].iloc[-1])     # ours: the last epoch
