"""What a fresh clone shows at once, from committed files only: the studies in optuna-dashboard and the runs in MLflow."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_committed_studies_rebuild_as_a_journal_with_every_trial(tmp_path):
    """`reid-repro studies` (what `make dashboard` serves on a fresh clone): one Optuna study per committed export,
    under its committed name, each trial with the parameters, state, value and paper flag of trials.csv, the
    distributions of params.yaml's search space, and the best complete value of best.yaml."""
    import optuna
    import yaml
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from reid_repro.commands.studies import write_journal
    from reid_repro.config import load_params, load_study

    params = load_params(ROOT / "params.yaml")
    journal = tmp_path / "studies.journal"
    written = write_journal(params, str(ROOT / "studies"), str(journal))
    exports = sorted(p.parent.name for p in (ROOT / "studies").glob("*/trials.csv"))
    assert exports and len(written) == len(exports)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    for key in exports:
        folder = ROOT / "studies" / key
        name = json.loads((folder / "metrics.json").read_text())["study"]
        study = optuna.load_study(study_name=name, storage=storage)
        table = pd.read_csv(folder / "trials.csv")
        trials = study.get_trials()
        assert len(trials) == len(table)
        space = load_study(params, key).space
        for t, row in zip(trials, table.to_dict("records")):
            assert t.state.name == row["state"] and t.user_attrs["paper_setting"] == row["paper_setting"]
            for k, v in t.params.items():
                assert v == pytest.approx(row[f"params_{k}"]) if not isinstance(v, str) else v == row[f"params_{k}"]
                assert t.distributions[k].__class__.__name__.lower().startswith(space[k].kind[:3])
            if row["state"] == "COMPLETE":
                assert t.value == row["value"]
            else:
                assert t.value is None and t.user_attrs["last_value"] == row["value"]
        best = yaml.safe_load((folder / "best.yaml").read_text())
        assert study.best_value == best["best_value"] and study.best_trial.number == best["best_trial"]


def test_make_dashboard_serves_the_committed_studies_on_a_fresh_clone(tmp_path):
    """scripts/dashboard.sh with no optuna.journal (a fresh clone) builds the journal from the committed exports
    and hands it to optuna-dashboard, bound to 127.0.0.1; with a journal of this machine's studies it serves that."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "optuna-dashboard").write_text('#!/bin/sh\necho "$@" > "$DASHBOARD_ARGS"\n')
    (fake / "optuna-dashboard").chmod(0o755)
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("params.yaml", "conf", "studies", "scripts"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, clone / name)
    env = {**os.environ, "PATH": f"{fake}:{Path(sys.executable).parent}:{os.environ['PATH']}",
           "DASHBOARD_ARGS": str(tmp_path / "args")}
    env.pop("OPTUNA_STORAGE", None)
    subprocess.run(["bash", "scripts/dashboard.sh"], cwd=clone, env=env, check=True, capture_output=True)
    args = (tmp_path / "args").read_text().split()
    assert args == ["--host", "127.0.0.1", "--port", "8080", ".cache/studies.journal"]
    assert (clone / ".cache" / "studies.journal").stat().st_size > 0
    (clone / "optuna.journal").write_text("")
    subprocess.run(["bash", "scripts/dashboard.sh"], cwd=clone, env={**env, "PORT": "9000"}, check=True,
                   capture_output=True)
    assert (tmp_path / "args").read_text().split() == ["--host", "127.0.0.1", "--port", "9000", "optuna.journal"]


def test_the_committed_runs_import_into_mlflow_with_their_epochs_and_tags_once(tmp_path):
    """`reid-repro mlflow-import` (what `make mlflow-ui` runs first): each committed seed becomes one finished MLflow
    run in its paper's experiment, with the tags training sets, its settings as params, every epoch of
    history.parquet as metric steps and metrics.json as final_*; a second import adds nothing."""
    from mlflow.tracking import MlflowClient

    from reid_repro.cli import main

    runs = tmp_path / "runs"
    for name in ("cc_market", "ice_aware_base_market"):
        shutil.copytree(ROOT / "runs" / name / "seeds", runs / name / "seeds")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert main(["mlflow-import", "--runs", str(runs), "--uri", uri]) == 0
    client = MlflowClient(uri)
    found = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    folders = sorted(runs.glob("*/seeds/*"))
    assert len(found) == len(folders) >= 2
    by_source = {r.data.tags["reid_repro.source"]: r for r in found}
    for folder in folders:
        r = by_source[str(folder)]
        info = json.loads((folder / "run.json").read_text())
        history = pd.read_parquet(folder / "history.parquet")
        final = json.loads((folder / "metrics.json").read_text())
        assert r.info.status == "FINISHED" and r.info.run_name == info["name"]
        assert r.data.tags["paper"] == info["run"]["paper"] and r.data.tags["precision"] == info["inputs"]["precision"]
        assert r.data.tags["params_hash"] == info["params_hash"] and r.data.params["method.lr"] == str(info["method"]["lr"])
        steps = client.get_metric_history(r.info.run_id, "nmi")
        assert [(m.step, m.value) for m in steps] == list(zip(history["epoch"], history["nmi"]))
        assert r.data.metrics["final_mAP"] == final["mAP"]
        assert client.get_experiment(r.info.experiment_id).name == info["run"]["paper"]
    assert main(["mlflow-import", "--runs", str(runs), "--uri", uri]) == 0
    again = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    assert len(again) == len(folders)


def test_the_plan_estimates_each_stage_from_its_committed_record(tmp_path):
    """`reid-repro repro` (make repro): a run stage's estimate is its recorded training seconds (all seeds) plus
    start-up and per-seed evaluation; a not-run marker and a stage kind with no record take the table's time."""
    from reid_repro.commands.repro import DEFAULT_SECONDS, SEED_OVERHEAD, STAGE_OVERHEAD, estimate, out_of_date

    m = json.loads((ROOT / "runs" / "cc_market" / "metrics.json").read_text())
    assert estimate("train@cc_market", ROOT) == pytest.approx(m["train_seconds"] + STAGE_OVERHEAD
                                                              + SEED_OVERHEAD * m["num_seeds"])
    (tmp_path / "runs" / "off").mkdir(parents=True)            # a larger-profile run's not-run marker
    (tmp_path / "runs" / "off" / "metrics.json").write_text('{"not_run": "larger.enabled is false"}')
    assert estimate("train_larger@off", tmp_path) == DEFAULT_SECONDS["train_larger"]
    assert estimate("train@never_built", tmp_path) == DEFAULT_SECONDS["train"]
    trials = pd.read_csv(ROOT / "studies" / "ise" / "trials.csv")
    assert estimate("tune@ise", ROOT) == pytest.approx(trials["seconds"].sum() + STAGE_OVERHEAD)
    assert estimate("synthetic/dvc.yaml:world", ROOT) == DEFAULT_SECONDS["world"]
    assert estimate("figures", ROOT) == DEFAULT_SECONDS["figures"]
    assert out_of_date({"a": [{"changed outs": {"x": "deleted"}}], "b": [], "c": ["changed command"]}) == ["a", "c"]


def test_progress_counts_stages_and_scales_the_time_left_by_this_machines_pace():
    """Stage k of n as each stage starts; the time left is the estimate of the stages not finished, times the pace
    so far (elapsed / the estimates of the stages done); a stage beyond the plan is counted when it starts."""
    from reid_repro.commands.repro import Progress

    t = [0.0]
    p = Progress(["a", "b", "c"], {"a": 100.0, "b": 100.0, "c": 200.0}, now=lambda: t[0])
    assert p.start("a") == "[reid-repro] stage 1 of 3: a (about 1m40s); 0m00s so far, about 6m40s left"
    t[0] = 200.0                                         # a took twice its estimate: pace 2
    assert p.start("b") == "[reid-repro] stage 2 of 3: b (about 3m20s); 3m20s so far, about 10m00s left"
    t[0] = 300.0                                         # a+b: 300 s for 200 estimated: pace 1.5
    p.estimates["d"] = 60.0
    assert p.start("d") == "[reid-repro] stage 3 of 4: d (about 1m30s); 5m00s so far, about 6m30s left"
