"""Dataset formats and the prepare stage, on generated file trees."""

import contextlib
import io
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from reid_repro.data.manifest import prepare
from reid_repro.errors import ReidReproError


@pytest.fixture(scope="module")
def jpeg_bytes():
    buf = io.BytesIO()
    Image.new("RGB", (8, 16), (120, 30, 200)).save(buf, format="JPEG")
    return buf.getvalue()


def write_market_tree(root, counts, jpeg, duke=False, junk=0, distractors=0, seed=0):
    """counts: split -> number of kept images. Adds ``junk`` pid -1 and ``distractors`` pid 0 gallery images."""
    rng = np.random.default_rng(seed)
    folders = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    cams = 8 if duke else 6
    for split, folder in folders.items():
        (root / folder).mkdir(parents=True)
        pids = [1 + i % 700 for i in range(counts[split] - (distractors if split == "gallery" else 0))]
        if split == "gallery":
            pids += [0] * distractors + [-1] * junk
        for n, pid in enumerate(pids):
            cam = 1 + int(rng.integers(cams))
            pid_s = "-1" if pid == -1 else f"{pid:04d}"
            name = f"{pid_s}_c{cam}_f{n:07d}.jpg" if duke else f"{pid_s}_c{cam}s1_{n:06d}_01.jpg"
            (root / folder / name).write_bytes(jpeg)
    return root


@pytest.mark.parametrize("name,counts,junk,duke", [
    ("market1501", {"train": 12936, "query": 3368, "gallery": 15913}, 3819, False),
    ("dukemtmc", {"train": 16522, "query": 2228, "gallery": 17661}, 0, True),
])
def test_published_counts(tmp_path, jpeg_bytes, name, counts, junk, duke):
    root = write_market_tree(tmp_path / "data", counts, jpeg_bytes, duke=duke, junk=junk, distractors=2793 if not duke else 0)
    info = prepare(name, root, tmp_path / "out")
    assert {s: info["splits"][s]["images"] for s in counts} == counts
    frame = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert len(frame) == sum(counts.values()) and (frame["pid"] >= 0).all()
    assert set(frame.columns) >= {"path", "pid", "camid", "split", "dataset", "frame"}
    assert frame["camid"].min() == 0 and frame["camid"].max() == (7 if duke else 5)
    if not duke:
        assert (frame.query("split == 'gallery'")["pid"] == 0).sum() == 2793
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == info


def test_market_name_fields(tmp_path, jpeg_bytes):
    root = tmp_path / "m"
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (root / folder).mkdir(parents=True)
    (root / "bounding_box_train" / "0002_c1s1_000451_03.jpg").write_bytes(jpeg_bytes)
    (root / "query" / "0002_c3s2_000100_01.jpg").write_bytes(jpeg_bytes)
    (root / "bounding_box_test" / "0000_c6s3_000200_02.jpg").write_bytes(jpeg_bytes)
    (root / "bounding_box_test" / "Thumbs.db").write_bytes(b"x")     # not an image: ignored
    frame = pd.read_parquet(prepare("market1501", root, tmp_path / "o") and tmp_path / "o" / "manifest.parquet")
    row = frame.set_index("split").loc["train"]
    assert (row.path, row.pid, row.camid, row.sequence, row.frame) == (
        "bounding_box_train/0002_c1s1_000451_03.jpg", 2, 0, 1, 451)
    assert frame.set_index("split").loc["query"].camid == 2


def test_same_content_same_checksum_and_change_detected(tmp_path, jpeg_bytes):
    counts = {"train": 20, "query": 5, "gallery": 30}
    a = write_market_tree(tmp_path / "a", counts, jpeg_bytes)
    b = write_market_tree(tmp_path / "b", counts, jpeg_bytes)
    ca, cb = prepare("market1501", a, tmp_path / "oa")["checksum"], prepare("market1501", b, tmp_path / "ob")["checksum"]
    assert ca == cb
    victim = next((b / "query").iterdir())
    buf = io.BytesIO()
    Image.new("RGB", (8, 16), (0, 0, 0)).save(buf, format="JPEG")
    victim.write_bytes(buf.getvalue())
    assert prepare("market1501", b, tmp_path / "ob")["checksum"] != ca


def make_msmt(root, jpeg, version="MSMT17_V1", n=(30, 6, 10, 40)):
    train_dir, test_dir = {"MSMT17_V1": ("train", "test"), "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}[version]
    base = root / version
    lists = {}
    for key, count, folder, pid0 in [("train", n[0], train_dir, 0), ("val", n[1], train_dir, 0),
                                     ("query", n[2], test_dir, 0), ("gallery", n[3], test_dir, 0)]:
        lines = []
        for i in range(count):
            pid = pid0 + i % 7
            rel = f"{pid:04d}/{pid:04d}_{i:03d}_{1 + i % 15:02d}_0303morning_{i:04d}_{'tvqg'.index(key[0])}.jpg"
            (base / folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / folder / rel).write_bytes(jpeg)
            lines.append(f"{rel} {pid}")
        (base / f"list_{key}.txt").write_text("\n".join(lines) + "\n")
        lists[key] = lines
    return base


@pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
def test_msmt_train_val_default_and_train_only(tmp_path, jpeg_bytes, version):
    make_msmt(tmp_path / "msmt", jpeg_bytes, version)
    info = prepare("msmt17", tmp_path / "msmt", tmp_path / "o")
    assert info["splits"]["train"]["images"] == 36
    assert info["splits"]["query"]["images"] == 10 and info["splits"]["gallery"]["images"] == 40
    only = prepare("msmt17", tmp_path / "msmt", tmp_path / "o2", train_only=True)
    assert only["splits"]["train"]["images"] == 30
    frame = pd.read_parquet(tmp_path / "o" / "manifest.parquet")
    assert frame["camid"].between(0, 14).all() and frame["camid"].nunique() == 15


# ---- bad input: clear error, non-zero exit, no partial output ------------------------------------------------

def run_cli(*args):
    """The command's own entry point, in this process (its imports are already paid for here): the exit code and
    what it printed, as a subprocess would have them."""
    from reid_repro.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*map(str, args)])
    return subprocess.CompletedProcess(["reid-repro", *map(str, args)], code, out.getvalue(), err.getvalue())


def assert_fails(tmp_path, dataset, root, match):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    (out / "manifest.parquet").write_text("previous manifest")
    proc = run_cli("prepare", "--dataset", dataset, "--root", root, "--out", out)
    assert proc.returncode != 0
    assert match in proc.stderr, proc.stderr
    assert (out / "manifest.parquet").read_text() == "previous manifest"      # nothing lost
    assert not (out / "dataset.json").exists()
    assert [p.name for p in out.iterdir()] == ["manifest.parquet"]              # no temporary left behind


def test_missing_root(tmp_path):
    assert_fails(tmp_path, "market1501", tmp_path / "nowhere", "nowhere: does not exist")


def test_wrong_layout(tmp_path):
    (tmp_path / "ds" / "images").mkdir(parents=True)
    assert_fails(tmp_path, "market1501", tmp_path / "ds", "wrong layout")
    assert_fails(tmp_path, "msmt17", tmp_path / "ds", "list_train.txt")


def test_name_that_does_not_parse(tmp_path, jpeg_bytes):
    root = write_market_tree(tmp_path / "ds", {"train": 3, "query": 2, "gallery": 3}, jpeg_bytes)
    (root / "query" / "person_7.jpg").write_bytes(jpeg_bytes)
    assert_fails(tmp_path, "market1501", root, "person_7.jpg: file name does not parse")


def test_image_that_does_not_decode(tmp_path, jpeg_bytes):
    root = write_market_tree(tmp_path / "ds", {"train": 3, "query": 2, "gallery": 3}, jpeg_bytes)
    bad = sorted((root / "bounding_box_test").iterdir())[1]
    bad.write_bytes(jpeg_bytes[: len(jpeg_bytes) // 2])          # truncated JPEG
    assert_fails(tmp_path, "market1501", root, f"{bad.name}: image does not decode")


def test_list_entry_whose_file_is_missing(tmp_path, jpeg_bytes):
    base = make_msmt(tmp_path / "msmt", jpeg_bytes)
    victim = base / "test" / (base / "list_gallery.txt").read_text().splitlines()[3].split()[0]
    victim.unlink()
    assert_fails(tmp_path, "msmt17", tmp_path / "msmt", f"list_gallery.txt:4: lists {victim}")


def test_unknown_dataset(tmp_path):
    with pytest.raises(ReidReproError, match="unknown dataset 'viper'"):
        prepare("viper", tmp_path, tmp_path / "o")


def test_an_imagenet_folder_is_checked_and_recorded(tmp_path):
    """format imagenet (data.pretrain on real data): each *.pth must load as an ImageNet ResNet; dataset.json
    records its sha256; anything else is a named error and writes nothing."""
    import hashlib

    import torch
    import torchvision

    from reid_repro.data.manifest import prepare_imagenet

    folder = tmp_path / "checkpoints"
    with pytest.raises(ReidReproError, match="not a folder"):
        prepare_imagenet(folder, tmp_path / "out")
    folder.mkdir()
    with pytest.raises(ReidReproError, match=r"no \*\.pth file"):
        prepare_imagenet(folder, tmp_path / "out")
    (folder / "resnet18-f37072fd.pth").write_bytes(b"not a torch file")
    with pytest.raises(ReidReproError, match="resnet18-f37072fd.pth: cannot read the checkpoint"):
        prepare_imagenet(folder, tmp_path / "out")
    torch.save({"conv1.weight": torch.zeros(1)}, folder / "resnet18-f37072fd.pth")
    with pytest.raises(ReidReproError, match="not an ImageNet ResNet state dict"):
        prepare_imagenet(folder, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    torch.save(torchvision.models.resnet18().state_dict(), folder / "resnet18-f37072fd.pth")
    info = prepare_imagenet(folder, tmp_path / "out")
    sha = hashlib.sha256((folder / "resnet18-f37072fd.pth").read_bytes()).hexdigest()
    assert info["checkpoints"] == {"resnet18-f37072fd.pth": sha} and info["format"] == "imagenet"
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == info
