"""The larger profile (params.yaml: larger): rows that do not fit the default budget are declared in the pipeline
as their own stages, which exist only with ``larger.enabled: true``; otherwise the report shows their cells as "not
run at the default scale" (and `reid-repro train` of such a row writes a marker saying so)."""

import copy
import dataclasses
import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from reid_repro.assemble import validate_params
from reid_repro.config import load_params, load_run, load_warmup, not_run_reason
from reid_repro.errors import ReidReproError
from reid_repro.report.build import build_report

ROOT = Path(__file__).resolve().parents[1]


def _params():
    return load_params(ROOT / "params.yaml")


def test_larger_runs_and_warmups_load_like_any_and_are_marked():
    """The mark follows where a run or warm-up is declared: moved between runs and larger.runs (gcl_warmups and
    larger.warmups) it changes its mark and nothing else, and only a marked one is held back while
    larger.enabled is false."""
    params = _params()
    big, small = next(iter(params["larger"]["runs"])), next(iter(params["runs"]))
    warm = next(iter(params["larger"]["warmups"]))
    moved = copy.deepcopy(params)
    moved["runs"][big] = moved["larger"]["runs"].pop(big)
    moved["larger"]["runs"][small] = moved["runs"].pop(small)
    moved["gcl_warmups"] = {**(moved.get("gcl_warmups") or {}), warm: moved["larger"]["warmups"].pop(warm)}
    for name, load in ((big, load_run), (small, load_run), (warm, load_warmup)):
        here, there = load(params, name), load(moved, name)
        assert here.larger != there.larger and dataclasses.replace(there, larger=here.larger) == here, name
    assert load_run(params, big).larger and load_warmup(params, warm).larger and not load_run(params, small).larger
    for enabled, held in ((False, [big]), (True, [])):
        switched = copy.deepcopy(params)
        switched["larger"]["enabled"] = enabled
        assert [n for n in (big, small) if not_run_reason(switched, load_run(switched, n))] == held


def test_the_larger_section_is_checked_with_the_key_named():
    params = _params()
    for edit, message in ((lambda p: p["larger"].update(enabled="yes"), r"larger\.enabled='yes'"),
                          (lambda p: p["larger"].pop("warmups"), r"larger: expected keys"),
                          (lambda p: p["larger"]["runs"].update(cc_market=p["runs"]["cc_market"]),
                           r"larger\.runs\.cc_market: also declared at the default scale"),
                          (lambda p: p["larger"]["runs"]["gclp_d2m_tau0p02"].update(init="nope"),
                           r"gclp_d2m_tau0p02")):
        bad = copy.deepcopy(params)
        edit(bad)
        with pytest.raises(ReidReproError, match=message):
            validate_params(bad)


def _cli(*args, cwd=ROOT):
    return subprocess.run(["reid-repro", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_a_disabled_larger_stage_writes_only_its_marker(tmp_path):
    """With larger.enabled false, `reid-repro train` and `warmup` of a larger row finish at once with run.json and
    metrics.json saying why, and read no data (their inputs are not even opened)."""
    proc = _cli("train", "--run", "gclp_d2m_alpha0p2", "--out", str(tmp_path / "run"), "--no-mlflow")
    assert proc.returncode == 0, proc.stderr
    assert "not run at the default scale" in proc.stdout
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json", "run.json"]
    marker = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "larger.enabled=true" in marker["not_run"]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["stage"] == "train_larger@gclp_d2m_alpha0p2"
    proc = _cli("warmup", "--name", "gclw_m2d", "--out", str(tmp_path / "warm"), "--no-mlflow")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "warm").iterdir()) == ["metrics.json", "run.json"]
    # with the profile off its stages are not in the pipeline, so `make paper` names none of them
    stages = _cli("stages", "--paper", "gcl_plus").stdout.split()
    assert "train@gclp_d2m_full" in stages and "warmup@gclw_fu_m" in stages
    assert not [s for s in stages if "larger" in s or s.endswith("@gclp_d2m_alpha0p2")], stages


def _project(folder: Path, enabled: bool) -> dict:
    """A copy of the project's pipeline files with ``larger.enabled`` set: params.yaml, conf/runs.json (what
    declare.write_project writes from it) and dvc.yaml."""
    import shutil

    from reid_repro.declare import write_project

    params = _params()
    params["larger"]["enabled"] = enabled
    folder.mkdir(parents=True, exist_ok=True)
    write_project(folder, params)
    shutil.copy(ROOT / "dvc.yaml", folder / "dvc.yaml")
    return params


def _dvc_stages(folder: Path) -> set[str]:
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=folder, check=True)
    proc = subprocess.run(["dvc", "stage", "list", "--name-only"], cwd=folder, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return set(proc.stdout.split())


def test_the_larger_stages_are_in_the_pipeline_only_while_the_profile_is_on(tmp_path):
    """DVC expands warmup_larger@ and train_larger@ from conf/runs.json's larger_stages: every larger warm-up and
    run with larger.enabled true, none with it false (a third of the stages `dvc status` would check)."""
    for enabled in (False, True):
        params = _project(tmp_path / str(enabled), enabled)
        stages = _dvc_stages(tmp_path / str(enabled))
        larger = {s for s in stages if s.split("@")[0] in ("warmup_larger", "train_larger")}
        expected = ({f"warmup_larger@{w}" for w in params["larger"]["warmups"]}
                    | {f"train_larger@{r}" for r in params["larger"]["runs"]}) if enabled else set()
        assert larger == expected and f"train@{next(iter(params['runs']))}" in stages
        assert len(larger) == (len(params["larger"]["warmups"]) + len(params["larger"]["runs"]) if enabled else 0)
    assert len(expected) > 50


def test_a_switch_without_its_stages_is_an_error_naming_the_file(tmp_path):
    """params.yaml's larger.enabled and conf/runs.json's larger_stages must agree (`dvc exp run -S
    larger.enabled=true` alone changes only the first): every stage loads the params and stops with both named."""
    _project(tmp_path, False)
    text = (tmp_path / "params.yaml").read_text()
    assert "enabled: false" in text
    (tmp_path / "params.yaml").write_text(text.replace("enabled: false", "enabled: true", 1))
    with pytest.raises(ReidReproError, match=r"conf/runs\.json: larger_stages .*larger\.enabled: true.*"
                                             r"pipeline --write"):
        load_params(tmp_path / "params.yaml")
    _project(tmp_path / "on", True)
    text = (tmp_path / "on" / "params.yaml").read_text()
    (tmp_path / "on" / "params.yaml").write_text(text.replace("enabled: true", "enabled: false", 1))
    with pytest.raises(ReidReproError, match=r"larger_stages lists larger-profile stages.*enabled: false"):
        load_params(tmp_path / "on" / "params.yaml")


def test_make_repro_larger_writes_the_stages_before_dvc_reads_them(tmp_path, monkeypatch):
    """`reid-repro repro --exp -S larger.enabled=true` (make repro LARGER=1) writes conf/runs.json's larger_stages
    from the paper files first; a value other than true or false is refused before anything is written."""
    import shutil
    from types import SimpleNamespace

    from reid_repro.commands import repro
    from reid_repro.config import PAPERS, load_declared

    _project(tmp_path, False)
    shutil.copytree(ROOT / PAPERS, tmp_path / PAPERS, dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    assert repro.larger_switch(["seeds=2"]) is None and repro.larger_switch(["larger.enabled=true"]) is True
    args = SimpleNamespace(exp=True, set_param=["larger.enabled=yes"], targets=[], plan_only=True)
    with pytest.raises(ReidReproError, match=r"-S larger\.enabled=yes: larger\.enabled takes true or false"):
        repro.run(args)
    assert load_declared(tmp_path / "params.yaml")["larger_stages"] == {"warmups": {}, "runs": {}}
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: SimpleNamespace(returncode=0, stdout="{}", stderr=""))
    repro.run(SimpleNamespace(exp=True, set_param=["larger.enabled=true"], targets=[], plan_only=True))
    staged = load_declared(tmp_path / "params.yaml")["larger_stages"]
    assert set(staged["runs"]) == set(_params()["larger"]["runs"]) and staged["warmups"]


def test_the_report_marks_larger_cells_not_run_and_counts_the_item_in_part(tmp_path):
    from tests.test_report import _fake_run

    params = {"data": {"market": {}, "msmt": {}, "duke": {}},
              "runs": {"cc_market": {"method": "cluster_contrast", "base": "cluster_contrast", "dataset": "market",
                                     "test": "market", "init": "pretrain", "paper": "ise", "table": "6",
                                     "row": "Cluster-Contrast (Our Baseline)", "overrides": {}}},
              "larger": {"enabled": False, "warmups": {},
                         "runs": {"cc_msmt": {"method": "cluster_contrast", "base": "cluster_contrast",
                                              "dataset": "msmt", "test": "msmt", "init": "pretrain", "paper": "ise",
                                              "table": "6", "row": "Cluster-Contrast (Our Baseline)",
                                              "overrides": {}}}}}
    _fake_run(tmp_path / "runs", "cc_market", [0.50, 0.52, 0.48], [0.6, 0.7, 0.8])
    (tmp_path / "runs" / "cc_msmt").mkdir(parents=True)
    for f in ("metrics.json", "run.json"):
        (tmp_path / "runs" / "cc_msmt" / f).write_text(json.dumps({"not_run": "not run at the default scale: x"}))
    summary = build_report(params, tmp_path / "runs", tmp_path / "reports")
    frame = pd.read_csv(tmp_path / "reports" / "tables" / "ise_table6.csv").set_index("row")
    base = frame.loc["Cluster-Contrast (Our Baseline)"]
    assert bool(base["msmt.not_run"]) and not bool(base["market.not_run"]) and base["market.mAP.ours"] == 50.0
    md = (tmp_path / "reports" / "results.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| Cluster-Contrast (Our Baseline)"))
    assert "not run at the default scale" in row and "cc_market, cc_msmt" in row
    cov = pd.read_csv(tmp_path / "reports" / "tables" / "coverage.csv")
    t6 = cov[(cov["paper"] == "ise") & (cov["item"] == "Table 6")].iloc[0]
    assert t6["state"] == "in part" and t6["why"].startswith("1 of its 2 cells of ours are larger-profile rows")
    assert summary["coverage"]["ise"]["reproduced"] == 0 and summary["coverage"]["ise"]["in_part"] == 1
    # the not-run run's empty history draws no curve and no verdict
    assert not (tmp_path / "reports" / "plots" / "nmi" / "cc_msmt.csv").exists()
    # with no marker at all (its train_larger@ stage not run yet), a report built with allow_missing reads the row
    # the same way, not as "not built yet"
    import shutil

    shutil.rmtree(tmp_path / "runs" / "cc_msmt")
    summary = build_report(params, tmp_path / "runs", tmp_path / "reports2", allow_missing=True)
    frame = pd.read_csv(tmp_path / "reports2" / "tables" / "ise_table6.csv").set_index("row")
    assert bool(frame.loc["Cluster-Contrast (Our Baseline)"]["msmt.not_run"]) and summary["not_built"] == []
    row = next(ln for ln in (tmp_path / "reports2" / "results.md").read_text().splitlines()
               if ln.startswith("| Cluster-Contrast (Our Baseline)"))
    assert "not run at the default scale" in row and "not built yet" not in row


def test_an_item_whose_every_run_is_a_larger_row_is_not_run():
    """CANU's Table II: all 8 of its cells are larger-profile rows, so nothing of ours is shown: the coverage says
    "not run" with the reason, not "reproduced in part"; Table III, with trained cells beside them, is in part, and
    says how many of its cells."""
    from reid_repro.report.items import IN_PART, NOT_RUN, coverage

    rows = coverage({"canu-table-ii", "canu-table-iii"}, "canu",
                    partial={"canu-table-ii": 8, "canu-table-iii": 20},
                    unbuilt={"canu-table-ii": (0, 0), "canu-table-iii": (0, 4)}, cells={"canu-table-iii": 24})
    state = {r["item"]: (r["state"], r["why"]) for r in rows}
    assert state["Table II"][0] == NOT_RUN and "larger-profile rows" in state["Table II"][1]
    assert state["Table III"][0] == IN_PART and state["Table III"][1].startswith("20 of its 24 cells of ours")
