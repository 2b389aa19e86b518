"""Which source files a pipeline stage runs: the static import graph of the ``reid_repro`` package.

DVC re-runs a stage when one of its dependencies changes, so a stage's code dependencies must be exactly the
files its command imports: fewer and a stale result passes as current, more and an unrelated edit re-runs it.
``dvc.yaml`` lists them by hand; ``tests/test_codedeps.py`` compares every stage's list with the closure
computed here, and the resume checkpoint of a run is keyed on the digest of the same files.

Imports are read with :mod:`ast` (no module is executed), including imports inside functions; a module that is
imported by name at run time (``importlib``) is added by naming it as a root.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

PACKAGE = "reid_repro"
SRC = Path(__file__).resolve().parent          # src/reid_repro


def module_path(module: str, src: Path = SRC) -> Path:
    """The file of ``module`` (a dotted name inside the package)."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        raise ValueError(f"{module}: not a module of {PACKAGE}")
    base = src.joinpath(*parts[1:])
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    raise FileNotFoundError(f"{module}: no {base}.py or {base}/__init__.py")


def _is_module(module: str, src: Path) -> bool:
    try:
        module_path(module, src)
        return True
    except (FileNotFoundError, ValueError):
        return False


@lru_cache(maxsize=None)
def _direct_imports(path: Path, src: Path) -> tuple[str, ...]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join([PACKAGE, *path.relative_to(src).parent.parts])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == PACKAGE)
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base.split(".")[0] != PACKAGE:
                continue
            found.add(base)
            # `from pkg import name`: name may be a submodule
            found.update(f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}", src))
    return tuple(sorted(m for m in found if _is_module(m, src)))


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(roots: list[str] | tuple[str, ...], src: Path = SRC) -> list[Path]:
    """Every file of the package that importing ``roots`` executes (package ``__init__`` files included)."""
    src = Path(src).resolve()
    seen: set[str] = set()
    todo = [m for r in roots for m in _with_parents(r)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        for dep in _direct_imports(module_path(module, src), src):
            todo.extend(m for m in _with_parents(dep) if m not in seen)
    return sorted({module_path(m, src) for m in seen})


def relative(files: list[Path], root: Path) -> list[str]:
    return [p.resolve().relative_to(Path(root).resolve()).as_posix() for p in files]


def digest(files: list[Path]) -> str:
    """sha256 over the files' package-relative names and bytes: the code revision a result depends on."""
    h = hashlib.sha256()
    for p in sorted(files):
        h.update(p.resolve().relative_to(SRC).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# What each stage kind imports, by name: the command module of its subcommand (the CLI dispatcher itself is
# reid_repro.cli) and, for run stages, the method module it loads by name.
STAGE_ROOTS = {
    "world": ["reid_repro.cli", "reid_repro.commands.world"],
    "video_world": ["reid_repro.cli", "reid_repro.commands.video_world"],
    "prepare": ["reid_repro.cli", "reid_repro.commands.prepare"],
    "meshes": ["reid_repro.cli", "reid_repro.commands.meshes"],
    "pretrain": ["reid_repro.cli", "reid_repro.commands.pretrain", "reid_repro.methods.supervised"],
    "source": ["reid_repro.cli", "reid_repro.commands.source", "reid_repro.methods.supervised"],
    "train": ["reid_repro.cli", "reid_repro.commands.train"],       # + reid_repro.methods.<method>
    "train_larger": ["reid_repro.cli", "reid_repro.commands.train"],  # + reid_repro.methods.<method>
    "warmup": ["reid_repro.cli", "reid_repro.commands.warmup", "reid_repro.methods.gcl_plus"],
    "warmup_larger": ["reid_repro.cli", "reid_repro.commands.warmup", "reid_repro.methods.gcl_plus"],
    "tune": ["reid_repro.cli", "reid_repro.commands.tune"],         # + reid_repro.methods.<method>
    "tuned": ["reid_repro.cli", "reid_repro.commands.train"],      # + reid_repro.methods.<method>
    "start": ["reid_repro.cli", "reid_repro.commands.evaluate"],
    "transfer": ["reid_repro.cli", "reid_repro.commands.evaluate"],
    "figures": ["reid_repro.cli", "reid_repro.commands.figures"],
    "report": ["reid_repro.cli", "reid_repro.commands.report"],
}


# Files other than Python modules that a stage's code reads (package data), per stage kind, are data
# (stage_data.yaml): this module is in every stage's code (a run records its digest), so a list kept here would make
# a change to the report's data files stale every stage.
STAGE_DATA_FILE = Path(__file__).with_name("stage_data.yaml")


def stage_data() -> dict[str, list[str]]:
    import yaml

    return yaml.safe_load(STAGE_DATA_FILE.read_text(encoding="utf-8")) or {}


def stage_files(kind: str, method: str | None = None, src: Path = SRC) -> list[Path]:
    roots = list(STAGE_ROOTS[kind]) + ([f"reid_repro.methods.{method}"] if method else [])
    return sorted(closure(roots, src) + [Path(src).resolve() / f for f in stage_data().get(kind, [])])
