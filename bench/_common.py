"""Shared helpers for the benchmark scripts: run a case in a fresh process, record peak RSS, write results."""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def key_values(pairs: list[str]) -> dict:
    """``["lr=3.5e-4", "fit=1.1"]`` -> ``{"lr": 0.00035, "fit": 1.1}``: the KEY=VALUE arguments of the benches,
    each value read as YAML (numbers, lists, null)."""
    import yaml

    return {k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in pairs)}


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(script: str, case: str) -> dict:
    """Run ``script --case case`` in a new interpreter so its peak RSS is its own."""
    proc = subprocess.run([sys.executable, script, "--case", case], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    import os

    import torch

    from reid_repro.models import native_bf16

    return {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "native_bf16_cpu": native_bf16("cpu")}


def write_results(name: str, rows: list[dict]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "cases": rows}, indent=2) + "\n")
    for row in rows:
        print(json.dumps(row))
    print(f"wrote {path}")
    return path


def replace_case(name: str, case: str, rows: list[dict]) -> Path:
    """Rewrite ``results/<name>.json`` with ``rows`` in place of its ``case`` rows, keeping its other cases (the
    ``--from-runs`` budgets, read from committed runs, beside the timed cases)."""
    path = RESULTS / f"{name}.json"
    old = json.loads(path.read_text())["cases"] if path.exists() else []
    return write_results(name, [r for r in old if r["case"] != case] + rows)


def seconds_per_call(fn, device, n: int, warmup: int = 1) -> float:
    """Mean seconds of ``fn()`` over ``n`` calls after ``warmup`` untimed ones; on CUDA the device is synchronised
    before and after, so queued kernels are counted."""
    import torch

    sync = (lambda: torch.cuda.synchronize(device)) if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    sync()
    return (time.perf_counter() - t) / n


def train_seconds(folder: Path) -> list[float]:
    """Training seconds of each trained seed under ``folder`` (a run's seeds/, or a source model's net1/net2)."""
    out = []
    for f in sorted(folder.glob("*/metrics.json")):
        value = json.loads(f.read_text()).get("train_seconds")
        if value is not None:
            out.append(float(value))
    return out


def table_fills(params: dict) -> dict[tuple, list[str]]:
    """Which runs fill each paper table cell: (paper, table, row, column) -> the runs, in params.yaml's order (the
    first is the one a verdict reads). bench/exp_seed_plan.py and bench/exp_rebuild_estimate.py match
    report/claims.yaml to runs through it."""
    from reid_repro.config.runs import load_run

    fills: dict = {}
    for name in params["runs"]:
        spec = load_run(params, name)
        for paper, table, row in spec.targets():
            fills.setdefault((paper, str(table), row, spec.table_column), []).append(name)
    return fills
