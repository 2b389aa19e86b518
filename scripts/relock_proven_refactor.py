"""Record a proven refactor in dvc.lock: the code changed, the outputs did not.

The rule (DEVELOPERS.md): a change of code that must not change any result is proven by rebuilding a sample of
stages (one run per method, the start, the report) under reference numerics and finding their outputs identical;
then the other stages are committed as `dvc commit` would commit them. `dvc commit` needs every output in the
workspace, and a machine without the DVC cache that built them has none of the model files, so this does for
the dependencies what `dvc commit` does, from the lock of the commit whose outputs are committed (``--base``):

- every stage keeps its command, params and outputs exactly as ``--base`` recorded them;
- its dependencies are the ones dvc.yaml declares now, sorted by path as DVC writes them: package files (``src/reid_repro/...``)
  hashed as they are now (md5 and size, as DVC records them), every other dependency as ``--base`` recorded it
  (a non-package dependency that ``--base`` did not have is an error: that is not a refactor);
- ``src/reid_repro/report/equivalent_code.yaml`` gains one entry: the proof, and for every committed run the
  digest of its code now against the digest its run.json recorded, so the report counts those runs as current.

Run it only after the proof, from the repository root, and commit the result with the proof in the message:

    python scripts/relock_proven_refactor.py --base f16a094a --proof "rebuilt ... identical ..."
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
from pathlib import Path

import yaml

LOCKS = {"dvc.yaml": "dvc.lock", "synthetic/dvc.yaml": "synthetic/dvc.lock"}
EQUIVALENT = Path("src/reid_repro/report/equivalent_code.yaml")


def file_entry(path: str, where: str) -> dict:
    """A file dependency as DVC records it: ``path`` as dvc.yaml writes it, hashed from ``where`` (its file)."""
    data = Path(where).read_bytes()
    return {"path": path, "hash": "md5", "md5": hashlib.md5(data).hexdigest(), "size": len(data)}


def relock(base: str) -> list[str]:
    """Rewrite each lock file's dependencies (module docstring); returns the stages whose dependencies changed."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo
    from dvc.utils.serialize import dump_yaml, parse_yaml

    changed = []
    with Repo(".") as repo:
        stages = list(repo.index.stages)
    for dvcfile, lockfile in LOCKS.items():
        # DVC's own YAML reader (YAML 1.2, as DVC wrote the file): PyYAML would read 1e-3 as a string
        old = parse_yaml(subprocess.run(["git", "show", f"{base}:{lockfile}"], capture_output=True, text=True,
                                        check=True).stdout, lockfile)
        for stage in stages:
            if stage.dvcfile.relpath != dvcfile:
                continue
            entry = old["stages"].get(stage.name)
            if entry is None:
                raise SystemExit(f"{lockfile}: {base} has no stage {stage.name}: not a refactor")
            before = {d["path"]: d for d in entry.get("deps", [])}
            deps = []
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    continue
                path = dep.def_path
                if path.startswith("src/reid_repro/"):
                    deps.append(file_entry(path, dep.fs_path))
                elif path in before:
                    deps.append(dict(before[path]))     # a copy: a path listed twice stays two entries
                else:
                    raise SystemExit(f"{stage.name}: new dependency {path} that {base} did not have: not a refactor")
            deps.sort(key=lambda d: d["path"])        # as DVC writes a lock: dependencies by path
            if deps != entry.get("deps"):
                changed.append(stage.name)
            entry["deps"] = deps
        dump_yaml(lockfile, old)
    return changed


def equivalences(base: str, proof: str) -> int:
    """Append the digest pairs of every committed run to report/equivalent_code.yaml; returns how many."""
    from reid_repro import codedeps

    pairs = {}
    for info_file in sorted(Path("runs").glob("*/run.json")):
        info = json.loads(info_file.read_text())
        recorded = (info.get("inputs") or {}).get("code")
        method = (info.get("run") or {}).get("method")
        if not recorded or not method:
            continue                      # a not-run marker or a hand-made run
        kind = "pretrain" if method == "supervised" else "train"
        now = codedeps.digest(codedeps.stage_files(kind, None if kind == "pretrain" else method))
        if now != recorded:
            pairs[now] = recorded
    text = EQUIVALENT.read_text()
    entries = yaml.safe_load(text) or []
    entries.append({"base": base, "proof": proof, "digests": dict(sorted(pairs.items()))})
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    EQUIVALENT.write_text(header + yaml.safe_dump(entries, sort_keys=False, width=118))
    return len(pairs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit whose dvc.lock records the committed outputs")
    p.add_argument("--proof", required=True, help="what was rebuilt and found identical (kept in the yaml)")
    args = p.parse_args()
    n = equivalences(args.base, args.proof)
    changed = relock(args.base)
    print(f"relocked {len(changed)} stages' code dependencies; {n} code digests recorded as equivalent")


if __name__ == "__main__":
    main()
