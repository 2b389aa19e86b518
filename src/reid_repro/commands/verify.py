"""``reid-repro verify``: re-run a few committed runs on this machine and check them against the committed results.

Each run is trained again with the same seeds (nothing reused from ``.cache/results``). Under reference numerics
on both sides (the default; reid_repro/numerics.py) x86 machines are meant to agree bit for bit (AMD EPYCs did;
an Intel Xeon did once MKL was held to its vendor-independent branch: docs/numerics.md "Across CPUs"), so the
strongest answer is "identical": every seed's value equals the committed one. Otherwise (``REID_CPU=native``,
a committed run built off the reference, or a CPU whose kernels still differ under the reference settings) the
check is statistical, and that is what verify promises everywhere: the new mean over seeds must land inside the
committed 95% interval for the mean of a repeat, ``mean ± t(n-1) · sd · sqrt(2/n)`` (committed mean and sd over n
seeds; the repeat's own spread is assumed the same). Each line says which numerics both sides computed with.
"""

from __future__ import annotations

HELP = "re-train a named set of committed runs here and say whether each lands inside the committed interval"

# the headline claims' rows and their baselines: about 90 s per run with 3 seeds on 2 cores
DEFAULT_RUNS = ("cc_market", "ise_market")

# sha256 of each default-world domain's ground_truth.parquet as CSV (world seed 0, profile default, the
# committed conf/world.yaml: Market neutral, Duke duke_light, MSMT mixed), recorded on 2026-12-07 from the world
# the rebuild (issue 43) trains on. The ground truth is what the seed draws, the same on every machine; the JPEG
# bytes may differ with the OpenGL driver (docs/world.md "The synthetic world"). tests/test_world.py checks these
# against the committed data/world.
WORLD_SHA256 = {"market": "15b46c1a4c3d4a5f59717791de19881f74fa535015aa47aa1101f092dec5f10a",
                "duke": "d5a8e49a6681e3ec07353703f642b06bdb80a9a4b9a7d4f5ae96b53198fbf9d1",
                "msmt": "fee1238d9e8aa8eb6c226fcbf4a6bf73ba370964acd5cc6395bb0d9fdffc91b8",
                "pretrain": "7945b925bae95691a5e517cd225d7af6f1a08cfa70b838a3787a18afd201efc3"}


def add_arguments(p) -> None:
    p.add_argument("runs", nargs="*", default=list(DEFAULT_RUNS),
                   help=f"declared runs (conf/runs/<paper>.yaml; default: {' '.join(DEFAULT_RUNS)})")
    p.add_argument("--committed", default="runs", help="the committed runs folder to check against")
    p.add_argument("--out", default=".cache/verify", help="where the re-trained runs are written")
    p.add_argument("--models", default="models")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--world", default="data/world",
                   help="the world folder whose ground truth is compared with the recorded one first")


def ground_truth_digest(path) -> str:
    """sha256 of a ground_truth.parquet's table written as CSV (exact float repr): equal tables, equal digest."""
    import hashlib

    import pandas as pd

    return hashlib.sha256(pd.read_parquet(path).to_csv(index=False).encode()).hexdigest()


def check_world(world) -> list[str]:
    """One line per domain: whether its ground truth equals the recorded default world's."""
    from pathlib import Path

    lines = []
    for name, expected in WORLD_SHA256.items():
        path = Path(world) / name / "ground_truth.parquet"
        if not path.is_file():
            lines.append(f"world {name}: {path} missing (run `dvc repro synthetic/dvc.yaml:world`)")
            continue
        got = ground_truth_digest(path)
        lines.append(f"world {name}: ground truth " + ("identical to the recorded one" if got == expected else
                     f"DIFFERS (sha256 {got[:12]} != {expected[:12]}: another world section or seed, or a bug)"))
    return lines


def repeat_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """Where the mean of a repeat of ``len(values)`` seeds should land: mean ± t · sd · sqrt(2/n)."""
    import math

    import numpy as np
    from scipy import stats

    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return (-math.inf, math.inf)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) * math.sqrt(2 / n))
    return (float(v.mean()) - half, float(v.mean()) + half)


def check(name: str, committed: dict, fresh: dict, metric: str = "mAP", committed_reference: bool | None = None,
          fresh_reference: bool | None = None) -> dict:
    """One run's verdict: the committed per-seed values (points), the fresh mean and whether it lands inside;
    ``identical`` when every fresh seed's value equals the committed one exactly, and which numerics each side
    computed with (``*_reference``: True, False or None when its record cannot tell)."""
    seeds = sorted(committed["seeds"], key=int)
    old = [100 * committed["seeds"][s][metric] for s in seeds]
    new = [100 * fresh["seeds"][s][metric] for s in seeds if s in fresh["seeds"]]
    low, high = repeat_interval(old)
    mean = sum(new) / len(new)
    identical = all(s in fresh["seeds"] and fresh["seeds"][s][metric] == committed["seeds"][s][metric]
                    for s in seeds)
    return {"run": name, "metric": metric, "committed": old, "fresh": new, "interval": [low, high],
            "fresh_mean": mean, "inside": low <= mean <= high, "identical": identical,
            "committed_reference": committed_reference, "fresh_reference": fresh_reference}


def recorded_reference(folder) -> bool | None:
    """Whether the run in ``folder`` says (run.json) it computed under reference numerics; None without a record."""
    import json
    from pathlib import Path

    from reid_repro import numerics

    info = Path(folder) / "run.json"
    return numerics.run_is_reference(json.loads(info.read_text())) if info.is_file() else None


def numerics_note(r: dict) -> str:
    """What a result line says about the numerics of both sides."""
    if r["committed_reference"] and r["fresh_reference"]:
        return ("identical to the committed values, bit for bit" if r["identical"] else
                "both under reference numerics but NOT bit-identical (this CPU's kernels still differ; the interval "
                "is the promise here)")
    sides = [f"{side} {'off the reference' if ref is False else 'of unknown numerics'}"
             for side, ref in (("committed", r["committed_reference"]), ("fresh", r["fresh_reference"]))
             if not ref]
    return " and ".join(sides) + ": compared within the interval only"


def run(args) -> str:
    import json
    from pathlib import Path

    from reid_repro import numerics
    from reid_repro.config import load_params, load_run
    from reid_repro.errors import ReidReproError
    from reid_repro.training.run import execute_seeds

    params = load_params(args.params)
    print(f"numerics here: {numerics.kernel_set()}")
    for line in check_world(args.world):
        print(line)
    results = []
    for name in args.runs:
        committed_file = Path(args.committed) / name / "metrics.json"
        if not committed_file.is_file():
            raise ReidReproError(f"{committed_file}: missing; verify checks committed runs (git checkout, "
                                 "`dvc pull` or `dvc repro` first)")
        committed = json.loads(committed_file.read_text())
        if "seeds" not in committed:
            raise ReidReproError(f"{committed_file}: no per-seed values; expected a run written with seeds")
        fresh = execute_seeds(params, name, load_run(params, name), Path(args.out) / name, stage="verify",
                              models_dir=args.models, track=False, reuse=False)
        r = check(name, committed, fresh, committed_reference=recorded_reference(Path(args.committed) / name),
                  fresh_reference=recorded_reference(Path(args.out) / name))
        results.append(r)
        print(f"{name}: committed {r['metric']} " + ", ".join(f"{v:.1f}" for v in r["committed"])
              + f" -> interval [{r['interval'][0]:.1f}, {r['interval'][1]:.1f}]; here "
              + ", ".join(f"{v:.1f}" for v in r["fresh"]) + f" (mean {r['fresh_mean']:.1f}): "
              + ("inside" if r["inside"] else "OUTSIDE") + f"; {numerics_note(r)}")
    inside = sum(r["inside"] for r in results)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "verify.json").write_text(json.dumps({"numerics": numerics.describe(), "runs": results},
                                                           indent=2) + "\n")
    identical = sum(bool(r["identical"]) for r in results)
    return (f"verify: {inside} of {len(results)} runs inside the committed interval, {identical} bit-identical "
            f"(details in {args.out}/verify.json)")
