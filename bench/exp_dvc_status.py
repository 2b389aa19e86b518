"""What `dvc status` costs once every stage is current (issue 40 §2: the whole pipeline's `dvc status` <= 10 s,
a no-change `dvc repro` <= 15 s). An experiment, not a stage.

`bench/bench_dvc.py` times `dvc status` on the checkout as committed, where every stage is stale until the
rebuild (issue 43). A stale stage stops checking at its first changed input; a current one checks them all, so
that time is not what a user sees after the rebuild. This script makes a scratch git worktree of HEAD, writes a
placeholder for every stage output (and for the outputs' files other stages read), lets `dvc commit -f` write a
lock that matches today's wiring (DVC cache inside the scratch folder), and times `dvc status --json` there:
best of three, as CPU seconds of the dvc process (user + system: what the pipeline's shape costs, steady when
other work shares the machine) and wall seconds; then a no-change `dvc repro` (only when nothing is stale, so it
runs no command). Then the one lever not built:

- ``settings_out``: params.yaml without ``world``, ``video`` and ``studies``, as if moved to files of their own:
  every stage parses params.yaml (ruamel, ~20 ms) and walks it once per key. Only the few stages that read
  those sections go stale; what is timed is the others' parse and walk.

Built since the first measurement (``exp_dvc_status.json``, revision 2d9298ed, with the levers as scratch edits):
the larger profile's stages exist only while ``larger.enabled`` is true (conf/runs.json ``larger_stages``), and
each run stage reads its params from its paper's conf/runs/<paper>.json instead of all of conf/runs.json.

``--dvc BIN`` adds the same cases with another dvc installation (e.g. one with ruamel.yaml 0.19.1 beside the
pinned 0.17.21, whose safe loader is faster).

Run: python bench/exp_dvc_status.py [--dvc /path/to/other/bin/dvc] [--keep] [--name exp_dvc_status_s33]
     (writes bench/results/<name>.json; about 10 minutes on 2 cores, most of it `dvc commit -f`)
"""

from __future__ import annotations

import argparse
import json
import re
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
SETTINGS_OUT = ("world", "video", "studies")

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


def settings_out(wt: Path) -> None:
    """Each of SETTINGS_OUT cut to its keys (values 0; video keeps its domains, which a foreach reads)."""
    import yaml

    path = wt / "params.yaml"
    data = yaml.safe_load(path.read_text())
    out, section = [], None
    for line in path.read_text().splitlines(keepends=True):
        top = re.match(r"^([a-z_]+):", line)
        if top:
            section = top.group(1)
            if section in SETTINGS_OUT:
                stub = {k: (v if (section, k) == ("video", "domains") else 0) for k, v in data[section].items()}
                out.append(f"{section}: {json.dumps(stub)}\n")
        if section not in SETTINGS_OUT:
            out.append(line)
    path.write_text("".join(out))


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
        settings_out(wt)
        case("settings_out", ("settings_out",))
    finally:
        if not args.keep:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            print(f"kept {wt}", flush=True)
    write_results(args.name, [{**row, "target_status_seconds": 10, "target_repro_seconds": 15} for row in rows])


if __name__ == "__main__":
    main()
