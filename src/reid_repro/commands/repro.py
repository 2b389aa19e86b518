"""``reid-repro repro``: `dvc repro` with a plan first and progress over the whole pipeline (``make repro``).

Before anything runs it asks DVC which stages are out of date (``dvc status --json``: changed code, params or
command, or outputs missing from this checkout and its DVC cache) and says how many there are and how long they
should take, from the times the committed results recorded (:func:`estimate`). Then it runs ``dvc repro`` (or
``dvc exp run`` with ``--exp``) and, as each stage starts, prints ``stage k of n``, the time so far and the time
left: the estimate of the stages not yet run, scaled by how this machine's pace compares with the recorded one.
Stages that DVC runs beyond the plan (downstream of a stage whose outputs changed) are counted as they start.
"""

from __future__ import annotations

HELP = "dvc repro with a plan (stages out of date, estimated time) and progress over the whole pipeline"

# Seconds of a stage kind when nothing better is recorded: what the rebuild table of docs/pipeline.md measured on a 2-core
# AVX512-BF16 EPYC held to AVX2 (each stage's own record, where it has one, comes first: see estimate()).
DEFAULT_SECONDS = {"world": 985, "prepare": 30, "meshes": 135, "pretrain": 810, "source": 360, "start": 60,
                   "transfer": 60, "train": 270, "train_larger": 20, "warmup": 570, "warmup_larger": 20, "tune": 420,
                   "tuned": 280, "figures": 75, "report": 40}
# a run stage's cost beyond its recorded training: start-up and decoding once, evaluation per seed
STAGE_OVERHEAD, SEED_OVERHEAD = 30.0, 12.0


def add_arguments(p) -> None:
    p.add_argument("--exp", action="store_true", help="run `dvc exp run` instead of `dvc repro` (with -S)")
    p.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                   help="with --exp: a params.yaml value to set, as `dvc exp run -S`")
    p.add_argument("--plan-only", action="store_true", help="print the plan and stop")
    p.add_argument("targets", nargs="*", help="stages to reproduce (default: the whole pipeline)")


def _json(path):
    import json

    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def estimate(stage: str, root=".") -> float:
    """Seconds ``stage`` should take, from what its committed outputs recorded: a run's ``train_seconds`` (all its
    seeds) plus start-up and evaluation; a warm-up's or source model's training seconds; a study's trial
    seconds; else :data:`DEFAULT_SECONDS` of its kind."""
    from pathlib import Path

    root = Path(root)
    kind, _, item = stage.rpartition(":")[2].partition("@")
    if kind in ("train", "train_larger", "tuned"):
        m = _json(root / "runs" / (f"tuned_{item}" if kind == "tuned" else item) / "metrics.json") or {}
        if "not_run" in m:
            return DEFAULT_SECONDS["train_larger"]
        if "train_seconds" in m:
            return m["train_seconds"] + STAGE_OVERHEAD + SEED_OVERHEAD * m.get("num_seeds", 1)
    elif kind in ("warmup", "warmup_larger"):
        m = _json(root / "models" / item / "metrics.json") or {}
        if "train_seconds" in m:
            return m["train_seconds"] + STAGE_OVERHEAD
    elif kind == "source":
        m = _json(root / "models" / f"source_{item}" / "metrics.json") or {}
        seconds = [n.get("train_seconds") for n in m.values() if isinstance(n, dict)]
        if seconds and all(isinstance(s, (int, float)) for s in seconds):
            return sum(seconds) + 2 * (STAGE_OVERHEAD + SEED_OVERHEAD)
    elif kind == "tune":
        import pandas as pd

        trials = root / "studies" / item / "trials.csv"
        if trials.is_file():
            return float(pd.read_csv(trials)["seconds"].sum()) + STAGE_OVERHEAD
    return float(DEFAULT_SECONDS.get(kind, 60))


def out_of_date(status: dict) -> list[str]:
    """The stages of ``dvc status --json`` (name -> its changes) that `dvc repro` would run, in its order."""
    return [name for name, changes in status.items() if changes]


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


class Progress:
    """Stage k of n and the time left, as `dvc repro` starts each stage (module docstring)."""

    def __init__(self, plan: list[str], estimates: dict[str, float], now=None):
        import time

        self.now = now or time.monotonic
        self.plan, self.estimates = list(plan), dict(estimates)
        self.started: list[str] = []
        self.t0 = self.now()
        self.done_estimate = 0.0          # the estimates of the stages finished so far

    def start(self, stage: str) -> str:
        if stage not in self.estimates:
            self.estimates[stage] = estimate(stage)
        if stage not in self.plan:
            self.plan.append(stage)
        if self.started:
            self.done_estimate += self.estimates[self.started[-1]]
        self.started.append(stage)
        elapsed = self.now() - self.t0
        pace = elapsed / self.done_estimate if self.done_estimate > 0 else 1.0
        left = pace * sum(self.estimates[s] for s in self.plan if s not in self.started[:-1])
        return (f"[reid-repro] stage {len(self.started)} of {len(self.plan)}: {stage} (about "
                f"{clock(self.estimates[stage] * pace)}); {clock(elapsed)} so far, about {clock(left)} left")


def larger_switch(settings: list[str]) -> bool | None:
    """The value ``-S larger.enabled=...`` sets among ``settings`` (None: not set); anything but true or false (as
    DVC's YAML 1.2 reads them: not yes, no or 1) is an error naming the setting."""
    from reid_repro.errors import ReidReproError

    found = None
    for kv in settings:
        key, _, value = kv.partition("=")
        if key.strip() in ("larger.enabled", "params.yaml:larger.enabled"):
            if value.strip().lower() not in ("true", "false"):
                raise ReidReproError(f"-S {kv}: larger.enabled takes true or false")
            found = value.strip().lower() == "true"
    return found


def run(args) -> str:
    import json
    import re
    import subprocess
    import sys

    from reid_repro.errors import ReidReproError

    if args.set_param and not args.exp:
        raise ReidReproError("-S/--set-param needs --exp (dvc exp run sets params.yaml values)")
    switch = larger_switch(args.set_param)
    if switch is not None:        # the larger profile's stages exist only while it is on: write them before DVC reads
        from reid_repro import declare

        declare.write(".", larger_enabled=switch)
        print(f"[reid-repro] {declare.GENERATED}: the larger profile's stages {'written' if switch else 'taken out'}",
              flush=True)
    print("[reid-repro] asking DVC which stages are out of date (dvc status)...", flush=True)
    found = subprocess.run(["dvc", "status", "--json", *args.targets], capture_output=True, text=True)
    if found.returncode != 0:
        raise ReidReproError(f"dvc status failed: {found.stderr.strip()[-400:]}")
    plan = out_of_date(json.loads(found.stdout or "{}"))
    estimates = {s: estimate(s) for s in plan}
    total = sum(estimates.values())
    print(f"[reid-repro] {len(plan)} stage(s) out of date, about {clock(total)} from the recorded stage times"
          + (" (the params set with -S add the stages that read them)" if args.set_param else ""), flush=True)
    for s in plan[:20]:
        print(f"  {s}: {clock(estimates[s])}")
    if len(plan) > 20:
        print(f"  ... and {len(plan) - 20} more")
    if args.plan_only:
        return f"repro: plan only, {len(plan)} stages, about {clock(total)}"
    cmd = (["dvc", "exp", "run", *[x for kv in args.set_param for x in ("-S", kv)]] if args.exp else ["dvc", "repro"])
    progress = Progress(plan, estimates)
    proc = subprocess.Popen([*cmd, *args.targets], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            bufsize=1)
    running = re.compile(r"^Running stage '([^']+)'")
    for line in proc.stdout:
        sys.stdout.write(line)
        match = running.match(line)
        if match:
            print(progress.start(match.group(1)), flush=True)
    if proc.wait() != 0:
        raise ReidReproError(f"{' '.join(cmd)} failed (exit {proc.returncode}) at stage "
                             f"{progress.started[-1] if progress.started else '(before the first stage)'}")
    return (f"repro: {len(progress.started)} stage(s) run in {clock(progress.now() - progress.t0)} "
            f"(planned {len(plan)}, estimated {clock(total)})")
