"""Safe output: a failed or killed stage leaves either the old output or the new one, never a partial or mixed one.

Files go through :func:`atomic_path` (a temporary file beside the target, renamed onto it), folders through
:func:`publish_dir` (an atomic exchange of the new folder with the old one, then the old one is deleted).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pandas as pd

from reid_repro.errors import ReidReproError

# Every folder publish_dir writes carries this file; it refuses to replace a folder without it.
MARKER = ".reid-repro-output"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The file gets the mode an ordinary ``open()`` would give it under the user's umask (mkstemp's is 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def remove_orphans(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that a killed :func:`atomic_path` write of ``path`` left behind."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    found = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for p in found:
        p.unlink(missing_ok=True)
    return found


def write_json(path: str | os.PathLike, obj) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def write_parquet(path: str | os.PathLike, frame: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


# --------------------------------------------------------------------------------------------------------------
# folders

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux renameat2); False where the call is not available."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    rc = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        if err in (22, 38, 95):   # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
            return False
        raise OSError(err, os.strerror(err), str(a))
    return True


def _delete(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def staging_dir(dest: str | os.PathLike) -> Path:
    """An empty folder beside ``dest`` to build the new output in (a left-over one from a killed run is removed)."""
    dest = Path(dest)
    staging = dest.with_name(dest.name + ".partial")
    _delete(staging)
    staging.mkdir(parents=True)
    return staging


def check_replaceable(dest: str | os.PathLike) -> None:
    """Raise unless ``dest`` is absent, a link, or a folder that :func:`publish_dir` wrote (it has the marker)."""
    dest = Path(dest)
    if dest.is_symlink() or not dest.exists():
        return
    if not dest.is_dir():
        raise ReidReproError(f"{dest}: exists and is not a folder; refusing to replace it")
    if not (dest / MARKER).is_file() and any(dest.iterdir()):
        raise ReidReproError(f"{dest}: exists and was not written by reid-repro (no {MARKER} in it); refusing to "
                             "replace it. Choose another output folder or remove this one yourself")


def publish_dir(staging: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Make the complete folder ``staging`` the folder ``dest``; the old ``dest`` (a folder or a link) is deleted.

    The swap is one atomic ``renameat2(RENAME_EXCHANGE)`` where the system has it, so a kill at any moment
    leaves either the old or the new folder at ``dest``; elsewhere the old one is renamed aside first and
    restored by the next publish if a kill came between the two renames. A link is unlinked, never followed.
    """
    staging, dest = Path(staging), Path(dest)
    aside = dest.with_name(f".{dest.name}.old")
    if aside.exists() or aside.is_symlink():      # a kill between the two fallback renames
        if not (dest.exists() or dest.is_symlink()):
            os.rename(aside, dest)
        else:
            _delete(aside)
    check_replaceable(dest)
    (staging / MARKER).write_text("written by reid-repro; safe to replace with the next build\n")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        if _exchange(staging, dest):
            _delete(staging)          # now the old folder (or link)
            return dest
        os.rename(dest, aside)
        os.rename(staging, dest)
        _delete(aside)
    else:
        os.rename(staging, dest)
    return dest


def publish_link(target: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Make ``dest`` a symlink to the folder ``target``, replacing a link or a folder :func:`publish_dir` wrote.

    Nothing is written into ``target``; the old ``dest`` stays until the new link is in place.
    """
    dest = Path(dest)
    check_replaceable(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    link = dest.with_name(f".{dest.name}.link")
    _delete(link)
    link.symlink_to(Path(target), target_is_directory=True)
    if dest.is_symlink() or not dest.exists():
        os.replace(link, dest)        # a link replaces a link (or nothing) in one rename
    elif _exchange(link, dest):
        _delete(link)                 # now the old folder
    else:
        aside = dest.with_name(f".{dest.name}.old")
        os.rename(dest, aside)
        os.rename(link, dest)
        _delete(aside)
    return dest
