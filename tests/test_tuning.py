"""The reproducible core of the Optuna studies (reid_repro/tuning.py): a resumed study draws what an uninterrupted
one draws, the paper's setting is trial 0, a killed trial is retried, the name changes with the definition but
not the trial count, and the export holds every trial and the best one."""

import dataclasses
import copy
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml

from reid_repro import tuning
from reid_repro.config import load_params, load_study
from reid_repro.errors import ReidReproError

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"x": tuning.Dimension("float", -2.0, 2.0), "k": tuning.Dimension("int", 1, 8),
         "mode": tuning.Dimension("categorical", choices=["a", "b"])}


def objective(trial):
    p = tuning.suggest(trial, SPACE)
    for epoch in range(4):
        trial.report(-(p["x"] - 0.5) ** 2 - 0.1 * epoch, epoch)
    return -(p["x"] - 0.5) ** 2 + 0.05 * p["k"] + (0.2 if p["mode"] == "b" else 0.0)


def _study(tmp_path, name="s", seed=3):
    return tuning.open_study(name, seed, "median", tuning.storage(tmp_path))


def _params(study):
    return [(t.number, t.params) for t in tuning.finished(study)]


def test_a_resumed_study_draws_the_same_trials_as_an_uninterrupted_one(tmp_path):
    whole = tuning.run_study(_study(tmp_path / "a"), objective, 16, first={"x": 0.0, "k": 4, "mode": "a"})
    part = tuning.run_study(_study(tmp_path / "b"), objective, 7, first={"x": 0.0, "k": 4, "mode": "a"})
    resumed = tuning.run_study(_study(tmp_path / "b"), objective, 16)        # a new process: a new sampler
    assert _params(resumed) == _params(whole)
    plain = [optuna.create_study(sampler=optuna.samplers.TPESampler(seed=3)) for _ in range(2)]
    plain[0].optimize(objective, n_trials=16)
    plain[1].optimize(objective, n_trials=12)
    plain[1].sampler = optuna.samplers.TPESampler(seed=3)                     # what a resume did before
    plain[1].optimize(objective, n_trials=4)
    assert [t.params for t in plain[0].trials] != [t.params for t in plain[1].trials]   # why the reseeding
    assert part.trials[0].params == {"x": 0.0, "k": 4, "mode": "a"}                      # the paper's setting first


def test_a_trial_left_running_by_a_kill_is_failed_and_retried(tmp_path):
    study = _study(tmp_path)
    tuning.run_study(study, objective, 3)
    killed = study.ask()                                                   # a process died inside this trial
    tuning.suggest(killed, SPACE)
    study = _study(tmp_path)                                              # the next run of the stage
    tuning.run_study(study, objective, 6)
    states = {t.number: t.state for t in study.trials}
    assert states[killed.number] == optuna.trial.TrialState.FAIL
    retry = next(t for t in study.trials if t.user_attrs.get("retry_of") == killed.number)
    assert retry.params == killed.params and retry.state == optuna.trial.TrialState.COMPLETE
    assert len(tuning.finished(study)) == 6


def test_the_name_follows_the_definition_not_the_trial_count():
    cfg = tuning.StudyConfig("ise_market", 10, 0, "median", SPACE)
    name = tuning.study_name("ise", cfg, {"lambda0": 1.0}, "code1")
    assert name.startswith("ise-")
    assert tuning.study_name("ise", tuning.StudyConfig("ise_market", 40, 0, "median", SPACE),
                             {"lambda0": 1.0}, "code1") == name
    for other in (tuning.study_name("ise", cfg, {"lambda0": 2.0}, "code1"),
                  tuning.study_name("ise", dataclasses.replace(cfg, multivariate=not cfg.multivariate),
                                    {"lambda0": 1.0}, "code1"),
                  tuning.study_name("ise", cfg, {"lambda0": 1.0}, "code2"),
                  tuning.study_name("ise", tuning.StudyConfig("ise_market", 10, 1, "median", SPACE),
                                    {"lambda0": 1.0}, "code1")):
        assert other != name


def test_the_export_holds_every_trial_the_best_and_the_paper_setting(tmp_path):
    study = tuning.run_study(_study(tmp_path), objective, 8, first={"x": 0.0, "k": 4, "mode": "a"})
    tuning.run_study(study, objective, 10)                                 # two more than exported
    best = tuning.export(study, tmp_path / "out", 8)
    trials = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert list(trials["number"]) == list(range(8)) and trials["paper_setting"].tolist()[0]
    kept = [t for t in tuning.finished(study)[:8] if t.state == optuna.trial.TrialState.COMPLETE]
    assert best["best_value"] == max(t.value for t in kept)
    assert best["paper_params"] == {"x": 0.0, "k": 4, "mode": "a"}
    assert yaml.safe_load((tmp_path / "out" / "best.yaml").read_text()) == best
    assert {"history.png", "slice.png", "importances.png", "contour.png"} <= {p.name for p in (tmp_path / "out").iterdir()}
    paper = kept[0].value                       # trial 0, the paper's setting, completed
    others = [t.value for t in kept[1:]]
    assert best["paper_percentile"] == round(100 * (sum(v < paper for v in others)
                                                    + 0.5 * sum(v == paper for v in others)) / len(others), 1)
    assert set(best["importances"]) == {"x", "k", "mode"}


def test_the_papers_rank_and_the_importances_spread_have_known_answers():
    """The percentile counts the other complete trials the paper's beats, ties half: 3.0 among 1, 2, 3, 3, 5 beats
    1 and 2 and ties one 3 of the four others, 62.5. fANOVA over trials whose value is x alone gives x (nearly)
    all the importance, over every evaluator seed."""
    assert tuning.paper_percentile(3.0, [1.0, 2.0, 3.0, 3.0, 5.0]) == 62.5
    assert tuning.paper_percentile(None, [1.0, 2.0]) is None and tuning.paper_percentile(1.0, [1.0]) is None
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + 0 * t.suggest_float("y", 0, 1), n_trials=30)
    found = tuning.importances(study.trials, seeds=3)
    assert list(found) == ["x", "y"] and found["x"]["mean"] > 0.9 and found["y"]["mean"] < 0.1
    assert all(v["sd"] >= 0 for v in found.values())
    assert tuning.importances(study.trials[:2]) is None                  # too few trials to say anything


def test_study_settings_are_checked_with_the_key_named():
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    good = {"run": "ise_market", "dataset": "market", "init": "pretrain", "method": "ise", "base": "cluster_contrast",
            "n_trials": 4, "seed": 0, "pruner": "median", "validation": 0.2, "multivariate": True,
            "space": {"lambda0": {"kind": "float", "low": 0.2, "high": 2.0}}}
    params["studies"] = {"ise": good}
    assert tuning.load_study(params, "ise").space["lambda0"].high == 2.0
    for edit, message in ((lambda s: s.update(run="nope"), r"studies\.ise\.run='nope'"),
                          (lambda s: s.update(pruner="asha"), r"studies\.ise\.pruner='asha'"),
                          (lambda s: s["space"].update(k={"kind": "int", "low": 5, "high": 1}), r"space\.k"),
                          (lambda s: s["space"].update(t={"kind": "float", "low": 0, "high": 1, "log": True}),
                           r"space\.t"),
                          (lambda s: s["space"].update(m={"kind": "categorical"}), r"space\.m.*choices"),
                          (lambda s: s.update(dataset="duke"), r"studies\.ise\.dataset='duke'; expected 'market'")):
        bad = copy.deepcopy(good)
        edit(bad)
        params["studies"] = {"ise": bad}
        with pytest.raises(ReidReproError, match=message):
            tuning.load_study(params, "ise")


def test_the_tuned_run_is_the_studied_run_at_the_best_trials_settings(tmp_path):
    """tuned@<study>: the run's own overrides, then best.yaml's best_params on top; a missing or stale best.yaml
    is an error naming the file."""
    from reid_repro.config import load_run, tuned_run

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    with pytest.raises(ReidReproError, match=r"studies/ise/best.yaml: missing; .*tune@ise"):
        tuned_run(params, "ise", tmp_path / "studies")
    (tmp_path / "studies" / "ise").mkdir(parents=True)
    best = tmp_path / "studies" / "ise" / "best.yaml"
    best.write_text(yaml.safe_dump({"best_params": {"lambda0": 1.7, "k": 2}, "best_value": 0.4}))
    spec, run = tuned_run(params, "ise", tmp_path / "studies"), load_run(params, "ise_market")
    assert spec.overrides == {**run.overrides, "lambda0": 1.7, "k": 2}
    assert (spec.dataset, spec.test, spec.method, spec.init) == (run.dataset, run.test, run.method, run.init)
    best.write_text(yaml.safe_dump({"best_params": {"lambda0": 1.7, "eps": 0.5}}))
    with pytest.raises(ReidReproError, match=r"best_params\.eps is not in studies\.ise\.space"):
        tuned_run(params, "ise", tmp_path / "studies")
    other = copy.deepcopy(params)
    other["runs"]["ise_market"]["test"] = "duke"
    with pytest.raises(ReidReproError, match=r"studies\.ise\.run='ise_market' tests on 'duke'"):
        tuned_run(other, "ise", tmp_path / "studies")


def test_a_study_trains_on_held_out_identities_and_never_reads_the_test_split(world, tmp_path, monkeypatch):
    """tune(): trial 0 is the paper's setting, every trial an MLflow run nested under the study's, and the study
    runs although every query and gallery image of the dataset has been deleted after `prepare`."""
    import shutil

    import torch
    from mlflow.tracking import MlflowClient

    from reid_repro.config import load_model
    from reid_repro.data.manifest import prepare
    from reid_repro.models import ReidNet

    out, _ = world
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)    # set by mlflow.set_tracking_uri in other tests
    root = tmp_path / "data" / "market"
    shutil.copytree(out / "market", root)
    prepare("market1501", root, tmp_path / "manifests" / "market", name="market")
    for folder in ("query", "bounding_box_test"):
        for image in (root / folder).iterdir():
            image.unlink()                                                     # the test split is unreadable
    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    params["data"] = {"market": {"root": str(root), "manifest": str(tmp_path / "manifests" / "market"),
                                 "format": "market1501"}}
    params["sources"] = ["market"]              # the one stand-in these runs have
    params["meshes"], params["gcl_warmups"] = {}, {}
    params["larger"] = {"enabled": False, "warmups": {}, "runs": {}}
    params["model"]["cpu"].update(height=32, width=16)
    params["cluster_contrast"]["loop"].update(epochs=2, iters=2, batch_ids=2, instances=2, labels="ground_truth",
                                              workers=0)
    params["studies"] = {"tiny": {"run": "cc_market", "dataset": "market", "init": "pretrain",
                                  "method": "cluster_contrast", "base": "cluster_contrast", "n_trials": 2, "seed": 0,
                                  "pruner": "median", "validation": 0.3, "multivariate": False,
                                  "space": {"temperature": {"kind": "float", "low": 0.05, "high": 0.3}}}}
    (tmp_path / "models" / "pretrain").mkdir(parents=True)
    torch.save(ReidNet.from_config(load_model(params)).state_dict(), tmp_path / "models" / "pretrain" / "model.pt")
    best = tuning.tune(params, "tiny", tmp_path / "studies" / "tiny", root=tmp_path, models_dir=tmp_path / "models")
    trials = pd.read_csv(tmp_path / "studies" / "tiny" / "trials.csv")
    assert len(trials) == 2 and trials["paper_setting"].iloc[0]
    assert trials["params_temperature"].iloc[0] == params["cluster_contrast"]["loop"]["temperature"]
    assert best["paper_value"] is not None and 0 <= best["best_value"] <= 1
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = client.search_runs([client.get_experiment_by_name("study-tiny").experiment_id])[0]
    children = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                  f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert len(children) == 2 and {c.data.tags["trial"] for c in children} == {"0", "1"}


def test_the_dashboard_serves_the_studies_on_loopback_and_stops_by_pid(tmp_path):
    """`make dashboard` runs scripts/dashboard.sh: optuna-dashboard on 127.0.0.1 over the journal file."""
    import json
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    if shutil.which("optuna-dashboard") is None:
        pytest.fail("optuna-dashboard is not on PATH; run the tests through `make test`")
    study = tuning.open_study("demo-abc", 0, "none", tuning.storage(tmp_path))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).resolve().parents[1] / "scripts" / "dashboard.sh"
    proc = subprocess.Popen(["bash", str(script)], cwd=tmp_path, env={**os.environ, "PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        for _ in range(60):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    names = [s["study_name"] for s in json.load(r)["study_summaries"]]
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer on 127.0.0.1")
        assert names == ["demo-abc"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode is not None
    empty = subprocess.run(["bash", str(script)], cwd=tmp_path,
                           capture_output=True, text=True, env={**os.environ, "OPTUNA_STORAGE": "nowhere.journal"})
    assert empty.returncode == 1 and "nowhere.journal: no study yet" in empty.stderr


def test_a_scale_out_worker_uses_our_retry_and_heartbeat_settings_and_counts_every_workers_trials(tmp_path):
    """What tuning.py configures for scale-out (Optuna's own retry and heartbeat machinery is not re-tested): the
    shared storage fails a silent worker's trial after the grace period we pass and retries it at most twice; a
    worker stops once n_trials are finished counting the other workers' trials, and runs none when they are."""
    from optuna.storages import RetryFailedTrialCallback

    url = f"sqlite:///{tmp_path / 'shared.db'}"           # an RDB storage that needs no server
    store = tuning.rdb_storage(url, heartbeat=7, grace=30)
    callback = store.get_heartbeat_stale_trial_callback()
    assert isinstance(callback, RetryFailedTrialCallback) and callback._max_retry == 2
    assert store.get_heartbeat_interval() == 7 and store.grace_period == 30
    other = optuna.create_study(study_name="scale", storage=url, direction="maximize")   # created once, first

    def draw(trial):
        return trial.suggest_float("x", 0.0, 1.0)

    other.optimize(draw, n_trials=5)                                                      # another worker's five
    assert tuning.join_study("scale", store, draw, 8, "none") == 3
    assert tuning.join_study("scale", store, draw, 8, "none") == 0
    assert len(optuna.load_study(study_name="scale", storage=url).trials) == 8


def test_workers_join_a_study_created_once_with_the_papers_setting_first(tmp_path):
    """`reid-repro tune --worker --n-workers N` creates the study before its workers start (RDB storages race on
    table creation when several create it at once): create_shared makes the study once, with the studied run's
    own settings enqueued as trial 0, and a second call (each worker makes one) adds nothing; a worker then runs
    that trial first. Four workers on PostgreSQL: bench/bench_study_workers.py."""
    import json

    from reid_repro.assemble import resolve_run
    from reid_repro.config import load_run

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    manifest = tmp_path / "manifest"                    # the study's name hashes the dataset's checksum only
    manifest.mkdir()
    (manifest / "dataset.json").write_text(json.dumps({"checksum": "0" * 32}))
    params["data"]["market"] = {**params["data"]["market"], "manifest": str(manifest)}
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    store = tuning.rdb_storage(url)
    name = tuning.create_shared(params, "cluster_contrast", store)
    assert tuning.create_shared(params, "cluster_contrast", store) == name
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == [name]
    (waiting,) = optuna.load_study(study_name=name, storage=url).trials
    settings = dataclasses.asdict(resolve_run(params, load_run(params, "cc_market"))[1])
    space = params["studies"]["cluster_contrast"]["space"]
    assert waiting.state == optuna.trial.TrialState.WAITING and waiting.user_attrs == {"paper_setting": True}
    assert waiting.system_attrs["fixed_params"] == {k: settings[k] for k in space}     # what enqueue_trial keeps
    seen = []

    def draw(trial):
        seen.append(tuning.suggest(trial, load_study(params, "cluster_contrast").space))
        return 0.0

    assert tuning.join_study(name, store, draw, 3, "none") == 3
    assert seen[0] == {k: settings[k] for k in space} and len(seen) == 3


def test_the_median_pruner_waits_for_three_complete_trials_and_a_trials_third_epoch():
    """make_pruner("median") as docs/studies.md states it: a trial reports its epochs as steps 0, 1, 2, ...; one
    far below the median of the complete trials is kept through its first two epochs and pruned at its third, and
    nothing is pruned before 3 trials are complete."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", pruner=tuning.make_pruner("median"))

    def pruned_at(value: float) -> int | None:
        trial = study.ask()
        for epoch in range(6):
            trial.report(value, epoch)
            if trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                return epoch
        study.tell(trial, value)
        return None

    assert [pruned_at(v) for v in (0.5, 0.1, 0.6)] == [None, None, None]     # fewer than 3 complete: never
    assert pruned_at(0.0) == 2                                                # the third epoch (step 2)
    assert pruned_at(0.9) is None
