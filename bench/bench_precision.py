"""What `model.precision` costs on this machine: one bare ResNet-18 training step (64x32, batch 32, Adam) in fp32,
in bf16 (autocast over the backbone) and in `auto` (what the pipeline uses here), on random tensors.

bf16 is only fast where the CPU has native bf16 (AVX512-BF16 or AMX); elsewhere autocast emulates it. Writes
bench/results/precision_<cpu capability>.json, so machines of different kinds keep their own figures.

    python bench/bench_precision.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, run_case, write_results  # noqa: E402
from bench_training import bare  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", choices=["fp32", "bf16", "auto"])
    args = parser.parse_args()
    if args.case:
        from reid_repro.models import resolve_precision

        row = bare(args.case)
        print(json.dumps({**row, "case": args.case, "computes_in": resolve_precision(args.case, "cpu")}))
        return
    rows = [run_case(__file__, c) for c in ("fp32", "bf16", "auto")]
    by = {r["case"]: r for r in rows}
    rows.append({"case": "ratio", "bf16_step_over_fp32": round(by["bf16"]["ms_per_iteration"]
                                                               / by["fp32"]["ms_per_iteration"], 2),
                 "auto_computes_in": by["auto"]["computes_in"]})
    write_results(f"precision_{machine()['cpu_capability'].lower()}", rows)


if __name__ == "__main__":
    main()
