"""How long DVC takes to read this pipeline (issue 40 §2: `dvc status` ≤ 10 s, a no-change `dvc repro` ≤ 15 s).

Every `dvc status`, `dvc repro`, `dvc exp run` and `dvc exp show` first checks each stage's params, code deps
and outputs. This times, on the committed pipeline:

- one parse of params.yaml as DVC parses it (ruamel, typ=safe; with and without its C parser, which ruamel.yaml
  0.19 no longer installs: pyproject.toml names ruamel.yaml.clib) and one `dpath.get` of a run's keys, as DVC
  reads a stage's params (the whole file is parsed again for every stage);
- `dvc status --json` over the whole pipeline (wall seconds, stages listed), and `dvc stage list` (collecting the
  stages without checking them).

Run: python bench/bench_dvc.py [--no-status]    (writes bench/results/dvc.json; `dvc status` takes minutes)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, write_results  # noqa: E402

STAGE_KEYS = ("scale", "device", "seeds", "model", "data.market", "cluster_contrast", "ise", "runs.cc_market")


def _time(fn, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def parse_costs() -> dict:
    import dpath
    from ruamel.yaml import YAML

    text = (ROOT / "params.yaml").read_text()
    out = {"params_lines": text.count("\n")}
    try:
        import _ruamel_yaml  # noqa: F401  (ruamel.yaml.clib)
        out["ruamel_c_parser"] = True
    except ImportError:
        out["ruamel_c_parser"] = False
    yaml = YAML(typ="safe")
    out["parse_seconds"] = round(_time(lambda: yaml.load(text)), 4)
    pure = YAML(typ="safe", pure=True)
    out["parse_seconds_pure_python"] = round(_time(lambda: pure.load(text)), 4)
    data = yaml.load(text)
    out["dpath_get_seconds_per_stage"] = round(
        _time(lambda: [dpath.get(data, k, separator=".") for k in STAGE_KEYS if k.split(".")[0] in data]), 4)
    return out


def dvc_seconds(*args: str) -> tuple[float, str]:
    dvc = str(Path(sys.executable).with_name("dvc"))
    t0 = time.perf_counter()
    proc = subprocess.run([dvc, *args], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    return round(seconds, 1), proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-status", action="store_true", help="only the parse costs and `dvc stage list`")
    args = ap.parse_args()
    row = {"case": "committed pipeline", "machine": machine(), **parse_costs()}
    seconds, listing = dvc_seconds("stage", "list")
    row.update(stages=len(listing.splitlines()), stage_list_seconds=seconds)
    if not args.no_status:
        seconds, out = dvc_seconds("status", "--json")
        row.update(status_seconds=seconds, status_stages_listed=len(json.loads(out or "{}")))
    row["targets"] = {"status_seconds": 10, "no_change_repro_seconds": 15}
    print(json.dumps(row), flush=True)
    write_results("dvc", [row])


if __name__ == "__main__":
    main()
