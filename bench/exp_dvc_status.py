"""What `dvc status` costs once every stage is current (issue 40 §2: the whole pipeline's `dvc status` <= 10 s,
a no-change `dvc repro` <= 15 s). An experiment, not a stage.

`bench/bench_dvc.py` times `dvc status` on the checkout as committed, where every stage is stale until the
rebuild (issue 43). A stale stage stops checking at its first changed input; a current one checks them all, so
that time is not what a user sees after the rebuild. This script makes a scratch git worktree of HEAD, writes a
placeholder for every stage output (and for the outputs' files other stages read), lets `dvc commit -f` write a
lock that matches today's wiring (DVC cache inside the scratch folder), and times `dvc status --json` there:
best of three, as CPU seconds of the dvc process (user + system: what the pipeline's shape costs, steady when
other work shares the machine) and wall seconds; then a no-change `dvc repro` (only when nothing is stale, so it
runs no command).

Built since the first measurement (``exp_dvc_status.json``, revision 2d9298ed, with these levers as scratch edits,
and ``exp_dvc_status_s33.json`` for the last): the larger profile's stages exist only while ``larger.enabled`` is
true (conf/runs.json ``larger_stages``); each run stage reads its params from its paper's conf/runs/<paper>.json
instead of all of conf/runs.json; ``world``, ``video`` and ``studies`` live in conf/world.yaml and
conf/studies.yaml, so that the params.yaml every stage parses and walks once per key holds only what most read.

``--dvc BIN`` adds the same cases with another dvc installation (e.g. one with another ruamel.yaml: its
resolver runs once per stage and params file).

Run: python bench/exp_dvc_status.py [--dvc /path/to/other/bin/dvc] [--keep] [--name exp_dvc_status_settings]
     (writes bench/results/<name>.json; about 5 minutes on 2 cores, most of it `dvc commit -f`)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

VENV_DVC = str(Path(sys.executable).with_name("dvc"))

# placeholders: every output a stage declares, and every input path that lies inside another stage's output
PLACEHOLDERS = r"""
from pathlib import Path
from dvc.repo import Repo

def touch(p):
    if p.exists():
        return 0
    if p.suffix:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(p.name)
    else:
        p.mkdir(parents=True, exist_ok=True)
        (p / "placeholder").write_text(p.name)
    return 1

repo = Repo(".")
made = sum(touch(Path(o.fs_path)) for s in repo.index.stages for o in s.outs)
made += sum(touch(Path(d.fs_path)) for s in repo.index.stages for d in s.deps
            if type(d).__name__ != "ParamsDependency")
print(made)
"""


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
    return proc.stdout


def commit(wt: Path) -> float:
    """Placeholders for missing outputs, then a lock that matches the wiring; the seconds it took."""
    t0 = time.perf_counter()
    _run([sys.executable, "-c", PLACEHOLDERS], wt)
    _run([VENV_DVC, "commit", "-f", "--quiet"], wt)
    return round(time.perf_counter() - t0, 1)


def status_seconds(wt: Path, dvc: str, repeat: int = 3) -> dict:
    """Best of ``repeat`` `dvc status --json`: CPU seconds of the dvc process, wall seconds, stages listed."""
    cpu, wall, stale = [], [], None
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run([dvc, "status", "--json"], cwd=wt, capture_output=True, text=True)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"{dvc} status failed in {wt}:\n{proc.stderr[-2000:]}")
        stale = len(json.loads(proc.stdout or "{}"))
    return {"cpu_seconds": round(min(cpu), 2), "wall_seconds": round(min(wall), 2), "stale_stages": stale}


def repro_seconds(wt: Path, dvc: str) -> dict:
    """A no-change `dvc repro` (every stage current: it runs no command): CPU and wall seconds, once."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([dvc, "repro"], cwd=wt, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0 or "Running stage" in proc.stdout:
        raise SystemExit(f"{dvc} repro ran a stage or failed in {wt}:\n{proc.stdout[-1500:]}{proc.stderr[-1500:]}")
    return {"repro_cpu_seconds": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
            "repro_wall_seconds": round(wall, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dvc", action="append", default=[], help="another dvc executable to time beside the venv's")
    ap.add_argument("--keep", action="store_true", help="keep the scratch worktree (its path is printed)")
    ap.add_argument("--name", default="exp_dvc_status", help="the results file (bench/results/<name>.json)")
    args = ap.parse_args()
    dvcs = {"venv": VENV_DVC, **{f"alt{i}": path for i, path in enumerate(args.dvc)}}
    versions = {name: _run([path, "--version"], ROOT).strip() for name, path in dvcs.items()}
    ruamel = {name: _run([str(Path(path).with_name("python")), "-c",
                          "import ruamel.yaml; print(ruamel.yaml.__version__)"], ROOT).strip()
              for name, path in dvcs.items()}
    scratch = Path(tempfile.mkdtemp(prefix="exp_dvc_status_"))
    wt = scratch / "wt"
    revision = _run(["git", "rev-parse", "HEAD"], ROOT).strip()
    _run(["git", "worktree", "add", "--detach", str(wt), revision], ROOT)
    rows = []
    try:
        _run([VENV_DVC, "cache", "dir", "--local", str(scratch / "cache")], wt)
        stages = len(_run([VENV_DVC, "stage", "list", "--name-only"], wt).split())

        def case(name: str, levers: tuple, commit_seconds: float | None = None, repro: bool = False) -> None:
            for label, dvc in dvcs.items():
                row = {"case": name, "levers": list(levers), "dvc": label, "dvc_version": versions[label],
                       "ruamel_yaml": ruamel[label], "revision": revision, "stages": stages,
                       **status_seconds(wt, dvc)}
                if repro and row["stale_stages"] == 0:
                    row.update(repro_seconds(wt, dvc))
                if commit_seconds is not None:
                    row["commit_seconds"] = commit_seconds
                print(json.dumps(row), flush=True)
                rows.append(row)

        case("as it is, every stage current", (), commit(wt), repro=True)
    finally:
        if not args.keep:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {wt}", flush=True)
    write_results(args.name, [{**row, "target_status_seconds": 10, "target_repro_seconds": 15} for row in rows])


if __name__ == "__main__":
    main()
