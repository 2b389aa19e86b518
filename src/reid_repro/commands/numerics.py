"""``reid-repro numerics``: the CPU kernels, threads and precision this machine computes with, against the
reference the committed results were computed with (reid_repro/numerics.py)."""

from __future__ import annotations

HELP = "show the CPU kernel set, threads and precision a run here computes with (REID_CPU=native opts out)"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print the record a run keeps (run.json environment.numerics)")
    p.add_argument("--params", default="params.yaml", help="read model.<scale>.precision from this file")


def run(args) -> str:
    import json
    from pathlib import Path

    import torch

    from reid_repro import numerics
    from reid_repro.models import native_bf16, resolve_precision

    info = numerics.describe()
    precision = "auto"
    if Path(args.params).is_file():
        from reid_repro.config import load_params

        params = load_params(args.params)
        precision = params["model"][params.get("scale", "cpu")].get("precision", "auto")
    info["precision"] = {"configured": precision, "cpu": resolve_precision(precision, "cpu"),
                         "cpu_native_bf16": native_bf16("cpu"), "cuda": torch.cuda.is_available()}
    if args.json:
        return json.dumps(info, indent=2, sort_keys=True)
    verdict = ("the reference: runs here compute what the committed results computed" if info["reference"] else
               "NOT the reference: runs here record that they are off it, and `reid-repro verify` compares them "
               "within the committed intervals only")
    return (f"numerics: {info['kernel_set']}; precision {precision} -> {info['precision']['cpu']} on the CPU "
            f"(native bf16: {info['precision']['cpu_native_bf16']}); {verdict}")
