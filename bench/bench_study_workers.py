"""Issue 41: four scale-out workers on one machine finish a 40-trial study with no trial lost or duplicated.

A throwaway PostgreSQL server on 127.0.0.1 (as docs/studies.md "Studies on many machines" sets one up) holds the
study, created once with the paper's setting as trial 0 (:func:`reid_repro.tuning.create_shared`, as
``reid-repro tune --worker --n-workers 4`` does); then four worker processes start together, each running
:func:`reid_repro.tuning.work` (what ``--worker`` runs) until the study has ``n_trials`` finished trials counting
every worker's. With ``--kill`` one worker is SIGKILLed
inside its first trial: its trial must be failed by the heartbeat and run again by another worker, not lost.

The study is params.yaml's ``--study`` (default cluster_contrast) with its trial count, on the data and start the
pipeline built (``data.<dataset>``, ``<models>/<init>/model.pt``); the loop is shortened (``--loop``, default 2
epochs of 4 iterations) so that the measurement is about the storage and the workers, not about training. The
trials' runs go under a temporary root; nothing of the repository's optuna.journal, MLflow or .cache is touched.

What is counted, from the storage after the workers exit: trials per state (none may be left RUNNING: a lost
trial), finished trials (≥ n_trials; workers that were mid-trial when the count was reached finish theirs),
failed trials and the retries that re-ran them (Optuna's ``failed_trial`` system attribute), duplicated settings
among finished trials other than retries, the trial folders each worker wrote (one per trial number), and each
worker's trial count and exit code.

    python bench/bench_study_workers.py [--study cluster_contrast] [--workers 4] [--kill]
        -> bench/results/study_workers.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import key_values, write_results  # noqa: E402


@contextmanager
def postgres():
    """A PostgreSQL server on 127.0.0.1 in a temporary folder; as root it runs as the postgres user (initdb
    refuses root). Yields the SQLAlchemy URL of an empty database."""
    import glob

    found = shutil.which("initdb")            # Debian keeps the server's tools in /usr/lib/postgresql/<v>/bin
    bindir = str(Path(found).resolve().parent) if found else next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
    if bindir is None or not Path(bindir, "createdb").exists():
        raise SystemExit("PostgreSQL is not installed (initdb, pg_ctl, createdb; Debian: apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="reid-repro-pg-"))
    as_root = os.geteuid() == 0
    if as_root:
        shutil.chown(base, "postgres", "postgres")

    def sh(cmd):
        full = ["runuser", "-u", "postgres", "--", *cmd] if as_root else cmd
        proc = subprocess.run(full, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sh([f"{bindir}/initdb", "-D", str(base / "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    sh([f"{bindir}/pg_ctl", "-D", str(base / "data"), "-l", str(base / "log"), "-w", "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {base}", "start"])
    try:
        sh([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "optuna"])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/optuna"
    finally:
        sh([f"{bindir}/pg_ctl", "-D", str(base / "data"), "-m", "fast", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def worker(params_path: str, study: str, url: str, root: str, models: str, heartbeat: int, grace: int) -> None:
    """One worker process: tuning.work with the bench's heartbeat, printing how many trials it ran."""
    from reid_repro import tuning
    from reid_repro.config import load_params

    ran = tuning.work(load_params(params_path), study, url, root=root, track=False, models_dir=models,
                      heartbeat=heartbeat, grace=grace)
    print(json.dumps({"pid": os.getpid(), "ran": ran}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="cluster_contrast", help="a key of params.yaml: studies")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--n-trials", type=int, default=None, help="default: the study's own n_trials")
    ap.add_argument("--loop", nargs="*", default=["epochs=2", "iters=4"], metavar="KEY=VALUE",
                    help="the studied run's loop, shortened")
    ap.add_argument("--models", default=str(ROOT / "models"), help="folder holding <init>/model.pt")
    ap.add_argument("--kill", action="store_true", help="SIGKILL one worker inside its first trial")
    ap.add_argument("--heartbeat", type=int, default=2, help="seconds between a worker's heartbeats")
    ap.add_argument("--grace", type=int, default=10, help="seconds without a heartbeat before a trial is failed")
    ap.add_argument("--worker", nargs=5, metavar=("PARAMS", "STUDY", "URL", "ROOT", "MODELS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(*args.worker, heartbeat=args.heartbeat, grace=args.grace)
        return

    import optuna

    from reid_repro.config import load_params, load_study

    params = load_params(ROOT / "params.yaml")
    cfg = load_study(params, args.study)
    n_trials = args.n_trials or cfg.n_trials
    section = cfg.method
    loop = key_values(args.loop)
    params[section]["loop"].update(loop)
    params["studies"][args.study] = {**params["studies"][args.study], "n_trials": n_trials}
    for name, info in params["data"].items():           # the pipeline's data, wherever the bench runs from
        params["data"][name] = {**info, **{k: str(ROOT / info[k]) for k in ("root", "manifest") if info.get(k)}}
    manifest = Path(params["data"][cfg.dataset]["manifest"]) / "dataset.json"
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: missing; build it first (dvc repro prepare@{cfg.dataset})")
    with tempfile.TemporaryDirectory() as tmp, postgres() as url:
        from reid_repro.declare import write_project

        write_project(tmp, params)
        cmd = [sys.executable, __file__, "--heartbeat", str(args.heartbeat), "--grace", str(args.grace),
               "--worker", str(Path(tmp) / "params.yaml"), args.study, url, tmp, args.models]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
        t0 = time.perf_counter()
        from reid_repro import tuning

        name = tuning.create_shared(params, args.study, tuning.rdb_storage(url))   # as `--n-workers` does
        procs = [subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, text=True)
                 for _ in range(args.workers)]
        killed = None
        if args.kill:                  # once every worker is inside a trial, the last one dies in its own
            study = optuna.load_study(study_name=name, storage=url)
            victim = procs[-1]
            while victim.poll() is None and killed is None:
                if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))) >= args.workers:
                    time.sleep(2)
                    victim.send_signal(signal.SIGKILL)
                    killed = victim.pid
                time.sleep(0.5)
        outs = [p.communicate()[0] for p in procs]
        wall = time.perf_counter() - t0
        study = optuna.load_study(study_name=name, storage=url)
        trials = study.get_trials(deepcopy=False)
        states = Counter(t.state.name for t in trials)
        done = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
        retries = [t for t in trials if "failed_trial" in t.system_attrs]
        retried = sorted({t.system_attrs["failed_trial"] for t in retries})
        failed = sorted(t.number for t in trials if t.state.name == "FAIL")
        settings = Counter(json.dumps(t.params, sort_keys=True) for t in done if "failed_trial" not in t.system_attrs)
        folders = sorted(int(p.name) for p in (Path(tmp) / ".cache" / "studies" / name).iterdir())
        # one folder per trial that ran: every finished trial's, none for a number the storage never gave out
        folders_ok = {t.number for t in done} <= set(folders) <= {t.number for t in trials}
        ran = [json.loads(o.strip().splitlines()[-1])["ran"] if o.strip() else None for o in outs]
    row = {"case": f"{args.study} x{args.workers}" + (" kill" if args.kill else ""), "study": args.study,
           "workers": args.workers, "n_trials": n_trials, "loop": loop, "wall_seconds": round(wall, 1),
           "states": dict(states), "finished": len(done), "lost_running": states.get("RUNNING", 0),
           "failed": failed, "retried": retried, "failed_not_retried": sorted(set(failed) - set(retried)),
           "duplicated_settings": sum(c - 1 for c in settings.values() if c > 1),
           "trial_numbers": len(trials), "trial_folders": len(folders), "folders_ok": folders_ok,
           "killed_pid": killed, "exit_codes": [p.returncode for p in procs], "trials_per_worker": ran,
           "ok": (len(done) >= n_trials and states.get("RUNNING", 0) == 0 and set(failed) <= set(retried)
                  and folders_ok)}
    path = ROOT / "bench" / "results" / "study_workers.json"
    old = json.loads(path.read_text())["cases"] if path.is_file() else []
    write_results("study_workers", [c for c in old if c["case"] != row["case"]] + [row])


if __name__ == "__main__":
    main()
