"""The report stage's time on the committed runs: `reid-repro report` over runs/ into a scratch folder.

Targets (issue 17): under 60 s on 2 cores for the default pipeline; the page (index.html and its figures) under
10 MB. The load average is recorded beside the time: training on the same cores slows the build.
Run: python bench/bench_report.py   (writes bench/results/report.json; reads runs/, writes nothing else)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reports"
        if (ROOT / "reports" / "model_figures").is_dir():   # the figures stage's output, which the report shows
            shutil.copytree(ROOT / "reports" / "model_figures", out / "model_figures")
        t0 = time.perf_counter()
        # --allow-missing: a half-built pipeline's runs read "not built yet" (counted below) instead of stopping
        proc = subprocess.run([sys.executable, "-m", "reid_repro.cli", "report", "--runs", "runs", "--out", str(out),
                               "--studies", "studies", "--allow-missing"], cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"reid-repro report failed:\n{proc.stderr}")
        summary = json.loads((out / "report.json").read_text())
        page = [out / "index.html"] + [out / f for f in summary["figures"]]
        row = {"case": "default", "tables": len(summary["tables"]), "figures": len(summary["figures"]),
               "seconds": round(seconds, 2), "load_average": round(os.getloadavg()[0], 2),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
               "page_mb": round(sum(p.stat().st_size for p in page) / 2**20, 2),
               "runs_not_built": len(summary.get("not_built", [])), "runs_stale": len(summary.get("stale_runs", [])),
               "target_seconds": 60, "target_page_mb": 10}
    write_results("report", [row])
