"""Synthetic world + mesh stage at the default profile: wall time and peak memory of each CLI step.

Each step runs as its own process (the same commands as dvc.yaml) into a temporary folder; peak memory is
getrusage(RUSAGE_CHILDREN), the largest child so far. The anny cache is warm (its one-off build, about 60 s, is
not counted). Target (issue 3): world + meshes <= 10 min on 2 CPU cores.
Run: python bench/bench_world.py   (writes bench/results/world.json)
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def step(name: str, args: list[str]) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "reid_repro.cli", *args], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024   # max over the children so far
    return {"step": name, "seconds": round(time.perf_counter() - t0, 1), "peak_rss_mb_so_far": round(peak),
            "summary": proc.stdout.strip().splitlines()[-1]}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = [step("world", ["world", "--profile", "default", "--out", str(tmp / "world"),
                               "--reports", str(tmp / "reports")])]
        for domain in ("market", "duke", "msmt"):
            rows.append(step(f"meshes {domain}", ["meshes", "--images", str(tmp / "world" / domain),
                                                  "--out", str(tmp / "meshes" / domain)]))
    total = sum(r["seconds"] for r in rows)
    rows.append({"step": "total", "seconds": round(total, 1), "target_seconds": 600,
                 "peak_rss_mb": max(r["peak_rss_mb_so_far"] for r in rows)})
    write_results("world", rows)


if __name__ == "__main__":
    main()
