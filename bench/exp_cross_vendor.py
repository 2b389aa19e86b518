"""Does an AMD CPU compute what this Intel one does under reference numerics? Emulate it here and compare.

The committed results are meant to be bit-identical on every x86 CPU. On 2026-12-07 an Intel Xeon (Sapphire
Rapids class) trained another pretrained start than the AMD EPYCs had, under the same settings. This script
trains a few steps of the project's network (resnet10 at the CPU size, a linear classifier and a distance term,
so both oneDNN's convolutions and MKL's matrix products are exercised) in fresh processes:

- natively, and as an AMD Zen CPU (``bench/cpuid_as_amd.c``: CPUID faulting answers vendor, family and AMD's
  cache leaf; two L2 sizes, as the EPYCs this project ran on differ), each
- under the reference settings (``reid_repro.numerics.REFERENCE_ENV``) and under the earlier ``MKL_CBWR=AVX2``
  (the control: it must show the difference, or the probe has no power).

It writes ``bench/results/cross_vendor.json``: the weights' digest per case and MKL's branch as MKL_VERBOSE
reports it, and compares this machine's reference digest with the one the file held (another machine's: on real
AMD silicon that is the check the emulation cannot make). Needs gcc and CPUID faulting (an Intel CPU; Linux >=
4.12) for the emulated cases.

    python bench/exp_cross_vendor.py [--steps 3]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from reid_repro.numerics import REFERENCE_ENV, THREAD_VARS, cpu, wanted  # noqa: E402

BRANCHES = (REFERENCE_ENV["MKL_CBWR"], "AVX2")     # the reference's MKL branch, then the old one (the control)

PROBE = """
import hashlib, torch
from reid_repro.models import ReidNet
torch.manual_seed(0)
net = ReidNet("resnet10", 1, "avg")
head = torch.nn.Linear(net.dim, 40)
params = [*net.parameters(), *head.parameters()]
opt = torch.optim.SGD(params, lr=0.05, momentum=0.9)
g = torch.Generator().manual_seed(1)
for step in range({steps}):
    x = torch.randn(32, 3, 64, 32, generator=g)
    y = torch.randint(0, 40, (32,), generator=g)
    f = net(x)
    dist = torch.cdist(f, f)                      # a distance matrix, as clustering and evaluation compute
    loss = torch.nn.functional.cross_entropy(head(f), y) + 1e-3 * dist.mean()
    opt.zero_grad(); loss.backward(); opt.step()
digest = hashlib.sha256(b"".join(p.detach().contiguous().numpy().tobytes() for p in params)).hexdigest()
print("DIGEST", digest[:16], repr(loss.item()))
"""


def run(steps: int, mkl_cbwr: str, shim: Path | None, l2_kib: int | None) -> dict | None:
    env = {k: v for k, v in os.environ.items() if k not in REFERENCE_ENV and k not in THREAD_VARS}
    env.update(wanted({}), MKL_CBWR=mkl_cbwr, MKL_VERBOSE="1", PYTHONPATH=str(HERE.parent / "src"))
    if shim is not None:
        env.update(LD_PRELOAD=str(shim), CPUID_AMD_L2K=str(l2_kib))
    proc = subprocess.run([sys.executable, "-c", PROBE.format(steps=steps)], capture_output=True, text=True,
                          env=env)
    if proc.returncode == 3 and shim is not None and "CPUID faulting" in proc.stderr:
        return None       # no CPUID faulting here (an AMD CPU, an old kernel): only the native cases run
    if proc.returncode != 0:
        raise SystemExit(f"probe failed (MKL_CBWR={mkl_cbwr}, shim={shim}): {proc.stderr[-2000:]}")
    digest, loss = re.search(r"^DIGEST (\w+) (\S+)$", proc.stdout, re.M).groups()
    header = re.search(r"MKL_VERBOSE oneMKL .*? for (.*?), Lnx", proc.stdout)
    branches = sorted(set(re.findall(r"CNR:(\w+)", proc.stdout)))
    return {"cpu_as": "AMD Zen (emulated)" if shim else "native", "l2_kib": l2_kib, "mkl_cbwr": mkl_cbwr,
            "mkl_path": header.group(1) if header else None, "mkl_branch": branches, "digest": digest,
            "loss": float(loss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cross_vendor.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        shim = Path(tmp) / "cpuid_as_amd.so"
        subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(shim), str(HERE / "cpuid_as_amd.c")], check=True)
        cases = [run(args.steps, branch, s, l2) for branch in BRANCHES
                 for s, l2 in ((None, None), (shim, 512), (shim, 1024))]
    if None in cases:
        print("this CPU or kernel has no CPUID faulting: no emulated AMD cases, only this machine's own")
        cases = [c for c in cases if c is not None]
    import torch

    same = {b: len({c["digest"] for c in cases if c["mkl_cbwr"] == b}) == 1 for b in BRANCHES}
    result = {"host": cpu()["model"], "date": datetime.date.today().isoformat(),
              "torch": torch.__version__, "steps": args.steps,
              "reference_mkl_cbwr": REFERENCE_ENV["MKL_CBWR"], "identical_across_vendors": same, "cases": cases}
    before = json.loads(args.out.read_text()) if args.out.is_file() else None
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    for c in cases:
        print(f"{c['cpu_as']:20s} L2 {str(c['l2_kib'] or '-'):>5s}  MKL_CBWR={c['mkl_cbwr']:10s} "
              f"branch {','.join(c['mkl_branch']):10s} {c['digest']}")
    print("identical across vendors:", same, "->", args.out)
    if before:   # the file as committed, from another machine: the real cross-machine check
        ref = REFERENCE_ENV["MKL_CBWR"]
        old = next((c["digest"] for c in before["cases"] if c["cpu_as"] == "native" and c["mkl_cbwr"] == ref), None)
        new = next(c["digest"] for c in cases if c["cpu_as"] == "native" and c["mkl_cbwr"] == ref)
        print(f"this machine under the reference: {new}; {before['host']} had {old}:",
              "identical" if new == old else "DIFFERENT")


if __name__ == "__main__":
    main()
