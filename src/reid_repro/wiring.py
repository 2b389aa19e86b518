"""The pipeline's code dependencies, written from the import graph (issue 40: generated wiring).

Each stage of ``dvc.yaml`` (and ``synthetic/dvc.yaml``) depends on exactly the package files its command imports
(:mod:`reid_repro.codedeps`); the run stages (train, train_larger, tune, tuned) load their method by name, so their
blocks end with template lines ``${item.code[i]}`` that DVC expands per run: each run's (and study's) entry in
conf/runs.json lists the files its method imports beyond every run's (:func:`method_code`: the method's module or
package, the module it builds on, the parts it shares with another method), as many slots as the method that
imports the most, the last repeated to fill them (DVC cannot expand a list into dependencies). :func:`write`
replaces the code lines of every stage block with the generated list, leaving every other line (data deps,
params, outputs, comments) as it is; :func:`drift` says which blocks differ. ``reid-repro pipeline --write`` runs
it after a change to what a stage imports; a test checks the committed files are what it writes.

No stage imports this module: editing it leaves every stage current.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from reid_repro import codedeps

ROOT = codedeps.SRC.parents[1]
FILES = ("dvc.yaml", "synthetic/dvc.yaml")
# the stage kinds that load their method's module by name (reid_repro.methods.method_class)
BY_METHOD = ("train", "train_larger", "tune", "tuned")
CODE = re.compile(r"^(\s+)- (src/reid_repro/\S+|\$\{item\.code\[\d+\]\})\s*$")
STAGE = re.compile(r"^  ([A-Za-z_][\w-]*):\s*$")


def _folders(files: set[str], root: Path = ROOT) -> list[str]:
    """``files`` with each package folder whose every file the stage reads written as the folder (a DVC folder
    dependency: one entry to check where there were several, exactly the same files). Caches (``__pycache__``,
    ignored by .dvcignore) do not count; the package root itself is never collapsed."""
    top = codedeps.relative([codedeps.SRC], root)[0]
    out = set(files)
    folders = sorted({str(Path(f).parent) for f in files if str(Path(f).parent) != top},
                     key=lambda d: -d.count("/"))
    for folder in folders:            # deepest first, so a covered subfolder folds into a covered parent
        present = {p.relative_to(root).as_posix() for p in (root / folder).rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts}
        inner = {f for f in out if f.startswith(folder + "/")}
        covered = {f for f in present if f in out or any(f.startswith(d + "/") for d in inner)}
        if present and covered == present:
            out = (out - inner) | {folder}
    return sorted(out)


@functools.lru_cache(maxsize=None)
def _own_code(method: str) -> list[str]:
    generic = set(codedeps.relative(codedeps.stage_files("train"), ROOT))
    return _folders(set(codedeps.relative(codedeps.stage_files("train", method), ROOT)) - generic)


@functools.lru_cache(maxsize=None)
def slots() -> int:
    """How many ``${item.code[i]}`` lines a run stage has: the most any registered method needs."""
    from reid_repro.methods import method_names

    return max(len(_own_code(m)) for m in method_names())


def method_code(method: str) -> list[str]:
    """The code a run of ``method`` imports beyond what every run stage lists, as :func:`slots` entries (the last
    repeated): what its conf/runs.json entry's ``code`` holds."""
    own = _own_code(method)
    return own + [own[-1]] * (slots() - len(own))


def code_lines(kind: str) -> list[str]:
    """The code dependencies a stage of ``kind`` declares, in the order dvc.yaml lists them (paths from the
    repository root): files, and folders whose every file the stage reads; a run stage's per-method slots last."""
    files = set(codedeps.relative(codedeps.stage_files(kind), ROOT))
    return _folders(files) + ([f"${{item.code[{i}]}}" for i in range(slots())] if kind in BY_METHOD else [])


def _blocks(lines: list[str]) -> list[tuple[str, int, int]]:
    """(stage name, first line, end line) of every top-level stage block under ``stages:``."""
    starts = [(m.group(1), i) for i, line in enumerate(lines) if (m := STAGE.match(line))]
    return [(name, i, starts[k + 1][1] if k + 1 < len(starts) else len(lines))
            for k, (name, i) in enumerate(starts)]


def rewritten(text: str) -> tuple[str, list[str]]:
    """(the file's text with each stage's code lines generated, the stages whose lines changed)."""
    lines = text.split("\n")
    changed, out, done = [], [], 0
    for name, start, end in _blocks(lines):
        if name not in codedeps.STAGE_ROOTS:
            continue
        block = lines[start:end]
        found = [(i, m) for i, line in enumerate(block) if (m := CODE.match(line))]
        if not found:
            continue
        indent = found[0][1].group(1)
        wanted = code_lines(name)
        if [m.group(2) for _, m in found] != wanted:
            changed.append(name)
        first = found[0][0]
        kept = [line for i, line in enumerate(block) if i not in {j for j, _ in found}]
        new_block = kept[:first] + [f"{indent}- {f}" for f in wanted] + kept[first:]
        out += lines[done:start] + new_block
        done = end
    out += lines[done:]
    return "\n".join(out), changed


def drift(root: Path = ROOT) -> dict[str, list[str]]:
    """{pipeline file: stages whose code dependencies differ from the import graph's}, for the pipeline files
    under ``root`` (the package's own import graph either way)."""
    return {f: changed for f in FILES if (changed := rewritten((root / f).read_text())[1])}


def write(root: Path = ROOT) -> dict[str, list[str]]:
    """Rewrite each pipeline file's code dependencies; returns the stages changed per file."""
    result = {}
    for f in FILES:
        path = root / f
        text, changed = rewritten(path.read_text())
        if changed:
            path.write_text(text)
            result[f] = changed
    return result
