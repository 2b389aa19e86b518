"""The DVC pipeline on the smoke profile, in a temporary copy of the project: `dvc repro` builds everything,
and `dvc exp run -S <method>.<key>=...` re-runs only the runs that read that section, plus the report."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from reid_repro.config import load_params
from reid_repro.declare import write_project

ROOT = Path(__file__).resolve().parents[1]
# the runs the figures stage reads (each method once, on two stand-ins): enough to test the pipeline's wiring
FIGURE_RUNS = ("cc_market", "ise_market", "ice_aware_base_duke", "ice_aware_full_duke", "ice_aware_full_market")
# + one UDA run (CANU-MMT Market->Duke, from the source stage's two trainings) and two GCL+ stage-3 runs (from their
# stage-2 warm-up, itself from cc_market; the figures draw both), and Table 10 on the MARS stand-in (tracklets: the
# video world, its reader, meshes of frames, tracklet clustering; the figures draw Fig. 11 from what exists). The
# DukeMTMC-VideoReID leg is the same commands on the other layout, whose stand-in and reader tests/test_video.py
# checks: left out here for the suite's time, with the figures stage's lines that name it (DROPPED).
VIDEO_RUNS = ("cc_mars", "gclp_mars_full")
KEEP_RUNS = FIGURE_RUNS + ("canu_mmt_market2duke", "gclp_fu_m_full", "gclp_fu_m_rot") + VIDEO_RUNS
KEEP_WARMUPS = ("gclw_fu_m", "gclw_mars")
DROPPED = ("gclp_dukev_full", "data/meshes/dukev")
# the larger profile (off): a warm-up and the GCL+ run it starts, declared but with no stage (tests/test_larger.py
# checks that DVC lists them once it is on); the report says their cells are not run at the default scale
KEEP_LARGER = {"warmups": ("gclw_fu_d",), "runs": ("gclp_fu_d_full",)}
LARGER_WARMUP_SMOKE = {"dataset": "market", "init": "cc_market"}      # a start and meshes the smoke project has
WORLD = "synthetic/dvc.yaml:world"          # the world's stage, in its own pipeline file
VIDEO_WORLD = "synthetic/dvc.yaml:video_world"   # the video stand-ins (issue 42), beside it
TINY_LOOP = dict(epochs=2, iters=2, batch_ids=4, instances=2, warmup_epochs=0, lr_step=2, k1=6, k2=3, eps=0.6,
                 min_samples=2, workers=0)


def _run(cmd, cwd):
    env = dict(os.environ, ANNY_CACHE_DIR=str(ROOT / ".cache" / "anny"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def ran(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def _build(work: Path):
    """The smoke pipeline: a copy of the project at tiny settings, `dvc repro`, committed."""
    work.mkdir(parents=True)
    for name in (".dvcignore", "pyproject.toml", "params.yaml"):
        shutil.copy(ROOT / name, work / name)
    lines = (ROOT / "dvc.yaml").read_text().splitlines(keepends=True)
    (work / "dvc.yaml").write_text("".join(line for line in lines if not any(d in line for d in DROPPED)))
    shutil.copytree(ROOT / "synthetic", work / "synthetic")      # the world's pipeline file
    # with its caches: .dvcignore must keep them out of the hashes
    shutil.copytree(ROOT / "src", work / "src")
    params = load_params(ROOT / "params.yaml")
    params["world"]["profile"] = "smoke"
    params["video"]["profile"] = "smoke"
    params["seeds"] = 1                     # test_more_seeds_train_only_the_new_seeds adds a second
    params["model"]["cpu"].update(height=32, width=16)
    for section in ("pretrain", "source", "cluster_contrast", "ice", "mmt"):
        params[section]["loop"].update(TINY_LOOP)
    # GCL+ draws distinct images; eps 0.4: the tiny MARS stand-in's 24 tracklets, seen by the instance-trained start,
    # fall into one cluster at 0.6 (no P x K batch) and two at 0.4-0.5
    params["gcl_plus"]["loop"].update(TINY_LOOP, instances=1, eps=0.4)
    # every run trains the one seed (a baseline's own seeds: 6 would train six; tests/test_training.py checks it)
    params["runs"] = {k: {f: x for f, x in v.items() if f != "seeds"} for k, v in params["runs"].items()
                      if k in KEEP_RUNS}
    params["gcl_warmups"] = {k: {**v, "overrides": {**v["overrides"], "epochs": 1, "iters": 2}}
                             for k, v in params["gcl_warmups"].items() if k in KEEP_WARMUPS}
    params["studies"] = {"cluster_contrast": {**params["studies"]["cluster_contrast"], "n_trials": 2}}
    params["larger"].update({kind: {k: v for k, v in params["larger"][kind].items() if k in keep}
                             for kind, keep in KEEP_LARGER.items()})
    params["larger"]["warmups"] = {k: {**v, **LARGER_WARMUP_SMOKE} for k, v in params["larger"]["warmups"].items()}
    params["meshes"] = {d: params["meshes"][d] for d in ("market", "mars")}   # the stand-ins the warm-ups read
    params["sources"] = ["market"]                     # the only source a kept run starts from
    write_project(work, params)                        # params.yaml and conf/runs.json
    (work / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/.cache/\n/optuna.journal\n")
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["dvc", "config", "core.analytics", "false"], work)
    out = _run(["dvc", "repro"], work)
    _run(["git", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke pipeline"], work)
    (work.parent / "repro.log").write_text(out)
    return params, out


@pytest.fixture(scope="session")
def built(tmp_path_factory, worker_id):
    """The smoke pipeline, built once per test session: under pytest-xdist the first worker to need it builds it
    while the others wait on the lock, so the slowest part of the suite is never paid twice."""
    from filelock import FileLock

    # xdist gives each worker its own basetemp below the session's; its parent is shared by the workers
    base = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    shared = base / "smoke-pipeline"
    with FileLock(str(base / "smoke-pipeline.lock")):
        if (shared / "built").is_file():
            out = (shared / "repro.log").read_text()
            params = load_params(shared / "project" / "params.yaml")
        elif shared.exists():
            pytest.fail(f"{shared}: an earlier build of the smoke pipeline failed in this session")
        else:
            params, out = _build(shared / "project")
            (shared / "built").touch()
    return shared / "project", params, out


def _copy(src: Path, dst: Path) -> None:
    """A private copy of the built project. The DVC cache's files are read-only and only ever replaced, never
    rewritten, so they are hard links; the workspace, git and DVC's state are copied."""
    shutil.copytree(src, dst, symlinks=True, ignore=lambda d, names: [".dvc"] if Path(d) == src else [])
    shutil.copytree(src / ".dvc", dst / ".dvc", symlinks=True,
                    ignore=lambda d, names: ["cache"] if Path(d) == src / ".dvc" else [])
    shutil.copytree(src / ".dvc" / "cache", dst / ".dvc" / "cache", copy_function=os.link)


@pytest.fixture
def project(built, tmp_path):
    """Each test works on its own copy of the built pipeline, removed afterwards: tests do not see each other's
    experiments, and pytest-xdist can run them side by side."""
    src, params, out = built
    work = tmp_path / "project"
    _copy(src, work)
    yield work, params, out
    shutil.rmtree(work, ignore_errors=True)        # 1 GB each: pytest keeps the last three sessions' folders


def test_repro_builds_every_stage(project):
    work, params, out = project
    runs = set(params["runs"])
    expected = {WORLD, VIDEO_WORLD, "pretrain", "start", "figures", "report"} | {f"train@{r}" for r in runs} | \
        {f"prepare@{d}" for d in params["data"]} | {f"meshes@{d}" for d in params["meshes"]} | \
        {f"{kind}@{d}" for d in params["sources"] for kind in ("source", "transfer")} | \
        {f"warmup@{w}" for w in params["gcl_warmups"]} | \
        {f"tune@{s}" for s in params["studies"]} | {f"tuned@{s}" for s in params["studies"]}
    assert expected <= ran(out) and not [s for s in ran(out) if "larger" in s]
    for r in params["larger"]["runs"]:                   # larger.enabled false: no stage, shown as not run
        assert not (work / "runs" / r).exists()
    assert "not run at the default scale" in (work / "reports" / "results.md").read_text()
    assert (work / "models" / "gclw_fu_m" / "artifacts.pt").is_file()
    trials = (work / "studies" / "cluster_contrast" / "trials.csv").read_text().splitlines()
    assert len(trials) == 1 + 2 and (work / "optuna.journal").is_file()
    # the tuned@ stage retrains the study's run at the best trial's settings, on the test split
    best = yaml.safe_load((work / "studies" / "cluster_contrast" / "best.yaml").read_text())
    tuned = json.loads((work / "runs" / "tuned_cluster_contrast" / "run.json").read_text())
    assert all(tuned["method"][k] == v for k, v in best["best_params"].items()), (tuned["method"], best)
    for source in params["sources"]:                   # MMT's two networks start from two source trainings
        folder = work / "models" / f"source_{source}"
        net_2 = torch.load(folder / "artifacts.pt", weights_only=True)["model_2"]
        net_1 = torch.load(folder / "model.pt", weights_only=True)
        assert not torch.equal(net_1["body.0.weight"], net_2["body.0.weight"])
    assert json.loads((work / "runs" / "canu_mmt_market2duke" / "run.json").read_text())["inputs"]["init"]
    # direct transfer: the source model on every stand-in; on its own stand-in it scores what its stage measured
    transfer = json.loads((work / "models" / "transfer_market.json").read_text())
    own = json.loads((work / "models" / "source_market" / "metrics.json").read_text())["net1"]["mAP"]
    assert set(transfer) == {"market", "duke", "msmt"} and transfer["market"]["mAP"] == pytest.approx(own)
    assert (work / "reports" / "index.html").is_file() and (work / "reports" / "results.md").is_file()
    for r in runs:
        assert sorted(json.loads((work / "runs" / r / "metrics.json").read_text())["seeds"]) == ["0"]
        assert (work / "runs" / r / "seeds" / "0" / "history.parquet").is_file()
    assert (work / "data" / "meshes" / "market" / "render_315").is_dir()
    # dvc.yaml's plots render from the report's per-run curves and the reproduction data
    shown = json.loads(subprocess.run(["dvc", "plots", "show", "--json"], cwd=work, capture_output=True, text=True,
                                      check=True).stdout)
    assert not shown.get("errors"), shown.get("errors")
    assert "reports/plots/nmi" in json.dumps(shown) and "reports/plots/reproduction.csv" in json.dumps(shown)
    # the clusters plot draws both curves: clusters and outliers per epoch
    assert all(f'"field": "{f}"' in json.dumps(shown) for f in ("num_clusters", "num_outliers"))


# Every train stage's params come from one template (dvc.yaml: `${item.base}`, `${item.method}`), which
# tests/test_codedeps.py checks stage by stage. Here DVC itself shows the template at work, for a base section
# (MMT's: the CANU-MMT run that builds on it), the GCL+ section (read by non-train stages too: its warm-ups, the
# runs they start, the figures) and CANU's (issue 12: its runs, not the source models they start from); a method's
# own section is shown by `dvc exp run -S ise.lambda0=2.0` in test_a_lab_shares_the_pipeline_through_a_dvc_remote.
# (Cluster-Contrast's section would do as a base too, but half the smoke pipeline builds on it: the suite's time.)
SECTION_CHANGES = {"mmt": ("soft_ce_weight", 0.4), "gcl_plus": ("lambda_recon", 2.0), "canu": ("mu", 0.2)}


def _reads(spec: dict, section: str) -> bool:
    return section in (spec["method"], spec["base"])


def _stages_reading(params: dict, section: str) -> set[str]:
    """The stages whose params include ``section``: DVC marks exactly these changed when it changes."""
    runs = {r for r, spec in params["runs"].items() if _reads(spec, section)}
    gcl = section == "gcl_plus"            # the warm-ups and the figures stage read the gcl_plus section
    return ({f"train@{r}" for r in runs} | {f"warmup@{w}" for w in params["gcl_warmups"] if gcl}
            | ({"figures"} if runs & set(FIGURE_RUNS) or gcl else set())
            | {f"{kind}@{s}" for s, spec in params["studies"].items() if _reads(spec, section)
               for kind in ("tune", "tuned")})


def _reruns(params: dict, section: str) -> set[str]:
    """What `dvc exp run` re-runs after ``section`` changes: the stages reading it, then those whose inputs they
    rewrite: a GCL+ warm-up reads its stage-1 run's model, its stage-3 runs the warm-up's, the figures stage the
    runs it draws, and the report everything. The larger profile is off: it has no stages."""
    out = _stages_reading(params, section)
    runs = {s.split("@")[1] for s in out if s.startswith("train@")}
    warmups = {w for w, spec in params["gcl_warmups"].items() if spec["init"] in runs} | \
        {s.split("@")[1] for s in out if s.startswith("warmup@")}
    runs |= {r for r, spec in params["runs"].items() if spec["init"] in warmups}
    return (out | {f"warmup@{w}" for w in warmups} | {f"train@{r}" for r in runs}
            | ({"figures"} if runs & set(FIGURE_RUNS) else set())
            | {"report"})


def test_changing_a_method_param_reruns_only_its_runs(project):
    """Each section alone marks changed exactly the stages that read it (`dvc status`, one section at a time:
    a GCL+ setting marks its warm-ups, its runs and the figures drawn from its generator); then one experiment
    changes MMT's and CANU's sections and re-runs exactly those stages and what follows from their outputs: the
    CANU-MMT run and the report, not the source models it starts from. (GCL+'s re-run is left to `dvc status`, for
    the suite's time: with it this test took 179 s on a 2-core Xeon.)"""
    work, params, _ = project
    path = work / "params.yaml"
    original = path.read_text()
    for section, (key, value) in SECTION_CHANGES.items():
        changed = yaml.safe_load(original)
        node = changed[section]
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
        path.write_text(yaml.safe_dump(changed, sort_keys=False))
        try:
            expected = _stages_reading(params, section)
            assert expected and _changed(work) == expected, section
        finally:
            path.write_text(original)
    rerun = ("mmt", "canu")
    settings = [a for section in rerun for a in ("-S", f"{section}.{SECTION_CHANGES[section][0]}="
                                                       f"{SECTION_CHANGES[section][1]}")]
    out = _run(["dvc", "exp", "run", *settings], work)
    assert ran(out) == set().union(*(_reruns(params, s) for s in rerun)), out


def test_more_seeds_train_only_the_new_seeds(project):
    """`seeds: 2` makes every run stage out of date (they all read `seeds`), and a run stage then trains only
    seed 1: seed 0 comes back from .cache/results (same inputs), and the first seed's model is the same file, so
    the figures drawn from it stay current. Two run stages drawn by the figures stage are run; `dvc status` shows
    the rest waiting. (How the report pairs the seeds of two runs: tests/test_report.py.)"""
    work, params, _ = project
    targets = ("cc_market", "ice_aware_full_market")
    out = _run(["dvc", "exp", "run", "-S", "seeds=2", *(f"train@{r}" for r in targets)], work)
    assert ran(out) == {f"train@{r}" for r in targets}, out
    assert out.count("result reused") == len(targets), out
    for r in targets:
        metrics = json.loads((work / "runs" / r / "metrics.json").read_text())
        assert metrics["seed_list"] == [0, 1]
        values = [metrics["seeds"][s]["mAP"] for s in ("0", "1")]
        assert metrics["mAP"] == pytest.approx(sum(values) / 2)
    # every other run and the study's retrained run read `seeds`; the report reads the runs. The figures stage
    # reads the runs' first seed (its model and features/0.parquet), which comes back unchanged.
    waiting = ({f"train@{r}" for r in params["runs"] if r not in targets}
               | {f"tuned@{s}" for s in params["studies"]}
               | {"report"})
    assert _changed(work) == waiting


def _changed(work) -> set[str]:
    proc = subprocess.run(["dvc", "status", "--json"], cwd=work, capture_output=True, text=True, check=True)
    return set(json.loads(proc.stdout or "{}"))


def _importers(params, module: str) -> set[str]:
    """The stages whose command imports ``module`` (a path below src/reid_repro), by the import graph."""
    from reid_repro import codedeps

    out = set()
    stages = {WORLD: ("world", None), VIDEO_WORLD: ("video_world", None), "pretrain": ("pretrain", None),
              "start": ("start", None),
              **{f"source@{d}": ("source", None) for d in params["sources"]},
              **{f"transfer@{d}": ("transfer", None) for d in params["sources"]},
              "figures": ("figures", None),
              "report": ("report", None),
              **{f"prepare@{d}": ("prepare", None) for d in params["data"]},
              **{f"meshes@{d}": ("meshes", None) for d in params["meshes"]},
              **{f"train@{r}": ("train", spec["method"]) for r, spec in params["runs"].items()},
              **{f"warmup@{w}": ("warmup", None) for w in params["gcl_warmups"]},
              **{f"tune@{s}": ("tune", spec["method"]) for s, spec in params["studies"].items()},
              **{f"tuned@{s}": ("tuned", spec["method"]) for s, spec in params["studies"].items()}}
    for name, (kind, method) in stages.items():
        if codedeps.SRC / module in codedeps.stage_files(kind, method):
            out.add(name)
    return out


# the two modules issue 16 names: one every stage imports, one a base method's; every other module's stages come
# from the same import graph, which tests/test_codedeps.py compares with dvc.yaml for every stage
@pytest.mark.parametrize("module", ["config/core.py", "methods/cluster_contrast.py"])
def test_editing_a_module_changes_exactly_the_stages_that_import_it(project, module):
    work, params, _ = project
    assert _changed(work) == set()
    path = work / "src" / "reid_repro" / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# an edit\n")
        expected = _importers(params, module)
        assert expected and _changed(work) == expected
    finally:
        path.write_text(original)
    assert _changed(work) == set()
    # a compiled cache next to the sources changes nothing
    cache = path.parent / "__pycache__"
    cache.mkdir(exist_ok=True)
    (cache / "extra.cpython-311.pyc").write_bytes(b"compiled")
    (cache / "jaccard.kernel-1.py311.nbi").write_bytes(b"numba index")
    assert _changed(work) == set()


def test_a_lab_shares_the_pipeline_through_a_dvc_remote(project, tmp_path):
    """Push the built smoke pipeline to a local-folder remote, pull it into a second clone: there `dvc status`
    is clean and `dvc exp run -S ise.lambda0=2.0` runs only the ISE runs, the figures drawn from them and the
    report."""
    work, params, _ = project
    remote = tmp_path / "remote"
    _run(["dvc", "remote", "add", "-f", "--local", "lab", str(remote)], work)
    assert _changed(work) == set()
    _run(["dvc", "push", "-r", "lab"], work)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    _run(["dvc", "remote", "add", "-f", "--local", "lab", str(remote)], clone)
    _run(["dvc", "pull", "-r", "lab"], clone)
    assert _changed(clone) == set()
    out = _run(["dvc", "exp", "run", "-S", "ise.lambda0=2.0"], clone)
    ise = {f"train@{r}" for r, spec in params["runs"].items() if spec["method"] == "ise"}
    assert ise and ran(out) == ise | {"figures", "report"}, out
    # `dvc plots diff` draws the experiment's curves beside the committed ones
    diff = subprocess.run(["dvc", "plots", "diff", "HEAD", "--json"], cwd=clone, capture_output=True, text=True,
                          check=True).stdout
    shown = json.loads(diff)
    assert not shown.get("errors"), shown.get("errors")
    assert '"HEAD"' in diff and '"workspace"' in diff and "reports/plots/nmi" in diff


def test_a_variant_on_a_fresh_clone_trains_only_what_reads_the_key(project, tmp_path):
    """Issue 36: on a fresh clone (git only: no DVC cache, so no manifests, weights or meshes), `reid-repro variant
    -S ise.lambda0=2.0` builds only the absent upstream stages the ISE runs need (their manifests and the
    pretrained start), then the ISE runs and the report through `dvc exp run`; the figures, which read other
    runs' weights that are absent here, are left as committed, and no other run is trained."""
    work, params, _ = project
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(work), str(clone)], tmp_path)
    out = _run(["reid-repro", "variant", "-S", "ise.lambda0=2.0"], clone)
    ise = {r: spec for r, spec in params["runs"].items() if spec["method"] == "ise"}
    data = {d for spec in ise.values() for d in (spec["dataset"], spec["test"])} | {"pretrain"}
    assert ise and ran(out) == ({f"prepare@{d}" for d in data} | {"pretrain"} | {f"train@{r}" for r in ise}
                                | {"report"}), out
    assert "left as committed (needs outputs absent here): figures" in out
    assert yaml.safe_load((clone / "params.yaml").read_text())["ise"]["lambda0"] == 2.0


def test_paper_scale_on_real_roots_never_builds_the_world(world, tmp_path):
    """Issue 18 §6: `dvc exp run -S scale=paper` with real dataset roots and data.pretrain pointing at a folder of
    ImageNet checkpoints runs prepare, the ImageNet start and the run, and neither renders the synthetic world
    nor trains the stand-in pretraining; no GCL renders are needed (issue 36: meshes.market keeps its default). A tiny Market-1501 tree and a random ResNet-50 state dict stand in for
    the real dataset and torchvision's checkpoint; the loop is tiny and `device: cpu` is set on purpose."""
    import torch
    import torchvision

    out, _ = world
    work = tmp_path / "project"
    work.mkdir()
    for name in (".dvcignore", "pyproject.toml", "params.yaml"):
        shutil.copy(ROOT / name, work / name)
    lines = (ROOT / "dvc.yaml").read_text().splitlines(keepends=True)
    (work / "dvc.yaml").write_text("".join(line for line in lines if not any(d in line for d in DROPPED)))
    shutil.copytree(ROOT / "synthetic", work / "synthetic")
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__"))
    real = tmp_path / "datasets" / "Market-1501"
    shutil.copytree(out / "market", real, ignore=shutil.ignore_patterns("*.parquet"))   # images only
    imagenet = tmp_path / "checkpoints"
    imagenet.mkdir()
    torch.save(torchvision.models.resnet50().state_dict(), imagenet / "resnet50-0676ba61.pth")
    params = load_params(ROOT / "params.yaml")
    params["seeds"] = 1
    params["runs"] = {"cc_market": {f: x for f, x in params["runs"]["cc_market"].items() if f != "seeds"}}
    params["gcl_warmups"], params["studies"] = {}, {}
    params["larger"] = {"enabled": False, "warmups": {}, "runs": {}}
    params["cluster_contrast"]["paper_loop"].update(epochs=1, iters=1, batch_ids=2, instances=4, k1=4, k2=2,
                                                    eps=0.6, min_samples=2, workers=0, lr_step=1, warmup_epochs=0)
    write_project(work, params)
    (work / ".gitignore").write_text("/mlflow.db\n/mlartifacts/\n/.cache/\n/optuna.journal\n")
    _run(["git", "init", "-q"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["dvc", "config", "core.analytics", "false"], work)
    _run(["git", "add", "-A"], work)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project"], work)
    # no GCL renders: meshes.market stays at its default (synthetic), which only the meshes stage reads
    settings = {"scale": "paper", "device": "cpu", "data.market.root": str(real),
                "data.pretrain.root": str(imagenet), "data.pretrain.format": "imagenet"}
    cmd = ["dvc", "exp", "run"] + [a for k, v in settings.items() for a in ("-S", f"{k}={v}")] + ["train@cc_market"]
    output = _run(cmd, work)
    assert ran(output) == {"prepare@market", "prepare@pretrain", "pretrain", "train@cc_market"}
    assert not (work / "data" / "world").exists()
    start = json.loads((work / "models" / "pretrain" / "metrics.json").read_text())
    assert start["start"] == "imagenet" and start["checkpoint"] == "resnet50-0676ba61.pth"
    info = json.loads((work / "runs" / "cc_market" / "run.json").read_text())
    assert info["scale"] == "paper" and info["model"]["arch"] == "resnet50"
    # synthetic meshes of a real root cannot be made: the meshes stage, which reads them, stops naming the setting
    bad = subprocess.run(["reid-repro", "meshes", "--dataset", "market", "--source", "synthetic", "--from",
                          "data/world/market", "--out", "data/meshes/market"], cwd=work, capture_output=True,
                         text=True, env=dict(os.environ, ANNY_CACHE_DIR=str(ROOT / ".cache" / "anny")))
    assert bad.returncode != 0 and "meshes.market: source synthetic" in bad.stdout + bad.stderr
    assert not (work / "data" / "world").exists()


def _lock_md5(work: Path, stage: str) -> dict:
    entry = yaml.safe_load((work / "dvc.lock").read_text())["stages"][stage]
    return {o["path"]: o["md5"] for o in entry["outs"]}


def test_a_rebuilt_start_with_the_same_weights_leaves_its_runs_current(project):
    """Rebuilding the pretrain and source stages (as a fresh machine does) writes new records (seconds, git
    revision) but the same model.pt and artifacts.pt bytes, so the runs that start from them stay up to date."""
    work, params, _ = project
    before = {s: _lock_md5(work, s) for s in ("pretrain", "source@market")}
    out = _run(["dvc", "repro", "-f", "-s", "pretrain", "source@market"], work)
    assert ran(out) == {"pretrain", "source@market"}
    after = {s: _lock_md5(work, s) for s in before}
    for stage in before:
        weights = [p for p in before[stage] if p.endswith(".pt")]
        assert len(weights) == 2 and all(before[stage][p] == after[stage][p] for p in weights), (before, after)
    status = _run(["dvc", "status", "train@cc_market", "train@canu_mmt_market2duke", "start"], work)
    assert "up to date" in status, status
