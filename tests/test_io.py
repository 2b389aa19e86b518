"""Safe outputs: atomic files with the user's umask, folders published by an atomic exchange."""

import os
import stat
import subprocess
import sys

import pytest

from reid_repro.errors import ReidReproError
from reid_repro.io import MARKER, atomic_path, publish_dir, publish_link, staging_dir, write_json


def test_atomic_files_get_the_mode_of_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o027)
        with atomic_path(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o640


def test_prepare_writes_manifests_readable_by_the_group(tmp_path, world):
    from reid_repro.data.manifest import prepare

    out, _ = world
    old = os.umask(0o022)
    try:
        prepare("market1501", out / "market", tmp_path / "m")
    finally:
        os.umask(old)
    for f in ("manifest.parquet", "dataset.json"):
        assert stat.S_IMODE((tmp_path / "m" / f).stat().st_mode) == 0o644, f


def _build(dest, content: str):
    staging = staging_dir(dest)
    (staging / "file.txt").write_text(content)
    return publish_dir(staging, dest)


def test_publish_replaces_its_own_folder_and_refuses_a_foreign_one(tmp_path):
    dest = tmp_path / "world"
    _build(dest, "one")
    _build(dest, "two")
    assert (dest / "file.txt").read_text() == "two" and (dest / MARKER).is_file()
    assert not (tmp_path / "world.partial").exists() and not (tmp_path / ".world.old").exists()
    data = tmp_path / "data"                       # `reid-repro world --out data` must not delete data/
    data.mkdir()
    (data / "precious.txt").write_text("x")
    with pytest.raises(ReidReproError, match=r"data: exists and was not written by reid-repro"):
        _build(data, "new")
    assert (data / "precious.txt").read_text() == "x"


def test_world_command_refuses_to_replace_a_foreign_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.txt").write_text("x")
    proc = subprocess.run([sys.executable, "-m", "reid_repro.cli", "world", "--out", str(data), "--profile", "smoke"],
                          capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 2 and "not written by reid-repro" in proc.stderr
    assert (data / "precious.txt").is_file()


def test_publish_replaces_a_symlinked_output_without_following_it(tmp_path):
    target = tmp_path / "their_renders"
    target.mkdir()
    (target / "keep.jpg").write_text("x")
    dest = tmp_path / "meshes"
    publish_link(target, dest)
    assert dest.is_symlink() and (dest / "keep.jpg").is_file()
    _build(dest, "ours")                           # a real folder replaces the link
    assert not dest.is_symlink() and (dest / "file.txt").read_text() == "ours"
    assert (target / "keep.jpg").is_file()         # the linked folder is untouched
    publish_link(target, dest)                     # and a link replaces our folder
    assert dest.is_symlink() and not (target / MARKER).exists()


def test_a_kill_during_publish_leaves_the_old_folder(tmp_path):
    """SIGKILL at the worst moment of the fallback path (old folder renamed aside, new not yet in place): the
    next publish restores the old folder first; the atomic exchange path never has such a moment."""
    dest = tmp_path / "out"
    _build(dest, "old")
    code = ("import os, sys, signal\n"
            "from pathlib import Path\n"
            "import reid_repro.io as io\n"
            "io._exchange = lambda a, b: False\n"
            "real = os.rename\n"
            "def rename(a, b):\n"
            "    real(a, b)\n"
            "    if str(b).endswith('.out.old'): os.kill(os.getpid(), signal.SIGKILL)\n"
            "os.rename = rename\n"
            "dest = Path(sys.argv[1]); s = io.staging_dir(dest); (s / 'file.txt').write_text('new')\n"
            "io.publish_dir(s, dest)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(dest)])
    assert proc.returncode == -9
    assert not dest.exists() and (tmp_path / ".out.old" / "file.txt").read_text() == "old"
    staging = staging_dir(dest)
    (staging / "file.txt").write_text("newer")
    aside_restored = []
    orig = publish_dir.__globals__["check_replaceable"]

    def spy(path):
        aside_restored.append((dest / "file.txt").read_text())
        return orig(path)
    publish_dir.__globals__["check_replaceable"] = spy
    try:
        publish_dir(staging, dest)
    finally:
        publish_dir.__globals__["check_replaceable"] = orig
    assert aside_restored == ["old"] and (dest / "file.txt").read_text() == "newer"


def test_exchange_is_atomic_when_the_system_has_it(tmp_path):
    from reid_repro.io import _exchange

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "x").write_text("a")
    (b / "x").write_text("b")
    if not _exchange(a, b):
        pytest.skip("renameat2(RENAME_EXCHANGE) is not available on this system")
    assert (a / "x").read_text() == "b" and (b / "x").read_text() == "a"


def test_checkpoints_of_the_same_tensors_have_the_same_bytes(tmp_path):
    """torch.save to a path names the archive after that (temporary, random) file, so two saves of one state
    differed in bytes and DVC called every rebuilt start changed; models.save_state writes the same bytes."""
    import torch

    from reid_repro.models import ReidNet, save_state

    torch.manual_seed(0)
    state = ReidNet("resnet18").state_dict()
    a, b = save_state(state, tmp_path / "a" / "model.pt"), save_state(state, tmp_path / "b.pt")
    assert a.read_bytes() == b.read_bytes()
    loaded = torch.load(b, weights_only=True)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)
    # what it replaces: torch.save through a temporary file, twice, gives two different files
    with atomic_path(tmp_path / "c.pt") as tmp:
        torch.save(state, tmp)
    with atomic_path(tmp_path / "d.pt") as tmp:
        torch.save(state, tmp)
    assert (tmp_path / "c.pt").read_bytes() != (tmp_path / "d.pt").read_bytes()
    assert not list(tmp_path.glob(".*.tmp"))                    # nothing left beside the files
