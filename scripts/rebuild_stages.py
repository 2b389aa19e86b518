"""Rebuild pipeline stages one at a time and commit each as it finishes (issue 43: a rebuild longer than a working
session). An operator's script, not a stage.

First, every stage the named ones read from and that is not among them (a start, a source model, a warm-up, a
manifest), committed in ``dvc.lock`` but with its outputs missing here (a fresh machine, an empty DVC cache), is
checked out from the cache or, failing that, rebuilt, and must come out as committed (reference numerics): every
DVC-cached output byte for byte (a model, features), except a training history, whose time columns differ; every
git-tracked one (run.json, metrics.json, per-seed records) equal to the committed file but for times and the
revision. Otherwise the script stops. The committed git-tracked files are kept, and the stage's ``dvc.lock`` entry
is re-committed (``dvc commit``) with only the history's hash changed, in a commit of its own.

Then, for each stage named, ``dvc repro --single-item <stage>`` under reference numerics; on success the stage's
``dvc.lock`` entry and its git-tracked outputs are committed (``rebuild: <stage> (<s> s)``) and one line is appended
to ``bench/results/rebuild_times.jsonl``: the stage, its wall seconds, the CPU seconds of its processes, the load
average at its end, the CPU, the revision and when it finished; ``bench/rebuild_table.py`` rewrites the rebuild
tables of the README and docs/pipeline.md from them, in the same commit. A file ``STOP`` in the repository root
ends the chain before its next stage. A stage whose command finished while another DVC command held the
repository's lock is saved with ``dvc commit`` rather than trained again.

Run: python scripts/rebuild_stages.py train@cc_market train@ise_market ...   (repository root, the venv on PATH)
     python scripts/rebuild_stages.py --stale 'train@ise_*' 'train@cc_*'      (what `dvc status` lists as
                                                   changed, in order; not a stage whose outputs are only absent here)
     python scripts/rebuild_stages.py --no-upstream report   (no upstream check: the report reads only the runs'
                                                   git-tracked records, present on every clone, while its `runs`
                                                   dependency spans every run's cached model and features too)
"""

from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "bench" / "results" / "rebuild_times.jsonl"
TABLES = ["README.md", "docs/pipeline.md"]            # their rebuild tables (bench/rebuild_table.py)
TRACKED = ["dvc.lock", "synthetic/dvc.lock", "data", "runs", "models", "reports", "studies",
           str(LOG.relative_to(ROOT)), "bench/results/world_properties.json", *TABLES]


def sh(*cmd: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), cwd=ROOT, text=True, capture_output=True, check=check, **kw)


def reference_env() -> dict:
    """The environment of scripts/cpu_avx2.env (reference numerics, 2 threads)."""
    out = sh("bash", "-c", ". scripts/cpu_avx2.env && env -0").stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def build_order(*targets: str) -> list[str]:
    """The stages of ``dvc dag`` (those ``targets`` read, directly or not, and the targets; else the whole pipeline),
    each after every stage it reads. One ``dvc dag`` call (~6 s) whatever the number of targets."""
    nodes, edges = set(), set()
    for line in sh("dvc", "dag", "--dot").stdout.splitlines():
        parts = [x for x in line.strip().rstrip(";").split('"') if x.strip() and x.strip() != "->"]
        if line.strip().startswith('"'):
            nodes.update(parts)
            if "->" in line:
                edges.add((parts[0], parts[1]))       # parts[1] reads parts[0]
    if targets:
        unknown = [t for t in targets if t not in nodes]
        if unknown:
            sys.exit(f"not a stage of dvc dag: {', '.join(unknown)}")
        keep, todo = set(), list(targets)
        while todo:
            n = todo.pop()
            if n not in keep:
                keep.add(n)
                todo += [a for a, b in edges if b == n]
        nodes = keep
    order, done = [], set()
    while len(done) < len(nodes):       # Kahn: a stage after everything it reads
        ready = sorted(n for n in nodes - done if all(a in done for a, b in edges if b == n))
        order += ready
        done.update(ready)
    return order


def upstream(stages: list[str]) -> list[str]:
    """The stages whose outputs ``stages`` read (``dvc dag``), not among them, in the order to build them."""
    return [n for n in build_order(*stages) if n not in stages]


def dvc_status(*stages: str) -> dict:
    """``dvc status --json`` of ``stages`` (none: the whole pipeline): stage -> its list of changes."""
    return json.loads(sh("dvc", "status", "--json", *stages).stdout or "{}")


def missing_outputs(stages: list[str]) -> list[str]:
    """Those of ``stages`` whose committed outputs are absent from this checkout."""
    status = dvc_status(*stages) if stages else {}
    return [s for s in stages if any(isinstance(c, dict) and "changed outs" in c for c in status.get(s, []) or [])]


# what a rebuild of the same stage may change: times, the revision, the machine's record (its numerics included; the
# chain runs under reference numerics whatever the machine)
TIMES = ("seconds", "git_revision", "finished", "environment")


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not any(t in k for t in TIMES)}
    return [_without_times(v) for v in value] if isinstance(value, list) else value


def same_but_times(path: str) -> bool:
    """Whether the git-tracked file(s) at ``path`` equal the committed ones but for times and the revision (JSON keys,
    parquet columns named in TIMES); other files byte for byte."""
    import pandas as pd

    files = sh("git", "ls-files", "--", path).stdout.split()
    if not files or any(not (ROOT / f).is_file() for f in files):
        return False
    for f in files:
        old = subprocess.run(["git", "show", f"HEAD:{f}"], cwd=ROOT, capture_output=True, check=True).stdout
        new = (ROOT / f).read_bytes()
        if old == new:
            continue
        if f.endswith(".json"):
            if _without_times(json.loads(old)) != _without_times(json.loads(new)):
                return False
        elif f.endswith(".parquet"):
            import io
            a, b = pd.read_parquet(io.BytesIO(old)), pd.read_parquet(io.BytesIO(new))
            keep = [c for c in a.columns if not any(t in c for t in TIMES)]
            if list(a.columns) != list(b.columns) or not a[keep].equals(b[keep]):
                return False
        else:
            return False
    return True


def lock_outs(text: str, stage: str) -> dict[str, str]:
    """path -> md5 of a stage's outputs in a dvc.lock text."""
    import yaml

    entry = (yaml.safe_load(text) or {}).get("stages", {}).get(stage, {})
    return {o["path"]: o.get("md5") for o in entry.get("outs", [])}


def ensure(stages: list[str], env: dict) -> None:
    """Make the committed outputs that ``stages`` read present: from the DVC cache, else rebuilt, which must give
    the committed results (see the module's docstring) or the chain stops."""
    needed = [s for s in upstream(stages) if not s.endswith(("world", "video_world"))]   # worlds: in git
    missing = missing_outputs(needed)
    if missing:
        sh("dvc", "checkout", *missing, check=False)
    for up in missing_outputs(missing):
        print(f"=== {up}: outputs missing here, rebuilding it (must reproduce its committed results)", flush=True)
        committed = sh("git", "show", "HEAD:dvc.lock").stdout
        t0 = time.monotonic()
        run = subprocess.run(["dvc", "repro", "--single-item", up], cwd=ROOT, env=env)
        if run.returncode != 0:
            sys.exit(f"{up}: failed: stopping")
        reproduced(up, committed, time.monotonic() - t0)


def reproduced(up: str, committed: str, wall: float) -> None:
    """Check a rebuilt upstream stage against its committed entry (module docstring), keep the committed git-tracked
    files, re-commit the entry with the new history hash; exit naming what differs otherwise."""
    old, new = lock_outs(committed, up), lock_outs((ROOT / "dvc.lock").read_text(), up)
    changed = [p for p in old if new.get(p) != old[p]]
    tracked = [p for p in changed if sh("git", "ls-files", "--", p).stdout.strip()]
    differs = [p for p in changed if p not in tracked and Path(p).name != "history.parquet"]
    differs += [p for p in tracked if not same_but_times(p)]
    if differs or set(new) != set(old):
        sys.exit(f"{up}: rebuilt differently from its committed dvc.lock entry ({', '.join(differs) or 'outputs'}):"
                 " stopping")
    sh("git", "checkout", "--", "dvc.lock", *tracked)
    if changed != tracked:
        sh("dvc", "commit", "-f", up)
    lock_change = sh("git", "diff", "--numstat", "--", "dvc.lock").stdout.split()
    if lock_change:
        if lock_outs((ROOT / "dvc.lock").read_text(), up).keys() != old.keys():
            sys.exit(f"{up}: dvc commit changed more than its outputs' hashes: stopping")
        sh("git", "commit", "-q", "-m", f"rebuild: {up} reproduced here ({wall:.0f} s)", "-m",
           f"Issue 43: its outputs were absent on this machine; rebuilt under reference numerics, every cached "
           f"output but the training history byte for byte as committed, the git-tracked records equal but for "
           f"times ({', '.join(tracked) or 'none'}; kept as committed). dvc.lock: the history's new hash only.",
           "--", "dvc.lock")
    print(f"=== {up}: reproduced ({len(changed)} output(s) differed in times only)", flush=True)


def record(stage: str, wall: float, cpu: float) -> None:
    from reid_repro.numerics import cpu as cpu_of_machine

    rec = {"stage": stage, "seconds": round(wall), "cpu_seconds": round(cpu), "load_1_5_15": list(os.getloadavg()),
           "cpu": cpu_of_machine()["model"] or "", "cpus": os.cpu_count(),
           "numerics": "reference (scripts/cpu_avx2.env, 2 threads)",
           "revision": sh("git", "rev-parse", "--short=8", "HEAD").stdout.strip(),
           "finished": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    with LOG.open("a") as f:
        f.write(json.dumps(rec) + "\n")


def rewrite_tables(stage: str) -> None:
    """The README's and docs/pipeline.md's rebuild tables from the recorded times (bench/rebuild_table.py), and the
    README's table of the world's properties from the stages' records (bench/world_properties.py)."""
    for script, files in (("bench/rebuild_table.py", TABLES), ("bench/world_properties.py", ["README.md"])):
        table = subprocess.run([sys.executable, script, "--write", *files], cwd=ROOT, text=True, capture_output=True)
        if table.returncode != 0:
            print(f"=== {stage}: {script} did not rewrite its table: {table.stderr.strip()[-300:]}", flush=True)


def commit(stage: str, wall: float) -> None:
    paths = [p for p in TRACKED if (ROOT / p).exists()]
    for _ in range(6):               # another git command may hold the index for a moment
        if sh("git", "add", "-A", "--", *paths, check=False).returncode == 0 and sh(
                "git", "commit", "-q", "-m", f"rebuild: {stage} ({wall:.0f} s)", "-m",
                f"Issue 43: dvc repro --single-item {stage} under reference numerics.", "--", *paths,
                check=False).returncode == 0:
            return
        time.sleep(5)
    print(f"=== {stage}: could not commit (git busy?); commit it by hand", flush=True)


LOCKED = "Unable to acquire lock"


def commit_after_lock(stage: str, logf: Path, env: dict, tries: int = 10) -> int:
    """A stage whose command finished but whose results DVC could not save, because another DVC command held the
    repository's lock at that moment (``dvc repro`` releases it while the command runs): save them with ``dvc commit``
    (what the repro would have done: hash the outputs into the cache and write the stage's dvc.lock entry), retrying
    while the lock is busy, instead of training again. Returns its exit status."""
    for _ in range(tries):
        time.sleep(20)
        run = subprocess.run(["dvc", "commit", "-f", stage], cwd=ROOT, env=env, text=True, capture_output=True)
        with logf.open("a") as out:
            out.write(f"=== dvc commit -f {stage} after the lock was busy: rc {run.returncode}\n{run.stderr}")
        if run.returncode == 0 or LOCKED not in run.stderr:
            return run.returncode
    return 1


def only_missing(changes: list) -> bool:
    """Whether a stage's ``dvc status`` entries say only that its outputs are absent here (a machine whose DVC cache
    never held them): its ``dvc.lock`` entry is current, and ``ensure`` rebuilds it only where a stage reads it."""
    return bool(changes) and all(isinstance(c, dict) and set(c) == {"changed outs"}
                                 and set(c["changed outs"].values()) <= {"deleted", "not in cache"} for c in changes)


def stale_stages(patterns: list[str]) -> list[str]:
    """Every stage ``dvc status`` lists as changed (code, params, command, inputs, or never built; not one whose only
    change is outputs absent here), in an order that builds what a stage reads before it, keeping those whose name
    matches one of ``patterns`` (fnmatch; none: all)."""
    import fnmatch

    status = dvc_status()
    return [n for n in build_order() if status.get(n) and not only_missing(status[n])
            and (not patterns or any(fnmatch.fnmatch(n, p) for p in patterns))]


def main() -> None:
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    upstream_too = args[0] != "--no-upstream"
    args = args if upstream_too else args[1:]
    stages = stale_stages(args[1:]) if args[0] == "--stale" else args
    print(f"=== {len(stages)} stage(s): {' '.join(stages)}", flush=True)
    env = reference_env()
    if upstream_too:
        ensure(stages, env)
    for stage in stages:
        if (ROOT / "STOP").exists():
            print(f"=== STOP: stopping before {stage}", flush=True)
            return
        print(f"=== start {stage} {datetime.datetime.now(datetime.timezone.utc):%H:%M:%SZ}", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        logf = ROOT / ".cache" / "rebuild" / f"{stage.replace('/', '_').replace(':', '_')}.log"
        logf.parent.mkdir(parents=True, exist_ok=True)
        with logf.open("w") as out:
            rc = subprocess.run(["dvc", "repro", "--single-item", stage], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT).returncode
        if rc != 0 and LOCKED in logf.read_text() and "Running stage" in logf.read_text():
            rc = commit_after_lock(stage, logf, env)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"=== {stage} rc={rc} {wall:.0f} s (cpu {cpu:.0f} s)", flush=True)
        if rc != 0:
            sys.exit(f"{stage} failed: {logf}")
        if f"Stage '{stage}' didn't change, skipping" in logf.read_text():
            print(f"=== {stage}: current already (dvc skipped it): nothing recorded", flush=True)
            continue
        record(stage, wall, cpu)
        rewrite_tables(stage)
        commit(stage, wall)
    print("=== chain done", flush=True)


if __name__ == "__main__":
    main()
